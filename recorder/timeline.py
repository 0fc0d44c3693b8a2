"""Where each sample sits in the recording: its sequence number, device clock and session time.

A protocol-v1 device numbers its frames and stamps them with its own microsecond clock:
``firmware_bridge.continuity`` unwraps both and finds the frames lost on the way. The device
clock is mapped to session seconds by a fit, not an anchor (``schemas.clockfit``): every read
is an observation (the device time of its newest sample, the session time it arrived), and
the block is stamped with the fit of host time on device time that runs under all of them (the
lower envelope: arrival is never before the sample was taken), which follows the device
clock's drift. A device restart begins a new epoch and a new fit. A gauge has neither number
nor clock: its readings are numbered as they arrive and stamped with the host time of the read.

Pure: no threads, no I/O; fed by the link's reader thread.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from itertools import pairwise

import numpy as np

from firmware_bridge.continuity import ContinuityTracker, Gap
from recorder.source import Readings
from schemas.clockfit import ClockFitter

CATCH_UP = 0.5  # after the fit moved back, timestamps run at this fraction of speed to meet it


@dataclass
class Placed:
    """A block of samples placed on the recording's timeline."""

    timestamps: np.ndarray  # session seconds (fitted device clock, or host time for a gauge)
    tick_us: np.ndarray  # int64 device clock, unwrapped (host µs for a gauge)
    sequence: np.ndarray  # int64, unwrapped
    first: int  # index in the recording of the block's first sample
    gaps: list[Gap] = field(default_factory=list)  # frames lost before samples of the block


class Timeline:
    """Continuity and the fitted device→session clock, block after block."""

    def __init__(self) -> None:
        self.continuity = ContinuityTracker()
        self.samples = 0  # samples placed so far
        self.clock = ClockFitter()  # this device epoch's fit (bins of 1 s of device time)
        self._last: tuple[float, float] | None = None  # this epoch's last (timestamp, device s)
        self._pairs: list[tuple[float, int]] = []  # final clock pairs not yet taken

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

    def take_pairs(self) -> list[tuple[float, int]]:
        """The clock observations with the least delay, one per second of device time, as
        (session seconds, device tick µs): those that became final since the last call.
        They are what the fit rests on, so the file can be refitted from them."""
        pairs, self._pairs = self._pairs, []
        return pairs

    def _session_times(self, tick_us: np.ndarray, restarts: list[int],
                       host: float) -> np.ndarray:
        """The device clock through the current fit, a new fit at each device epoch.

        A refit can move the line back (by a fraction of a millisecond once the fit has a few
        seconds, by up to a read's latency in the first second). Timestamps never step back:
        from the last one given in the epoch they run on at CATCH_UP of the fitted speed
        until they meet the new line (after twice the step of device time), so they keep
        increasing within an epoch."""
        out = np.empty(len(tick_us))
        for a, b in pairwise([0, *restarts, len(tick_us)]):
            if a == b:
                continue
            if a in restarts:
                self._keep(self.clock.reset())
                self._last = None
            device_s = tick_us[a:b] / 1e6
            self._keep(self.clock.observe(float(device_s[-1]), host))
            fit = self.clock.fit()
            out[a:b] = fit.host_time(device_s)
            if self._last is not None:
                last_t, last_d = self._last
                out[a:b] = np.maximum(out[a:b], last_t + CATCH_UP * fit.rate * (device_s - last_d))
            self._last = (float(out[b - 1]), float(device_s[-1]))
        return out

    def _keep(self, pair: tuple[float, float] | None) -> None:
        """A final (device s, host s) observation of the fitter, kept for ``take_pairs``."""
        if pair is not None:
            self._pairs.append((pair[1], round(pair[0] * 1e6)))
