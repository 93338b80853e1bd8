"""The download job: one attempt at one source, as the workflow's `download` rule runs it.

Around the fetch it adds what only the job knows: which attempt this is (the wait before a
retry, and after the last retry a transient failure becomes a tombstone so the run goes on to
its tables), and the mirror (a file there stands in for the download, a missing one is a
tombstone when there is no fallback). The job's last line says what happened, and for a
failure whether the source or the machine is at fault.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from signpose.download import mirror
from signpose.download.failures import COOKIES_HINT, MachineError, TransientDownloadError
from signpose.download.options import workflow_options
from signpose.download.stage import fetch_source, write_tombstone

log = logging.getLogger("signpose")


def download_job(
    url: str, target: str, config: Mapping[str, Any], attempt: int, mirror_file: str | None
) -> None:
    """Attempt `attempt` (1-based) at the source `url`, or a copy of `mirror_file` (the file
    of dataset.mirror that stands in for it, as signpose.download.mirror.mirrored found it)."""
    section = config["download"]
    attempts = section["retries"] + 1
    if attempt > 1:
        wait = section["backoff_s"] * 2 ** (attempt - 2)
        log.info("attempt %d of %d: waiting %.0f s before retrying", attempt, attempts, wait)
        time.sleep(wait)
    found = mirror.Mirror.from_config(config["dataset"])
    if mirror_file is None and found is not None and found.fallback == "none":
        detail = f"not in dataset.mirror {found.dir} (layout {found.layout}, fallback none)"
        write_tombstone(Path(target), mirror.NOT_IN_MIRROR, detail, url, log)
        return
    try:
        opts = workflow_options(config)
        outcome = fetch_source(url, target, opts, log, Path(mirror_file) if mirror_file else None)
    except MachineError as err:
        log.error(
            "transient failure of this machine, not of the source (the job fails on every "
            "attempt and never writes a tombstone): %s", err,
        )  # fmt: skip
        raise
    except TransientDownloadError as err:
        if attempt >= attempts:
            detail = f"after {attempt} attempts, the last: {err}"
            write_tombstone(Path(target), err.final_reason, detail, url, log)
            return
        log.error(
            "transient failure of the source (attempt %d of %d; after the last one it becomes "
            "a %s tombstone): %s", attempt, attempts, err.final_reason, err,
        )  # fmt: skip
        if err.bot_check:
            log.warning("%s; waiting %.0f s", COOKIES_HINT, section["bot_check_backoff_s"])
            time.sleep(section["bot_check_backoff_s"])
        raise
    log.info("outcome: %s", outcome)
