"""Per-instance jobs forked from a warm process instead of started cold.

A pose job spends about 0.15 s starting Python and importing NumPy, OpenCV, pose-format and
MediaPipe before its first frame; a features job is almost nothing but that start. At WLASL
size that is 40,000 cold starts. Here each job's own process is only a small client: it hands
its command, working directory, environment, umask, limits and standard streams to a server
that imported everything once, and the server forks a child that runs the job and dies. Every
job still gets a fresh process (a fresh MediaPipe graph, no state shared between instances),
and the client exits with the child's status, so Snakemake sees an ordinary job.

One server per user, node, Python environment, signpose checkout and cgroup (a SLURM job's
children must stay in that job's cgroup). The first client starts it; it exits after `IDLE_S`
idle seconds, and refuses work as soon as a signpose source file changes (the client then
starts a fresh one). If the client kills (Snakemake cancels the job), the server kills the
child's process group; if the server dies, its children die with it. When no server can be
reached the client runs the job itself. SIGNPOSE_FORKSERVER=0 turns the server off.

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
    """Where this environment's server listens: one per user, node, environment and cgroup."""
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
    except OSError as e:
        if isinstance(e, Unavailable):
            raise
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


def serve(path: Path, idle_s: float = IDLE_S) -> None:
    """Accept jobs at `path` until idle for `idle_s` seconds or a source file changes."""
    from signpose import jobs

    jobs.preload()
    sources = _source_mtimes()
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    path.unlink(missing_ok=True)  # a dead server's socket; clients start servers under a lock
    listener.bind(os.fspath(path))
    listener.listen(128)
    inode = path.stat().st_ino
    sel = selectors.DefaultSelector()
    sel.register(listener, selectors.EVENT_READ, "accept")
    running: dict[int, tuple[socket.socket | None, int]] = {}  # pidfd -> (client, pid)
    last = time.monotonic()
    print(f"signpose fork server {os.getpid()} listening at {path}", file=sys.stderr, flush=True)
    while listener.fileno() >= 0 or running:
        events = sel.select(timeout=1.0)
        for key, _ in events:
            if key.data == "accept":
                conn, _ = listener.accept()
                if _source_mtimes() != sources:
                    _stop_listening(sel, listener, path, inode)  # first: no client reconnects
                    _reply(conn, {"stale": True})
                    break
                child = _fork_job(conn, sel, listener, running)
                if child is not None:
                    pidfd, pid = child
                    running[pidfd] = (conn, pid)
                    sel.register(pidfd, selectors.EVENT_READ, "exit")
                    sel.register(conn, selectors.EVENT_READ, pidfd)
            elif key.data == "exit":
                conn, pid = running.pop(key.fd)
                sel.unregister(key.fd)
                os.close(key.fd)
                _, status = os.waitpid(pid, 0)
                if conn is not None:
                    sel.unregister(conn)
                    _reply(conn, {"exit": os.waitstatus_to_exitcode(status)})
            elif key.data in running:  # the client hung up before its job ended: kill the job
                conn, pid = running[key.data]
                sel.unregister(conn)
                conn.close()
                running[key.data] = (None, pid)
                _kill_group(pid)
        if running or events:
            last = time.monotonic()
        elif time.monotonic() - last > idle_s and listener.fileno() >= 0:
            _stop_listening(sel, listener, path, inode)


def _reply(conn: socket.socket, answer: dict) -> None:
    with contextlib.suppress(OSError):  # a client that is gone waits for no answer
        conn.send(json.dumps(answer).encode())
    conn.close()


def _source_mtimes() -> dict[str, int]:
    """Modification times of the loaded signpose modules: a change means stale code."""
    mtimes = {}
    for name, module in list(sys.modules.items()):
        file = getattr(module, "__file__", None)
        if file and (name == "signpose" or name.startswith("signpose.")):
            try:
                mtimes[file] = os.stat(file).st_mtime_ns
            except OSError:
                mtimes[file] = -1
    return mtimes


def _stop_listening(sel, listener: socket.socket, path: Path, inode: int) -> None:
    sel.unregister(listener)
    listener.close()
    with contextlib.suppress(FileNotFoundError):
        if path.stat().st_ino == inode:  # not yet replaced by a newer server's socket
            path.unlink()


def _kill_group(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGKILL)


def _fork_job(conn, sel, listener, running) -> tuple[int, int] | None:
    """Fork a child for the request on `conn`: (pidfd, pid), or None after a bad request."""
    try:
        data, fds, _, _ = socket.recv_fds(conn, MAX_REQUEST, 3)
        request = json.loads(data)
        if len(fds) != 3 or _peer_uid(conn) != os.getuid():
            raise ValueError("a request needs three streams from this user")
    except (OSError, ValueError) as e:
        print(f"signpose fork server: refused a request: {e}", file=sys.stderr, flush=True)
        conn.close()
        return None
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid == 0:
        sel.close()
        listener.close()
        for client, _ in running.values():
            if client is not None:
                client.close()
        for pidfd in running:
            os.close(pidfd)
        conn.close()
        _run_child(request, fds)
    with contextlib.suppress(OSError):  # also here: a kill must not race the child's setpgid
        os.setpgid(pid, pid)
    for fd in fds:
        os.close(fd)
    return os.pidfd_open(pid), pid


def _peer_uid(conn: socket.socket) -> int:
    creds = conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, 12)
    return int.from_bytes(creds[4:8], sys.byteorder)


def _run_child(request: dict, fds: list[int]) -> None:
    """In the forked child: become the client's process, run the job, never return."""
    import ctypes
    import traceback

    code = 1
    try:
        server = os.getppid()
        with contextlib.suppress(OSError):
            os.setpgid(0, 0)  # its own group, so ffmpeg dies with it when the client hangs up
        ctypes.CDLL(None).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
        if os.getppid() != server:  # the server died before the line above
            os._exit(1)
        for target, fd in enumerate(fds):
            os.dup2(fd, target)
            if fd > 2:
                os.close(fd)
        os.chdir(request["cwd"])
        os.environ.clear()
        os.environ.update(request["env"])
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
        os._exit(code)


if __name__ == "__main__":
    serve(Path(sys.argv[1]))
