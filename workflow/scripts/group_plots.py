from signpose.aggregates import group_plots_job
from signpose.jobs import setup_logging

setup_logging(snakemake.log[0])
group_plots_job(snakemake.input.instances, snakemake.output[0], snakemake.params.groups)
