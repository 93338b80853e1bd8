from signpose.aggregates import lexicon_job
from signpose.jobs import setup_logging

setup_logging(snakemake.log[0])
lexicon_job(
    snakemake.input[0],
    snakemake.output.index,
    snakemake.output.poses,
    snakemake.wildcards.split,
    snakemake.params.kind,
    snakemake.params.spoken,
    snakemake.params.signed,
    snakemake.params.variations,
)
