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
    "RampCoach",
    "RampCue",
    "coach",
    "coach_ramp",
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

#: What a threshold ramp's large cue says, by the pace (None: not known yet).
RAMP_MESSAGES: dict[RampCue | None, tuple[Cue, str]] = {
    None: (Cue.IDLE, "RAMP"),
    "too slow": (Cue.BELOW, "FASTER"),
    "on pace": (Cue.IN_BAND, "STEADY"),
    "too fast": (Cue.ABOVE, "SLOWER"),
}


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


@dataclass(frozen=True)
class RampCoach:
    """The cue during a threshold ramp; ``pace`` is the slope against the corridor while the
    ramp is coached (None at rest, after the button, and before the slope is known)."""

    cue: Cue
    message: str
    pace: RampCue | None


def coach_ramp(loaded: bool, pressed: bool, force_n: float, slope_n_per_s: float,
               corridor_n_per_s: tuple[float, float], cutoff_n: float) -> RampCoach:
    """Decide the cue of a threshold ramp (pressure-pain threshold algometry), where the dose
    is a steady rate, not a band: ``loaded`` (a ramp is in progress), ``pressed`` (the
    subject's button went down during it: the threshold is taken), the latest force and
    slope, the corridor (N/s) and the cut-off (N).

    Precedence: no ramp is IDLE "READY"; after the button, COMPLETE "THRESHOLD — LIFT"; at or
    over the cut-off, ABOVE "CUT-OFF — LIFT" (the probe is lifted without a threshold); else the
    pace: FASTER, STEADY, SLOWER, or "RAMP" while the slope is not known yet.
    """
    if not loaded:
        return RampCoach(Cue.IDLE, MESSAGES[Cue.IDLE], None)
    if pressed:
        return RampCoach(Cue.COMPLETE, "THRESHOLD — LIFT", None)
    if force_n >= cutoff_n:
        return RampCoach(Cue.ABOVE, "CUT-OFF — LIFT", None)
    pace = ramp_cue(slope_n_per_s, *corridor_n_per_s)
    cue, message = RAMP_MESSAGES[pace]
    return RampCoach(cue, message, pace)
