rule lexicon:
    input:
        res("tables/instances.csv"),
    output:
        res("lexicon/{split}/index.csv"),
    params:
        poses=res("poses"),
        spoken=config["dataset"]["spoken_language"],
        signed=config["dataset"]["signed_language"],
        priority=config["lexicon"]["priority"],
    log:
        res("logs/lexicon/{split}.log"),
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    script:
        "../scripts/lexicon.py"
