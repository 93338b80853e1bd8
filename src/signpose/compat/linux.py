"""Byte-level Linux structures and calls the fork server relies on (tests/test_compat_linux.py).

- `SO_PEERCRED` answers with a `struct ucred { pid_t pid; uid_t uid; gid_t gid; }`: three
  32-bit integers in the machine's byte order, 12 bytes (socket(7), unix(7)).
- `prctl(PR_SET_PDEATHSIG, signal)` asks the kernel to send `signal` to the calling process
  when its parent thread ends (prctl(2)); PR_SET_PDEATHSIG is 1, PR_GET_PDEATHSIG 2.

Only the standard library, and ctypes only when called: the fork server's client imports this
and must start in milliseconds.
"""

from __future__ import annotations

import socket
import struct
from typing import NamedTuple

UCRED = struct.Struct("=iII")  # pid_t pid, uid_t uid, gid_t gid
PR_SET_PDEATHSIG = 1
PR_GET_PDEATHSIG = 2


class PeerCredentials(NamedTuple):
    pid: int
    uid: int
    gid: int


def peer_credentials(sock: socket.socket) -> PeerCredentials:
    """The process, user and group at the other end of a connected Unix socket."""
    raw = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, UCRED.size)
    return PeerCredentials(*UCRED.unpack(raw))


def set_parent_death_signal(signum: int) -> None:
    """Have the kernel send `signum` to this process when its parent ends."""
    _prctl(PR_SET_PDEATHSIG, signum)


def parent_death_signal() -> int:
    """The signal set by `set_parent_death_signal` (0 for none)."""
    import ctypes

    value = ctypes.c_int(0)
    _prctl(PR_GET_PDEATHSIG, ctypes.byref(value))
    return value.value


def _prctl(option: int, arg: object) -> None:
    import ctypes

    if ctypes.CDLL(None, use_errno=True).prctl(option, arg) != 0:
        raise OSError(ctypes.get_errno(), f"prctl({option}) failed")
