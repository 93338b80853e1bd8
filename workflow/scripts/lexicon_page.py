from signpose.aggregates import lexicon_page_job
from signpose.jobs import setup_logging

setup_logging(snakemake.log[0])
lexicon_page_job(
    snakemake.input.instances,
    snakemake.input.index,
    snakemake.output[0],
    snakemake.params.spoken,
    snakemake.params.signed,
)
