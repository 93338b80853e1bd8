from signpose.aggregates import evaluate_job
from signpose.jobs import setup_logging

# The files of the training run; `chain` only for the configured model type (not compare's).
TRAINED = ("model", "labels", "summary", "config", "chain")

setup_logging(snakemake.log[0])
inputs = dict(snakemake.input.items())
evaluate_job(
    snakemake.input.instances,
    snakemake.input.stats,
    {k: inputs[k] for k in TRAINED if k in inputs},
    dict(snakemake.output.items()),
    snakemake.params.options,
    # TensorFlow stays within the job's threads (its SLURM allocation).
    snakemake.threads,
    snakemake.params.clips,
)
