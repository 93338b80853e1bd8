from signpose.aggregates import evaluate_job
from signpose.jobs import setup_logging

setup_logging(snakemake.log[0])
evaluate_job(
    snakemake.input.instances,
    snakemake.input.stats,
    snakemake.input.model,
    snakemake.params.features,
    # TensorFlow stays within the job's threads (its SLURM allocation).
    {**snakemake.params.options, "threads": snakemake.threads},
    snakemake.params.clips,
)
