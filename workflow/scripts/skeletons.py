from signpose.aggregates import skeletons_job
from signpose.jobs import setup_logging

setup_logging(snakemake.log[0])
skeletons_job(
    snakemake.input.instances, snakemake.output[0], snakemake.params.n, snakemake.params.seed
)
