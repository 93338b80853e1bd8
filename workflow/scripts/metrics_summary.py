from signpose.aggregates import metrics_summary_job
from signpose.jobs import setup_logging

setup_logging(snakemake.log[0])
metrics_summary_job(
    snakemake.input.metrics,
    snakemake.input.instances,
    snakemake.output[0],
    snakemake.params.groups,
    snakemake.params.runs,
    next(iter(snakemake.input.seeds), None),
)
