from signpose.jobs import clip_job, setup_logging

setup_logging(snakemake.log[0])
clip_job(snakemake.input[0], snakemake.output[0], snakemake.params.trim, snakemake.params.options)
