"""The lock a recording's writer holds while the file is open for writing.

Why: a file that is not finalised is either still being recorded or was left by an interrupted
writer, and the two need opposite advice (wait, or run ``palpation recover``). HDF5 cannot
tell: a SWMR writer releases HDF5's own file lock once it goes SWMR, and a killed writer leaves
the same "open for write" mark as a live one; an mtime would be a guess. So the writer takes a
write lock on the whole file (an open-file-description lock, ``F_OFD_SETLK``) from creation
until it has finalised and closed the file, and anyone may ask whether such a lock is held.

The lock dies with the writer process, so a killed recording is never "still being recorded".
It is advisory: it neither blocks readers nor interferes with HDF5's own ``flock`` locks (a
different kind of lock on Linux). OFD locks, unlike classic POSIX locks, are not dropped when
the process closes another descriptor of the file (as HDF5 does when finalising) and conflict
within one process too. Where they do not exist (not Linux) or the filesystem refuses them,
no lock is taken and a file reads as not held: the old advice (it may be interrupted).
"""

from __future__ import annotations

import contextlib
import os
import struct
import sys
from pathlib import Path

try:
    import fcntl
except ImportError:  # Windows
    fcntl = None

# struct flock on 64-bit Linux: l_type, l_whence, l_start, l_len, l_pid (+ padding)
_FLOCK = "hhqqi4x"
SUPPORTED = (fcntl is not None and sys.platform == "linux" and hasattr(fcntl, "F_OFD_SETLK")
             and struct.calcsize("l") == 8)


def hold(path: str | Path) -> int | None:
    """Take the writer's lock on ``path``; return the descriptor that holds it (keep it open
    while writing, ``release`` it after finalising), or None where no lock can be taken."""
    if not SUPPORTED:
        return None
    try:
        fd = os.open(path, os.O_RDWR)
    except OSError:
        return None
    try:
        fcntl.fcntl(fd, fcntl.F_OFD_SETLK, struct.pack(_FLOCK, fcntl.F_WRLCK, os.SEEK_SET, 0, 0, 0))
    except OSError:  # a filesystem without such locks, or a writer already there
        os.close(fd)
        return None
    return fd


def release(fd: int | None) -> None:
    """Give up the lock ``hold`` returned (closing its descriptor releases it)."""
    if fd is not None:
        with contextlib.suppress(OSError):
            os.close(fd)


def held(path: str | Path) -> bool:
    """True while a writer, in this process or another, holds ``path`` open for writing."""
    if not SUPPORTED:
        return False
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return False
    try:
        probe = struct.pack(_FLOCK, fcntl.F_RDLCK, os.SEEK_SET, 0, 0, 0)
        answer = fcntl.fcntl(fd, fcntl.F_OFD_GETLK, probe)
    except OSError:
        return False
    finally:
        os.close(fd)
    return struct.unpack(_FLOCK, answer)[0] != fcntl.F_UNLCK
