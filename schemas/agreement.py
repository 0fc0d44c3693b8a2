"""A recording agrees with itself: its force column is what its raw counts, its /calibration
attributes and its tare events say it is.

The force a recorder stores is derived, through the one tare rule (``schemas.tare``), from the
raw counts it also stores. ``check_force`` derives it again from the file alone and compares,
so a recorder that applied a zero or a calibration other than the one it wrote down is caught.
It is what ``palpation validate --deep`` adds to the ordinary validation.
"""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
from numpy.polynomial import polynomial as P

from schemas.calibration import Calibration, CalibrationError
from schemas.hdf5 import RecordingFileError, reading
from schemas.tare import Tare, tare_starts, tared_force

TOLERANCE_N = 1e-9  # stored and re-derived force agree to this, in newtons
BLOCK_ROWS = 1 << 20

FORCE = "/acquisition/force/data"
RAW = "/acquisition/force/raw_counts"
HOST = "/acquisition/force/host_time"


def check_force(f: h5py.File, path: str | Path) -> None:
    """RecordingFileError (one line: which rows, by how much) unless every stored force equals
    the force re-derived from raw counts, /calibration and tare events, to TOLERANCE_N."""
    with reading(path, "/calibration"):
        attrs = dict(f["/calibration"].attrs.items())
        events = f["/events"][()]
    coefficients = np.ravel(np.asarray(attrs.get("coefficients", []), dtype=np.float64))
    record = _text(attrs.get("json", ""))
    try:
        calibration = Calibration.from_json(record, source=f"{path}: /calibration json") \
            if record else None
    except CalibrationError as exc:
        raise RecordingFileError(str(exc)) from None
    if calibration is None and not len(coefficients):
        raise RecordingFileError(f"{path}: /calibration: no coefficients to re-derive the "
                                 "force from")
    with reading(path, HOST):
        starts, zeros = tare_starts(events, f[HOST])
    tares = [_tare(z, calibration, coefficients) for z in zeros]
    data, raw = f[FORCE], f[RAW]
    for a in range(0, len(data), BLOCK_ROWS):
        b = min(len(data), a + BLOCK_ROWS)
        with reading(path, FORCE):
            stored, counts = data[a:b], raw[a:b]
        if tares:
            which = np.maximum(np.searchsorted(starts, np.arange(a, b), side="right") - 1, 0)
            expected = tared_force(counts, which, tares)
        else:
            expected = P.polyval(counts.astype(np.float64), coefficients)
        _compare(stored, expected, a, path)
    if tares:
        _check_coefficients(coefficients, tares[0], raw, path)


def _tare(zero: float, calibration: Calibration | None, coefficients: np.ndarray) -> Tare:
    """The tare rule for one tare event: the calibration's curve, else the plain scale that the
    coefficients (offset, newtons per count) store."""
    if calibration is not None:
        return Tare(float(zero), calibration)
    scale = float(coefficients[1]) if len(coefficients) > 1 else 1.0
    return Tare(float(zero), None, newtons_per_count=scale)


def _compare(stored: np.ndarray, expected: np.ndarray, first: int, path: str | Path) -> None:
    both_nan = np.isnan(stored) & np.isnan(expected)
    diff = np.where(both_nan, 0.0, np.abs(stored - expected))
    bad = np.flatnonzero(~(diff <= TOLERANCE_N))
    if bad.size:
        i = int(bad[np.argmax(np.nan_to_num(diff[bad], nan=np.inf))])
        raise RecordingFileError(
            f"{path}: {FORCE}: {bad.size} rows from row {first + int(bad[0])} disagree with raw "
            f"counts, /calibration and tare events (largest by {diff[i]:.3g} N at row "
            f"{first + i}: stored {stored[i]:.6g} N, re-derived {expected[i]:.6g} N)")


def _check_coefficients(coefficients: np.ndarray, first: Tare, raw: h5py.Dataset,
                        path: str | Path) -> None:
    """The stored coefficients are the curve tared to the first tare, as the file claims."""
    sample = np.asarray(raw[: min(len(raw), 1000)], dtype=np.float64)
    if not sample.size:
        return
    claimed = P.polyval(sample, coefficients)
    actual = first.newtons(sample)
    worst = float(np.max(np.abs(claimed - actual)))
    if not worst <= max(1e-6, 1e-9 * float(np.max(np.abs(actual)))):
        raise RecordingFileError(
            f"{path}: /calibration: coefficients disagree with the first tare event "
            f"(by up to {worst:.3g} N)")


def _text(value) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)
