from signpose.aggregates import dataset_summary_job
from signpose.jobs import setup_logging

setup_logging(snakemake.log[0])
dataset_summary_job(
    snakemake.input.instances,
    snakemake.input.funnel,
    snakemake.output[0],
    snakemake.params.name,
    snakemake.params.split_note,
    snakemake.params.groups,
)
