"""Per-instance jobs forked from a warm server: same results, same failures, no strays.

Every test gives its jobs a TMPDIR of its own, so it gets a server of its own (a short one:
a longer socket path than 107 bytes makes the server fall back to /tmp).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from conftest import ROOT, SHARED, needs, wait_for
from signpose.config import with_defaults

VIDEO = SHARED / "media" / "pose_test_video.mp4"
INSTANCE = ROOT / "workflow" / "scripts" / "instance.py"
WHOLE = json.dumps({"start_s": 0.0, "end_s": None, "bbox": None})
FEATURES = json.dumps(with_defaults({}, "features"))


@pytest.fixture(autouse=True)
def own_tmpdir(monkeypatch, tmp_path):
    """A TMPDIR for this test's jobs; servers still running at its end are stopped. (tmp_path
    first: pytest's base folder must not be made inside a TMPDIR this fixture deletes.)"""
    folder = Path(tempfile.mkdtemp(prefix="sp-", dir="/tmp"))
    monkeypatch.setenv("TMPDIR", str(folder))
    yield folder
    for pid in server_pids():
        if alive(pid):
            os.kill(pid, signal.SIGTERM)
    shutil.rmtree(folder, ignore_errors=True)


def instance_job(tmp_path: Path, *args: str, server: bool = True, **env: str):
    """`instance.py <args>` as a rule's shell runs it, in tmp_path."""
    return subprocess.Popen(
        [sys.executable, str(INSTANCE), *args], cwd=tmp_path, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "SIGNPOSE_FORKSERVER": "1" if server else "0", **env},
    )  # fmt: skip


def finished(proc: subprocess.Popen) -> tuple[int, str]:
    _, err = proc.communicate(timeout=300)
    return proc.returncode, err


def pose_args(name: str, source: Path = VIDEO, options: dict | None = None) -> list[str]:
    return ["pose", "--log", f"{name}.log", "--threads", "1", "--source", str(source),
            "--clip", f"{name}.mp4", "--pose", f"{name}.pose", "--trim", WHOLE,
            "--options", json.dumps({"clip": {}, "pose": options or {}})]  # fmt: skip


def features_args(name: str, pose: str = "missing.pose") -> list[str]:
    return ["features", "--log", f"{name}.log", "--pose", pose, "--features", f"{name}.npy",
            "--qc", f"{name}.json", "--clean", f"{name}.clean.pose", "--video_id", "x",
            "--options", FEATURES]  # fmt: skip


def server_pids() -> list[int]:
    """The pid in each server log under the test's TMPDIR (one log per socket)."""
    logs = Path(os.environ["TMPDIR"]).glob("signpose-*/*.log")
    return [int(re.search(r"fork server (\d+) listening", p.read_text()).group(1)) for p in logs]


def alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def children(pid: int) -> list[int]:
    return [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]


@needs(VIDEO)
def test_forked_jobs_write_what_a_cold_process_writes_and_share_one_server(tmp_path):
    """One worker runs all four jobs, its MediaPipe graphs reset between them, not rebuilt."""
    refined = {"refine_face_landmarks": True}
    for name, options in (("cold", None), ("cold_refined", refined)):
        code, _ = finished(instance_job(tmp_path, *pose_args(name, options=options), server=False))
        assert code == 0
    assert not server_pids()
    for name, options in (("warm1", None), ("warm_refined", refined), ("warm2", None)):
        assert finished(instance_job(tmp_path, *pose_args(name, options=options)))[0] == 0
    cold = (tmp_path / "cold.pose").read_bytes()
    assert (tmp_path / "warm1.pose").read_bytes() == cold
    assert (tmp_path / "warm2.pose").read_bytes() == cold  # after a clip with other options
    assert (tmp_path / "warm_refined.pose").read_bytes() == (
        tmp_path / "cold_refined.pose").read_bytes()  # fmt: skip
    (pid,) = server_pids()
    assert len(children(pid)) == 1
    # the job's log is its own (the worker took over the client's streams and working folder)
    log = (tmp_path / "warm2.log").read_text()
    assert "pose: 58 frames" in log and "Traceback" not in log
    maps = Path(f"/proc/{pid}/maps").read_text()
    assert "_framework_bindings" in maps and "tensorflow" not in maps


def test_a_failing_job_fails_alike_with_its_traceback_in_its_log(tmp_path):
    (tmp_path / "bad.pose").write_bytes(b"not a pose file")
    codes = {}
    for name, server in (("cold", False), ("warm", True)):
        args = features_args(name, "bad.pose")
        code, _ = finished(instance_job(tmp_path, *args, server=server))
        codes[name] = code
        log = (tmp_path / f"{name}.log").read_text()
        assert "Traceback" in log and "bad.pose" in log
        assert not (tmp_path / f"{name}.npy").exists()
    assert codes == {"cold": 1, "warm": 1}


@needs(VIDEO)
def test_a_job_whose_client_is_killed_dies_with_it(tmp_path):
    from signpose.video import ffmpeg_exe

    long = tmp_path / "long.mp4"  # about 20 s of pose work
    subprocess.run([ffmpeg_exe(), "-loglevel", "error", "-stream_loop", "14", "-i", str(VIDEO),
                    "-c", "copy", str(long)], check=True)  # fmt: skip
    client = instance_job(tmp_path, *pose_args("x", long))
    wait_for(lambda: (tmp_path / "x.mp4").exists(), client)  # the clip is cut: poses are next
    (pid,) = server_pids()
    assert len(children(pid)) == 1
    client.kill()
    client.wait()
    wait_for(lambda: children(pid) == [], None, timeout_s=5)
    assert not (tmp_path / "x.pose").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".x.")]  # no temp file


def test_concurrent_first_jobs_start_one_server(tmp_path):
    clients = [instance_job(tmp_path, *features_args(str(i))) for i in range(4)]
    for client in clients:
        code, err = finished(client)
        assert code == 1 and "no fork server" not in err
    assert len(server_pids()) == 1


def test_a_changed_source_file_retires_the_server(tmp_path):
    """An edited checkout must not be served by code imported before the edit."""
    args = features_args("a")
    assert finished(instance_job(tmp_path, *args))[0] == 1
    (first,) = server_pids()
    edited = ROOT / "src" / "signpose" / "features.py"  # its text stays; only its time moves
    before = edited.stat()
    try:
        os.utime(edited, ns=(before.st_atime_ns, before.st_mtime_ns + 10**9))
        code, err = finished(instance_job(tmp_path, *args))
    finally:
        os.utime(edited, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert code == 1 and "no fork server" not in err
    (second,) = server_pids()  # the log now names the fresh server
    assert second != first
    wait_for(lambda: not alive(first), None, timeout_s=5)


def test_the_server_goes_when_idle(tmp_path):
    args = features_args("a")
    assert finished(instance_job(tmp_path, *args, SIGNPOSE_FORKSERVER_IDLE_S="1"))[0] == 1
    (pid,) = server_pids()
    wait_for(lambda: not alive(pid), None, timeout_s=10)
    assert not list(Path(os.environ["TMPDIR"]).glob("signpose-*/*.sock"))


def test_without_a_private_socket_folder_the_job_runs_in_its_own_process(tmp_path):
    shared = Path(os.environ["TMPDIR"], f"signpose-{os.getuid()}")
    shared.mkdir()
    shared.chmod(0o777)  # anyone could hand a server there work: not used
    args = features_args("a")
    code, err = finished(instance_job(tmp_path, *args))
    assert code == 1
    assert "no fork server" in err and "running the job in this process" in err
    assert "missing.pose" in (tmp_path / "a.log").read_text()
    assert not server_pids()


def rss_mb(pid: int) -> float:
    status = Path(f"/proc/{pid}/status").read_text()
    return int(re.search(r"VmRSS:\s+(\d+) kB", status).group(1)) / 1024


@needs(VIDEO)
def test_an_idle_worker_gives_its_memory_back_and_the_server_stays(tmp_path):
    """A worker with nothing to do (the run trains or writes its report) exits after a few
    seconds; the warm server stays for the next pose job."""
    idle = {"SIGNPOSE_FORKSERVER_WORKER_IDLE_S": "2"}
    assert finished(instance_job(tmp_path, *pose_args("a"), **idle))[0] == 0
    (pid,) = server_pids()
    (worker,) = children(pid)
    before = rss_mb(pid) + rss_mb(worker)
    wait_for(lambda: children(pid) == [], None, timeout_s=15)
    after = rss_mb(pid)
    print(f"server + idle worker {before:.0f} MB -> server alone {after:.0f} MB")
    assert after < before - 100  # the worker's MediaPipe graph and frames are gone
    assert list(Path(os.environ["TMPDIR"]).glob("signpose-*/*.sock"))  # still listening
    assert finished(instance_job(tmp_path, *pose_args("b"), **idle))[0] == 0
    assert server_pids() == [pid]  # the same server forked a fresh worker
    assert (tmp_path / "b.pose").read_bytes() == (tmp_path / "a.pose").read_bytes()
