# tables/instances.csv is the manifest of every later job: its `<kind>_file` columns name each
# instance's files, from the patterns below. Those files are not inputs here too: each kind
# would add 21,000 inputs at WLASL2000 (the features files of 500 glosses, 7,739, cost about
# 10% more dry-run CPU), and the features job writes features and qc together from the pose,
# so the qc inputs already order this job after all of them.
rule tables:
    input:
        metadata=config["dataset"]["metadata"],
        qc=per_instance("qc/{video_id}.json", "all"),
        variations=res("text/variations.json"),
    output:
        instances=report(
            res("tables/instances.csv"),
            caption="../report/instances.rst",
            category="Dataset",
        ),
        failures=report(
            res("tables/failures.csv"),
            caption="../report/failures.rst",
            category="Dataset",
        ),
        funnel=report(
            res("tables/funnel.csv"),
            caption="../report/funnel.rst",
            category="Dataset",
        ),
        columns=res("tables/feature_columns.csv"),
    log:
        res("logs/tables/tables.log"),
    conda:
        "../../envs/signpose.yaml"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=30,
    params:
        dataset=config["dataset"],
        groups=GROUP_COLUMNS,
        files={
            "features": str(rules.features.output.features),
            "pose": str(rules.pose.output.pose),
            "clean_pose": str(rules.features.output.clean),
        },
    script:
        "../scripts/tables.py"
