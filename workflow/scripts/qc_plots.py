from signpose.aggregates import qc_plots_job
from signpose.jobs import setup_logging

setup_logging(snakemake.log[0])
qc_plots_job(snakemake.input.instances, snakemake.input.funnel, snakemake.output[0])
