# tables/instances.csv is the manifest of every later job: its `<kind>_file` columns name each
# instance's files, from INSTANCE_FILES (features.smk). Its inputs are one QC file per shard
# of the features stage: hundreds, not 21,000 (Snakemake's setup of a job is quadratic in its
# input count: 21 s at 21,000 inputs, 8 min at 100,000), and the shards order it after every
# features job.
rule tables:
    input:
        metadata=config["dataset"]["metadata"],
        qc=expand(rules.features.output.qc, shard=SHARDS),
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
        files=INSTANCE_FILES,
    script:
        "../scripts/tables.py"
