rule download:
    output:
        res("sources/{source_id}.mp4"),
    params:
        url=lambda wc: DATASET.urls[wc.source_id],
        options=DOWNLOAD_OPTIONS,
        backoff_s=config["download"]["backoff_s"],
    log:
        res("logs/download/{source_id}.log"),
    threads: 1
    resources:
        downloads=1,
        mem_mb=1000,
        runtime=30,
    retries: config["download"]["retries"]
    script:
        "../scripts/download.py"
