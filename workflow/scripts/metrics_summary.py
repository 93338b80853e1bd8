from signpose.aggregates import metrics_summary_job
from signpose.jobs import setup_logging

setup_logging(snakemake.log[0])
metrics_summary_job(snakemake.input.metrics, snakemake.output[0], snakemake.params.runs)
