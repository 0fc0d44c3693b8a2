"""Opening recording files, and the one error every file problem becomes.

Every reader and writer of the recording format raises RecordingFileError, whose message is one
line naming the file and what is wrong with it: the people reading it are therapists, not HDF5
experts. ``explain`` turns an h5py or OS error into those few words.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
from collections.abc import Iterator
from pathlib import Path

import h5py

# What h5py raises when a file's bytes are damaged: failed checksums, bad heap pointers and
# truncation surface as OSError, RuntimeError or (when looking an object up) KeyError.
HDF5_ERRORS = (OSError, RuntimeError, KeyError)


class RecordingFileError(Exception):
    """A recording file cannot be created, written or read; str() is one line, what and where."""

    def __init__(self, message: str) -> None:
        super().__init__(" ".join(str(message).split()))


def os_error_code(exc: BaseException) -> int | None:
    """The errno behind an h5py error; h5py sometimes has it only inside the message."""
    if isinstance(exc, OSError) and exc.errno:
        return exc.errno
    found = re.search(r"errno = (\d+)", str(exc))
    return int(found.group(1)) if found else None


def explain(exc: BaseException) -> str:
    """A few words on why an h5py call failed: the OS error if there is one, else HDF5's reason
    (the text inside "Unable to open file (...)")."""
    code = os_error_code(exc)
    if code in (errno.ENOSPC, errno.EDQUOT):
        return "disk full"
    if code:
        return os.strerror(code)
    text = " ".join(str(exc).split())
    if "filter returned failure" in text:
        return "its checksum does not verify"
    inner = re.fullmatch(r"[^(]*\((.*)\)", text)
    return inner.group(1) if inner else text


def open_hdf5(path: str | Path) -> h5py.File:
    """Open a recording read-only, including one an interrupted writer left behind.

    A writer killed in SWMR mode leaves the file marked "open for write" and HDF5 refuses a
    normal open; such a file is opened as a SWMR reader, which is how its flushed rows stay
    reachable. HDF5 checks for truncation before that mark, so these files are whole up to their
    last flush. Nothing else gets the SWMR treatment: on damaged metadata HDF5's SWMR reader
    retries with ever longer sleeps and would hang.
    """
    p = Path(path)
    if not p.is_file():
        raise RecordingFileError(f"{p}: no such file")
    try:
        hdf5 = h5py.is_hdf5(p)
    except OSError as exc:
        raise RecordingFileError(f"{p}: cannot read ({explain(exc)})") from None
    if not hdf5:
        raise RecordingFileError(f"{p}: not an HDF5 file")
    try:
        return h5py.File(p, "r")
    except OSError as exc:
        if "already open for write" not in str(exc):
            state = "cannot open" if os_error_code(exc) else "damaged or truncated HDF5 file"
            raise RecordingFileError(f"{p}: {state} ({explain(exc)})") from None
    try:
        return h5py.File(p, "r", swmr=True)
    except OSError as exc:
        raise RecordingFileError(f"{p}: damaged HDF5 file ({explain(exc)})") from None


@contextlib.contextmanager
def reading(path: str | Path, where: str) -> Iterator[None]:
    """Turn an h5py error while reading object ``where`` of ``path`` into a one-line
    RecordingFileError naming both, so damaged bytes never reach a user as a traceback."""
    try:
        yield
    except HDF5_ERRORS as exc:
        raise RecordingFileError(f"{path}: {where}: damaged ({explain(exc)})") from None
