rule download:
    output:
        res("sources/{source_id}.mp4"),
    log:
        res("logs/download/{source_id}.log"),
    retries: config["download"]["retries"]
    conda:
        "../../envs/signpose.yaml"
    threads: 1
    resources:
        downloads=1,
        mem_mb=1000,
        runtime=30,
        # Scripts do not see the attempt number otherwise; the job waits before a retry.
        attempt=lambda wc, attempt: attempt,
    params:
        url=lambda wc: DATASET.urls[wc.source_id],
        options=DOWNLOAD_OPTIONS,
        backoff_s=config["download"]["backoff_s"],
    script:
        "../scripts/download.py"
