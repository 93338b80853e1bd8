from signpose.aggregates import train_job
from signpose.jobs import setup_logging

setup_logging(snakemake.log[0])
train_job(
    snakemake.input.instances,
    snakemake.input.stats,
    dict(snakemake.output.items()),
    snakemake.params.options,
    # TensorFlow stays within the job's threads (its SLURM allocation).
    snakemake.threads,
    snakemake.params.clips,
    snakemake.params.chain,
)
