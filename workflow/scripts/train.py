from signpose.aggregates import train_job
from signpose.jobs import setup_logging

setup_logging(snakemake.log[0])
train_job(
    snakemake.input.instances,
    snakemake.input.stats,
    snakemake.output.model,
    snakemake.params.features,
    # TensorFlow stays within the job's threads (its SLURM allocation).
    {**snakemake.params.options, "threads": snakemake.threads},
    snakemake.params.chain,
    snakemake.params.clips,
)
