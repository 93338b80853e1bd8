from signpose.aggregates import tables_job
from signpose.jobs import setup_logging

setup_logging(snakemake.log[0])
tables_job(
    snakemake.params.dataset,
    snakemake.input.qc,
    snakemake.params.files,
    snakemake.input.variations,
    snakemake.params.groups,
    dict(snakemake.output.items()),
)
