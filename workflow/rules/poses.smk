# Clip and pose in one job: a new clip always needs new poses, so fusing them loses no
# incrementality and saves 21,000 jobs at WLASL2000 size (benchmarks/README.md). Features stay
# a job of their own: a feature option must not re-run MediaPipe.
rule pose:
    input:
        # an `instances` mirror's clip is cut already (download.smk): trimmed from 0 to its end
        lambda wc: MIRROR_CLIPS.get(wc.video_id)
        or res(f"sources/{SOURCE_OF[wc.video_id]}.mp4"),
    output:
        clip=res("clips/{video_id}.mp4"),
        pose=res("poses/{video_id}.pose"),
    log:
        res("logs/pose/{video_id}.log"),
    conda:
        "../../envs/signpose.yaml"
    threads: 1
    resources:
        mem_mb=1500,
        runtime=20,
    params:
        trim=lambda wc: {
            **INSTANCES[wc.video_id].clip_spec(),
            **({"start_s": 0.0, "end_s": None} if wc.video_id in MIRROR_CLIPS else {}),
        },
        clip=config["clip"],
        pose=config["pose"],
    shell:
        "instance_job pose {log:q} {threads} {input:q} {output.clip:q} {output.pose:q}"
        " {params.trim:q} {params.clip:q} {params.pose:q}"
