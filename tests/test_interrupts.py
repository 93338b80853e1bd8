"""The resume hint of an interrupted run: given once, by the hook or at exit."""

from __future__ import annotations

import atexit
import io
import os
import signal

import pytest

from signpose.interrupts import INTERRUPTS, ResumeHint


@pytest.fixture
def hint():
    saved = {sig: signal.getsignal(sig) for sig in INTERRUPTS}
    hint = ResumeHint("resume with the same command", io.StringIO())
    hint.install()
    yield hint
    atexit.unregister(hint.at_exit)
    for sig, handler in saved.items():
        signal.signal(sig, handler)


@pytest.mark.parametrize("sig", INTERRUPTS)
def test_an_interrupt_that_skipped_the_hook_gives_the_hint_at_exit(hint, sig):
    with pytest.raises(KeyboardInterrupt, match=signal.Signals(sig).name):
        os.kill(os.getpid(), sig)
    hint.at_exit()
    hint.at_exit()
    assert hint.stream.getvalue() == "resume with the same command\n"


def test_the_hook_gives_it_once(hint):
    said = []
    with pytest.raises(KeyboardInterrupt):
        os.kill(os.getpid(), signal.SIGINT)
    hint.give(said.append)
    hint.at_exit()
    hint.give(said.append)
    assert said == ["resume with the same command"] and hint.stream.getvalue() == ""


def test_a_run_not_interrupted_says_nothing_at_exit(hint):
    hint.at_exit()
    assert hint.stream.getvalue() == ""
