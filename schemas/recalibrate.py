"""Re-derive a finalised recording's force from its raw counts with another calibration.

In place (h5py "r+"), block by block so that 10^8 samples need no more than a few tens of MB of
memory. Only /acquisition/force/data, the /calibration attributes, the `resolution` attribute of
the force data and one appended /events row change; raw_counts and every other per-sample
dataset are read, never written.

The tare rule (schemas.tare; see schemas/CALIBRATION.md, "Tare"): with `tare` events in the
file, each sample gets force = f(counts) - f(zero), zero being the counts of the latest tare at
or before the sample (a tare tied to a sample applies from that sample on, one with
sample_index -1 from the first sample whose host_time is at or after the event's time, which is
when the recorder switched to it); samples before the first tare use the first tare. Without
tare events the calibration is used as it is: force = f(counts).

Three steps, each closing the file: (1) /calibration `source` becomes "recalibrating" and
`calibration_id` the new id; (2) the force data is rewritten with the file in SWMR mode; (3) the
other /calibration attributes, `resolution` and the note event are written. A process killed in
step 2, the long one, leaves a file that readers still open (as after a killed recorder), whose
force is partly old, partly new, and whose `source` says "recalibrating". HDF5 then refuses to
open it for writing until its "open for write" mark is cleared (`h5clear -s FILE`, Debian's
hdf5-tools); after that, run recalibrate again: raw counts are untouched, so it is repeatable.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from schemas.calibration import Calibration, CalibrationError
from schemas.events import EVENT_DTYPE, Event
from schemas.hdf5 import RecordingFileError, explain, open_hdf5
from schemas.tare import Tare, tare_starts, tared_force
from schemas.validate import validate
from schemas.writer import LIBVER
from schemas.writer_layout import MAX_ATTR_BYTES

BLOCK_ROWS = 1 << 20  # 8 MiB of float64 per block
NOTE_PREFIX = "recalibrated with "
IN_PROGRESS = "recalibrating"  # /calibration source while the force data is being rewritten

FORCE = "/acquisition/force/data"
RAW = "/acquisition/force/raw_counts"
HOST = "/acquisition/force/host_time"
TIMES = "/acquisition/force/timestamps"


def recalibrate(
    path: str | Path,
    cal: Calibration,
    *,
    allow_other_device: bool = False,
    block_rows: int = BLOCK_ROWS,
) -> dict[str, Any]:
    """Rewrite the force of the finalised recording `path` with `cal`; return a summary.

    Refused, before anything is written: an unfinalised or invalid file (RecordingFileError,
    one line; an interrupted file points to `palpation recover`), a calibration that does not
    check out, one made for another device (unless `allow_other_device`), or one whose record is
    too big for the /calibration json attribute (CalibrationError).

    The summary: path, samples, calibration_id, old_calibration_id, old_source,
    old_coefficients, new_coefficients (as stored: tared to the first tare), tare_events,
    max_abs_delta_n (largest |new - old| force, NaN if no sample had both), above_range (samples
    above the calibrated loads: extrapolated), resolution_n, holds_not_updated (rows of /holds,
    whose force figures still come from the old calibration).
    """
    p = Path(path)
    if block_rows < 1:
        raise ValueError("block_rows must be >= 1")
    cal.check(f"calibration {cal.id}")
    record = cal.to_json(indent=None)
    size = len(record.encode("utf-8"))
    if size > MAX_ATTR_BYTES:
        raise CalibrationError(
            f"calibration {cal.id}: record is {size} bytes, over the {MAX_ATTR_BYTES} a "
            "recording's /calibration json attribute may hold (use fewer points)"
        )
    validate(p)
    plan = _plan(p, cal, allow_other_device)
    with _open_rw(p) as f:
        f["/calibration"].attrs.update({"source": IN_PROGRESS, "calibration_id": cal.id})
    with _open_rw(p, swmr=True) as f:
        result = _rewrite_force(f, cal, plan, block_rows)
    with _open_rw(p) as f:
        new = Tare(plan["zeros"][0] if len(plan["zeros"]) else None, cal).attrs()
        f["/calibration"].attrs.update(new)
        f[FORCE].attrs["resolution"] = np.float64(cal.resolution_n())
        events = f["/events"]
        events.resize((len(events) + 1,))
        note = Event(plan["end_time"], "note", text=NOTE_PREFIX + cal.id)
        events[-1] = np.array(note.to_row(), dtype=EVENT_DTYPE)
    return {
        "path": str(p),
        "samples": plan["samples"],
        "calibration_id": cal.id,
        "old_calibration_id": plan["old_calibration_id"],
        "old_source": plan["old_source"],
        "old_coefficients": plan["old_coefficients"],
        "new_coefficients": [float(c) for c in new["coefficients"]],
        "tare_events": len(plan["starts"]),
        **result,
        "resolution_n": cal.resolution_n(),
        "holds_not_updated": plan["holds"],
    }


@contextlib.contextmanager
def _open_rw(path: Path, swmr: bool = False) -> Iterator[h5py.File]:
    """The recording opened for writing; h5py failures become one-line RecordingFileError.

    With `swmr` the file is switched to SWMR mode (only dataset values change), so that a
    process killed meanwhile leaves a file readers still open, as after a killed recorder.
    """
    try:
        with h5py.File(path, "r+", libver=LIBVER) as f:
            if swmr:
                f.swmr_mode = True
            yield f
    except (OSError, RuntimeError) as exc:
        raise RecordingFileError(f"cannot write {path}: {explain(exc)}") from None


def _plan(path: Path, cal: Calibration, allow_other_device: bool) -> dict[str, Any]:
    """Everything read before the file is opened for writing (read-only, so a refusal here
    leaves the file untouched)."""
    with open_hdf5(path) as f:
        recorded = _text(f["/device"].attrs.get("device_id", ""))
        wanted = cal.device.get("device_id", "")
        if recorded and wanted and recorded != wanted and not allow_other_device:
            raise CalibrationError(
                f"{path}: recorded with device {recorded!r} but calibration {cal.id} is for "
                f"{wanted!r}; refused (allow_other_device applies it anyway)"
            )
        attrs = f["/calibration"].attrs
        events = f["/events"][()]
        starts, zeros = tare_starts(events, f[HOST])
        ends = [events["time"].max() if len(events) else math.nan]
        for where in (TIMES, HOST):
            if len(f[where]):
                ends.append(f[where][-1])
        return {
            "samples": len(f[FORCE]),
            "old_source": _text(attrs.get("source", "")),
            "old_calibration_id": _text(attrs.get("calibration_id", "")),
            "old_coefficients": [float(c) for c in np.ravel(attrs.get("coefficients", []))],
            "starts": starts,
            "zeros": zeros,
            "end_time": float(np.nanmax(ends)) if np.isfinite(ends).any() else 0.0,
            "holds": len(f["/holds"]),
        }


def _rewrite_force(
    f: h5py.File, cal: Calibration, plan: dict[str, Any], block_rows: int
) -> dict[str, Any]:
    """New force for every sample, block by block, through the tare rule (schemas.tare) with
    the zero of the sample's tare."""
    starts = plan["starts"]
    tares = [Tare(float(zero), cal) for zero in plan["zeros"]] or [Tare(None, cal)]
    data, raw = f[FORCE], f[RAW]
    n, top = plan["samples"], cal.range["max_n"]
    max_delta, above = -math.inf, 0
    for a in range(0, n, block_rows):
        b = min(n, a + block_rows)
        which = np.maximum(np.searchsorted(starts, np.arange(a, b), side="right") - 1, 0)
        force = tared_force(raw[a:b], which, tares)
        old = data[a:b]
        both = np.isfinite(old) & np.isfinite(force)
        if both.any():
            max_delta = max(max_delta, float(np.abs(force[both] - old[both]).max()))
        above += int(np.count_nonzero(force > top))
        data[a:b] = force
    return {
        "max_abs_delta_n": max_delta if math.isfinite(max_delta) else math.nan,
        "above_range": above,
    }


def _text(value: Any) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)
