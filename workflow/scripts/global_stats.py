from signpose.aggregates import stats_job
from signpose.jobs import setup_logging

setup_logging(snakemake.log[0])
stats_job(snakemake.input[0], snakemake.output[0], snakemake.params.features_ema_alpha)
