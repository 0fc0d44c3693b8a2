"""A fixed-size ring buffer of recent samples for the screen (lossy by design).

One producer (the serial reader thread) pushes blocks; readers peek at the newest samples
without consuming them, as BrainFlow's ``get_current_board_data`` does. The recording never
depends on this buffer: the writer has its own lossless queue.

Size, and why memory stays flat: the window reads back at most the 10 s live trace
(``latest``) and the current hold from its start (``since``; the longest preset hold is 60 s,
and a finished hold is taken on the next frame), so a recording asks for ``seconds`` (120 s)
at the device's rate. That is 17 bytes a sample, so it is capped at ``MAX_SAMPLES`` (4 M
samples, 68 MB): at 1 kHz the ring holds the full 120 s in 2 MB; at 100 kHz it holds the last
40 s, enough for the trace and a 20 s hold, while the start of a longer hold at such rates
drops off the screen's curve (never off the file). The arrays are written through when they
are allocated, so every page is resident from the start: resident memory does not creep up
as the ring fills over the first minutes (with ``np.zeros`` the pages arrive one by one).
"""

from __future__ import annotations

import bisect
import threading
from dataclasses import dataclass

import numpy as np

#: The most samples a ring sized by ``RingBuffer.for_rate`` holds, whatever the rate.
MAX_SAMPLES = 4_000_000
#: The fewest, so that a slow or unknown rate still shows a trace.
MIN_SAMPLES = 1000
#: The rate assumed when the device does not say (or says less).
MIN_RATE_HZ = 100.0


@dataclass
class RingView:
    """A copy of the newest samples; ``total`` counts every sample ever pushed."""

    time: np.ndarray
    force: np.ndarray
    flags: np.ndarray
    total: int


class RingBuffer:
    def __init__(self, capacity: int) -> None:
        if capacity <= 0:
            raise ValueError("capacity must be positive")
        self.capacity = capacity
        # np.full writes every element, so the pages are resident now rather than one by one.
        self._time = np.full(capacity, 0.0, dtype=np.float64)
        self._force = np.full(capacity, 0.0, dtype=np.float64)
        self._flags = np.full(capacity, 0, dtype=np.uint8)
        self._total = 0
        self._lock = threading.Lock()

    @classmethod
    def for_rate(cls, seconds: float, rate_hz: float | None) -> RingBuffer:
        """A ring for ``seconds`` at ``rate_hz`` (at least ``MIN_RATE_HZ``), holding between
        ``MIN_SAMPLES`` and ``MAX_SAMPLES`` samples."""
        wanted = int(seconds * max(rate_hz or 0.0, MIN_RATE_HZ))
        return cls(min(MAX_SAMPLES, max(MIN_SAMPLES, wanted)))

    @property
    def total(self) -> int:
        return self._total

    def push(self, time: np.ndarray, force: np.ndarray, flags: np.ndarray) -> None:
        n = len(time)
        skipped = max(0, n - self.capacity)
        if skipped:
            time, force, flags = time[skipped:], force[skipped:], flags[skipped:]
            n = self.capacity
        with self._lock:
            start = (self._total + skipped) % self.capacity
            first = min(n, self.capacity - start)
            for dst, src in ((self._time, time), (self._force, force), (self._flags, flags)):
                dst[start:start + first] = src[:first]
                dst[:n - first] = src[first:]
            self._total += skipped + n

    def latest(self, n: int | None = None) -> RingView:
        """The newest ``n`` samples (all held if None), oldest first."""
        with self._lock:
            held = min(self._total, self.capacity)
            n = held if n is None else min(n, held)
            end = self._total % self.capacity
            idx = (np.arange(end - n, end)) % self.capacity
            return RingView(self._time[idx], self._force[idx], self._flags[idx], self._total)

    def since(self, t: float) -> RingView:
        """Samples with time >= t that are still held; copies only those."""
        with self._lock:
            held = min(self._total, self.capacity)
            first = (self._total - held) % self.capacity
            times = self._time
            cap = self.capacity
            skip = bisect.bisect_left(range(held), t, key=lambda i: times[(first + i) % cap])
            idx = (first + np.arange(skip, held)) % cap
            return RingView(self._time[idx], self._force[idx], self._flags[idx], self._total)
