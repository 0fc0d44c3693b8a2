"""Events read off the stream itself: the subject's hand-held button and the live warnings.

Pure: no threads, no I/O; fed block by block by the link's reader thread. ``LiveWarnings.now``
is replaced in one step, so the window may read it at any time.
"""

from __future__ import annotations

import numpy as np

from firmware_bridge.frames import FLAG_BUTTON, FLAG_SATURATED
from schemas.calibration import Calibration
from schemas.events import Event

RANGE_MARGIN = 1.02  # force this far above the calibrated maximum is out of range
DRIFT_FLOOR_N = 0.5  # a resting force beyond this (or 3 % of the band's top) is drift
DRIFT_BAND_FRACTION = 0.03
DRIFT_MIN_SAMPLES = 8  # fewer samples in a block say nothing about the resting force


class LiveWarnings:
    """Conditions a user must hear about while they last: a saturated sensor, force beyond the
    calibrated range, a resting force that has drifted from the tare (judged only between
    holds). Each new episode is also written to the file as a note."""

    def __init__(self, calibration: Calibration | None) -> None:
        self.calibration = calibration
        self.now: dict[str, str] = {}  # kind -> message

    def watch(self, force: np.ndarray, flags: np.ndarray, holding: bool, band_high_n: float,
              time_s: float) -> list[Event]:
        """Judge a block; a note event for each warning that begins with it."""
        now: dict[str, str] = {}
        if (flags & FLAG_SATURATED).any():
            now["saturated"] = "sensor saturated: the reading is at the ADC's limit"
        cal = self.calibration
        if cal is not None and float(force.max()) > cal.range["max_n"] * RANGE_MARGIN:
            now["range"] = f"force above the calibrated range ({cal.range['max_n']:.0f} N)"
        if holding or len(force) < DRIFT_MIN_SAMPLES:
            if "drift" in self.now:
                now["drift"] = self.now["drift"]
        else:
            rest = float(np.median(force))
            if abs(rest) > max(DRIFT_FLOOR_N, DRIFT_BAND_FRACTION * band_high_n):
                now["drift"] = f"tare drift: at rest the sensor reads {rest:+.1f} N (press T)"
        began = [Event(time_s, "note", text=f"warning: {now[kind]}")
                 for kind in now.keys() - self.now.keys()]
        self.now = now
        return began


class ButtonEdges:
    """button_down / button_up events at the samples where the button flag changes."""

    def __init__(self) -> None:
        self._last = 0

    def feed(self, flags: np.ndarray, timestamps: np.ndarray, first: int) -> list[Event]:
        pressed = (flags & FLAG_BUTTON).astype(np.int8)
        if not self._last and not pressed.any():
            return []
        change = np.flatnonzero(np.diff(pressed, prepend=self._last))
        self._last = int(pressed[-1])
        return [Event(float(timestamps[i]), "button_down" if pressed[i] else "button_up",
                      sample_index=first + i) for i in change.tolist()]
