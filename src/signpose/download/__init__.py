"""The download stage: one source URL becomes sources/<source_id>.mp4, or a tombstone.

Modules, each one concern:
- `options`: the fetch options, built from the config's validated download section;
- `guard`: which URLs and redirect hops may be contacted, and the per-host pause;
- `ytdlp`: the yt-dlp adapter, the only module that drives yt-dlp;
- `failures`: what a failure means (tombstone, retry, or the machine's fault);
- `media`: probe, transcode and verify what arrived (through signpose.video);
- `mirror`: videos the user already has, in start_kit's layouts;
- `stage`: one fetch, start to finish; `job`: one attempt as the workflow runs it.

Importing this package stays light (no yt-dlp, no OpenCV): the Snakefile imports it at
planning time, where their import cost would be paid for nothing.
"""

from signpose.download.failures import MachineError, TransientDownloadError
from signpose.download.options import STAGE, DownloadOptions, workflow_options
from signpose.download.stage import Outcome, fetch_source, remove_tombstones

__all__ = [
    "STAGE",
    "DownloadOptions",
    "MachineError",
    "Outcome",
    "TransientDownloadError",
    "fetch_source",
    "remove_tombstones",
    "workflow_options",
]
