from signpose.training.config import train_minutes


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
        features_ema_alpha=config["features"]["ema_alpha"],
    script:
        "../scripts/global_stats.py"


# model.tflite exists only when the config asks for it; a landmark model (not cnn_lstm_rgb)
# also gets model_landmarks.tflite: raw MediaPipe landmarks in, normalisation, smoothing and
# resampling in the graph.
TFLITE = {"tflite": res("model/model.tflite")} if config["train"]["tflite"] else {}
if TFLITE and config["train"]["model_type"] != "cnn_lstm_rgb":
    TFLITE["landmarks_tflite"] = res("model/model_landmarks.tflite")
# A GPU for SLURM: either a count (`gpu`) or a gres string naming the model (`gres`), not both.
TRAIN_GPU = {"gpu": config["resources"]["train_gpu"]}
if config["resources"]["train_gres"]:
    TRAIN_GPU = {"gres": config["resources"]["train_gres"]}
# The train job's time limit follows the dataset unless resources.train_runtime is set: one
# pass over the metadata already loaded (the kept clips are known only after the features).
TRAIN_MINUTES = train_minutes(
    config["resources"],
    config["train"],
    sum(instance.split == "train" for instance in INSTANCES.values()),
)
# cnn_lstm_rgb reads each instance's clip, named by the pose rule's output. A function, so
# that Snakemake does not expand its {video_id} as a wildcard of these rules.
CLIP_PATTERN = lambda wildcards: str(rules.pose.output.clip)


# train.compare: further model types on the same split and seed, each in model/<type>/.
COMPARE = config["train"]["compare"]


# train.seeds: the configured model trained once per seed, each in model/seeds/<seed>/; the
# run best on val is copied to model/ (select_seed). Empty: one run with train.seed, in model/.
SEEDS = config["train"]["seeds"]


# The train section as a run of each model type sees it: without `compare`, `seeds` and the
# knobs of other model types, so that adding or tuning a compared model type (or adding a
# seed) trains only that one (Snakemake reruns a job whose params changed).
TRAIN_OPTIONS = {
    kind: {
        **{
            key: value
            for key, value in config["train"].items()
            if key not in ("compare", "seeds")
        },
        "model_type": kind,
        "model": {kind: config["train"]["model"][kind]},
    }
    for kind in (config["train"]["model_type"], *COMPARE)
}
# The evaluation page's comparison table: model type -> its metrics and train summary.
COMPARED = (
    {
        config["train"]["model_type"]: (
            res("model/metrics.json"),
            res("model/train_summary.json"),
        ),
        **{
            kind: (
                res(f"model/{kind}/metrics.json"),
                res(f"model/{kind}/train_summary.json"),
            )
            for kind in COMPARE
        },
    }
    if COMPARE
    else {}
)


# Each seed's run: the configured model type's options with that seed.
SEED_OPTIONS = {
    seed: {**TRAIN_OPTIONS[config["train"]["model_type"]], "seed": seed}
    for seed in SEEDS
}


wildcard_constraints:
    model_type="|".join(COMPARE) or "no-model-type",
    seed="|".join(map(str, SEEDS)) or "no-seed",


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
        # What `signpose recognise` reruns on a new video: every step's options, the stats.
        chain=res("model/pipeline.json"),
        model_stats=res("model/global_stats.npz"),
    log:
        res("logs/train/train.log"),
    conda:
        "../../envs/signpose.yaml"
    threads: config["resources"]["train_threads"]
    resources:
        **TRAIN_GPU,
        mem_mb=config["resources"]["train_mem_mb"],
        runtime=TRAIN_MINUTES,
    params:
        options=TRAIN_OPTIONS[config["train"]["model_type"]],
        clips=CLIP_PATTERN,
        chain={key: config[key] for key in ("clip", "pose", "features")},
    script:
        "../scripts/train.py"


use rule train as train_compare with:
    output:
        model=res("model/{model_type}/model.keras"),
        labels=res("model/{model_type}/labels.json"),
        history=res("model/{model_type}/history.csv"),
        curves=res("model/{model_type}/training_curves.png"),
        summary=res("model/{model_type}/train_summary.json"),
        config=res("model/{model_type}/train_config.json"),
        tensorboard=directory(res("model/{model_type}/tensorboard")),
    log:
        res("logs/train/{model_type}.log"),
    params:
        options=lambda wc: TRAIN_OPTIONS[wc.model_type],
        clips=CLIP_PATTERN,
        # `signpose recognise` reads model/ (the configured model type) only.
        chain=None,


rule evaluate:
    input:
        instances=res("tables/instances.csv"),
        stats=res("stats/global_stats.npz"),
        model=res("model/model.keras"),
        labels=res("model/labels.json"),
        summary=res("model/train_summary.json"),
        config=res("model/train_config.json"),
        chain=res("model/pipeline.json"),
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
        predictions=res("model/predictions.csv"),
    log:
        res("logs/evaluate/evaluate.log"),
    conda:
        "../../envs/signpose.yaml"
    threads: config["resources"]["train_threads"]
    resources:
        mem_mb=config["resources"]["train_mem_mb"],
        runtime=60,
    params:
        options=TRAIN_OPTIONS[config["train"]["model_type"]],
        clips=CLIP_PATTERN,
    script:
        "../scripts/evaluate.py"


use rule evaluate as evaluate_compare with:
    input:
        instances=res("tables/instances.csv"),
        stats=res("stats/global_stats.npz"),
        model=res("model/{model_type}/model.keras"),
        labels=res("model/{model_type}/labels.json"),
        summary=res("model/{model_type}/train_summary.json"),
        config=res("model/{model_type}/train_config.json"),
    output:
        **(
            {"tflite": res("model/{model_type}/model.tflite")}
            if config["train"]["tflite"]
            else {}
        ),
        metrics=res("model/{model_type}/metrics.json"),
        confusion=res("model/{model_type}/confusion_matrix.png"),
        predictions=res("model/{model_type}/predictions.csv"),
    log:
        res("logs/evaluate/{model_type}.log"),
    params:
        options=lambda wc: TRAIN_OPTIONS[wc.model_type],
        clips=CLIP_PATTERN,


# train.seeds: one training run and one evaluation per seed (no TFLite: the run kept in model/
# gets it from `evaluate`).
use rule train as train_seed with:
    output:
        model=res("model/seeds/{seed}/model.keras"),
        labels=res("model/seeds/{seed}/labels.json"),
        history=res("model/seeds/{seed}/history.csv"),
        curves=res("model/seeds/{seed}/training_curves.png"),
        summary=res("model/seeds/{seed}/train_summary.json"),
        config=res("model/seeds/{seed}/train_config.json"),
        tensorboard=directory(res("model/seeds/{seed}/tensorboard")),
    log:
        res("logs/train/seed_{seed}.log"),
    params:
        options=lambda wc: SEED_OPTIONS[int(wc.seed)],
        clips=CLIP_PATTERN,
        chain=None,


use rule evaluate as evaluate_seed with:
    input:
        instances=res("tables/instances.csv"),
        stats=res("stats/global_stats.npz"),
        model=res("model/seeds/{seed}/model.keras"),
        labels=res("model/seeds/{seed}/labels.json"),
        summary=res("model/seeds/{seed}/train_summary.json"),
        config=res("model/seeds/{seed}/train_config.json"),
    output:
        metrics=res("model/seeds/{seed}/metrics.json"),
        confusion=res("model/seeds/{seed}/confusion_matrix.png"),
        predictions=res("model/seeds/{seed}/predictions.csv"),
    log:
        res("logs/evaluate/seed_{seed}.log"),
    params:
        options=lambda wc: SEED_OPTIONS[int(wc.seed)],
        clips=CLIP_PATTERN,


# What select_seed reads of each seed's run: its evaluation and every file train writes.
SEED_FILES = ["predictions.csv", "model.keras", "labels.json", "history.csv",
              "training_curves.png", "train_summary.json", "train_config.json", "tensorboard"]  # fmt: skip


if SEEDS:

    # With seeds, model/ is the run best on val (the selection split), not a run of its own.
    ruleorder: select_seed > train

    rule select_seed:
        input:
            stats=res("stats/global_stats.npz"),
            # one per seed, in the order of train.seeds: the job finds each run beside it
            metrics=expand(res("model/seeds/{seed}/metrics.json"), seed=SEEDS),
            runs=expand(res("model/seeds/{seed}/{name}"), seed=SEEDS, name=SEED_FILES),
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
            chain=res("model/pipeline.json"),
            model_stats=res("model/global_stats.npz"),
            seeds=report(
                res("model/seeds.json"),
                caption="../report/seeds.rst",
                category="Training",
            ),
        log:
            res("logs/select_seed/select_seed.log"),
        conda:
            "../../envs/signpose.yaml"
        threads: 1
        resources:
            mem_mb=2000,
            runtime=10,
        params:
            seeds=SEEDS,
            chain={key: config[key] for key in ("clip", "pose", "features")},
        script:
            "../scripts/select_seed.py"
