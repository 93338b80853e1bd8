rule lexicon:
    input:
        res("tables/instances.csv"),
    output:
        res("lexicon/{split}/index.csv"),
    log:
        res("logs/lexicon/{split}.log"),
    conda:
        "../../envs/signpose.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    params:
        poses=res("poses"),
        spoken=config["dataset"]["spoken_language"],
        signed=config["dataset"]["signed_language"],
        priority=config["lexicon"]["priority"],
        variations=config["lexicon"]["variations"],
    script:
        "../scripts/lexicon.py"
