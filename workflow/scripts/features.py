from signpose.jobs import features_job, setup_logging

setup_logging(snakemake.log[0])
features_job(
    snakemake.input[0],
    snakemake.output.features,
    snakemake.output.qc,
    snakemake.wildcards.video_id,
    snakemake.params.options,
)
