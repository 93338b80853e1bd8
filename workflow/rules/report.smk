rule dataset_summary:
    input:
        instances=res("tables/instances.csv"),
    output:
        report(
            res("report/dataset.html"),
            caption="../report/dataset.rst",
            category="Dataset",
        ),
    log:
        res("logs/dataset_summary/dataset_summary.log"),
    conda:
        "../../envs/signpose.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    params:
        name=config["dataset"]["name"],
    script:
        "../scripts/dataset_summary.py"


rule qc_plots:
    input:
        instances=res("tables/instances.csv"),
    output:
        report(res("report/qc.png"), caption="../report/qc.rst", category="Quality"),
    log:
        res("logs/qc_plots/qc_plots.log"),
    conda:
        "../../envs/signpose.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    script:
        "../scripts/qc_plots.py"


rule skeletons:
    input:
        instances=res("tables/instances.csv"),
    output:
        report(
            res("report/skeletons.png"),
            caption="../report/skeletons.rst",
            category="Quality",
        ),
    log:
        res("logs/skeletons/skeletons.log"),
    conda:
        "../../envs/signpose.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    params:
        poses=res("poses"),
        n=config["report"]["skeletons"],
        seed=config["report"]["seed"],
    script:
        "../scripts/skeletons.py"


rule metrics_summary:
    input:
        metrics=res("model/metrics.json"),
        compared=[path for run in COMPARED.values() for path in run],
    output:
        report(
            res("report/metrics.html"),
            caption="../report/evaluation.rst",
            category="Training",
        ),
    log:
        res("logs/metrics_summary/metrics_summary.log"),
    conda:
        "../../envs/signpose.yaml"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=5,
    params:
        runs=COMPARED,
    script:
        "../scripts/metrics_summary.py"
