"""How a run ended by its user or its terminal (Ctrl-C, a lost SSH session) says the way back.

Both signals raise KeyboardInterrupt in Snakemake's main process. Snakemake then cancels its
jobs, releases its lock and calls the workflow's `onerror` hook, unless the interrupt lands
while it evaluates a rule's input function: the error then leaves the scheduler before any
hook runs. The hint is therefore also written at exit, once, for an interrupted run that has
not given it.
"""

from __future__ import annotations

import atexit
import contextlib
import signal
import sys
from collections.abc import Callable
from types import FrameType
from typing import TextIO

INTERRUPTS = (signal.SIGINT, signal.SIGHUP)


class ResumeHint:
    """The line that tells how to resume, given at most once per process."""

    def __init__(self, text: str, stream: TextIO | None = None) -> None:
        self.text = text
        self.stream = stream
        self.interrupted = False
        self.given = False

    def on_interrupt(self, signum: int, frame: FrameType | None) -> None:
        self.interrupted = True
        raise KeyboardInterrupt(signal.Signals(signum).name)

    def give(self, write: Callable[[str], object]) -> None:
        """Write the hint with `write` (a logger's method) unless it was given."""
        if not self.given:
            self.given = True
            write(self.text)

    def at_exit(self) -> None:
        if self.interrupted:
            self.give(lambda text: print(text, file=self.stream or sys.stderr, flush=True))

    def install(self) -> None:
        """Route Ctrl-C and a hang-up through `on_interrupt` and give the hint at exit.

        Parsing outside the main thread (Snakemake's API in a thread) cannot set handlers;
        the run is then its caller's to interrupt."""
        with contextlib.suppress(ValueError):
            for sig in INTERRUPTS:
                signal.signal(sig, self.on_interrupt)
            atexit.register(self.at_exit)
