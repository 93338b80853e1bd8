rule features:
    input:
        res("poses/{video_id}.pose"),
    output:
        features=res("features/{video_id}.npy"),
        qc=res("qc/{video_id}.json"),
    params:
        options=config["features"],
    log:
        res("logs/features/{video_id}.log"),
    threads: 1
    resources:
        mem_mb=1000,
        runtime=5,
    script:
        "../scripts/features.py"
