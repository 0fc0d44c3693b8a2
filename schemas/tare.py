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
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from functools import cached_property
from typing import Any

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
