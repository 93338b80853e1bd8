"""Pins the Linux structures signpose.compat.linux reads byte by byte (struct ucred) and the
prctl options it passes; a failure names the structure that changed."""

from __future__ import annotations

import os
import signal
import socket
import struct
import subprocess
import sys

from signpose.compat import linux


def test_so_peercred_answers_a_ucred_of_pid_uid_gid():
    assert linux.UCRED.size == 12, "Linux struct ucred changed: no longer 3 x 32-bit integers"
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    with ours, theirs:
        raw = ours.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, 64)
        assert len(raw) == linux.UCRED.size, f"SO_PEERCRED answered {len(raw)} bytes, not 12"
        assert struct.unpack("=iII", raw) == (os.getpid(), os.getuid(), os.getgid()), (
            "Linux struct ucred changed: not {pid, uid, gid} in that order"
        )
        assert linux.peer_credentials(ours) == (os.getpid(), os.getuid(), os.getgid())


def test_the_peer_is_the_process_at_the_other_end(tmp_path):
    server = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    server.bind(str(tmp_path / "s.sock"))
    server.listen(1)
    code = ("import socket, sys; s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET);"
            "s.connect(sys.argv[1]); s.recv(1)")  # fmt: skip
    client = subprocess.Popen([sys.executable, "-c", code, str(tmp_path / "s.sock")])
    try:
        conn, _ = server.accept()
        with conn:
            assert linux.peer_credentials(conn).pid == client.pid
            conn.send(b"x")
    finally:
        client.wait(timeout=30)
        server.close()


def test_pdeathsig_is_set_and_read_back():
    code = ("from signpose.compat import linux; import signal;"
            "linux.set_parent_death_signal(signal.SIGKILL);"
            "print(linux.parent_death_signal())")  # fmt: skip
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert int(out.stdout) == signal.SIGKILL, "prctl(PR_SET_PDEATHSIG=1/PR_GET_PDEATHSIG=2) changed"
