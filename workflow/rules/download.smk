import json
import os

from signpose.download import mirror as download_mirror
from signpose.download.options import check_cookies_file, job_minutes
from signpose.jobs import download as download_command

# A broken cookies file stops the run here, not in every download job.
check_cookies_file(config["download"]["cookies_file"])
# What a download job reads of the config, in the environment its jobs inherit; neither params
# nor the command, which would download every source again when an option changes.
os.environ[download_command.CONFIG_ENV] = json.dumps(
    {"download": config["download"], "dataset": config["dataset"]}, sort_keys=True
)

# dataset.mirror, listed once per run: what each instance takes from it
MIRROR = download_mirror.Mirror.from_config(config["dataset"])
FROM_MIRROR = download_mirror.mirrored(
    MIRROR, {vid: inst.url for vid, inst in INSTANCES.items()}
)
# A `sources` mirror's file stands in for the download of its source (an input of the job, so
# that the params, and with them every source already downloaded, stay as they were); an
# `instances` mirror holds the clips already cut, which the pose job reads instead of a source.
MIRROR_SOURCES, MIRROR_CLIPS = {}, {}
if MIRROR is not None and MIRROR.layout == "sources":
    MIRROR_SOURCES = {SOURCE_OF[vid]: str(path) for vid, path in FROM_MIRROR.items()}
if MIRROR is not None and MIRROR.layout == "instances":
    MIRROR_CLIPS = {vid: str(path) for vid, path in FROM_MIRROR.items()}


rule download:
    input:
        # no input function at all without a mirror: 18,000 calls less at WLASL2000
        (lambda wc: MIRROR_SOURCES.get(wc.source_id, [])) if MIRROR_SOURCES else [],
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
        # bounded wherever it runs: the longest wait, an attempt's deadline, normalising
        runtime=job_minutes(config["download"]),
        # Jobs do not see the attempt number otherwise; the job waits before a retry.
        attempt=lambda wc, attempt: attempt,
    params:
        url=lambda wc: DATASET.urls[wc.source_id],
    # `{input:q}""`: the mirror's file, or an empty argument when there is none
    shell:
        "instance_job download --log {log:q} --url {params.url:q} --source {output:q}"
        ' --mirror {input:q}"" --attempt {resources.attempt}'


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
