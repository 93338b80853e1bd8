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
    script:
        "../scripts/tables.py"
