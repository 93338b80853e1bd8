from signpose.download import workflow_options
from signpose.jobs import download_job, setup_logging

setup_logging(snakemake.log[0])
download_job(
    snakemake.params.url,
    snakemake.output[0],
    workflow_options(snakemake.config),
    snakemake.resources.attempt,
    snakemake.config["download"]["backoff_s"],
)
