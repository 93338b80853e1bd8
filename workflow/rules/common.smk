# Load and validate the metadata once per run; every lookup a rule needs is precomputed here,
# so the 20,000-fold per-instance rules only index dictionaries.
from pathlib import Path

from signpose import metadata

RESULTS = config["results_dir"] or f"results/{config['dataset']['name']}"
METADATA = Path(config["dataset"]["metadata"])
DATASET = metadata.load(config["dataset"])
INSTANCES = DATASET.instances
SPLITS = metadata.SPLITS
LEXICON_SPLITS = [*SPLITS, "all"]
BY_SPLIT = {split: DATASET.by_split(split) for split in LEXICON_SPLITS}
SOURCE_OF = {vid: inst.source_id for vid, inst in INSTANCES.items()}

# Download options for signpose.download: the config section minus the workflow's own keys.
DOWNLOAD_WORKFLOW_KEYS = ("retries", "backoff_s", "max_parallel")
DOWNLOAD_OPTIONS = {
    **{k: v for k, v in config["download"].items() if k not in DOWNLOAD_WORKFLOW_KEYS},
    "allow_local_files": config["dataset"]["allow_local_files"],
    "local_root": str(METADATA.parent.resolve()),
}

workflow.global_resources.setdefault("downloads", config["download"]["max_parallel"])


wildcard_constraints:
    source_id=r"[A-Za-z0-9_-]+",
    video_id=r"[A-Za-z0-9_-]+",
    split="|".join(LEXICON_SPLITS),


def res(path):
    """A path under the results root."""
    return f"{RESULTS}/{path}"


def per_instance(pattern, split):
    """`pattern` expanded over the instances of one split (or "all")."""
    return [res(pattern.format(video_id=vid)) for vid in BY_SPLIT[split]]
