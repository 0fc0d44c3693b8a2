"""Turn an interrupted recording into a clean, finalised one without ever losing the original.

A writer that was killed (or stopped by a failed write) leaves a file that HDF5 only opens as a
SWMR reader, with no /summary. `recover` reads the rows that reached the disk, writes them to a
new file with the normal writer (so the result is exactly what a clean session would have
produced, plus a "note" event and root attribute recovered=1, and a note for each chunk the kill
left half written, see schemas.salvage), then swaps it into place and keeps
the original next to it as NAME.orig.h5. A recording still in progress is refused.
"""

from __future__ import annotations

import contextlib
import os
from datetime import timedelta
from pathlib import Path

import h5py
import numpy as np

from schemas.events import Event, Hold, LinkStats
from schemas.hdf5 import RecordingFileError, explain
from schemas.reader import Recording, open_recording, still_recording
from schemas.writer import LIBVER, RecordingWriter

NOTE = "recovered by palpation recover"


def recover(path: str | Path, out: str | Path | None = None) -> Path:
    """Write a finalised copy of the interrupted recording `path`; return where it is.

    Without `out` the copy replaces `path` and the original becomes NAME.orig.h5 (refused if
    that exists); with `out` the copy goes there and `path` is left alone. Finalised files are
    refused ("nothing to recover").
    """
    source = Path(path)
    rec = open_recording(source)
    if rec.finalised:
        raise RecordingFileError(f"{source}: recording is finalised; nothing to recover")
    if still_recording(source):
        raise RecordingFileError(f"{source}: still being recorded; nothing to recover")
    if out is None:
        target, backup = source, source.with_suffix(".orig.h5")
        clash = backup
    else:
        target, backup = Path(out), None
        clash = target
    if clash.exists():
        raise RecordingFileError(f"{clash} exists; move it away first")
    temporary = target.with_name(f".{target.name}.recovering")
    temporary.unlink(missing_ok=True)
    try:
        _write_copy(rec, temporary)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    if backup is not None:
        os.replace(source, backup)
    os.replace(temporary, target)
    return target


def _write_copy(rec: Recording, path: Path) -> None:
    """Write `rec` into a new file at `path` and finalise it as recovered."""
    writer = RecordingWriter(
        path,
        session=rec.session,
        device=rec.device,
        calibration=rec.calibration,
        session_start=rec.session_start,
        software_version=rec.software_version,
    )
    try:
        writer.append_samples(
            data=rec.force,
            timestamps=rec.timestamps,
            raw_counts=rec.raw_counts,
            device_tick_us=rec.device_tick_us,
            sequence=rec.sequence,
            host_time=rec.host_time,
            flags=rec.flags,
        )
        end = rec.end_time
        salvaged = [Event(end, "note", text=text) for text in rec.salvaged]
        writer.append_events([*rec.events, *salvaged, Event(end, "note", text=NOTE)])
        writer.append_clock_pairs([(float(p["host_time"]), int(p["device_tick_us"]))
                                   for p in rec.clock_pairs])
        for row in rec.link_stats:
            writer.append_link_stats(LinkStats(**{n: row[n].item() for n in row.dtype.names}))
        writer.append_holds([Hold.from_row(row) for row in rec.holds])
        session_end = rec.session_start + timedelta(seconds=end)
        writer.close({"session_end": session_end.isoformat(timespec="milliseconds")})
    finally:
        with contextlib.suppress(RecordingFileError):
            writer.close()  # no-op after a successful close; releases the file after an error
    try:
        with h5py.File(path, "r+", libver=LIBVER) as f:
            f.attrs["recovered"] = np.int8(1)
    except OSError as exc:
        raise RecordingFileError(f"cannot write {path}: {explain(exc)}") from None
