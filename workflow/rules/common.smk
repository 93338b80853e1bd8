# Load and validate the metadata once per run; every lookup a rule needs is precomputed here,
# so the 20,000-fold per-instance rules only index dictionaries.
import shlex
import sys

from snakemake.logging import logger

from signpose import metadata, shards
from signpose.compat import snakemake as snakemake_compat
from signpose.interrupts import ResumeHint
from signpose.paths import check_results_root

# After a failed or interrupted run, the way back (README, "What is stale, and resuming"):
# given by `onerror` (Snakefile), or at exit by a run interrupted before that hook could run.
# A lost SSH session (SIGHUP) ends the run as Ctrl-C does: jobs cancelled, the lock released,
# so the same command resumes it (without this the lock stays and `--unlock` is needed first).
RESUME_HINT = ResumeHint(
    "signpose: finished files are kept. Fix what failed above (if a job failed), then "
    "resume with the same command, e.g. `snakemake --cores all`. If it then says the "
    "directory cannot be locked and no other run is going on here: `snakemake --unlock`, "
    "then the same command again."
)
RESUME_HINT.install()

RESULTS = config["results_dir"] or f"results/{config['dataset']['name']}"
# Refused before any job: "/" or the home folder, or folders of the checkout's code.
check_results_root(RESULTS, workflow.basedir)
DATASET = metadata.load(config["dataset"])
if DATASET.split_note:
    logger.warning(DATASET.split_note)
INSTANCES = DATASET.instances
# The report's group_by names as instances.csv columns; an unknown one stops the run here.
GROUP_COLUMNS = metadata.group_columns(DATASET, config["report"]["group_by"])
SPLITS = metadata.SPLITS
LEXICON_SPLITS = [*SPLITS, "all"]
SOURCE_OF = {vid: inst.source_id for vid, inst in INSTANCES.items()}
# The features stage runs one job per non-empty shard (a stable hash of video_id), so a new
# instance reruns its shard only, and `tables` reads one QC file per shard, not per instance.
SHARDS = shards.by_shard(INSTANCES, config["features"]["shards"])

# Per-instance rules run `instance_job <job> <args>` through `shell:` (instance.py says why).
# It is defined here, not in the rules' text, so that moving the checkout or the virtual
# environment does not change the rules' code (a rerun trigger). With --sdm conda the job's
# environment provides `python`; otherwise it is the one that runs Snakemake.
INSTANCE_JOB = [
    "python" if snakemake_compat.uses_conda(workflow) else sys.executable,
    f"{workflow.basedir}/workflow/scripts/instance.py",
]
shell.prefix(
    f'set -euo pipefail; instance_job() {{{{ {shlex.join(INSTANCE_JOB)} "$@"; }}}}; '
)

# The `downloads` resource of every download job is capped at max_parallel unless the user
# passes --resources downloads=N (tests/test_acquisition.py measures that it holds).
snakemake_compat.set_default_resource(
    workflow, "downloads", config["download"]["max_parallel"]
)


wildcard_constraints:
    source_id=r"[A-Za-z0-9_-]+",
    video_id=r"[A-Za-z0-9_-]+",
    shard=r"[0-9]+",
    split="|".join(LEXICON_SPLITS),


def res(path):
    """A path under the results root."""
    return f"{RESULTS}/{path}"
