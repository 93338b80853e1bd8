rule features:
    input:
        res("poses/{video_id}.pose"),
    output:
        features=res("features/{video_id}.npy"),
        qc=res("qc/{video_id}.json"),
    log:
        res("logs/features/{video_id}.log"),
    conda:
        "../../envs/signpose.yaml"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=5,
    params:
        options=config["features"],
    shell:
        "instance_job features {log:q} {input:q} {output.features:q} {output.qc:q}"
        " {wildcards.video_id:q} {params.options:q}"
