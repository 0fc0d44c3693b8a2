"""The one tare rule: raw counts, the counts at zero load and a calibration (or a plain scale)
give newtons; the same three say what a recording's /calibration attributes are.

Used live by the recorder's force stage and afterwards by ``schemas.recalibrate``, so the force
a recording holds and the force a recalibration writes follow the same rule (see "Tare" in
schemas/CALIBRATION.md):

- with a calibration f: ``force = f(counts) - f(zero)``; without a tare (zero None), f(counts);
- with a plain scale s (newtons per count): ``force = (counts - zero) * s``; no tare counts as a
  zero of 0.

The attributes store the rule as a polynomial of the counts: the calibration's coefficients
tared to ``zero`` (``Calibration.recording_attrs``), or ``[-zero * s, s]`` with the scale's
source ("factory": the device's own counts per newton; "device": a gauge that reports newtons;
"none": no scale, the force column holds tared counts).

Which tare a sample is under is part of the rule too (``tare_starts``): a tare event tied to a
sample applies from that sample on, one with sample_index -1 from the first sample whose
host_time is at or after the event's time; samples before the first tare use the first tare.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import h5py
import numpy as np

from schemas.calibration import Calibration


@dataclass(frozen=True)
class Tare:
    """Counts at zero load (None: no tare taken) with what turns counts into newtons."""

    zero_counts: float | None
    calibration: Calibration | None = None
    newtons_per_count: float = 1.0  # the plain scale, used when there is no calibration
    scale_source: str = "none"  # /calibration source of the plain scale

    @cached_property
    def zero_n(self) -> float:
        """f(zero): the calibrated force at the tare, evaluated once (0 without either)."""
        if self.calibration is None or self.zero_counts is None:
            return 0.0
        return float(self.calibration.force(self.zero_counts))

    def newtons(self, raw: np.ndarray) -> np.ndarray:
        """Force in newtons of raw counts, tared."""
        if self.calibration is not None:
            force = self.calibration.force(raw)
            return force if self.zero_counts is None else force - self.zero_n
        zero = 0.0 if self.zero_counts is None else self.zero_counts
        return (np.asarray(raw).astype(np.float64) - zero) * self.newtons_per_count

    def with_zero(self, zero_counts: float) -> Tare:
        """The same conversion with a new tare."""
        return dataclasses.replace(self, zero_counts=zero_counts)

    def attrs(self) -> dict[str, Any]:
        """The /calibration attributes of a recording that starts with this tare."""
        if self.calibration is not None:
            return self.calibration.recording_attrs(zero_counts=self.zero_counts)
        scale = self.newtons_per_count
        offset = 0.0 if self.zero_counts is None else -self.zero_counts * scale
        return {"source": self.scale_source, "calibration_id": "", "model": "polynomial",
                "coefficients": np.asarray([offset, scale], dtype=np.float64), "unit": "N",
                "json": ""}


def tare_starts(
    events: np.ndarray, host_time: h5py.Dataset | np.ndarray, block_rows: int = 1 << 20
) -> tuple[np.ndarray, np.ndarray]:
    """(first sample index, zero counts) of every tare event, sorted by index (file order kept
    among equal indices, so the later event wins). Events with a non-finite value are ignored.
    `host_time` is read in blocks and only as far as the last tare needs."""
    n = len(host_time)
    tares = events[(events["kind"] == b"tare") & np.isfinite(events["value"])]
    starts = np.full(len(tares), n, dtype=np.int64)
    pending = {}
    for i, row in enumerate(tares):
        index = int(row["sample_index"])
        if index >= 0:
            starts[i] = min(index, n)
        else:
            pending[i] = float(row["time"])
    for a in range(0, n, block_rows):
        if not pending:
            break
        host = host_time[a : a + block_rows]
        for i, t in list(pending.items()):
            hit = np.flatnonzero(host >= t)
            if hit.size:
                starts[i] = a + int(hit[0])
                del pending[i]
    order = np.argsort(starts, kind="stable")
    return starts[order], tares["value"][order].astype(np.float64)


def tared_force(raw: np.ndarray, which: np.ndarray, tares: list[Tare]) -> np.ndarray:
    """Force of a block whose sample i falls under tare ``which[i]``: one stretch per tare."""
    force = np.empty(len(raw), dtype=np.float64)
    cuts = [0, *(np.flatnonzero(np.diff(which)) + 1).tolist(), len(raw)]
    for lo, hi in zip(cuts[:-1], cuts[1:], strict=True):
        force[lo:hi] = tares[which[lo]].newtons(raw[lo:hi])
    return force
