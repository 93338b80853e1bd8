rule clip:
    input:
        lambda wc: res(f"sources/{SOURCE_OF[wc.video_id]}.mp4"),
    output:
        res("clips/{video_id}.mp4"),
    log:
        res("logs/clip/{video_id}.log"),
    conda:
        "../../envs/signpose.yaml"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=10,
    params:
        trim=lambda wc: INSTANCES[wc.video_id].clip_spec(),
        options=config["clip"],
    script:
        "../scripts/clip.py"
