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

Who does what, one class each:
- `Client`: in the job's process; finds or starts the server and waits for the exit status.
- `Server`: the server's event loop; hands requests to workers and answers the clients.
- `WorkerHandle`: the server's view of one worker (its channel, its job's client, its state).
- `WorkerProcess`: inside a worker; runs the jobs handed to it, one at a time.
- `SourceWatch`: the signpose source files the server loaded, to notice an edited checkout.

Lifetimes. One server per user, node, Python environment, signpose checkout, cgroup (a SLURM
job's work must stay in that job's cgroup) and resource limits (a worker has the limits of the
client that started the server). The first client starts it; it exits after `IDLE_S` seconds
without a job. A worker exits after `WORKER_IDLE_S` seconds without a job (so that the memory
of its MediaPipe graph, about 300 MB, is not held while the run trains or writes its report)
or after `JOBS_PER_WORKER` jobs; the server forks a new one when work comes again. The server
refuses work as soon as a signpose source file changes (the client then starts a fresh one).
If a client goes (Snakemake cancels the job), its worker is killed with its process group; if
the server dies, its workers die with it. When no server can be reached the client runs the
job itself. SIGNPOSE_FORKSERVER=0 turns the server off.

Protocol. Every connection is an AF_UNIX SOCK_SEQPACKET socket: each message is read whole,
as one JSON document (descriptors travel beside it as SCM_RIGHTS).
1. client → server, on a new connection to `socket_path()`:
   `{"argv": [...], "cwd": "...", "env": {...}}` with exactly three descriptors, the client's
   standard input, output and error. The server takes it only from its own user (SO_PEERCRED,
   signpose.compat.linux) and only with three descriptors; otherwise it drops the connection.
2. server → worker, on the worker's channel (a socketpair made when it was forked): the same
   bytes and descriptors, unchanged.
3. worker → server, on the channel, when the job has ended: `{"exit": status, "last": bool}`,
   `last` true when the worker exits after this job; an empty message: the worker is exiting.
4. server → client, then the server closes the connection:
   `{"exit": status}`: the job's exit status (negative: killed by that signal);
   `{"stale": true}`: a source file changed; start a fresh server and ask it;
   `{"retry": true}`: the worker died before it could take the job; ask again;
   nothing (the connection closed): the server is retiring; ask again.
   A client that hangs up before its answer cancels its job: the worker is killed with its
   process group. A job asked again after "retry" or nothing is safe to rerun: it never
   finished, and its writes are atomic.

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
# A few seconds: a busy run hands a worker its next job within milliseconds.
WORKER_IDLE_S = float(os.environ.get("SIGNPOSE_FORKSERVER_WORKER_IDLE_S", "5"))
START_TIMEOUT_S = 120.0  # first imports on a cold network file system can be slow
MAX_REQUEST = 1 << 20
MAX_ANSWER = 4096
# A server's children inherit its limits and umask, so clients that differ in them get
# different servers (a test's RLIMIT_FSIZE must reach its job, and only its job).
LIMITS = (resource.RLIMIT_AS, resource.RLIMIT_CPU, resource.RLIMIT_DATA, resource.RLIMIT_FSIZE,
          resource.RLIMIT_NOFILE, resource.RLIMIT_STACK)  # fmt: skip
# A worker exits after this many jobs, so that whatever a job leaves behind stays bounded.
JOBS_PER_WORKER = int(os.environ.get("SIGNPOSE_FORKSERVER_JOBS_PER_WORKER", "200"))
STREAMS = 3  # standard input, output and error


class Unavailable(OSError):
    """No server could be reached or started; the job runs in the client's process."""


def run_job(argv: list[str]) -> int:
    """Run one per-instance job (signpose.jobs.run_command's argv); return its exit status."""
    from signpose.jobs import WARM_JOBS

    warm = argv[:1] and argv[0] in WARM_JOBS
    if warm and os.environ.get("SIGNPOSE_FORKSERVER", "1") != "0":
        try:
            return Client(socket_path()).run(argv)
        except Unavailable as e:
            print(f"signpose: no fork server ({e}); running the job in this process",
                  file=sys.stderr)  # fmt: skip
    from signpose.jobs import run_command

    run_command(argv)
    return 0


def serve(path: Path, idle_s: float = IDLE_S, worker_idle_s: float = WORKER_IDLE_S) -> None:
    """Serve jobs at `path` until idle for `idle_s` seconds or a source file changes."""
    Server(path, idle_s, min(worker_idle_s, idle_s)).run()


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


# ---------------------------------------------------------------- protocol (docstring, above)


def send_request(sock: socket.socket, argv: list[str], streams: list[int]) -> None:
    """1: the job and the client's standard streams."""
    request = json.dumps({"argv": argv, "cwd": os.getcwd(), "env": dict(os.environ)})
    socket.send_fds(sock, [request.encode()], streams)


def receive_request(conn: socket.socket) -> tuple[bytes, list[int]] | None:
    """1, at the server: the request and its streams, or None (the connection dropped) when it
    is not a valid request from this user."""
    from signpose.compat.linux import peer_credentials

    fds: list[int] = []
    try:
        data, fds, _, _ = socket.recv_fds(conn, MAX_REQUEST, STREAMS)
        if len(fds) != STREAMS or peer_credentials(conn).uid != os.getuid():
            raise ValueError("a request needs three streams from this user")
        json.loads(data)
    except (OSError, ValueError) as e:
        print(f"signpose fork server: refused a request: {e}", file=sys.stderr, flush=True)
        for fd in fds:
            os.close(fd)
        conn.close()
        return None
    return data, fds


def receive_answer(sock: socket.socket) -> dict:
    """4, at the client: the server's answer; {} when the connection closed without one."""
    try:
        reply = sock.recv(MAX_ANSWER)
    except OSError:
        return {}
    return json.loads(reply) if reply else {}


def answer(conn: socket.socket, message: dict) -> None:
    """4, at the server: the one answer a client gets; the connection ends with it."""
    with contextlib.suppress(OSError):  # a client that is gone waits for no answer
        conn.send(json.dumps(message).encode())
    conn.close()


def report(channel: socket.socket, code: int, last: bool) -> None:
    """3, at the worker: its job's exit status."""
    channel.send(json.dumps({"exit": code, "last": last}).encode())


# ---------------------------------------------------------------- client


class Client:
    """In the job's process: hands the job to the server at `path` (starting the server when
    there is none) and waits for its exit status."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def run(self, argv: list[str]) -> int:
        # "stale", "retry" or no answer all mean "ask again" (a fresh server where needed).
        for _ in range(3):
            with self.connect_or_start() as sock:
                try:
                    send_request(sock, argv, standard_streams())
                except OSError:
                    continue
                reply = receive_answer(sock)
            if "exit" in reply:
                return exit_status(reply["exit"], argv)
        raise Unavailable(f"{self.path}: the server retired or died three times in a row")

    def connect_or_start(self) -> socket.socket:
        try:
            sock = self.connect()
            if sock is not None:
                return sock
            private_dir(self.path.parent)
            with open(self.path.with_suffix(".lock"), "w") as lock:
                fcntl.flock(lock, fcntl.LOCK_EX)  # one client starts it, the others wait
                return self.connect() or self.start()
        except Unavailable:
            raise
        except OSError as e:
            raise Unavailable(f"{self.path}: {e}") from e

    def connect(self) -> socket.socket | None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        try:
            sock.connect(os.fspath(self.path))
        except (FileNotFoundError, ConnectionRefusedError):
            sock.close()
            return None
        return sock

    def start(self) -> socket.socket:
        import subprocess

        log = self.path.with_suffix(".log")
        with open(log, "w") as err:
            server = subprocess.Popen(
                [sys.executable, "-m", "signpose.forkserver", os.fspath(self.path)],
                stdin=subprocess.DEVNULL, stdout=err, stderr=err, start_new_session=True,
                env={**os.environ, "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"},
            )  # fmt: skip
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            sock = self.connect()
            if sock is not None:
                return sock
            if server.poll() is not None:
                tail = log.read_text(errors="replace").strip().splitlines()[-1:] or ["no message"]
                raise Unavailable(f"the server exited at start ({tail[0]}; see {log})")
            time.sleep(0.01)
        server.kill()
        raise Unavailable(f"the server did not listen within {START_TIMEOUT_S:.0f} s (see {log})")


def standard_streams() -> list[int]:
    """Descriptors 0-2 to hand over, /dev/null in place of a closed one."""
    streams = []
    for fd in range(STREAMS):
        try:
            os.fstat(fd)
            streams.append(fd)
        except OSError:
            streams.append(os.open(os.devnull, os.O_RDWR))
    return streams


def exit_status(code: int, argv: list[str]) -> int:
    """The job's exit status as a shell gives it (128 + N when killed by signal N)."""
    if code >= 0:
        return code
    name = signal.Signals(-code).name
    print(f"signpose: job {' '.join(argv[:2])} was killed by {name}", file=sys.stderr)
    return 128 - code


def private_dir(folder: Path) -> None:
    """The socket's folder: ours alone, so no other user can hand a server work."""
    folder.mkdir(mode=0o700, exist_ok=True)
    st = folder.stat()
    if st.st_uid != os.getuid() or st.st_mode & 0o077:
        raise Unavailable(f"{folder} is not a folder of this user's alone")


# ---------------------------------------------------------------- server


class SourceWatch:
    """The files of the loaded signpose modules, this one included (it runs as `__main__`),
    with their modification times. The server runs no job itself, so the set is fixed once it
    has preloaded: it is listed once, and only stat'ed per job."""

    def __init__(self) -> None:
        self.files = [__file__, *(module.__file__ for name, module in list(sys.modules.items())
                                  if (name == "signpose" or name.startswith("signpose."))
                                  and getattr(module, "__file__", None))]  # fmt: skip
        self.mtimes = self.now()

    def now(self) -> dict[str, int]:
        """Modification times (-1 for a file that is gone)."""
        mtimes = {}
        for file in self.files:
            try:
                mtimes[file] = os.stat(file).st_mtime_ns
            except OSError:
                mtimes[file] = -1
        return mtimes

    def changed(self) -> bool:
        return self.now() != self.mtimes


class WorkerHandle:
    """The server's side of one worker: a forked child that runs jobs one after another."""

    def __init__(self, pid: int, channel: socket.socket) -> None:
        self.pid = pid
        self.channel = channel
        self.pidfd = os.pidfd_open(pid)
        self.client: socket.socket | None = None  # the job's client while it runs one
        self.idle_since = time.monotonic()
        self.ending = False  # killed, or it ran its last job: it takes no more

    @property
    def idle(self) -> bool:
        return self.client is None and not self.ending

    def hand(self, data: bytes, fds: list[int], client: socket.socket) -> None:
        """2: pass a request on; OSError when the worker is gone."""
        socket.send_fds(self.channel, [data], fds)
        self.client = client

    def kill(self) -> None:
        """Kill the worker and its ffmpeg (its process group); the server cleans up once its
        pidfd says it is gone."""
        self.ending = True  # from now on, even before it is gone, it gets no job
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.pid, signal.SIGKILL)

    def close(self) -> None:
        self.channel.close()
        os.close(self.pidfd)
        if self.client is not None:
            self.client.close()


class Server:
    """The accept loop: hand each request to an idle worker (or a new one), answer its client.

    Single-threaded (a process that forks must not have other threads) and event-driven:
    the listening socket, every client, every worker's channel and pidfd are in one selector.
    """

    def __init__(self, path: Path, idle_s: float, worker_idle_s: float) -> None:
        from signpose import jobs

        jobs.preload()
        self.path, self.idle_s, self.worker_idle_s = path, idle_s, worker_idle_s
        self.sources = SourceWatch()
        self.sel = selectors.DefaultSelector()
        self.workers: dict[int, WorkerHandle] = {}  # by pid
        self.listener = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        path.unlink(missing_ok=True)  # a dead server's socket; clients start servers under a lock
        self.listener.bind(os.fspath(path))
        self.listener.listen(128)
        self.inode = path.stat().st_ino
        self.sel.register(self.listener, selectors.EVENT_READ, self.accept)
        self.last_job = time.monotonic()

    def run(self) -> None:
        print(f"signpose fork server {os.getpid()} listening at {self.path}", file=sys.stderr,
              flush=True)  # fmt: skip
        while self.listening or self.workers:
            for key, _ in self.sel.select(timeout=1.0):
                if self.sel.get_map().get(key.fd) is key:  # not dropped by an earlier handler
                    key.data(key)
            self.retire_idle()

    @property
    def listening(self) -> bool:
        return self.listener.fileno() >= 0

    def accept(self, _key) -> None:
        conn, _ = self.listener.accept()
        if self.sources.changed():
            self.stop_listening()  # first, so the client's next attempt starts a fresh server
            answer(conn, {"stale": True})
            return
        request = receive_request(conn)
        if request is None:
            return
        data, fds = request
        worker = next((w for w in self.workers.values() if w.idle), None) or self.fork(fds)
        try:
            worker.hand(data, fds, conn)
        except OSError:
            answer(conn, {"retry": True})  # the worker died a moment ago; the client asks again
            return
        finally:
            for fd in fds:
                os.close(fd)
        self.sel.register(conn, selectors.EVENT_READ, lambda _key: self.hung_up(worker))
        self.last_job = time.monotonic()

    def fork(self, streams: list[int]) -> WorkerHandle:
        """A new worker; `streams` (the request's, also open here) are closed in it, or it
        would hold the client's pipes open after the job has ended."""
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:
            try:  # the child never returns into the server's loop
                self.sel.close()
                self.listener.close()
                for worker in self.workers.values():
                    worker.close()
                ours.close()
                for fd in streams:
                    os.close(fd)
                WorkerProcess(theirs).run()
            finally:
                os._exit(1)
        theirs.close()
        with contextlib.suppress(OSError):  # also here: a kill must not race the child's setpgid
            os.setpgid(pid, pid)
        worker = self.workers[pid] = WorkerHandle(pid, ours)
        self.sel.register(ours, selectors.EVENT_READ, lambda _key: self.finished(worker))
        self.sel.register(worker.pidfd, selectors.EVENT_READ, lambda _key: self.died(worker))
        return worker

    def finished(self, worker: WorkerHandle) -> None:
        """3: the worker reports its job's exit status (or, with nothing, that it is exiting)."""
        try:
            message = worker.channel.recv(MAX_ANSWER)
        except OSError:
            message = b""
        if not message:
            self.sel.unregister(worker.channel)  # its pidfd reports the exit
            return
        result = json.loads(message)
        worker.ending = result.pop("last", False) or worker.ending
        if worker.client is not None:
            self.sel.unregister(worker.client)
            answer(worker.client, result)
            worker.client = None
        worker.idle_since = time.monotonic()

    def died(self, worker: WorkerHandle) -> None:
        _, status = os.waitpid(worker.pid, 0)
        if worker.client is not None:
            try:  # the last job's report may still be waiting behind the exit
                result = json.loads(worker.channel.recv(MAX_ANSWER, socket.MSG_DONTWAIT) or b"{}")
                result.pop("last", None)
            except (OSError, ValueError):
                result = {}
            code = os.waitstatus_to_exitcode(status)
            # Killed mid-job (OOM killer, a crash): the job failed with that signal. Gone
            # without a word otherwise: the job may not have started; the client asks again.
            result = result or ({"exit": code} if code < 0 else {"retry": True})
            self.sel.unregister(worker.client)
            answer(worker.client, result)
            worker.client = None
        for fileobj in (worker.channel, worker.pidfd):
            with contextlib.suppress(KeyError, ValueError):
                self.sel.unregister(fileobj)
        worker.close()
        del self.workers[worker.pid]

    def hung_up(self, worker: WorkerHandle) -> None:
        """The client went before its job ended (Snakemake cancelled it): the job goes too."""
        self.sel.unregister(worker.client)
        worker.client.close()
        worker.client = None
        worker.kill()

    def retire_idle(self) -> None:
        now = time.monotonic()
        for worker in list(self.workers.values()):
            if worker.idle and (now - worker.idle_since > self.worker_idle_s or not self.listening):
                worker.kill()
        if self.listening and not self.workers and now - self.last_job > self.idle_s:
            self.stop_listening()

    def stop_listening(self) -> None:
        self.sel.unregister(self.listener)
        self.listener.close()
        with contextlib.suppress(FileNotFoundError):
            if self.path.stat().st_ino == self.inode:  # not yet replaced by a newer server's
                self.path.unlink()


# ---------------------------------------------------------------- worker


class WorkerProcess:
    """Inside a forked worker: run the jobs handed over on `channel`, one at a time, each as
    the client's own process would (its streams, folder and environment)."""

    def __init__(self, channel: socket.socket) -> None:
        self.channel = channel

    def run(self) -> None:
        """Never returns."""
        from signpose.compat.linux import set_parent_death_signal

        server = os.getppid()
        with contextlib.suppress(OSError):
            os.setpgid(0, 0)  # its own group, so ffmpeg dies with it when a client hangs up
        set_parent_death_signal(signal.SIGKILL)
        if os.getppid() != server:  # the server died before the line above
            os._exit(1)
        devnull = os.open(os.devnull, os.O_RDWR)
        for job in range(1, JOBS_PER_WORKER + 1):
            try:
                data, fds, _, _ = socket.recv_fds(self.channel, MAX_REQUEST, STREAMS)
            except OSError:
                break
            if not data:
                break
            code = self.run_one(json.loads(data), fds)
            for target in range(STREAMS):  # let go of the client's streams: its reader sees EOF
                os.dup2(devnull, target)
            report(self.channel, code, last=job == JOBS_PER_WORKER)
        os._exit(0)

    @staticmethod
    def run_one(request: dict, fds: list[int]) -> int:
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
