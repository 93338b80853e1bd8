rule pose:
    input:
        res("clips/{video_id}.mp4"),
    output:
        res("poses/{video_id}.pose"),
    log:
        res("logs/pose/{video_id}.log"),
    conda:
        "../../envs/signpose.yaml"
    threads: 1
    resources:
        mem_mb=1500,
        runtime=20,
    params:
        options=config["pose"],
    script:
        "../scripts/pose.py"
