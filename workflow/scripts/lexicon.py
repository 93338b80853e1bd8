from signpose.aggregates import lexicon_job
from signpose.jobs import setup_logging

setup_logging(snakemake.log[0])
lexicon_job(
    snakemake.input[0],
    snakemake.output[0],
    snakemake.wildcards.split,
    snakemake.params.poses,
    snakemake.params.spoken,
    snakemake.params.signed,
    snakemake.params.priority,
    snakemake.params.variations,
)
