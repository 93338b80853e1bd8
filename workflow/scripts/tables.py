from signpose.aggregates import tables_job
from signpose.jobs import setup_logging

setup_logging(snakemake.log[0])
tables_job(
    snakemake.params.dataset,
    snakemake.input.qc,
    snakemake.input.variations,
    dict(snakemake.output.items()),
)
