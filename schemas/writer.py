"""Write one recording file from one writer thread: create the layout, go SWMR, append blocks.

Every group, dataset and attribute of schema v1 is created before SWMR mode is switched on,
because SWMR forbids creating objects later (schemas.writer_layout). All state here belongs to
the one thread that calls the writer. Rows are appended in blocks (one resize per dataset
per call); the caller flushes at least every 0.5 s, and what has been flushed survives a killed
process. Unwritten rows read back as fill values (see schemas.events.fill_value), which is how
readers find the end of an interrupted file.

Disk space is checked before every append: when the disk (or the process's file-size limit) is
about to run out, the writer records a "note" event, flushes, and refuses further data with
RecordingFileError; the file can then still be closed and finalised normally. If a write fails
anyway, HDF5 cannot close the file safely (h5py issue #914: a later close or exit segfaults), so
the writer points HDF5's file descriptor at /dev/null, closes it, and leaves the file as it was
at the last flush, for `palpation recover`.

From creation until the file is finalised and closed, the writer holds a lock on it
(schemas.recording_lock), so that readers can tell a file still being recorded from one an
interrupted writer left behind.
"""

from __future__ import annotations

import contextlib
import math
import os
import shutil
from collections.abc import Iterator, Sequence
from dataclasses import asdict
from datetime import datetime
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from schemas.events import (
    CLOCK_PAIR_DTYPE,
    EVENT_DTYPE,
    HOLD_DTYPE,
    LINK_STATS_DTYPE,
    SAMPLE_KEYS,
    TABLES,
    Event,
    Hold,
    LinkStats,
    Summary,
    unwritten,
)
from schemas.hdf5 import RecordingFileError, explain
from schemas.recording_lock import hold, release
from schemas.validate import event_kinds
from schemas.writer_layout import SAMPLE_CHUNK_BYTES, create_layout, layout_attrs, summary_attrs

try:
    import resource
except ImportError:  # Windows has no RLIMIT_FSIZE
    resource = None

LIBVER = ("v110", "v110")  # SWMR needs v110; the upper bound keeps files readable by HDF5 1.10+
# Chunk cache per dataset: an append-only writer needs only the open, partial chunk. HDF5 2.0's
# default (8 MiB a dataset) fills with written chunks: +56 MB over the first 1 M samples.
WRITER_CHUNK_CACHE_BYTES = 2 * SAMPLE_CHUNK_BYTES
HEADROOM_BYTES = 640 * 1024  # one flush of new chunks (7 x 64 KiB, tables) + finalising


class RecordingWriter:
    """Creates a recording file and appends to it; not thread-safe (one writer thread)."""

    def __init__(
        self,
        path: str | Path,
        *,
        session: dict[str, Any],
        device: dict[str, Any],
        calibration: dict[str, Any],
        session_start: datetime | None = None,
        software_version: str,
    ) -> None:
        """Create `path` (never overwriting) with the full layout, then switch to SWMR.

        The metadata dicts hold the attributes of /session, /device and /calibration; missing
        keys get their "unknown" value ("" or NaN or 0), unknown keys raise ValueError.
        A naive `session_start` is taken as local time; None means now.
        """
        self.path = Path(path)
        start = (session_start or datetime.now()).astimezone()
        self.session_start = datetime.fromisoformat(start.isoformat(timespec="milliseconds"))
        attrs = layout_attrs(self.session_start, software_version, session, device, calibration)
        self._stopped: str | None = None  # why appends are refused, once they are
        self._pending = 0  # bytes appended since the last flush
        self._samples = 0
        self._first_time = math.nan
        self._last_time = math.nan
        self._last_host_time = 0.0
        self._gap_events = 0
        self._holds = 0
        self._last_stats: LinkStats | None = None
        f, lock, datasets = _create_file(self.path, attrs)
        self._f: h5py.File | None = f
        self._lock: int | None = lock  # schemas.recording_lock: held until finalised
        self._ds: dict[str, h5py.Dataset] = datasets

    # ---- appending ---------------------------------------------------------------------

    def append_samples(
        self,
        *,
        data: np.ndarray,
        timestamps: np.ndarray,
        raw_counts: np.ndarray,
        device_tick_us: np.ndarray,
        sequence: np.ndarray,
        host_time: np.ndarray,
        flags: np.ndarray,
    ) -> None:
        """Append one block of samples: seven 1-D arrays of the same length (≥100 rows is best).

        Arrays are converted to the file's dtypes: integer columns take any integers that fit
        (else ValueError), float columns take numbers. Rows holding a fill value in a column
        other than `data` (a NaN time, INT32_MIN counts, flags 255...) raise ValueError.
        """
        given = {
            "data": data,
            "timestamps": timestamps,
            "raw_counts": raw_counts,
            "device_tick_us": device_tick_us,
            "sequence": sequence,
            "host_time": host_time,
            "flags": flags,
        }
        columns = _sample_columns(given, {name: self._sample_ds(name).dtype for name in given})
        rows = len(columns["sequence"])
        if rows == 0:
            return
        with self._writing(sum(c.nbytes for c in columns.values())):
            for name, values in columns.items():
                _append(self._sample_ds(name), values)
        if self._samples == 0:
            self._first_time = float(columns["timestamps"][0])
        self._samples += rows
        self._last_time = float(columns["timestamps"][-1])
        self._last_host_time = float(columns["host_time"][-1])

    def append_events(self, events: list[Event]) -> None:
        """Append events; their kinds must be among those RECORDING.md lists."""
        known = event_kinds()
        unknown = sorted({e.kind for e in events} - set(known))
        if unknown:
            raise ValueError(f"unknown event kind(s) {unknown}; known: {', '.join(known)}")
        rows = _table_rows("/events", [e.to_row() for e in events], EVENT_DTYPE)
        if rows.size:
            with self._writing(rows.nbytes):
                _append(self._ds["/events"], rows)
            self._gap_events += int(np.count_nonzero(rows["kind"] == b"gap"))

    def append_clock_pairs(self, pairs: Sequence[tuple[float, int]]) -> None:
        """Record (host session time, device tick in µs) pairs: the device clock read that
        tick at that host time. One append for many pairs, as for samples: each append
        rewrites and re-checksums the open chunk."""
        if not pairs:
            return
        rows = _table_rows("/acquisition/clock_pairs", list(pairs), CLOCK_PAIR_DTYPE)
        with self._writing(rows.nbytes):
            _append(self._ds["/acquisition/clock_pairs"], rows)
        self._last_host_time = max(self._last_host_time, float(rows["host_time"].max()))

    def append_link_stats(self, stats: LinkStats) -> None:
        """Append one row of cumulative link counters; the last row feeds the summary."""
        rows = _table_rows("/acquisition/link_stats", [stats.to_row()], LINK_STATS_DTYPE)
        with self._writing(rows.nbytes):
            _append(self._ds["/acquisition/link_stats"], rows)
        self._last_stats = stats
        self._last_host_time = max(self._last_host_time, float(stats.host_time))

    def append_holds(self, holds: list[Hold]) -> None:
        """Append analysed holds; the summary counts the complete ones."""
        rows = _table_rows("/holds", [h.to_row() for h in holds], HOLD_DTYPE)
        if rows.size:
            with self._writing(rows.nbytes):
                _append(self._ds["/holds"], rows)
            self._holds += int(np.count_nonzero(rows["complete"]))

    def flush(self) -> None:
        """Make everything appended so far durable and visible to SWMR readers."""
        if self._f is None:
            self._refuse()
        with self._io():
            self._f.flush()
        self._pending = 0

    # ---- closing -----------------------------------------------------------------------

    def close(self, summary: dict[str, Any] | None = None) -> Summary | None:
        """Flush, leave SWMR mode, write /summary and set finalised=1; return that summary.

        The summary is computed from what was written (``summary()``); keys given in `summary`
        (names of schemas.events.Summary fields) replace the computed values. Closing twice
        does nothing (and returns None); after a failed write the file is left unfinalised
        (run recover on it).
        """
        if self._f is None:
            return None
        values = asdict(self.summary())
        unknown = sorted(set(summary or {}) - set(values))
        if unknown:
            raise ValueError(f"unknown summary field(s) {unknown}")
        values.update(summary or {})
        typed = summary_attrs(values)
        with self._io():
            self._f.flush()
            self._f.close()
        try:
            self._f = h5py.File(self.path, "r+", libver=LIBVER)
        except OSError as exc:
            self._f, self._ds = None, {}
            self._release_lock()
            raise RecordingFileError(f"cannot finalise {self.path}: {explain(exc)}") from None
        with self._io():
            self._f["/summary"].attrs.update(typed)
            self._f.attrs["finalised"] = np.int8(1)
            self._f.close()
        self._f, self._ds = None, {}
        self._release_lock()
        return Summary(**values)

    # ---- internals ---------------------------------------------------------------------

    def _sample_ds(self, name: str) -> h5py.Dataset:
        if self._f is None:
            self._refuse()
        return self._ds[f"/acquisition/force/{name}"]

    @contextlib.contextmanager
    def _writing(self, nbytes: int) -> Iterator[None]:
        """Guard an append of `nbytes`: refuse when stopped or when the disk is nearly full."""
        if self._stopped or self._f is None:
            self._refuse()
        if _room(self.path, self._f) < 2 * (self._pending + nbytes) + HEADROOM_BYTES:
            self._stop_disk_full()
        with self._io():
            yield
        self._pending += nbytes

    @contextlib.contextmanager
    def _io(self) -> Iterator[None]:
        """Turn an h5py failure into RecordingFileError after detaching the file."""
        try:
            yield
        except (OSError, RuntimeError) as exc:
            self._stopped = f"cannot write {self.path}: {explain(exc)}"
            self._detach()
            raise RecordingFileError(self._stopped) from exc

    def _stop_disk_full(self) -> None:
        """Record why the recording ends, flush, and refuse further data."""
        note = Event(self._last_host_time, "note", text="recording stopped: disk full")
        with self._io():
            _append(self._ds["/events"], np.array([note.to_row()], dtype=EVENT_DTYPE))
            self._f.flush()
        self._pending = 0
        self._stopped = f"cannot write {self.path}: disk full"
        self._refuse()

    def _refuse(self) -> None:
        raise RecordingFileError(self._stopped or f"{self.path}: recording already closed")

    def _detach(self) -> None:
        """Close a file HDF5 failed to write without letting it write (or crash) again."""
        if self._f is None:
            return
        _abandon(self._f)
        self._f, self._ds = None, {}
        self._release_lock()  # no longer written: it reads as interrupted, for recover

    def _release_lock(self) -> None:
        """From now on the file is not being recorded (schemas.recording_lock)."""
        release(self._lock)
        self._lock = None

    def summary(self) -> Summary:
        """The totals of what was written so far: what ``close`` stores in /summary, and
        what a reader computes from the file (``schemas.reader.Recording.totals``)."""
        return Summary.compute(
            samples=self._samples,
            first_time=self._first_time,
            last_time=self._last_time,
            gap_events=self._gap_events,
            last_stats=self._last_stats,
            holds=self._holds,
            session_end=datetime.now(self.session_start.tzinfo).isoformat(
                timespec="milliseconds"
            ),
        )


def _create_file(path: Path, attrs: dict[str, dict[str, Any]]
                 ) -> tuple[h5py.File, int | None, dict[str, h5py.Dataset]]:
    """Create `path` (never overwriting) with the full layout and `attrs`, take the writer's
    lock on it and switch to SWMR; return the file, the lock and the datasets by path. On
    failure nothing is left behind and RecordingFileError says why."""
    taken = f"{path} exists; recordings are never overwritten"
    if path.exists():
        raise RecordingFileError(taken)
    if not path.parent.is_dir():
        why = "is not a folder" if path.parent.exists() else "does not exist"
        raise RecordingFileError(f"cannot create {path}: {path.parent} {why}")
    if shutil.disk_usage(path.parent).free < HEADROOM_BYTES:
        raise RecordingFileError(f"cannot create {path}: disk full")
    try:
        f = h5py.File(path, "x", libver=LIBVER, rdcc_nbytes=WRITER_CHUNK_CACHE_BYTES)
    except FileExistsError:
        raise RecordingFileError(taken) from None
    except OSError as exc:
        raise RecordingFileError(f"cannot create {path}: {explain(exc)}") from None
    lock = hold(path)
    try:
        datasets = create_layout(f, attrs)
        f.swmr_mode = True
        f.flush()
    except (OSError, RuntimeError) as exc:
        _abandon(f)
        release(lock)
        path.unlink(missing_ok=True)
        raise RecordingFileError(f"cannot create {path}: {explain(exc)}") from None
    return f, lock, datasets


def _abandon(f: h5py.File) -> None:
    """Close a file HDF5 failed to write without letting it write (or crash) again: its
    descriptor is pointed at /dev/null first (h5py issue #914)."""
    with contextlib.suppress(OSError, RuntimeError, ValueError):
        null = os.open(os.devnull, os.O_RDWR)
        os.dup2(null, f.id.get_vfd_handle())
        os.close(null)
    with contextlib.suppress(OSError, RuntimeError):
        f.close()


def _room(path: Path, f: h5py.File) -> int:
    """Bytes the file `f` at `path` may still grow by: free disk space, and RLIMIT_FSIZE if
    set."""
    room = shutil.disk_usage(path.parent).free
    if resource is not None:
        limit = resource.getrlimit(resource.RLIMIT_FSIZE)[0]
        if limit != resource.RLIM_INFINITY:
            room = min(room, limit - f.id.get_filesize())
    return room


def _sample_columns(given: dict[str, Any], dtypes: dict[str, np.dtype]) -> dict[str, np.ndarray]:
    """The seven sample arrays as the file's dtypes (``_column``); arrays of different lengths,
    or rows holding a fill value in a column other than `data`, raise ValueError."""
    columns = {name: _column(name, values, dtypes[name]) for name, values in given.items()}
    lengths = {len(c) for c in columns.values()}
    if len(lengths) != 1:
        raise ValueError(f"sample arrays differ in length: {sorted(lengths)}")
    for name in SAMPLE_KEYS:
        bad = np.flatnonzero(unwritten(columns[name]))
        if bad.size:
            raise ValueError(
                f"{name}[{bad[0]}] = {columns[name][bad[0]]} is reserved for unwritten rows"
            )
    return columns


def _table_rows(where: str, rows: list[tuple], dtype: np.dtype) -> np.ndarray:
    """Rows as a structured array; a non-finite key field (time) raises ValueError."""
    array = np.array(rows, dtype=dtype)
    key = TABLES[where][1]
    if np.any(unwritten(array[key])):
        raise ValueError(f"{where}: {key} must be a finite number")
    return array


def _append(ds: h5py.Dataset, rows: np.ndarray) -> None:
    start = ds.shape[0]
    ds.resize((start + len(rows),))
    ds[start:] = rows


def _column(name: str, values: Any, dtype: np.dtype) -> np.ndarray:
    """`values` as a 1-D array of `dtype`, refusing conversions that would change values."""
    array = np.asarray(values)
    if array.ndim != 1:
        raise ValueError(f"{name}: expected a 1-D array, got shape {array.shape}")
    if array.size == 0:
        return array.astype(dtype)
    if dtype.kind in "iu":
        if array.dtype.kind not in "iub":
            raise TypeError(f"{name}: expected integers, got {array.dtype}")
        info = np.iinfo(dtype)
        if array.min() < info.min or array.max() > info.max:
            raise ValueError(f"{name}: values outside the range of {dtype}")
        return array.astype(dtype, copy=False)
    return array.astype(dtype, casting="same_kind", copy=False)
