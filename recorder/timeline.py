"""Where each sample sits in the recording: its sequence number, device clock and session time.

A protocol-v1 device numbers its frames and stamps them with its own microsecond clock:
``firmware_bridge.continuity`` unwraps both and finds the frames lost on the way, and the
device clock is mapped to session seconds by anchoring it to the host time of the read that
brought the first sample of each device epoch (a device restart begins a new one). A gauge has
neither: its readings are numbered as they arrive and stamped with the host time of the read.

Pure: no threads, no I/O; fed by the link's reader thread.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from firmware_bridge.continuity import ContinuityTracker, Gap
from recorder.source import Readings


@dataclass
class Placed:
    """A block of samples placed on the recording's timeline."""

    timestamps: np.ndarray  # session seconds (device clock mapped, or host time for a gauge)
    tick_us: np.ndarray  # int64 device clock, unwrapped (host µs for a gauge)
    sequence: np.ndarray  # int64, unwrapped
    first: int  # index in the recording of the block's first sample
    gaps: list[Gap] = field(default_factory=list)  # frames lost before samples of the block


class Timeline:
    """Continuity and the device→session clock, block after block."""

    def __init__(self) -> None:
        self.continuity = ContinuityTracker()
        self.samples = 0  # samples placed so far
        self._anchor: tuple[float, int] | None = None  # (session seconds, device tick µs)

    @property
    def nominal_rate_hz(self) -> float:
        return self.continuity.nominal_rate_hz

    @nominal_rate_hz.setter
    def nominal_rate_hz(self, rate: float) -> None:
        """The device's rate, which lets continuity resolve long gaps."""
        self.continuity.nominal_rate_hz = rate

    def place(self, readings: Readings, host: float) -> Placed:
        """Place a non-empty block read at session time ``host``."""
        n = len(readings.raw)
        first = self.samples
        self.samples += n
        if readings.seq is None:
            return Placed(np.full(n, host), np.full(n, round(host * 1e6), dtype=np.int64),
                          np.arange(first, first + n, dtype=np.int64), first)
        un = self.continuity.feed(readings.seq, readings.tick_us)
        return Placed(self._session_times(un.tick_us, un.restarts, host), un.tick_us,
                      un.sequence, first, un.gaps)

    def _session_times(self, tick_us: np.ndarray, restarts: list[int],
                       host: float) -> np.ndarray:
        """Device clock mapped to session seconds, re-anchored at each device epoch."""
        out = np.empty(len(tick_us))
        bounds = [0, *restarts, len(tick_us)] if restarts else [0, len(tick_us)]
        for a, b in zip(bounds[:-1], bounds[1:], strict=False):
            if a == b:
                continue
            if self._anchor is None or a in restarts:
                self._anchor = (host, int(tick_us[a]))
            out[a:b] = self._anchor[0] + (tick_us[a:b] - self._anchor[1]) / 1e6
        return out
