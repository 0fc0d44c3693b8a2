"""Refit a finalised recording's device clock after the fact, from its stored clock pairs.

Live, each block of samples was stamped with the fit current when it arrived (schemas/clockfit.py),
which rests on the seconds seen so far. Afterwards every pair of a device epoch is known, so
the best mapping of that epoch is the lower envelope of all of them: ``lower_envelope_fit``
over the epoch's ``/acquisition/clock_pairs``. The epochs are delimited by the
``device_restart`` events, by the device clock they carry as value (a pause or dropped samples
do not move it; a file without them is one epoch).

In place (h5py "r+"), block by block so that 10^8 samples need no more than a few tens of MB
of memory. Only /acquisition/force/timestamps, the /summary ``duration_s`` and
``effective_rate_hz`` and one appended /events note change. Two steps, each closing the file:
(1) the timestamps are rewritten with the file in SWMR mode, so that a process killed meanwhile
leaves a file readers still open; (2) the summary and the note are written. New timestamps are
computed from the device clock and the pairs alone, which are never written, so refit is
repeatable: a refit interrupted in step 1 (once HDF5's "open for write" mark is cleared,
``h5clear -s FILE``) is finished by running it again.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from schemas.clockfit import ClockFit, lower_envelope_fit
from schemas.events import EVENT_DTYPE, Event
from schemas.hdf5 import RecordingFileError, open_hdf5
from schemas.recalibrate import BLOCK_ROWS, _open_rw
from schemas.validate import validate

NOTE_PREFIX = "refitted "
TIMES = "/acquisition/force/timestamps"
TICKS = "/acquisition/force/device_tick_us"
PAIRS = "/acquisition/clock_pairs"


def refit(path: str | Path, *, block_rows: int = BLOCK_ROWS) -> dict[str, Any]:
    """Rewrite the timestamps of the finalised recording ``path`` with each device epoch's
    fit of all its clock pairs; return a summary.

    Refused with a one-line RecordingFileError, before anything is written: an unfinalised or
    invalid file, a file without a device clock (a gauge's), or an epoch without clock pairs.

    The summary: path, samples, pairs, epochs (per epoch: first_sample, pairs, offset_s,
    rate, drift_ppm), max_abs_change_s (largest |new - old| timestamp, NaN without samples).
    Events and /holds keep the times they were given live.
    """
    p = Path(path)
    if block_rows < 1:
        raise ValueError("block_rows must be >= 1")
    validate(p)
    bounds, fits, pairs = _plan(p)
    with _open_rw(p, swmr=True) as f:
        change, first_t, last_t, counts = _rewrite(f, bounds, fits, block_rows)
    starts = np.cumsum(counts) - counts
    epochs = [{"first_sample": int(s), "pairs": n, "offset_s": fit.offset_s, "rate": fit.rate,
               "drift_ppm": fit.drift_ppm} for s, (fit, n) in zip(starts, fits, strict=True)]
    with _open_rw(p) as f:
        samples = len(f[TIMES])
        if samples > 1:
            duration = last_t - first_t
            f["/summary"].attrs.update({"duration_s": np.float64(duration),
                                        "effective_rate_hz": np.float64((samples - 1) / duration)})
        drifts = ", ".join(f"{e['drift_ppm']:+.1f}" for e in epochs)
        note = Event(float(np.nanmax([last_t, _last_event_time(f)])), "note",
                     text=f"{NOTE_PREFIX}from {pairs} clock pairs, drift {drifts} ppm")
        events = f["/events"]
        events.resize((len(events) + 1,))
        events[-1] = np.array(note.to_row(), dtype=EVENT_DTYPE)
    return {"path": str(p), "samples": samples, "pairs": pairs, "epochs": epochs,
            "max_abs_change_s": change}


def _plan(path: Path) -> tuple[np.ndarray, list[tuple[ClockFit, int]], int]:
    """Read-only: the device ticks (µs) where epochs after the first begin, each epoch's fit
    with its pair count, and the number of pairs (a refusal here leaves the file untouched)."""
    with open_hdf5(path) as f:
        pairs = f[PAIRS][()]
        events = f["/events"][()]
    if not len(pairs):
        raise RecordingFileError(f"{path}: {PAIRS}: no clock pairs (a gauge has no device "
                                 "clock to refit)")
    restarts = events["value"][events["kind"] == b"device_restart"]
    bounds = np.unique(restarts[np.isfinite(restarts)]).astype(np.int64)
    epoch_of_pair = np.searchsorted(bounds, pairs["device_tick_us"], side="right")
    fits = []
    for e in range(len(bounds) + 1):
        mine = pairs[epoch_of_pair == e]
        if not len(mine):
            since = f"device tick {bounds[e - 1]} µs" if e else "the start"
            raise RecordingFileError(f"{path}: the device epoch from {since} has no clock "
                                     "pairs; nothing refitted")
        fits.append((lower_envelope_fit(mine["device_tick_us"] / 1e6, mine["host_time"]),
                     len(mine)))
    return bounds, fits, len(pairs)


def _rewrite(f, bounds: np.ndarray, fits: list[tuple[ClockFit, int]],
             block_rows: int) -> tuple[float, float, float, np.ndarray]:
    """Every sample's timestamp from its epoch's fit, block by block: the largest change, the
    first and last new timestamps (NaN without samples) and the samples of each epoch."""
    times, ticks = f[TIMES], f[TICKS]
    offsets = np.array([fit.offset_s for fit, _ in fits])
    rates = np.array([fit.rate for fit, _ in fits])
    change, first, last = np.nan, np.nan, np.nan
    counts = np.zeros(len(fits), dtype=np.int64)
    for a in range(0, len(times), block_rows):
        tick = ticks[a:a + block_rows]
        which = np.searchsorted(bounds, tick, side="right")
        new = offsets[which] + rates[which] * (tick / 1e6)
        change = np.nanmax([change, float(np.abs(new - times[a:a + len(tick)]).max())])
        times[a:a + len(tick)] = new
        counts += np.bincount(which, minlength=len(fits))
        first = first if a else float(new[0])
        last = float(new[-1])
    return float(change), first, last, counts


def _last_event_time(f) -> float:
    events = f["/events"]
    return float(np.nanmax(events["time"])) if len(events) else np.nan
