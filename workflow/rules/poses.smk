rule pose:
    input:
        res("clips/{video_id}.mp4"),
    output:
        res("poses/{video_id}.pose"),
    params:
        options=config["pose"],
    log:
        res("logs/pose/{video_id}.log"),
    threads: 1
    resources:
        mem_mb=1500,
        runtime=20,
    script:
        "../scripts/pose.py"
