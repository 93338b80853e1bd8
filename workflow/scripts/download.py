from signpose.download.job import download_job
from signpose.jobs import setup_logging

setup_logging(snakemake.log[0])
download_job(
    snakemake.params.url,
    snakemake.output[0],
    snakemake.config,
    snakemake.resources.attempt,
    snakemake.input[0] if snakemake.input else None,
)
