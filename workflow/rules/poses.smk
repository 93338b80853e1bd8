import json

# Clip and pose in one job: a new clip always needs new poses, so fusing them loses no
# incrementality and saves 21,000 jobs at WLASL2000 size (benchmarks/README.md). Features stay
# a job of their own: a feature option must not re-run MediaPipe.
# Options reach the job as one JSON document, written once here, not per job.
POSE_OPTIONS = json.dumps(
    {"clip": config["clip"], "pose": config["pose"]}, sort_keys=True
)


# Each instance's source (an `instances` mirror's clip is cut already, download.smk: it is
# trimmed from 0 to its end) and its trim as JSON, looked up by the rule's functions.
POSE_SOURCE = {
    vid: MIRROR_CLIPS.get(vid) or res(f"sources/{SOURCE_OF[vid]}.mp4")
    for vid in INSTANCES
}
POSE_TRIM = {
    vid: json.dumps(
        {
            **inst.clip_spec(),
            **({"start_s": 0.0, "end_s": None} if vid in MIRROR_CLIPS else {}),
        }
    )
    for vid, inst in INSTANCES.items()
}


rule pose:
    input:
        lambda wc: POSE_SOURCE[wc.video_id],
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
        trim=lambda wc: POSE_TRIM[wc.video_id],
        options=POSE_OPTIONS,
    shell:
        "instance_job pose --log {log:q} --threads {threads} --source {input:q}"
        " --clip {output.clip:q} --pose {output.pose:q} --trim {params.trim:q}"
        " --options {params.options:q}"


# Results written before tombstones were valid files of their format hold old-form tombstones
# (a JSON document under the data file's name). Every stage still recognises them;
# `snakemake upgrade_tombstones` rewrites them in place, keeping their times (nothing reruns).
rule upgrade_tombstones:
    log:
        res("logs/upgrade_tombstones/upgrade_tombstones.log"),
    localrule: True
    conda:
        "../../envs/signpose.yaml"
    threads: 1
    resources:
        mem_mb=500,
        runtime=30,
    params:
        folders=[
            res(d) for d in ("sources", "clips", "poses", "features", "poses_clean")
        ],
        pose=config["pose"],
    script:
        "../scripts/upgrade_tombstones.py"
