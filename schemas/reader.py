"""Read a recording into memory for analysis: metadata, per-sample arrays, events, tables.

Works on finalised files, on files a writer is still appending to, and on files an interrupted
writer left behind (killed, power cut, disk full): those are opened as SWMR readers, and only
the rows that really reached the disk are returned (see schemas.events.written_length), also
from a last chunk the kill left half rewritten (schemas.salvage; ``Recording.salvaged`` says so).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from schemas.events import (
    HOLD_DTYPE,
    SAMPLE_KEYS,
    TABLES,
    Event,
    LinkStats,
    Summary,
    written_length,
)
from schemas.hdf5 import open_hdf5, reading
from schemas.recording_lock import held
from schemas.salvage import read_interrupted
from schemas.validate import check_identity, check_layout, is_finalised, per_sample_paths

# /session attributes added after 1.0.0 that every reader may count on: files before schema
# 1.6.0, and files recorded without --subject / --session, read as "" (unknown)
SESSION_DEFAULTS = {"subject": "", "session_label": ""}


@dataclass
class Recording:
    """Everything in one recording file. Times are seconds from `session_start`."""

    path: Path
    schema_version: str
    session_start: datetime
    software_version: str
    finalised: bool
    recovered: bool
    session: dict[str, Any]
    device: dict[str, Any]
    calibration: dict[str, Any]
    summary: dict[str, Any] | None  # None until the file is finalised
    force: np.ndarray  # N
    timestamps: np.ndarray  # device clock mapped to session seconds: use this as the time axis
    raw_counts: np.ndarray
    device_tick_us: np.ndarray
    sequence: np.ndarray
    host_time: np.ndarray  # when the host read the sample (bursty; for clock fitting)
    flags: np.ndarray
    events: list[Event]
    holds: np.ndarray  # structured, schemas.events.HOLD_DTYPE (older files: complete = 1)
    clock_pairs: np.ndarray  # structured, CLOCK_PAIR_DTYPE
    link_stats: np.ndarray  # structured, LINK_STATS_DTYPE
    salvaged: tuple[str, ...] = ()  # chunks an interrupted writer left torn (schemas.salvage)

    @property
    def duration(self) -> float:
        """Seconds from the first to the last sample timestamp."""
        return self.totals().duration_s

    @property
    def effective_rate(self) -> float:
        """Samples per second over `duration` (NaN with fewer than two samples)."""
        return self.totals().effective_rate_hz

    @property
    def end_time(self) -> float:
        """The latest time anything in the file refers to, in session seconds."""
        times = [
            self.timestamps[-1:],
            self.host_time[-1:],
            self.clock_pairs["host_time"][-1:],
            self.link_stats["host_time"][-1:],
            np.array([e.time for e in self.events[-1:]], dtype=np.float64),
        ]
        latest = np.concatenate(times)
        return float(np.nanmax(latest)) if latest.size else 0.0

    def totals(self) -> Summary:
        """The summary computed from the data (what a finalised file stores in /summary)."""
        if self.summary and "session_end" in self.summary:
            end = str(self.summary["session_end"])
        else:
            end = (self.session_start + timedelta(seconds=self.end_time)).isoformat(
                timespec="milliseconds"
            )
        stats = None
        if len(self.link_stats):
            last = self.link_stats[-1]
            stats = LinkStats(**{name: last[name].item() for name in last.dtype.names})
        return Summary.compute(
            samples=len(self.timestamps),
            first_time=float(self.timestamps[0]) if len(self.timestamps) else math.nan,
            last_time=float(self.timestamps[-1]) if len(self.timestamps) else math.nan,
            gap_events=sum(1 for e in self.events if e.kind == "gap"),
            last_stats=stats,
            holds=int(np.count_nonzero(self.holds["complete"] == 1)),
            session_end=end,
        )


def open_recording(path: str | Path) -> Recording:
    """Load a recording; RecordingFileError (one line, naming the file) if it cannot be read.

    Foreign HDF5 files, non-HDF5 files, damaged files and files of a newer major schema version
    are refused. Interrupted files load with finalised=False and only their written rows.
    """
    p = Path(path)
    with open_hdf5(p) as f:
        version = check_identity(f, p)
        with reading(p, "/"):
            finalised = is_finalised(f)
        check_layout(f, p, finalised=finalised, version=version)
        return _load(f, p, version, finalised)


def still_recording(path: str | Path) -> bool:
    """True while a recorder is writing ``path`` (from its creation until it is finalised and
    closed): a file that is not finalised and not held was left by an interrupted writer, and
    ``palpation recover`` makes it whole. The writer's lock says so (schemas.recording_lock),
    not a guess from the file's age; it ends with the writer's process."""
    return held(path)


def summarize(rec: Recording) -> dict[str, Any]:
    """The figures `palpation info` shows, computed from the data. An unfinished file has no
    ``session_end`` (the session has not ended, or its end is unknown) and says whether it is
    ``still_recording``."""
    totals = asdict(rec.totals())
    if not rec.finalised:
        del totals["session_end"]
    return {**totals, "schema_version": rec.schema_version, "finalised": rec.finalised,
            "still_recording": not rec.finalised and still_recording(rec.path)}


def _load(f: h5py.File, path: Path, version: str, finalised: bool) -> Recording:
    salvaged: list[str] = []
    read = _read if finalised else partial(_read_interrupted, notes=salvaged)
    columns = {where.rsplit("/", 1)[1]: read(f, path, where) for where in per_sample_paths()}
    rows = min(len(c) for c in columns.values())
    if not finalised:
        rows = min(rows, written_length([columns[name] for name in SAMPLE_KEYS]))
    samples = {name: values[:rows] for name, values in columns.items()}
    tables = {}
    for where, (_, key) in TABLES.items():
        table = read(f, path, where)
        tables[where] = table if finalised else table[: written_length([table[key]])]
    groups = {where: _attrs(f, path, where) for where in
              ("/", "/session", "/device", "/calibration", "/summary")}
    return Recording(
        path=path,
        schema_version=version,
        session_start=datetime.fromisoformat(groups["/"]["session_start"]),
        software_version=groups["/"]["software_version"],
        finalised=finalised,
        recovered=int(groups["/"].get("recovered", 0)) == 1,
        session={**SESSION_DEFAULTS, **groups["/session"]},
        device=groups["/device"],
        calibration=groups["/calibration"],
        summary=groups["/summary"] if finalised else None,
        force=samples["data"],
        timestamps=samples["timestamps"],
        raw_counts=samples["raw_counts"],
        device_tick_us=samples["device_tick_us"],
        sequence=samples["sequence"],
        host_time=samples["host_time"],
        flags=samples["flags"],
        events=[Event.from_row(row) for row in tables["/events"]],
        holds=_holds_with_complete(tables["/holds"]),
        clock_pairs=tables["/acquisition/clock_pairs"],
        link_stats=tables["/acquisition/link_stats"],
        salvaged=tuple(salvaged),
    )


def _holds_with_complete(rows: np.ndarray) -> np.ndarray:
    """/holds rows as HOLD_DTYPE. A file before schema 1.3.0 has no ``complete`` column: its
    rows are all whole (the recorder then wrote no row for a hold cut off at the end). One
    before 1.4.0 has no ``feedback`` columns: no schedule (""), live feedback = not blind."""
    if rows.dtype == HOLD_DTYPE:
        return rows
    out = np.zeros(len(rows), HOLD_DTYPE)
    for name in rows.dtype.names:
        out[name] = rows[name]
    if "complete" not in rows.dtype.names:
        out["complete"] = 1
    if "feedback_live" not in rows.dtype.names:
        out["feedback_live"] = 1 - out["blind"]
    return out


def _attr_text(value: Any) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def _read(f: h5py.File, path: Path, where: str) -> np.ndarray:
    with reading(path, where):
        return f[where][()]


def _read_interrupted(f: h5py.File, path: Path, where: str, notes: list[str]) -> np.ndarray:
    with reading(path, where):
        values, note = read_interrupted(f[where])
    if note:
        notes.append(note)
    return values


def _attrs(f: h5py.File, path: Path, where: str) -> dict[str, Any]:
    """Attributes of one object as plain Python values (arrays stay numpy arrays)."""
    with reading(path, where):
        attrs = dict(f[where].attrs.items())
    out: dict[str, Any] = {}
    for name, value in attrs.items():
        if isinstance(value, str | bytes):
            out[name] = _attr_text(value)
        elif isinstance(value, np.ndarray) and value.ndim:
            out[name] = value
        else:
            out[name] = np.asarray(value).item()
    return out
