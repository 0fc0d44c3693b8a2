"""A fixed-size ring buffer of recent samples for the screen (lossy by design).

One producer (the serial reader thread) pushes blocks; readers peek at the newest samples
without consuming them, as BrainFlow's ``get_current_board_data`` does. The recording never
depends on this buffer: the writer has its own lossless queue.
"""

from __future__ import annotations

import bisect
import threading
from dataclasses import dataclass

import numpy as np


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
        self._time = np.zeros(capacity, dtype=np.float64)
        self._force = np.zeros(capacity, dtype=np.float64)
        self._flags = np.zeros(capacity, dtype=np.uint8)
        self._total = 0
        self._lock = threading.Lock()

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
