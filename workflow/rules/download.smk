from signpose.download import mirror as download_mirror
from signpose.download.options import job_minutes

# The instances of each source: a `sources` mirror names non-YouTube files by video_id.
VIDEOS_OF_SOURCE = {}
for _vid, _sid in SOURCE_OF.items():
    VIDEOS_OF_SOURCE.setdefault(_sid, []).append(_vid)
# dataset.mirror, listed once per run: what each instance takes from it
MIRROR = download_mirror.Mirror.from_config(config["dataset"])
FROM_MIRROR = download_mirror.mirrored(
    MIRROR, {vid: inst.url for vid, inst in INSTANCES.items()}
)
# An `instances` mirror holds the clips already cut: the pose job reads them, never a source.
MIRROR_CLIPS = (
    {vid: str(path) for vid, path in FROM_MIRROR.items()}
    if MIRROR is not None and MIRROR.layout == "instances"
    else {}
)


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
        # bounded wherever it runs: the wait, the attempt's deadline, normalising
        runtime=lambda wc, attempt: job_minutes(config["download"], attempt),
        # Scripts do not see the attempt number otherwise; the job waits before a retry.
        attempt=lambda wc, attempt: attempt,
    # Only the URL (and the instances it serves, which name it in a mirror) decides what a
    # source is. The script reads the download options from the config, so that changing a
    # politeness or retry setting does not download every source again (Snakemake reruns
    # jobs whose params change).
    params:
        url=lambda wc: DATASET.urls[wc.source_id],
        video_ids=lambda wc: VIDEOS_OF_SOURCE[wc.source_id],
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
