"""Where each sample sits in the recording: its sequence number, device clock and session time.

A protocol-v1 device numbers its frames and stamps them with its own microsecond clock:
``firmware_bridge.continuity`` unwraps both and finds the frames lost on the way. The device
clock is mapped to session seconds by a fit, not an anchor (``schemas.clockfit``): every read
is an observation (the device time of its newest sample, the session time it arrived), and
the block is stamped with the fit of host time on device time that runs under all of them (the
lower envelope: arrival is never before the sample was taken), which follows the device
clock's drift. A device restart begins a new epoch and a new fit. Each block comes with the
events the file keeps of this: ``device_restart`` at the first sample of a new epoch, so that
``palpation refit`` finds the epochs, and ``clock_fit`` at the first sample stamped with a
refreshed fit, so that the file tells which mapping each sample got. A gauge has neither number
nor clock: its readings are numbered as they arrive and stamped with the host time of the read.

Pure: no threads, no I/O; fed by the link's reader thread.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from itertools import pairwise

import numpy as np

from firmware_bridge.continuity import ContinuityTracker, Gap
from recorder.source import Readings
from schemas.clockfit import ClockFit, ClockFitter
from schemas.events import Event

CATCH_UP = 0.5  # after the fit moved back, timestamps run at this fraction of speed to meet it


@dataclass
class Placed:
    """A block of samples placed on the recording's timeline."""

    timestamps: np.ndarray  # session seconds (fitted device clock, or host time for a gauge)
    tick_us: np.ndarray  # int64 device clock, unwrapped (host µs for a gauge)
    sequence: np.ndarray  # int64, unwrapped
    first: int  # the row in the file of the block's first sample (see ``row``)
    gaps: list[Gap] = field(default_factory=list)  # frames lost before samples of the block
    events: list[Event] = field(default_factory=list)  # device_restart and clock_fit
    recorded: bool = True  # False: the block does not reach the file (paused, or dropped)

    def row(self, i: int) -> int:
        """The row in the file's sample datasets of the block's sample ``i``; for a block not
        recorded, the row the next recorded sample gets (an event's ``sample_index``)."""
        return self.first + i if self.recorded else self.first


class Timeline:
    """Continuity and the fitted device→session clock, block after block."""

    def __init__(self) -> None:
        self.continuity = ContinuityTracker()
        self.samples = 0  # samples placed so far (paused ones too)
        self.clock = ClockFitter()  # this device epoch's fit (see schemas.clockfit.BIN_S)
        self._last: tuple[float, float] | None = None  # this epoch's last (timestamp, device s)
        self._pairs: list[tuple[float, int]] = []  # final clock pairs not yet taken
        self._fit: ClockFit | None = None  # the fit the last block was stamped with

    @property
    def nominal_rate_hz(self) -> float:
        return self.continuity.nominal_rate_hz

    @nominal_rate_hz.setter
    def nominal_rate_hz(self, rate: float) -> None:
        """The device's rate, which lets continuity resolve long gaps."""
        self.continuity.nominal_rate_hz = rate

    def place(self, readings: Readings, host: float | np.ndarray, *, row: int | None = None,
              recorded: bool = True) -> Placed:
        """Place a non-empty block whose first sample is row ``row`` of the file (default:
        the samples placed so far, as when nothing was paused or dropped); ``recorded`` False
        when the block does not reach the file. ``host`` is the session time of the read
        that brought the block, or per sample when it came in several reads (each read is a
        clock observation)."""
        n = len(readings.raw)
        count = self.samples
        self.samples += n
        first = count if row is None else row
        if readings.seq is None:
            times = np.full(n, host) if np.ndim(host) == 0 else np.array(host, np.float64)
            return Placed(times, np.round(times * 1e6).astype(np.int64),
                          np.arange(count, count + n, dtype=np.int64), first,
                          recorded=recorded)
        un = self.continuity.feed(readings.seq, readings.tick_us)
        placed = Placed(np.empty(n), un.tick_us, un.sequence, first, un.gaps, recorded=recorded)
        self._stamp(placed, un.restarts, host)
        return placed

    def take_pairs(self) -> list[tuple[float, int]]:
        """The clock observations with the least delay, one per bin of device time (a quarter
        second, ``schemas.clockfit.BIN_S``), as
        (session seconds, device tick µs): those that became final since the last call.
        They are what the fit rests on, so the file can be refitted from them."""
        pairs, self._pairs = self._pairs, []
        return pairs

    def finish(self) -> list[tuple[float, int]]:
        """The recording ends: ``take_pairs`` with the open bin's pair too, final now that
        no later read can replace it (so the file keeps the pairs of the last second)."""
        self._keep(self.clock.reset())
        self._last, self._fit = None, None
        return self.take_pairs()

    def _stamp(self, placed: Placed, restarts: list[int], host: float | np.ndarray) -> None:
        """Fill ``placed.timestamps``: the device clock through the current fit, a new fit at
        each device epoch; the events of restarts and refreshed fits go to ``placed.events``.

        A refit can move the line back (by a fraction of a millisecond once the fit has a few
        seconds, by up to a read's latency in the first second). Timestamps never step back:
        from the last one given in the epoch they run on at CATCH_UP of the fitted speed
        until they meet the new line (after twice the step of device time), so they keep
        increasing within an epoch."""
        out = placed.timestamps
        arrival = np.broadcast_to(host, out.shape)
        for a, b in pairwise([0, *restarts, len(out)]):
            if a == b:
                continue
            if a in restarts:
                self._keep(self.clock.reset())
                self._last, self._fit = None, None
            device_s = placed.tick_us[a:b] / 1e6
            for i in _read_ends(arrival[a:b]):
                self._keep(self.clock.observe(float(device_s[i]), float(arrival[a + i])))
            fit = self.clock.fit()
            out[a:b] = fit.host_time(device_s)
            if self._last is not None:
                # the fitted line rises faster than the catch-up line, so once a block starts
                # on or above it, all of the block is
                last_t, last_d = self._last
                if out[a] < last_t + CATCH_UP * fit.rate * (device_s[0] - last_d):
                    out[a:b] = np.maximum(out[a:b],
                                          last_t + CATCH_UP * fit.rate * (device_s - last_d))
            self._last = (float(out[b - 1]), float(device_s[-1]))
            if a in restarts:
                placed.events.append(Event(float(out[a]), "device_restart",
                                           value=float(placed.tick_us[a]),
                                           sample_index=placed.row(a)))
            if fit != self._fit:
                self._fit = fit
                placed.events.append(fit_event(fit, float(out[a]), placed.row(a)))

    def _keep(self, pair: tuple[float, float] | None) -> None:
        """A final (device s, host s) observation of the fitter, kept for ``take_pairs``."""
        if pair is not None:
            self._pairs.append((pair[1], round(pair[0] * 1e6)))


def _read_ends(arrival: np.ndarray) -> list[int]:
    """The samples of a block that are clock observations, given each one's arrival: the
    newest of each read (the last of each run of one arrival time), and the block's last,
    which arrived with the read after it when the block ends at a device restart."""
    return [*np.flatnonzero(arrival[1:] != arrival[:-1]).tolist(), len(arrival) - 1]


def fit_event(fit: ClockFit, time_s: float, sample_index: int) -> Event:
    """The ``clock_fit`` event of a fit first applied to sample ``sample_index``: value the
    drift in ppm, text the mapping as JSON (host s = offset_s + rate * device_tick_us / 1e6)."""
    text = json.dumps({"offset_s": fit.offset_s, "rate": fit.rate, "from_sample": sample_index},
                      separators=(",", ":"))
    return Event(time_s, "clock_fit", value=fit.drift_ppm, text=text, sample_index=sample_index)
