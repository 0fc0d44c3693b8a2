"""Raw counts to newtons during a recording: which calibration, and the tare.

The conversion itself is the one tare rule, ``schemas.tare.Tare``, which recalibration uses
too. This stage chooses what the rule is given when a recording starts (the calibration given,
else the newest saved for the device, else the device's factory scale, else none) and keeps the
latest tare: a device's answer to the tare command, or for a gauge the mean of its latest
readings. Pure apart from ``choose_calibration`` reading the saved calibrations.
"""

from __future__ import annotations

import math

import numpy as np

from firmware_bridge.frames import DeviceInfo
from recorder.source import GAUGE_COUNTS_PER_NEWTON
from schemas.calibration import Calibration, find_calibration, warnings_for
from schemas.events import Event
from schemas.tare import Tare

RECENT_COUNTS = 16  # readings averaged by a host-side tare


def choose_calibration(info: DeviceInfo | None, usb_identity: str, given: Calibration | None,
                       use_saved: bool,
                       sensor_id: str = "") -> tuple[Calibration | None, list[str]]:
    """The given calibration, else the newest saved for this device (if ``use_saved``), else
    none; with what a user should know about the choice. A gauge or sketch (no ``info``)
    reports newtons itself: it uses a calibration given, or saved under its ``sensor_id``."""
    warnings: list[str] = []
    cal = given
    device_id = info.device_id if info is not None else sensor_id
    if cal is None and use_saved and (info is not None or sensor_id):
        problems: list[str] = []
        cal = find_calibration(device_id, usb_identity if info is not None else "",
                               problems=problems)
        warnings += [f"unreadable calibration skipped: {p}" for p in problems]
    if cal is not None:
        warnings += warnings_for(cal, device=info.as_attrs() if info is not None
                                 else {"device_id": sensor_id})
    elif info is None:
        if sensor_id and use_saved:
            warnings.append(f"no calibration saved for {sensor_id}: force is the instrument's "
                            f"own newtons (palpation calibrate --sensor-id {sensor_id})")
    elif math.isfinite(info.counts_per_newton):
        warnings.append(f"no calibration for {info.device_id}: force uses the "
                        "device's factory scale (palpation calibrate)")
    else:
        warnings.append(f"no calibration for {info.device_id} and no factory scale: "
                        "the force column holds tared counts (palpation calibrate)")
    return cal, warnings


def starting_tare(info: DeviceInfo | None, zero_counts: float | None,
                  calibration: Calibration | None) -> Tare:
    """The rule a recording starts with: a device's calibration or factory scale with its
    start-up tare; a gauge (no ``info``) reports newtons, kept as millinewton counts, which
    its calibration (if any) maps to newtons."""
    if info is None and calibration is None:
        return Tare(zero_counts, newtons_per_count=1.0 / GAUGE_COUNTS_PER_NEWTON,
                    scale_source="device")
    if calibration is not None:
        return Tare(zero_counts, calibration)
    cpn = info.counts_per_newton
    return Tare(zero_counts, newtons_per_count=1.0 / cpn if cpn and math.isfinite(cpn) else 1.0,
                scale_source="factory" if math.isfinite(cpn) else "none")


class ForceStage:
    """Newtons of each block through the current tare; remembers the latest raw counts."""

    def __init__(self, tare: Tare) -> None:
        self.tare = tare
        self._recent = np.zeros(0, dtype=np.int32)

    @property
    def zero_counts(self) -> float:
        """Raw counts at zero load (0 before any tare)."""
        return self.tare.zero_counts or 0.0

    def newtons(self, raw: np.ndarray) -> np.ndarray:
        self._recent = raw[-RECENT_COUNTS:]
        return self.tare.newtons(raw)

    def set_zero(self, counts: float) -> None:
        """A new tare, for this block on."""
        self.tare = self.tare.with_zero(counts)

    def tare_here(self, time_s: float, sample_index: int) -> list[Event]:
        """Tare at the current load from the latest readings; the tare event (none before
        any reading)."""
        if not len(self._recent):
            return []
        self.set_zero(float(self._recent.mean()))
        return [Event(time_s, "tare", value=self.tare.zero_counts, text="counts at zero load",
                      sample_index=sample_index)]
