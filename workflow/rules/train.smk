rule global_stats:
    input:
        res("tables/instances.csv"),
    output:
        res("stats/global_stats.npz"),
    log:
        res("logs/global_stats/global_stats.log"),
    conda:
        "../../envs/signpose.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=30,
    params:
        features=res("features"),
    script:
        "../scripts/global_stats.py"


rule train:
    input:
        instances=res("tables/instances.csv"),
        stats=res("stats/global_stats.npz"),
    output:
        model=res("model/model.keras"),
        labels=res("model/labels.json"),
        history=res("model/history.csv"),
        curves=report(
            res("model/training_curves.png"),
            caption="../report/training_curves.rst",
            category="Training",
        ),
    log:
        res("logs/train/train.log"),
    conda:
        "../../envs/signpose.yaml"
    threads: config["resources"]["train_threads"]
    resources:
        mem_mb=config["resources"]["train_mem_mb"],
        runtime=config["resources"]["train_runtime"],
        gpu=config["resources"]["train_gpu"],
    params:
        features=res("features"),
        options=config["train"],
    script:
        "../scripts/train.py"


rule evaluate:
    input:
        instances=res("tables/instances.csv"),
        stats=res("stats/global_stats.npz"),
        model=res("model/model.keras"),
        labels=res("model/labels.json"),
    output:
        metrics=report(
            res("model/metrics.json"),
            caption="../report/metrics.rst",
            category="Training",
        ),
        confusion=report(
            res("model/confusion_matrix.png"),
            caption="../report/confusion.rst",
            category="Training",
        ),
    log:
        res("logs/evaluate/evaluate.log"),
    conda:
        "../../envs/signpose.yaml"
    threads: config["resources"]["train_threads"]
    resources:
        mem_mb=config["resources"]["train_mem_mb"],
        runtime=60,
    params:
        features=res("features"),
        options=config["train"],
    script:
        "../scripts/evaluate.py"
