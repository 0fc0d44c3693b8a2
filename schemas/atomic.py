"""Replace a file in one step: readers see the old content or the new, never half of it.

The one atomic write for the small files we produce (calibration records, the HTML report).
The temporary file is created with mode 0666 and the kernel applies the process's umask, so
the result has the permissions any other new file would get (0644 under umask 022, 0664 under
002) rather than the 0600 of ``tempfile.mkstemp``: a report written into a shared class folder
is readable by the class.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from pathlib import Path


def write_text_atomic(path: str | Path, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` through a temporary file in the same folder, synced
    to disk, then renamed over ``path``; OSError if it cannot be written (nothing is left
    behind then)."""
    target = Path(path)
    folder = target.parent
    tmp = folder / f".{target.name}.{secrets.token_hex(4)}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(text)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    _fsync_dir(folder)
    return target


def _fsync_dir(folder: Path) -> None:
    """Make the rename itself durable (POSIX; elsewhere a no-op)."""
    if os.name != "posix":
        return
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
