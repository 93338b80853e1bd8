rule dataset_summary:
    input:
        instances=res("tables/instances.csv"),
        funnel=res("tables/funnel.csv"),
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
        split_note=DATASET.split_note,
        groups=GROUP_COLUMNS,
    script:
        "../scripts/dataset_summary.py"


rule qc_plots:
    input:
        instances=res("tables/instances.csv"),
        funnel=res("tables/funnel.csv"),
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


# Draws the poses of a few kept clips, whose paths it reads from tables/instances.csv.
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
        n=config["report"]["skeletons"],
        seed=config["report"]["seed"],
    script:
        "../scripts/skeletons.py"


rule metrics_summary:
    input:
        metrics=res("model/metrics.json"),
        instances=res("tables/instances.csv"),
        compared=[path for run in COMPARED.values() for path in run],
        # train.seeds: the figures over the seeds (select_seed)
        seeds=[res("model/seeds.json")] if SEEDS else [],
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
        groups=GROUP_COLUMNS,
        runs=COMPARED,
    script:
        "../scripts/metrics_summary.py"


rule lexicon_page:
    input:
        instances=res("tables/instances.csv"),
        index=res("lexicon/all/index.csv"),
        poses=res("lexicon/all/poses"),
    output:
        report(
            res("report/lexicon.html"),
            caption="../report/lexicon.rst",
            category="Lexicon",
        ),
    log:
        res("logs/lexicon_page/lexicon_page.log"),
    conda:
        "../../envs/signpose.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    params:
        spoken=config["dataset"]["spoken_language"],
        signed=config["dataset"]["signed_language"],
    script:
        "../scripts/lexicon_page.py"


rule group_plots:
    input:
        instances=res("tables/instances.csv"),
    output:
        report(
            res("report/groups.png"),
            caption="../report/groups.rst",
            category="Dataset",
        ),
    log:
        res("logs/group_plots/group_plots.log"),
    conda:
        "../../envs/signpose.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    params:
        groups=GROUP_COLUMNS,
    script:
        "../scripts/group_plots.py"
