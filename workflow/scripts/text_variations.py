from signpose.jobs import setup_logging
from signpose.paraphrase import variations_job

setup_logging(snakemake.log[0])
variations_job(
    snakemake.params.dataset,
    snakemake.params.text,
    snakemake.output[0],
    snakemake.params.cache,
)
