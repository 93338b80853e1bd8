from signpose.aggregates import evaluate_job
from signpose.jobs import setup_logging

setup_logging(snakemake.log[0])
evaluate_job(
    snakemake.input.instances,
    snakemake.input.stats,
    {k: snakemake.input[k] for k in ("model", "labels", "summary", "config")},
    dict(snakemake.output.items()),
    snakemake.params.options,
    # TensorFlow stays within the job's threads (its SLURM allocation).
    snakemake.threads,
)
