"""Events read off the stream itself: the subject's hand-held button and the live warnings.

Pure: no threads, no I/O; fed block by block by the link's reader thread. ``LiveWarnings.now``
is replaced in one step, so the window may read it at any time.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from firmware_bridge.frames import FLAG_BUTTON, FLAG_SATURATED
from schemas.calibration import Calibration
from schemas.events import Event

RANGE_MARGIN = 1.02  # force this far above the calibrated maximum is out of range
REST_FRACTION = 0.02  # a resting force beyond 2 % of full scale means the zero has moved
REST_STABLE_S = 2.0  # rest is judged only after the force has been this steady this long
STEADY_FRACTION = 0.01  # "steady": the force stays within 1 % of full scale ...
STEADY_FLOOR_N = 0.3  # ... or this many newtons, whichever is larger
DEFAULT_FULL_SCALE_N = 100.0  # without a calibration or a band to go by


def full_scale_n(calibration: Calibration | None, band_high_n: float) -> float:
    """What "full scale" means for the rest warning and the tare guard: the calibrated range,
    else twice the top of the target band, else DEFAULT_FULL_SCALE_N."""
    if calibration is not None:
        return float(calibration.range["max_n"])
    if np.isfinite(band_high_n) and band_high_n > 0:
        return 2.0 * float(band_high_n)
    return DEFAULT_FULL_SCALE_N


def steady_tolerance_n(full_scale: float) -> float:
    return max(STEADY_FLOOR_N, STEADY_FRACTION * full_scale)


class Steadiness:
    """How long the force has stayed within a steady tolerance (fed block by block)."""

    def __init__(self) -> None:
        self.lo = self.hi = np.nan
        self.since = np.nan
        self.block = (np.nan, np.nan)  # the last block's finite range (NaN: none)

    def feed(self, force: np.ndarray, time_s: float, tolerance_n: float) -> float:
        """Seconds the force has been steady, as of this block (ending at ``time_s``)."""
        lo, hi = float(np.fmin.reduce(force)), float(np.fmax.reduce(force))  # NaN skipped
        self.block = (lo, hi)
        if lo != lo:  # no finite force in the block
            return 0.0
        if self.lo == self.lo:  # not the first block: join it to the steady stretch
            lo, hi = min(self.lo, lo), max(self.hi, hi)
        if hi - lo <= tolerance_n:
            self.lo, self.hi = lo, hi
        else:
            last = float(force[-1])
            if last != last:
                last = float(force[np.isfinite(force)][-1])
            self.lo, self.hi, self.since = last, last, time_s
        return time_s - self.since


class LiveWarnings:
    """Conditions a user must hear about while they last: a saturated sensor, force beyond the
    calibrated range, and a resting force beyond 2 % of full scale (the zero has moved). Rest
    is judged only when no hold is in progress and the force has been steady for 2 s, so a
    thumb on its way in is never taken for drift. Each new episode is also written to the file
    as a note."""

    def __init__(self, calibration: Calibration | None) -> None:
        self.calibration = calibration
        self.now: dict[str, str] = {}  # kind -> message
        self._steady = Steadiness()

    def watch(self, force: np.ndarray, flags: np.ndarray, holding: bool, band_high_n: float,
              time_s: float) -> list[Event]:
        """Judge a block; a note event for each warning that begins with it."""
        now: dict[str, str] = {}
        if (flags & FLAG_SATURATED).any():
            now["saturated"] = "sensor saturated: the reading is at the ADC's limit"
        cal = self.calibration
        if cal is not None and float(force.max()) > cal.range["max_n"] * RANGE_MARGIN:
            now["range"] = f"force above the calibrated range ({cal.range['max_n']:.0f} N)"
        scale = full_scale_n(cal, band_high_n)
        steady_s = self._steady.feed(force, time_s, steady_tolerance_n(scale))
        if holding or steady_s < REST_STABLE_S:
            if "zero" in self.now:  # lasts until rest can be judged again
                now["zero"] = self.now["zero"]
        else:
            lo, hi = self._steady.block
            limit = REST_FRACTION * scale
            # a block all within the limit has its median there too: no sort needed
            rest = 0.0 if -limit <= lo and hi <= limit else float(np.median(force))
            if abs(rest) > limit:
                now["zero"] = (f"zero moved: at rest the sensor reads {rest:+.1f} N, beyond "
                               f"{REST_FRACTION:.0%} of full scale ({scale:.0f} N); if nothing "
                               "is on the sensor, press T")
        began = [Event(time_s, "note", text=f"warning: {now[kind]}")
                 for kind in now.keys() - self.now.keys()]
        self.now = now
        return began


class TareGuard:
    """Whether a tare may be taken now. A tare zeroes the force at the present load, so one
    taken under load makes every later force wrong by that load: it is refused while a hold is
    in progress, while the force is unsteady, or when the force is far from the last zero. A
    second request within ``FORCE_WINDOW_S`` of a refusal forces it (the caller records that).

    Pure; the caller's thread owns it (the window's key or button)."""

    FORCE_WINDOW_S = 2.0
    FAR_FRACTION = 0.05  # beyond 5 % of full scale from the last zero is "under load"

    def __init__(self) -> None:
        self._refused_at = -np.inf

    def judge(self, now_s: float, recent_n: np.ndarray, holding: bool,
              full_scale: float) -> tuple[bool, str]:
        """(allowed, reason): the reason a tare is refused, or why a forced one was."""
        reason = self._reason(recent_n, holding, full_scale)
        if not reason:
            return True, ""
        if now_s - self._refused_at <= self.FORCE_WINDOW_S:
            self._refused_at = -np.inf
            return True, reason
        self._refused_at = now_s
        return False, reason

    def _reason(self, recent_n: np.ndarray, holding: bool, full_scale: float) -> str:
        recent = recent_n[np.isfinite(recent_n)]
        if holding:
            return "a hold is in progress"
        if not recent.size:
            return ""
        spread = float(recent.max() - recent.min())
        if spread > steady_tolerance_n(full_scale):
            return f"the force is unsteady ({spread:.1f} N in the last second)"
        level = float(np.median(recent))
        if abs(level) > self.FAR_FRACTION * full_scale:
            return f"the sensor is under load ({level:+.1f} N from the last zero)"
        return ""


class ButtonEdges:
    """button_down / button_up events at the samples where the button flag changes."""

    def __init__(self) -> None:
        self._last = 0

    def feed(self, flags: np.ndarray, timestamps: np.ndarray,
             row: Callable[[int], int]) -> list[Event]:
        """The edges in a block; ``row`` gives the file row of its sample i (the event's
        ``sample_index``)."""
        pressed = flags & FLAG_BUTTON
        if not self._last and not pressed.any():
            return []
        pressed = pressed.astype(np.int8)
        change = np.flatnonzero(np.diff(pressed, prepend=self._last))
        self._last = int(pressed[-1])
        return [Event(float(timestamps[i]), "button_down" if pressed[i] else "button_up",
                      sample_index=row(i)) for i in change.tolist()]
