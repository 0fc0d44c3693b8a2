"""The verdict on one finished hold: how it went against the dose, in words a trainee reads.

Why: a trainee who lets go needs to know at once whether the hold counted and what to change
(knowledge of results). The verdict only puts into words the hold's row of
``analysis.metrics`` (``HoldMetrics``: duration and the dose's hold window, time in band,
``early_release``, ``too_long``, ``dose_met``, the peak against the band's top) and the flags
of ``analysis.definitions`` (``hold_flags``, the report's), so the live window, which makes
that row with ``hold_metrics`` as the report does, cannot judge a hold differently. Pure: no
Qt, no threads.

It says: the duration against the hold window (``too short``: released early, ``in window``,
``too long``); the time in band against the minimum hold it needs; the peak against the
band's top (overshoot when more than ``OVERSHOOT_FLAG_PCT`` above it); whether the dose was met.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

from analysis.definitions import OVERSHOOT_FLAG_PCT, Flag, hold_flags
from analysis.metrics import HoldMetrics

__all__ = ["HoldVerdict", "judge", "verdict_lines"]

Duration = Literal["too short", "in window", "too long", "incomplete"]


@dataclass(frozen=True)
class HoldVerdict:
    """A hold's row, where its duration falls in the hold window, and the flags it raised
    (``analysis.definitions.hold_flags``)."""

    metrics: HoldMetrics
    duration: Duration
    flags: tuple[Flag, ...]

    @property
    def dose_met(self) -> bool:
        return self.metrics.dose_met

    @property
    def clean(self) -> bool:
        """The dose met and no flag raised."""
        return self.dose_met and not self.flags


def judge(m: HoldMetrics) -> HoldVerdict:
    """The verdict on the hold of row ``m`` (``analysis.metrics.hold_metrics``)."""
    if not m.complete:
        duration: Duration = "incomplete"
    elif m.early_release:
        duration = "too short"
    elif m.too_long:
        duration = "too long"
    else:
        duration = "in window"
    return HoldVerdict(m, duration, tuple(hold_flags(m)))


def verdict_lines(v: HoldVerdict, unit: str = "N", per_unit: float = 1.0) -> list[str]:
    """The verdict as lines of text: a headline (the hold's point and repetition when the row
    names them, dose met or not, the flags' names), then the duration against the hold
    window, the time in band and the peak against the band's top. Forces are shown in
    ``unit``, ``per_unit`` of it to the newton."""
    m = v.metrics
    if v.duration == "incomplete":
        head = "INCOMPLETE"
    else:
        head = "DOSE MET" if v.dose_met else "DOSE NOT MET"
    if v.flags:
        head += " — " + ", ".join(f.name for f in v.flags)
    if m.trigger_point:
        head = f"{m.trigger_point}, repetition {m.repetition}: {head}"
    window = (f"{m.min_hold_s:g}–{m.max_hold_s:g} s" if m.max_hold_s > 0
              else f"at least {m.min_hold_s:g} s")
    duration = {
        "too short": f"too short: released before the {m.min_hold_s:g} s minimum "
                     "(early release)",
        "too long": f"too long: held past the {m.max_hold_s:g} s maximum",
        "in window": f"in window {window}",
        "incomplete": "cut off by the end of the recording",
    }[v.duration]
    return [head, f"hold {m.duration_s:.1f} s · {duration}",
            f"in band {m.time_in_band_s:.1f} s of {m.min_hold_s:g} s needed",
            _peak_line(v, unit, per_unit)]


def _peak_line(v: HoldVerdict, unit: str, per_unit: float) -> str:
    """The peak against the band's top: what the overshoot flag judges."""
    m = v.metrics
    peak = f"peak {m.peak_n * per_unit:.1f} {unit}"
    if not math.isfinite(m.peak_over_band_pct):
        return peak
    top = f"the band's top {round(m.band_high_n * per_unit, 1):g} {unit}"
    if m.peak_over_band_pct <= 0:
        return f"{peak}, within {top}"
    text = f"{peak}, {m.peak_over_band_pct:.0f} % above {top}"
    if any(f.key == "over" for f in v.flags):
        text += f": overshoot (more than {OVERSHOOT_FLAG_PCT:g} %)"
    return text
