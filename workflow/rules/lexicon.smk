# One self-contained folder per split: index.csv and the poses it names (hard links), found
# through the instance table's pose_file / clean_pose_file columns.


rule lexicon:
    input:
        res("tables/instances.csv"),
    output:
        index=res("lexicon/{split}/index.csv"),
        poses=directory(res("lexicon/{split}/poses")),
    log:
        res("logs/lexicon/{split}.log"),
    conda:
        "../../envs/signpose.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    params:
        kind=config["lexicon"]["poses"],
        spoken=config["dataset"]["spoken_language"],
        signed=config["dataset"]["signed_language"],
        variations=config["lexicon"]["variations"],
    script:
        "../scripts/lexicon.py"
