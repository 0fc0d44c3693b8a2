"""Live coaching cues: what the trainee should do right now, in words readable from a metre.

Why: real-time force feedback is what closes the gap between students and experts (Snodgrass
2010: 14.3 N -> 4.0 N), but only if the cue is unambiguous at a glance while both hands are
busy. This module is the pure decision logic (no Qt, no timers) so it can be tested exactly and
reused by any front end: the window calls ``coach(detector.current, last_force, dose)`` on each
refresh and shows ``message`` large, ``band_clock_s`` / ``remaining_s`` as a clock.

The clock counts *cumulative* time in the target band since the hold started (the metric the
literature reports as time within target band), not the longest unbroken stretch: a brief
tremor excursion out of the band pauses the clock instead of restarting it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import Enum
from typing import Literal

import numpy as np

from analysis.holds import LiveHold
from schemas.session_protocol import Dose

__all__ = [
    "MESSAGES",
    "CoachState",
    "Cue",
    "RampCue",
    "coach",
    "ramp_cue",
    "ramp_slope",
]


class Cue(Enum):
    """What the trainee should do now."""

    IDLE = "idle"  # no hold in progress
    BELOW = "below"  # pressing, under the band
    IN_BAND = "in_band"  # in the band, the clock is running
    ABOVE = "above"  # over the band: too hard
    COMPLETE = "complete"  # enough time in band: release
    OVERTIME = "overtime"  # hold longer than max_hold_s: release now


#: Short, upper-case messages (at most 24 characters) for a large display.
MESSAGES: dict[Cue, str] = {
    Cue.IDLE: "READY",
    Cue.BELOW: "PRESS HARDER",
    Cue.IN_BAND: "HOLD",
    Cue.ABOVE: "EASE OFF",
    Cue.COMPLETE: "HOLD COMPLETE — RELEASE",
    Cue.OVERTIME: "RELEASE NOW",
}

RampCue = Literal["too slow", "on pace", "too fast"]


@dataclass(frozen=True)
class CoachState:
    """The cue to show and the band clock behind it.

    band_clock_s: cumulative time in band this hold (0 when idle). remaining_s: time in band
    still needed for a full dose (0 once complete, and when idle).
    """

    cue: Cue
    band_clock_s: float
    remaining_s: float
    message: str


def coach(live: LiveHold | None, force_n: float, dose: Dose,
          area_cm2: float = math.nan) -> CoachState:
    """Decide the cue for the hold in progress ``live`` and the latest force ``force_n`` (N)
    against the protocol's ``dose``, whose band becomes newtons with ``area_cm2``.

    Precedence, most urgent first: OVERTIME (held longer than ``max_hold_s``, counted from
    the start of loading: the tissue is under pressure for all of it, in band or not: release,
    whatever the force), ABOVE (over the band: ease off, even after a complete dose), COMPLETE
    (time in band reached ``min_hold_s``; it stays COMPLETE while the force comes down, so a
    release is not nagged as "press harder"), IN_BAND, BELOW. No hold is IDLE.
    """
    if live is None:
        return CoachState(Cue.IDLE, 0.0, 0.0, MESSAGES[Cue.IDLE])
    band_low, band_high = dose.band_n(area_cm2)
    clock = live.time_in_band_s
    remaining = max(0.0, dose.min_hold_s - clock)
    complete = clock >= dose.min_hold_s and clock > 0
    if live.elapsed_s > dose.max_hold_s:
        cue = Cue.OVERTIME
    elif force_n > band_high:
        cue = Cue.ABOVE
    elif complete:
        cue = Cue.COMPLETE
    elif force_n >= band_low:
        cue = Cue.IN_BAND
    else:
        cue = Cue.BELOW
    return CoachState(cue, clock, remaining, MESSAGES[cue])


def ramp_slope(t: np.ndarray, force_n: np.ndarray, window_s: float = 0.5) -> float:
    """Rate of force application (N/s) now: least-squares slope over the last ``window_s``.

    A least-squares line over half a second averages tremor (8-12 Hz, several cycles per
    window) and sensor noise that a two-point difference would amplify. ``t`` must be sorted;
    non-finite samples are ignored. NaN if the window holds fewer than two distinct times.
    """
    if not window_s > 0:
        raise ValueError("window_s must be > 0")
    tt = np.asarray(t, dtype=np.float64).reshape(-1)
    ff = np.asarray(force_n, dtype=np.float64).reshape(-1)
    if tt.shape != ff.shape:
        raise ValueError("t and force_n must have the same length")
    if tt.size < 2:
        return math.nan
    i0 = int(np.searchsorted(tt, tt[-1] - window_s, "left"))
    tt, ff = tt[i0:], ff[i0:]
    ok = np.isfinite(tt) & np.isfinite(ff)
    if not ok.all():
        tt, ff = tt[ok], ff[ok]
    if tt.size < 2:
        return math.nan
    tc = tt - tt.mean()  # centred: stream times are large, their squares lose precision
    denom = float(tc @ tc)
    if denom <= 0:
        return math.nan
    return float(tc @ (ff - ff.mean())) / denom


def ramp_cue(slope: float, corridor_low: float, corridor_high: float) -> RampCue | None:
    """Classify a ramp slope (N/s) against the corridor [low, high]; None if it is unknown.

    An open corridor side is 0 or ``math.inf``. The PPT standard ramp is 5 N/s on 1 cm²
    (50 kPa/s); clinicians drift off it without feedback, which is what this cue is for.
    """
    if math.isnan(corridor_low) or math.isnan(corridor_high) or corridor_low > corridor_high:
        raise ValueError("corridor must satisfy corridor_low <= corridor_high")
    if not math.isfinite(slope):
        return None
    if slope < corridor_low:
        return "too slow"
    if slope > corridor_high:
        return "too fast"
    return "on pace"
