from signpose.aggregates import tables_job
from signpose.jobs import setup_logging

setup_logging(snakemake.log[0])
tables_job(
    snakemake.params.dataset,
    snakemake.input.qc,
    {kind: str(pattern) for kind, pattern in snakemake.params.files.items()},
    dict(snakemake.output.items()),
)
