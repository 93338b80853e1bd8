"""Rule `download`: one attempt at one source (signpose.download.job says what it does).

The download options reach the job in the environment variable `CONFIG_ENV`, which the
workflow sets when it reads its config, not as params or in the command: Snakemake reruns a
job whose params or rule code change, and changing a politeness or retry setting must not
download every source again; only the URL decides what a source is.
"""

from __future__ import annotations

import json
import os

from signpose.download.job import download_job

CONFIG_ENV = "SIGNPOSE_DOWNLOAD_CONFIG"


def command(url: str, source: str, mirror: str, attempt: str) -> None:
    """The rule's named arguments: `mirror` is the mirror's file standing in for the source,
    or empty."""
    try:
        config = json.loads(os.environ[CONFIG_ENV])
    except KeyError:
        raise RuntimeError(
            f"{CONFIG_ENV} is not set: download jobs get their options from the workflow "
            "(workflow/rules/download.smk sets it when Snakemake reads the config)"
        ) from None
    download_job(url, source, config, int(attempt), mirror or None)
