import json

# Features, QC and the clean pose (the lexicon's) in one job: it reads the raw pose once.
FEATURE_OPTIONS = json.dumps(config["features"], sort_keys=True)


rule features:
    input:
        res("poses/{video_id}.pose"),
    output:
        features=res("features/{video_id}.npy"),
        qc=res("qc/{video_id}.json"),
        clean=res("poses_clean/{video_id}.pose"),
    log:
        res("logs/features/{video_id}.log"),
    conda:
        "../../envs/signpose.yaml"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=5,
    params:
        options=FEATURE_OPTIONS,
    shell:
        "instance_job features --log {log:q} --pose {input:q} --features {output.features:q}"
        " --qc {output.qc:q} --clean {output.clean:q} --video_id {wildcards.video_id:q}"
        " --options {params.options:q}"
