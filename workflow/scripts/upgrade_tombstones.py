import logging

from signpose.jobs import setup_logging
from signpose.tombstone import upgrade_all

setup_logging(snakemake.log[0])
upgraded = upgrade_all(snakemake.params.folders)
logging.getLogger("signpose").info("upgraded %d tombstones: %s", len(upgraded), upgraded)
