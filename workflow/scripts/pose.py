from signpose.jobs import pose_job, setup_logging

setup_logging(snakemake.log[0])
pose_job(snakemake.input[0], snakemake.output[0], snakemake.params.options)
