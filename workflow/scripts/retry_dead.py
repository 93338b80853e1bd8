import logging

from signpose.download import remove_tombstones
from signpose.jobs import setup_logging

setup_logging(snakemake.log[0])
removed = remove_tombstones(snakemake.params.sources, snakemake.params.reasons)
logging.getLogger("signpose").info("removed %d tombstones: %s", len(removed), removed)
