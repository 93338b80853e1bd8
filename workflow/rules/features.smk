import json

# Each instance's files, by kind: the features job reads `pose` and writes the others;
# tables/instances.csv names them all (tables.smk). Patterns, "{video_id}" in them.
INSTANCE_FILES = {
    "pose": str(rules.pose.output.pose),
    "features": res("features/{video_id}.npy"),
    "clean_pose": res("poses_clean/{video_id}.pose"),
}
# Options reach the job as one JSON document, written once here, not per job.
FEATURE_OPTIONS = json.dumps(config["features"], sort_keys=True)


# Features, clean pose (the lexicon's) and QC record of every instance of one shard
# (common.smk): each raw pose is read once. The per-instance features/<video_id>.npy and
# poses_clean/<video_id>.pose are written by this job but are not its declared outputs
# (Snakemake takes no output function); tables/instances.csv names them for every later job,
# and a shard reruns whenever one of its raw poses, its list of instances or the options change.
rule features:
    input:
        lambda wc: [INSTANCE_FILES["pose"].format(video_id=v) for v in SHARDS[wc.shard]],
    output:
        qc=res("qc/shards/{shard}.jsonl"),
    log:
        res("logs/features/{shard}.log"),
    conda:
        "../../envs/signpose.yaml"
    threads: 1
    resources:
        mem_mb=1000,
        # about 40 ms an instance on a warm worker; 2 s each leaves room for a slow node
        runtime=lambda wc: 5 + len(SHARDS[wc.shard]) // 30,
    params:
        video_ids=lambda wc: json.dumps(SHARDS[wc.shard]),
        # a function's value is not formatted with wildcards: the patterns stay whole
        files=lambda wc: json.dumps(INSTANCE_FILES),
        options=FEATURE_OPTIONS,
    shell:
        "instance_job features --log {log:q} --video_ids {params.video_ids:q}"
        " --files {params.files:q} --qc {output.qc:q} --options {params.options:q}"
