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

from conftest import ROOT, VIDEO, missing, wait_for
from signpose.config import with_defaults

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
    for pid in live_servers():  # every one, not only the one its log names
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
    """A features job over a shard of one instance, "x", whose raw pose is `pose`."""
    files = {"pose": pose, "features": f"{name}.npy", "clean_pose": f"{name}.clean.pose"}
    return ["features", "--log", f"{name}.log", "--video_ids", '["x"]', "--files",
            json.dumps(files), "--qc", f"{name}.jsonl", "--options", FEATURES]  # fmt: skip


def server_pids() -> list[int]:
    """The pid in each server log under the test's TMPDIR (one log per socket)."""
    logs = Path(os.environ["TMPDIR"]).glob("signpose-*/*.log")
    return [int(re.search(r"fork server (\d+) listening", p.read_text()).group(1)) for p in logs]


def live_servers() -> list[int]:
    """Every fork server running for this test's TMPDIR, found by its command line in /proc
    (`python -m signpose.forkserver <socket under TMPDIR>`), whatever its log says. Its
    workers are forks with the same command line: those whose parent is one are left out."""
    folder = os.fsencode(os.environ["TMPDIR"]) + b"/"
    found = {}
    for proc in Path("/proc").iterdir():
        try:
            args = (proc / "cmdline").read_bytes().split(b"\0")
            parent = int((proc / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError):
            continue  # not a process, or gone
        ours = b"signpose.forkserver" in args and any(a.startswith(folder) for a in args)
        if ours and alive(int(proc.name)):
            found[int(proc.name)] = parent
    return sorted(pid for pid, parent in found.items() if parent not in found)


def cmdline(pid: int) -> list[str]:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().decode().split("\0")
    except OSError:
        return []


def job_process(log: Path) -> tuple[int, int]:
    """The process that ran a job and its parent, as the job's log records them."""
    found = re.search(r" job in process (\d+) \(parent (\d+)\)", log.read_text())
    assert found, f"{log} does not say which process ran the job"
    return int(found.group(1)), int(found.group(2))


def alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def children(pid: int) -> list[int]:
    return [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]


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
    codes, ran_in = {}, {}
    for name, server in (("cold", False), ("warm", True)):
        args = features_args(name, "missing.pose")  # an input Snakemake would have made
        client = instance_job(tmp_path, *args, server=server)
        code, err = finished(client)
        codes[name] = code
        log = (tmp_path / f"{name}.log").read_text()
        assert "Traceback" in log and "missing.pose" in log and "no fork server" not in err
        assert not (tmp_path / f"{name}.npy").exists() and not (tmp_path / f"{name}.jsonl").exists()
        ran_in[name] = (client.pid, *job_process(tmp_path / f"{name}.log"))
    assert codes == {"cold": 1, "warm": 1}
    client, pid, _ = ran_in["cold"]
    assert pid == client  # without the server: the job's own process
    client, pid, parent = ran_in["warm"]
    assert pid != client, "with the server the job ran in its client, not in a worker"
    (server,) = live_servers()
    # with it: a worker the server forked, still there for the next job
    assert parent == server and children(server) == [pid]


def encoders(server: int) -> list[int]:
    """The clip encoders (ffmpeg with libx264, not a short probe) the server's workers run."""
    return [c for w in children(server) for c in children(w) if "libx264" in cmdline(c)]


def test_a_job_whose_client_is_killed_dies_with_it(tmp_path):
    from signpose.video import ffmpeg_exe

    long = tmp_path / "long.mp4"  # 464 frames: minutes of a veryslow encode
    subprocess.run([ffmpeg_exe(), "-loglevel", "error", "-stream_loop", "7", "-i", str(VIDEO),
                    "-c", "copy", str(long)], check=True)  # fmt: skip
    args = pose_args("x", long)
    args[-1] = json.dumps({"clip": {"preset": "veryslow"}, "pose": {}})
    client = instance_job(tmp_path, *args)
    wait_for(lambda: live_servers() and encoders(live_servers()[0]), client, timeout_s=120)
    (server,) = live_servers()
    (worker,) = children(server)
    (encoder,) = encoders(server)
    client.kill()  # mid-encode: Snakemake cancels the job
    client.wait()
    wait_for(lambda: not alive(encoder) and not alive(worker), None, timeout_s=5)
    assert children(server) == []
    assert not (tmp_path / "x.mp4").exists() and not (tmp_path / "x.pose").exists()


def test_concurrent_first_jobs_start_one_server(tmp_path):
    clients = [instance_job(tmp_path, *features_args(str(i))) for i in range(4)]
    for client in clients:
        code, err = finished(client)
        assert code == 1 and "no fork server" not in err
    # counted in /proc: servers that each overwrote the one log would all be there
    assert len(live_servers()) == 1 and server_pids() == live_servers()
    (server,) = live_servers()
    assert {job_process(tmp_path / f"{i}.log")[1] for i in range(4)} == {server}


def test_a_worker_retires_after_its_job_limit(tmp_path):
    """After SIGNPOSE_FORKSERVER_JOBS_PER_WORKER jobs (200 by default) a worker exits and the
    next job gets a fresh one from the same server."""
    limit = {"SIGNPOSE_FORKSERVER_JOBS_PER_WORKER": "2"}
    ran_in = []
    for i in range(3):
        code, err = finished(instance_job(tmp_path, *features_args(str(i)), **limit))
        assert code == 1 and "no fork server" not in err
        ran_in.append(job_process(tmp_path / f"{i}.log"))
    (server,) = live_servers()
    first, _, third = (pid for pid, _ in ran_in)
    assert ran_in[1] == (first, server) and third != first and ran_in[2][1] == server
    wait_for(lambda: not alive(first), None, timeout_s=5)  # the retired worker is gone
    assert children(server) == [third]


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


ANOTHER_USER = """
import json, os, socket, sys
from signpose.forkserver import receive_answer, send_request
os.setgroups([]); os.setgid(65534); os.setuid(65534)  # nobody
sock = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
sock.connect(sys.argv[1])
send_request(sock, json.loads(sys.argv[2]), [0, 1, 2])
print(json.dumps(receive_answer(sock)))
"""


def test_the_server_serves_only_its_own_user(tmp_path):
    """The private folder keeps other users from the socket; were they let in (a folder
    opened by hand), the server still drops their requests by their uid (SO_PEERCRED)."""
    if os.geteuid() != 0:
        missing("acting as another user needs root")
    folder = Path(tempfile.mkdtemp(prefix="sp-open-", dir="/tmp"))  # TMPDIR is 0700
    folder.chmod(0o777)
    sock, log = folder / "s.sock", tmp_path / "server.log"
    with open(log, "w") as err:
        server = subprocess.Popen([sys.executable, "-m", "signpose.forkserver", str(sock)],
                                  stderr=err, preexec_fn=lambda: os.umask(0))  # fmt: skip
    try:
        wait_for(lambda: "listening" in log.read_text(), server, timeout_s=120)

        def ask(name: str, as_nobody: bool) -> dict:
            code = ANOTHER_USER if as_nobody else ANOTHER_USER.replace("os.set", "# os.set")
            argv = json.dumps(features_args(name))
            run = subprocess.run([sys.executable, "-c", code, str(sock), argv], cwd=tmp_path,
                                 capture_output=True, text=True, check=True)  # fmt: skip
            return json.loads(run.stdout)

        assert ask("theirs", as_nobody=True) == {}  # dropped without an answer
        assert "refused a request: a request needs three streams from this user" in log.read_text()
        assert children(server.pid) == [] and not (tmp_path / "theirs.log").exists()
        assert ask("ours", as_nobody=False) == {"exit": 1}  # served: missing.pose is named
        assert "missing.pose" in (tmp_path / "ours.log").read_text()
    finally:
        server.terminate()
        server.wait()
        shutil.rmtree(folder)


def rss_mb(pid: int) -> float:
    status = Path(f"/proc/{pid}/status").read_text()
    return int(re.search(r"VmRSS:\s+(\d+) kB", status).group(1)) / 1024


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
