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
    # Only the URL decides what a source is. The script reads the download options from the
    # config, so that changing a politeness or retry setting does not download every source
    # again (Snakemake reruns jobs whose params change).
    params:
        url=lambda wc: DATASET.urls[wc.source_id],
    script:
        "../scripts/download.py"


# `snakemake retry_dead --config "download={'retry_reasons': ['http_403']}"` deletes the
# tombstones of those reasons; the next run downloads those sources again.
rule retry_dead:
    log:
        res("logs/download/retry_dead.log"),
    localrule: True
    conda:
        "../../envs/signpose.yaml"
    threads: 1
    resources:
        mem_mb=500,
        runtime=10,
    params:
        sources=res("sources"),
        reasons=config["download"]["retry_reasons"],
    script:
        "../scripts/retry_dead.py"
