from signpose.aggregates import select_seed_job
from signpose.jobs import setup_logging

setup_logging(snakemake.log[0])
select_seed_job(
    snakemake.params.seeds,
    snakemake.input.metrics,
    snakemake.input.stats,
    dict(snakemake.output.items()),
    snakemake.params.chain,
)
