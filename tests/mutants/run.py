"""Break each guarantee on purpose and show that the test docs/reliability.md names for it fails.

    .venv/bin/python tests/mutants/run.py            # every mutant (a few minutes)
    .venv/bin/python tests/mutants/run.py 47 50      # only these rows

Each mutant is one exact text edit of the source (`old` must occur once: tests/test_mutants.py
checks that every edit still applies). For each, the repository's files (tracked and untracked,
not ignored) are copied to a scratch folder, the edit is applied there, and the named test runs
against that copy (PYTHONPATH points at the copy's src/). The unmutated copy runs the same tests
first: each must pass there and fail with its mutant, or the script exits 1. Processes a run
leaves behind (an orphaned ffmpeg, a fork server) are found by the scratch path in their command
line or environment and killed.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PYTHON = ROOT / ".venv" / "bin" / "python"


@dataclass(frozen=True)
class Mutant:
    row: int  # docs/reliability.md
    breaks: str  # the guarantee that no longer holds
    test: str  # pytest node id, relative to the repository root
    file: str
    old: str
    new: str


MUTANTS = [
    Mutant(
        row=50,
        breaks="no lock: every first client starts a server of its own",
        test="tests/test_forkserver.py::test_concurrent_first_jobs_start_one_server",
        file="src/signpose/forkserver.py",
        old="""            with open(self.path.with_suffix(".lock"), "w") as lock:
                fcntl.flock(lock, fcntl.LOCK_EX)  # one client starts it, the others wait
                return self.connect() or self.start()""",
        new="""            return self.start()""",
    ),
    Mutant(
        row=48,
        breaks="the fork server is never used: every job runs in its client",
        test="tests/test_forkserver.py::test_a_failing_job_fails_alike_with_its_traceback_in_its_log",
        file="src/signpose/forkserver.py",
        old="""    if warm and os.environ.get("SIGNPOSE_FORKSERVER", "1") != "0":""",
        new="""    if False:""",
    ),
    Mutant(
        row=47,
        breaks="a cancelled job's worker is killed alone, not with its process group (ffmpeg)",
        test="tests/test_forkserver.py::test_a_job_whose_client_is_killed_dies_with_it",
        file="src/signpose/forkserver.py",
        old="""            os.killpg(self.pid, signal.SIGKILL)""",
        new="""            os.kill(self.pid, signal.SIGKILL)""",
    ),
    Mutant(
        row=42,
        breaks="the size cap is judged only once the download has finished",
        test="tests/test_download.py::test_over_the_size_cap_stops_early",
        file="src/signpose/download/ytdlp.py",
        old="""        if size > self.max_bytes:""",
        new="""        if size > self.max_bytes and status.get("status") == "finished":""",
    ),
    Mutant(
        row=52,
        breaks="the server takes requests from any user who reaches its socket",
        test="tests/test_forkserver.py::test_the_server_serves_only_its_own_user",
        file="src/signpose/forkserver.py",
        old="""        if len(fds) != STREAMS or peer_credentials(conn).uid != os.getuid():""",
        new="""        if len(fds) != STREAMS:""",
    ),
    Mutant(
        row=3,
        breaks="metadata without a single instance plans an empty run",
        test="tests/test_metadata.py::test_no_instances_at_all_is_named",
        file="src/signpose/metadata.py",
        old="""    if not instances:
        raise MetadataError""",
        new="""    if False:
        raise MetadataError""",
    ),
    Mutant(
        row=44,
        breaks="the cookies file's path is no longer scrubbed from what is logged and recorded",
        test="tests/test_download.py::test_a_broken_cookies_file_is_reported_without_its_path",
        file="src/signpose/download/failures.py",
        old="""            text = text.replace(secret, "<cookies>")""",
        new="""            text = text.replace(secret, secret)""",
    ),
    Mutant(
        row=77,
        breaks="a clip without frames is kept as if it were a clip",
        test="tests/test_reliability.py::test_a_range_between_two_frames_is_a_trim_out_of_range_tombstone",
        file="src/signpose/clips.py",
        old="""            if info is None:
                raise EmptyClip""",
        new="""            if False:
                raise EmptyClip""",
    ),
    Mutant(
        row=78,
        breaks="h264 that cannot be copied into mp4 is given up instead of encoded again",
        test="tests/test_download.py::test_h264_that_cannot_be_copied_into_mp4_is_encoded_again",
        file="src/signpose/download/media.py",
        old="""        # decoding and encoding again always works where the stream itself is sound
        _transcode(raw, out, header, opts)""",
        new="""        raise Dead("undecodable", "ffmpeg could not copy the h264 stream")""",
    ),
    Mutant(
        row=80,
        breaks="a certificate that does not verify is retried as if the network had failed",
        test="tests/test_download.py::test_a_certificate_that_does_not_verify_is_a_tls_error_tombstone",
        file="src/signpose/download/failures.py",
        old="""            return "tls_error"  # an expired""",
        new="""            return _TRANSIENT  # an expired""",
    ),
    Mutant(
        row=32,
        breaks="the pose job claims its target before its frames are done",
        test="tests/test_reliability.py::test_a_pose_job_killed_halfway_leaves_nothing_and_reruns",
        file="src/signpose/jobs/pose.py",
        old="""    opts = HolisticOptions(**options)
    result = estimate(clip, opts)""",
        new="""    opts = HolisticOptions(**options)
    Path(target).parent.mkdir(parents=True, exist_ok=True)
    Path(target).write_bytes(b"")
    result = estimate(clip, opts)""",
    ),
]


def apply(mutant: Mutant, root: Path) -> None:
    """Edit the copy at `root`; ValueError when the edit no longer applies, SyntaxError when
    it leaves no valid Python."""
    path = root / mutant.file
    text = path.read_text()
    if text.count(mutant.old) != 1:
        found = text.count(mutant.old)
        raise ValueError(f"row {mutant.row}: {mutant.file} holds its text {found} times, not once")
    mutated = text.replace(mutant.old, mutant.new)
    if path.suffix == ".py":
        compile(mutated, str(path), "exec")  # a mutant must break a guarantee, not the syntax
    path.write_text(mutated)


def copy_repository(dest: Path) -> None:
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT, capture_output=True, check=True,
    ).stdout.decode().split("\0")  # fmt: skip
    for name in filter(None, listed):
        source = ROOT / name
        if source.is_file():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, dest / name)


def run_test(root: Path, test: str) -> tuple[bool, str, float]:
    """Run one test in the copy at `root`: (passed, its last lines, seconds)."""
    basetemp = root / ".pytest-tmp"
    env = {**os.environ, "PYTHONPATH": str(root / "src")}
    start = time.monotonic()
    run = subprocess.run(
        [str(PYTHON), "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider", "--no-header",
         f"--basetemp={basetemp}", test],
        cwd=root, env=env, capture_output=True, text=True, timeout=900,
    )  # fmt: skip
    seconds = time.monotonic() - start
    stop_leftovers(root)
    lines = [line for line in run.stdout.splitlines() if line.startswith("E ")][:3]
    return run.returncode == 0, "\n".join(lines), seconds


def stop_leftovers(root: Path) -> None:
    """Kill what a run left running (a mutant's orphaned ffmpeg, a fork server): the processes
    whose command line or environment names the copy."""
    mark = os.fsencode(root) + b"/"
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit() or int(proc.name) == os.getpid():
            continue
        try:
            named = (proc / "cmdline").read_bytes() + (proc / "environ").read_bytes()
        except OSError:
            continue
        if mark in named:
            with contextlib.suppress(ProcessLookupError):
                os.kill(int(proc.name), signal.SIGKILL)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("rows", nargs="*", type=int, help="only the mutants of these rows")
    rows = parser.parse_args().rows
    chosen = [m for m in MUTANTS if not rows or m.row in rows]
    scratch = Path(tempfile.mkdtemp(prefix="signpose-mutants-"))
    caught = 0
    try:
        clean = scratch / "unmutated"
        copy_repository(clean)
        for mutant in chosen:
            print(f"row {mutant.row}: {mutant.breaks}\n  test {mutant.test}", flush=True)
            passed, lines, seconds = run_test(clean, mutant.test)
            print(f"  unmutated: {'passed' if passed else 'FAILED'} ({seconds:.0f} s)", flush=True)
            if not passed:
                print("    " + lines.replace("\n", "\n    "))
            copy = scratch / f"row{mutant.row}"
            copy_repository(copy)
            apply(mutant, copy)
            killed, lines, seconds = run_test(copy, mutant.test)
            verdict = "survived (the test still passes)" if killed else "caught (the test fails)"
            print(f"  mutated:   {verdict} ({seconds:.0f} s)")
            print("    " + lines.replace("\n", "\n    "), flush=True)
            caught += passed and not killed
            shutil.rmtree(copy, ignore_errors=True)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    print(f"{caught} of {len(chosen)} mutants caught by a test that passes unmutated")
    return 0 if caught == len(chosen) else 1


if __name__ == "__main__":
    sys.exit(main())
