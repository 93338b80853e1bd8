"""Per-instance jobs run by warm workers instead of cold processes.

A pose job spends about 0.16 s starting Python and importing NumPy, OpenCV, pose-format and
MediaPipe before its first frame, and 80 ms more building a MediaPipe graph; a features job is
almost nothing but its start. At WLASL size that is 40,000 cold starts. Here each job's own
process is only a small client: it hands its command, working directory, environment and
standard streams to a server that imported everything once. The server passes the job to an
idle worker (a child forked from it, or a new one), which takes over the client's streams,
folder and environment, runs the job, lets go of the streams and reports the exit status; the
client exits with it, so Snakemake sees an ordinary job. A worker keeps its MediaPipe graph
between jobs and resets it (signpose.holistic), so no clip's state reaches the next.

One server per user, node, Python environment, signpose checkout, cgroup (a SLURM job's work
must stay in that job's cgroup) and resource limits (a worker has the limits of the client
that started the server). The first client starts it; it exits after `IDLE_S` idle seconds, a
worker after `JOBS_PER_WORKER` jobs, and the server refuses work as soon as a signpose source
file changes (the client then starts a fresh one). If a client goes (Snakemake cancels the
job), its worker is killed with its process group; if the server dies, its workers die with it.
When no server can be reached the client runs the job itself. SIGNPOSE_FORKSERVER=0 turns the
server off.

Only the standard library is imported at module level: the client must start in milliseconds.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import resource
import selectors
import signal
import socket
import sys
import time
from pathlib import Path

IDLE_S = float(os.environ.get("SIGNPOSE_FORKSERVER_IDLE_S", "30"))
START_TIMEOUT_S = 120.0  # first imports on a cold network file system can be slow
MAX_REQUEST = 1 << 20
# A server's children inherit its limits and umask, so clients that differ in them get
# different servers (a test's RLIMIT_FSIZE must reach its job, and only its job).
LIMITS = (resource.RLIMIT_AS, resource.RLIMIT_CPU, resource.RLIMIT_DATA, resource.RLIMIT_FSIZE,
          resource.RLIMIT_NOFILE, resource.RLIMIT_STACK)  # fmt: skip
PR_SET_PDEATHSIG = 1
# A worker exits after this many jobs, so that whatever a job leaves behind stays bounded.
JOBS_PER_WORKER = 200


class Unavailable(OSError):
    """No server could be reached or started; the job runs in the client's process."""


# ---------------------------------------------------------------- client


def run_job(argv: list[str]) -> int:
    """Run one per-instance job (signpose.jobs.run_command's argv); return its exit status."""
    if os.environ.get("SIGNPOSE_FORKSERVER", "1") != "0":
        try:
            return _through_server(argv)
        except Unavailable as e:
            print(f"signpose: no fork server ({e}); running the job in this process",
                  file=sys.stderr)  # fmt: skip
    from signpose.jobs import run_command

    run_command(argv)
    return 0


def _through_server(argv: list[str]) -> int:
    path = socket_path()
    request = json.dumps({"argv": argv, "cwd": os.getcwd(), "env": dict(os.environ)}).encode()
    # A stale server answers "stale" and a retiring one may drop the request unanswered; both
    # mean "ask a fresh server". A job the server dropped was killed with it (PDEATHSIG)
    # before it could finish, and its writes are atomic, so running it again is safe.
    for _ in range(3):
        with _connect_or_start(path) as sock:
            try:
                socket.send_fds(sock, [request], _standard_streams())
                reply = sock.recv(4096)
            except OSError:
                reply = b""
        if reply and "exit" in (answer := json.loads(reply)):
            return _exit_status(answer["exit"], argv)
    raise Unavailable(f"{path}: the server retired or died three times in a row")


def _standard_streams() -> list[int]:
    """Descriptors 0-2 to hand over, /dev/null in place of a closed one."""
    streams = []
    for fd in (0, 1, 2):
        try:
            os.fstat(fd)
            streams.append(fd)
        except OSError:
            streams.append(os.open(os.devnull, os.O_RDWR))
    return streams


def _exit_status(code: int, argv: list[str]) -> int:
    if code >= 0:
        return code
    name = signal.Signals(-code).name
    print(f"signpose: job {' '.join(argv[:2])} was killed by {name}", file=sys.stderr)
    return 128 - code


def socket_path() -> Path:
    """Where this environment's server listens: one per user, node, Python environment,
    checkout, cgroup, SLURM job, umask and resource limits."""
    import hashlib

    try:
        cgroup = Path("/proc/self/cgroup").read_text()
    except OSError:
        cgroup = ""
    umask = os.umask(0)
    os.umask(umask)
    limits = [resource.getrlimit(limit) for limit in LIMITS]
    key = repr([sys.executable, __file__, os.uname().nodename, cgroup,
                os.environ.get("SLURM_JOB_ID"), os.getuid(), umask, limits])  # fmt: skip
    digest = hashlib.blake2s(key.encode(), digest_size=8).hexdigest()
    name = Path(f"signpose-{os.getuid()}", f"{digest}.sock")
    path = Path(os.environ.get("TMPDIR") or "/tmp", name)
    return path if len(os.fsencode(path)) < 108 else Path("/tmp", name)  # sun_path's limit


def _private_dir(folder: Path) -> None:
    """The socket's folder: ours alone, so no other user can hand a server work."""
    folder.mkdir(mode=0o700, exist_ok=True)
    st = folder.stat()
    if st.st_uid != os.getuid() or st.st_mode & 0o077:
        raise Unavailable(f"{folder} is not a folder of this user's alone")


def _connect(path: Path) -> socket.socket | None:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    try:
        sock.connect(os.fspath(path))
    except (FileNotFoundError, ConnectionRefusedError):
        sock.close()
        return None
    return sock


def _connect_or_start(path: Path) -> socket.socket:
    try:
        sock = _connect(path)
        if sock is not None:
            return sock
        _private_dir(path.parent)
        with open(path.with_suffix(".lock"), "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)  # one client starts it, the others wait
            return _connect(path) or _start(path)
    except Unavailable:
        raise
    except OSError as e:
        raise Unavailable(f"{path}: {e}") from e


def _start(path: Path) -> socket.socket:
    import subprocess

    log = path.with_suffix(".log")
    with open(log, "w") as err:
        server = subprocess.Popen(
            [sys.executable, "-m", "signpose.forkserver", os.fspath(path)],
            stdin=subprocess.DEVNULL, stdout=err, stderr=err, start_new_session=True,
            env={**os.environ, "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"},
        )  # fmt: skip
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        sock = _connect(path)
        if sock is not None:
            return sock
        if server.poll() is not None:
            tail = log.read_text(errors="replace").strip().splitlines()[-1:] or ["no message"]
            raise Unavailable(f"the server exited at start ({tail[0]}; see {log})")
        time.sleep(0.01)
    server.kill()
    raise Unavailable(f"the server did not listen within {START_TIMEOUT_S:.0f} s (see {log})")


# ---------------------------------------------------------------- server


class Worker:
    """A forked child that runs jobs one after another, handed over on its own channel."""

    def __init__(self, pid: int, channel: socket.socket) -> None:
        self.pid = pid
        self.channel = channel
        self.pidfd = os.pidfd_open(pid)
        self.client: socket.socket | None = None  # the job's client while it runs one
        self.idle_since = time.monotonic()
        self.ending = False  # killed, or it ran its last job: it takes no more


class Server:
    """The accept loop: hand each request to an idle worker (or a new one), answer its client.

    Single-threaded (a process that forks must not have other threads) and event-driven:
    the listening socket, every client, every worker's channel and pidfd are in one selector.
    """

    def __init__(self, path: Path, idle_s: float) -> None:
        from signpose import jobs

        jobs.preload()
        self.path, self.idle_s = path, idle_s
        self.sources = _mtimes(_signpose_files())
        self.sel = selectors.DefaultSelector()
        self.workers: dict[int, Worker] = {}  # by pid
        self.listener = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        path.unlink(missing_ok=True)  # a dead server's socket; clients start servers under a lock
        self.listener.bind(os.fspath(path))
        self.listener.listen(128)
        self.inode = path.stat().st_ino
        self.sel.register(self.listener, selectors.EVENT_READ, self._accept)
        self.last_job = time.monotonic()

    def run(self) -> None:
        print(f"signpose fork server {os.getpid()} listening at {self.path}", file=sys.stderr,
              flush=True)  # fmt: skip
        while self.listening or self.workers:
            for key, _ in self.sel.select(timeout=1.0):
                if self.sel.get_map().get(key.fd) is key:  # not dropped by an earlier handler
                    key.data(key)
            self._retire_idle()

    @property
    def listening(self) -> bool:
        return self.listener.fileno() >= 0

    def _accept(self, _key) -> None:
        conn, _ = self.listener.accept()
        if _mtimes(self.sources) != self.sources:
            self._stop_listening()  # first, so the client's next attempt starts a fresh server
            _reply(conn, {"stale": True})
            return
        request = _receive(conn)
        if request is None:
            return
        data, fds = request
        worker = next((w for w in self.workers.values() if w.client is None and not w.ending),
                      None) or self._fork_worker(fds)  # fmt: skip
        try:
            socket.send_fds(worker.channel, [data], fds)
        except OSError:
            _reply(conn, {"retry": True})  # the worker died a moment ago; the client asks again
            return
        finally:
            for fd in fds:
                os.close(fd)
        worker.client = conn
        self.sel.register(conn, selectors.EVENT_READ, lambda _key: self._hung_up(worker))
        self.last_job = time.monotonic()

    def _fork_worker(self, streams: list[int]) -> Worker:
        """A new worker; `streams` (the request's, also open here) are closed in it, or it
        would hold the client's pipes open after the job has ended."""
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:
            self.sel.close()
            self.listener.close()
            for worker in self.workers.values():
                worker.channel.close()
                os.close(worker.pidfd)
                if worker.client is not None:
                    worker.client.close()
            ours.close()
            for fd in streams:
                os.close(fd)
            _work(theirs)
        theirs.close()
        with contextlib.suppress(OSError):  # also here: a kill must not race the child's setpgid
            os.setpgid(pid, pid)
        worker = self.workers[pid] = Worker(pid, ours)
        self.sel.register(ours, selectors.EVENT_READ, lambda _key: self._finished(worker))
        self.sel.register(worker.pidfd, selectors.EVENT_READ, lambda _key: self._died(worker))
        return worker

    def _finished(self, worker: Worker) -> None:
        """The worker reports its job's exit status (or, with nothing, that it is exiting)."""
        try:
            message = worker.channel.recv(4096)
        except OSError:
            message = b""
        if not message:
            self.sel.unregister(worker.channel)  # its pidfd reports the exit
            return
        answer = json.loads(message)
        worker.ending = answer.pop("last", False) or worker.ending
        if worker.client is not None:
            self.sel.unregister(worker.client)
            _reply(worker.client, answer)
            worker.client = None
        worker.idle_since = time.monotonic()

    def _died(self, worker: Worker) -> None:
        _, status = os.waitpid(worker.pid, 0)
        if worker.client is not None:
            try:  # the last job's answer may still be waiting behind the exit
                answer = json.loads(worker.channel.recv(4096, socket.MSG_DONTWAIT) or b"{}")
                answer.pop("last", None)
            except (OSError, ValueError):
                answer = {}
            code = os.waitstatus_to_exitcode(status)
            # Killed mid-job (OOM killer, a crash): the job failed with that signal. Gone
            # without a word otherwise: the job may not have started; the client asks again.
            answer = answer or ({"exit": code} if code < 0 else {"retry": True})
            self.sel.unregister(worker.client)
            _reply(worker.client, answer)
        for fileobj in (worker.channel, worker.pidfd):
            with contextlib.suppress(KeyError, ValueError):
                self.sel.unregister(fileobj)
        worker.channel.close()
        os.close(worker.pidfd)
        del self.workers[worker.pid]

    def _hung_up(self, worker: Worker) -> None:
        """The client went before its job ended (Snakemake cancelled it): the job goes too."""
        self.sel.unregister(worker.client)
        worker.client.close()
        worker.client = None
        self._end(worker)

    def _end(self, worker: Worker) -> None:
        """Kill the worker and its ffmpeg; `_died` cleans up once it is gone."""
        worker.ending = True  # from now on, even before it is gone, it gets no job
        _kill_group(worker.pid)

    def _retire_idle(self) -> None:
        now = time.monotonic()
        for worker in list(self.workers.values()):
            if (
                worker.client is None
                and not worker.ending
                and (now - worker.idle_since > self.idle_s or not self.listening)
            ):
                self._end(worker)
        if self.listening and not self.workers and now - self.last_job > self.idle_s:
            self._stop_listening()

    def _stop_listening(self) -> None:
        self.sel.unregister(self.listener)
        self.listener.close()
        with contextlib.suppress(FileNotFoundError):
            if self.path.stat().st_ino == self.inode:  # not yet replaced by a newer server's
                self.path.unlink()


def serve(path: Path, idle_s: float = IDLE_S) -> None:
    """Serve jobs at `path` until idle for `idle_s` seconds or a source file changes."""
    Server(path, idle_s).run()


def _reply(conn: socket.socket, answer: dict) -> None:
    with contextlib.suppress(OSError):  # a client that is gone waits for no answer
        conn.send(json.dumps(answer).encode())
    conn.close()


def _receive(conn: socket.socket) -> tuple[bytes, list[int]] | None:
    """A client's request and its three streams, or None (and the client dropped) if invalid."""
    fds: list[int] = []
    try:
        data, fds, _, _ = socket.recv_fds(conn, MAX_REQUEST, 3)
        if len(fds) != 3 or _peer_uid(conn) != os.getuid():
            raise ValueError("a request needs three streams from this user")
        json.loads(data)
    except (OSError, ValueError) as e:
        print(f"signpose fork server: refused a request: {e}", file=sys.stderr, flush=True)
        for fd in fds:
            os.close(fd)
        conn.close()
        return None
    return data, fds


def _signpose_files() -> list[str]:
    """The files of the loaded signpose modules, this one included (it runs as `__main__`).
    The server runs no job itself, so the set is fixed once it has preloaded: it is listed
    once, and only stat'ed per job."""
    return [__file__, *(module.__file__ for name, module in list(sys.modules.items())
                        if (name == "signpose" or name.startswith("signpose."))
                        and getattr(module, "__file__", None))]  # fmt: skip


def _mtimes(files) -> dict[str, int]:
    """Modification times of `files` (-1 for one that is gone): a change means stale code."""
    mtimes = {}
    for file in files:
        try:
            mtimes[file] = os.stat(file).st_mtime_ns
        except OSError:
            mtimes[file] = -1
    return mtimes


def _kill_group(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGKILL)


def _peer_uid(conn: socket.socket) -> int:
    creds = conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, 12)
    return int.from_bytes(creds[4:8], sys.byteorder)


def _work(channel: socket.socket) -> None:
    """In a worker: run the jobs handed over on `channel`, one at a time; never return."""
    import ctypes

    server = os.getppid()
    with contextlib.suppress(OSError):
        os.setpgid(0, 0)  # its own group, so ffmpeg dies with it when a client hangs up
    ctypes.CDLL(None).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != server:  # the server died before the line above
        os._exit(1)
    devnull = os.open(os.devnull, os.O_RDWR)
    for job in range(1, JOBS_PER_WORKER + 1):
        try:
            data, fds, _, _ = socket.recv_fds(channel, MAX_REQUEST, 3)
        except OSError:
            break
        if not data:
            break
        code = _run_job_here(json.loads(data), fds)
        for target in (0, 1, 2):  # let go of the client's streams: its reader sees their end
            os.dup2(devnull, target)
        channel.send(json.dumps({"exit": code, "last": job == JOBS_PER_WORKER}).encode())
    os._exit(0)


def _run_job_here(request: dict, fds: list[int]) -> int:
    """Become the client's process for one job: its streams, folder and environment."""
    import traceback

    code = 1
    try:
        for target, fd in enumerate(fds):
            os.dup2(fd, target)
            if fd > 2:
                os.close(fd)
        os.chdir(request["cwd"])
        os.environ.clear()
        os.environ.update(request["env"])
        with contextlib.suppress(OSError):  # the job's peak memory, not the worker's
            Path("/proc/self/clear_refs").write_text("5")
        from signpose.jobs import run_command

        run_command(request["argv"])
        code = 0
    except SystemExit as e:
        code = e.code if isinstance(e.code, int) else 1
    except BaseException:
        traceback.print_exc()
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
    return code


if __name__ == "__main__":
    serve(Path(sys.argv[1]))
