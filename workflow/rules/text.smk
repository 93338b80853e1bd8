# Paraphrases of every label (signpose.paraphrase). A missing key stops the run here, before
# any job, with one line naming its environment variable.
from signpose import paraphrase

paraphrase.check(config["text"])


# Local: it asks a remote model, and cluster nodes often have no way out; it is light.
localrules:
    text_variations,


# The cache is not an output: Snakemake deletes a job's outputs before running it, and the
# cache must outlive reruns (a rerun asks only for texts it has not seen).
rule text_variations:
    input:
        metadata=config["dataset"]["metadata"],
    output:
        res("text/variations.json"),
    log:
        res("logs/text_variations/text_variations.log"),
    conda:
        "../../envs/signpose.yaml"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=120,
    params:
        dataset=config["dataset"],
        text=config["text"],
        cache=res("text/paraphrase_cache.json"),
    script:
        "../scripts/text_variations.py"
