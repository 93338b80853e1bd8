from signpose.jobs import download_job, setup_logging

setup_logging(snakemake.log[0])
download_job(
    snakemake.params.url,
    snakemake.output[0],
    snakemake.params.options,
    snakemake.resources.attempt,
    snakemake.params.backoff_s,
)
