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
    script:
        "../scripts/global_stats.py"


# model.tflite exists only when the config asks for it.
TFLITE = {"tflite": res("model/model.tflite")} if config["train"]["tflite"] else {}
# A GPU for SLURM: either a count (`gpu`) or a gres string naming the model (`gres`), not both.
TRAIN_GPU = {"gpu": config["resources"]["train_gpu"]}
if config["resources"]["train_gres"]:
    TRAIN_GPU = {"gres": config["resources"]["train_gres"]}


# The train, evaluate and global_stats jobs read the features of the kept instances: the
# paths are in tables/instances.csv (its manifest; tables.smk says why), so each declares that
# one file instead of 20,000. The names of their outputs are the library's arguments.
rule train:
    input:
        instances=res("tables/instances.csv"),
        stats=res("stats/global_stats.npz"),
    output:
        model=res("model/model.keras"),
        labels=res("model/labels.json"),
        history=report(
            res("model/history.csv"),
            caption="../report/history.rst",
            category="Training",
        ),
        curves=report(
            res("model/training_curves.png"),
            caption="../report/training_curves.rst",
            category="Training",
        ),
        summary=report(
            res("model/train_summary.json"),
            caption="../report/train_summary.rst",
            category="Training",
        ),
        config=res("model/train_config.json"),
        tensorboard=directory(res("model/tensorboard")),
    log:
        res("logs/train/train.log"),
    conda:
        "../../envs/signpose.yaml"
    threads: config["resources"]["train_threads"]
    resources:
        **TRAIN_GPU,
        mem_mb=config["resources"]["train_mem_mb"],
        runtime=config["resources"]["train_runtime"],
    params:
        options=config["train"],
    script:
        "../scripts/train.py"


rule evaluate:
    input:
        instances=res("tables/instances.csv"),
        stats=res("stats/global_stats.npz"),
        model=res("model/model.keras"),
        labels=res("model/labels.json"),
        summary=res("model/train_summary.json"),
        config=res("model/train_config.json"),
    output:
        **TFLITE,
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
        options=config["train"],
    script:
        "../scripts/evaluate.py"
