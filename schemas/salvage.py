"""The rows of an interrupted recording whose last chunk a killed writer left half rewritten.

Every flush rewrites a dataset's last, partly filled chunk with its earlier rows (the same bytes
again) plus the new ones. A writer killed in the middle of that write (Linux stops a write at a
page boundary when SIGKILL arrives) leaves the chunk part new, part old: every row inside the
dataset's extent is intact, since both versions hold the same bytes there, but the Fletcher-32
checksum covers the whole chunk and no longer verifies, so HDF5 refuses the whole dataset and
the rows the writer had flushed would be lost.

For an interrupted file only, that one chunk (the one holding the extent's last row) is read
raw, without its checksum, and its rows inside the extent are kept; a note says so. Any other
failing chunk, and any failing chunk of a finalised file, is damage and stays an error.
"""

from __future__ import annotations

import h5py
import numpy as np

__all__ = ["FLETCHER32_BYTES", "read_interrupted"]

FLETCHER32_BYTES = 4  # the checksum HDF5 appends to each chunk


def read_interrupted(dset: h5py.Dataset) -> tuple[np.ndarray, str | None]:
    """All rows of a 1-D dataset of an interrupted file, and a note if its last chunk had to
    be read past a failed checksum. Raises what h5py raises for any other damage."""
    try:
        return dset[()], None
    except OSError:
        n = dset.shape[0]
        if n == 0 or dset.chunks is None or not _only_checksummed(dset):
            raise
    rows = dset.chunks[0]
    last = (n - 1) // rows * rows
    head = dset[:last]  # still raises if an earlier chunk is damaged
    _, raw = dset.id.read_direct_chunk((last,))
    body = np.frombuffer(raw[: len(raw) - FLETCHER32_BYTES], dtype=dset.dtype)
    tail = body[: n - last]
    if len(tail) < n - last:
        raise OSError(f"{dset.name}: last chunk is short ({len(raw)} bytes)")
    note = (f"{dset.name}: rows {last}-{n - 1} read past a checksum the interrupted writer "
            f"left unfinished")
    return np.concatenate([head, tail]), note


def _only_checksummed(dset: h5py.Dataset) -> bool:
    """Fletcher-32 is the dataset's only filter, so a raw chunk is its rows plus 4 bytes."""
    plist = dset.id.get_create_plist()
    filters = [plist.get_filter(i)[0] for i in range(plist.get_nfilters())]
    return filters == [h5py.h5z.FILTER_FLETCHER32]
