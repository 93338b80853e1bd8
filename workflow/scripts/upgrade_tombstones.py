from signpose.aggregates import upgrade_tombstones_job
from signpose.jobs import setup_logging

setup_logging(snakemake.log[0])
upgrade_tombstones_job(snakemake.params.folders, snakemake.params.pose)
