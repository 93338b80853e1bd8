"""Paths a user names that are not what they seem: results roots that must not be written to,
and input files that are not regular files (a FIFO would hang a reader, a directory or a device
would be misread as a missing file)."""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path

# Folders of the checkout that hold its code and settings: outputs there mix with the sources.
CHECKOUT_FOLDERS = ("src", "workflow", "config")


class ResultsRootError(ValueError):
    """A results root the workflow refuses; the message is one line naming it."""


def check_results_root(results_dir: str | os.PathLike, checkout: str | os.PathLike) -> Path:
    """`results_dir` resolved (symlinks included), or ResultsRootError when it is the file
    system root, the user's home, or inside the checkout's source, workflow or config folders.
    Anything else a user points at is theirs."""
    root = Path(os.path.realpath(results_dir))
    named = f"results_dir {str(results_dir)!r}"
    if root == Path(root.anchor):
        raise ResultsRootError(f"{named} is the file system root; give the results a folder")
    if root == Path(os.path.realpath(Path.home())):
        raise ResultsRootError(f"{named} is your home folder; give the results a folder")
    base = Path(os.path.realpath(checkout))
    for folder in CHECKOUT_FOLDERS:
        if root.is_relative_to(base / folder):
            raise ResultsRootError(
                f"{named} is inside the checkout's {folder}/ folder ({base / folder}); "
                "results go outside the code and settings (the default is results/<dataset>)"
            )
    return root


def not_a_file(path: str | os.PathLike) -> str | None:
    """What `path` is when it exists but is not a regular file (following symlinks): "a
    directory", "a FIFO (named pipe)", "a device", "a socket", "a symlink loop"; None when it is
    a regular file or does not exist."""
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        return None
    except OSError as e:  # ELOOP: a symlink loop; other errors are the caller's to meet
        return "a symlink loop" if e.errno == errno.ELOOP else None
    if stat.S_ISREG(mode):
        return None
    if stat.S_ISDIR(mode):
        return "a directory"
    if stat.S_ISFIFO(mode):
        return "a FIFO (named pipe)"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    return "a socket" if stat.S_ISSOCK(mode) else "not a regular file"
