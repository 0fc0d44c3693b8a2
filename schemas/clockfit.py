"""The device clock mapped to host time: a fit of offset and drift on the lower envelope.

A sample is taken at a device instant and read by the host some time later: a USB-serial
adapter delivers in bursts (1-16 ms), and the host's scheduler adds hiccups. Arrival is never
*before* the sample was taken, so the host instant of device time d is the line
host = offset + rate * d that runs under every observation (d, arrival) and as close to them as
possible: the supporting line of their lower convex hull at the mean device time (the linear
program of Moon, Skelly & Towsley 1999; see docs/SOURCES.md). A mean fit would carry the mean
delivery delay into every timestamp; a fit anchored to the first read carries that read's delay
and ignores drift (a ceramic resonator is off by up to 0.5 %, 18 s an hour).

Observations are thinned to the one with the least delay per ``bin_s`` of device time, and the
fit uses the last ``window_s`` of them (the window moves a minute at a time), so that a slowly
changing drift (temperature) is followed; each closed minute keeps only its lower hull, so a
refit costs a few dozen points. This module is pure: the live timeline and
``palpation refit`` both use it.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass

import numpy as np

BIN_S = 0.25  # observations are thinned to the least-delayed one per this much device time
CHUNK_BINS = 240  # the window moves by this many bins (a minute) at a time
MAX_RATE_ERROR = 0.02  # a device clock further off than 2 % is taken as a fitting accident


@dataclass(frozen=True)
class ClockFit:
    """host seconds = offset_s + rate * device seconds."""

    offset_s: float
    rate: float

    def host_time(self, device_s: np.ndarray | float) -> np.ndarray | float:
        return self.offset_s + self.rate * device_s

    @property
    def drift_ppm(self) -> float:
        """How fast the device clock runs against the host's, in parts per million."""
        return (1.0 / self.rate - 1.0) * 1e6


def lower_envelope_fit(device_s: np.ndarray, host_s: np.ndarray,
                       min_span_s: float = 2.0, mean_s: float | None = None) -> ClockFit:
    """The line under every (device, host) point, touching their lower hull at the mean
    device time. With less than ``min_span_s`` of device time (or a rate off by more than
    MAX_RATE_ERROR), only the offset is fitted and the device clock is taken as exact."""
    d = np.asarray(device_s, dtype=np.float64)
    h = np.asarray(host_s, dtype=np.float64)
    if len(d) == 0:
        raise ValueError("no clock observations")
    offset_only = ClockFit(float(np.min(h - d)), 1.0)
    if float(d.max() - d.min()) < min_span_s:
        return offset_only
    order = np.argsort(d, kind="stable")
    hull = _lower_hull(d[order], h[order])
    mean = float(d.mean()) if mean_s is None else mean_s
    xs = np.array([p[0] for p in hull])
    i = int(np.clip(np.searchsorted(xs, mean) - 1, 0, len(hull) - 2))
    (x0, y0), (x1, y1) = hull[i], hull[i + 1]
    rate = (y1 - y0) / (x1 - x0)
    if not abs(rate - 1.0) <= MAX_RATE_ERROR:
        return offset_only
    return ClockFit(y0 - rate * x0, rate)


def _lower_hull(x: np.ndarray, y: np.ndarray) -> list[tuple[float, float]]:
    """Andrew's monotone chain, lower half, for points sorted by x (ties: lowest y kept)."""
    hull: list[tuple[float, float]] = []
    for px, py in zip(x.tolist(), y.tolist(), strict=True):
        _hull_push(hull, px, py)
    return hull


def _hull_push(hull: list[tuple[float, float]], px: float, py: float) -> None:
    """One step of the monotone chain: the lower hull of the points so far and (px, py),
    which lies at or right of them all."""
    if hull and hull[-1][0] == px:
        if py >= hull[-1][1]:
            return
        hull.pop()
    while len(hull) >= 2:
        (ax, ay), (bx, by) = hull[-2], hull[-1]
        if (bx - ax) * (py - ay) - (by - ay) * (px - ax) > 0:
            break
        hull.pop()
    hull.append((px, py))


@dataclass(frozen=True)
class _Chunk:
    """A minute of observations, kept as the vertices of its lower hull (the only ones a fit
    over a window of whole minutes can touch) with its count and device-time sum."""

    hull: list[tuple[float, float]]
    count: int
    sum_d: float


class ClockFitter:
    """Online fit for one device epoch: ``observe`` every read, ``fit`` whenever needed.

    The window moves a minute (``CHUNK_BINS`` bins) at a time, and each minute keeps only its
    hull's vertices (the minute in progress builds its hull as its bins close, in order of
    device time), so a refit looks at a few dozen points whatever the window. Not
    thread-safe: the reader thread owns it. ``reset`` starts a new epoch (the device
    restarted, so its clock began again)."""

    def __init__(self, bin_s: float = BIN_S, window_s: float = 600.0,
                 min_span_s: float = 2.0) -> None:
        self.bin_s = bin_s
        self.min_span_s = min_span_s
        self._chunks: deque[_Chunk] = deque(
            maxlen=max(1, round(window_s / (bin_s * CHUNK_BINS))))
        self._open = _Chunk([], 0, 0.0)  # the closed bins of the minute in progress
        self._current: tuple[float, float] | None = None  # least-delay point of the open bin
        self._current_bin = -math.inf
        self._fit: ClockFit | None = None

    def reset(self) -> tuple[float, float] | None:
        """Start a new epoch. Returns the open bin's least-delay observation (device s,
        host s), final now that no later one can replace it, or None if there is none."""
        last = self._current
        self._chunks.clear()
        self._open = _Chunk([], 0, 0.0)
        self._current, self._current_bin, self._fit = None, -math.inf, None
        return last

    def observe(self, device_s: float, host_s: float) -> tuple[float, float] | None:
        """One read: the device time of its newest sample and the host time it arrived.
        Returns the least-delay observation of the bin this one closes (final from now on),
        or None while the bin stays open."""
        b = math.floor(device_s / self.bin_s)
        closed = None
        if b != self._current_bin and self._current is not None:
            closed = self._current
            self._close_bin(closed)
            self._current = None
            self._fit = None
        self._current_bin = b
        if self._current is None or host_s - device_s < self._current[1] - self._current[0]:
            self._current = (device_s, host_s)
            if not self._chunks and self._open.count < 2:
                self._fit = None  # early on, every better observation counts at once
        return closed

    def _close_bin(self, point: tuple[float, float]) -> None:
        minute = self._open
        _hull_push(minute.hull, *point)
        self._open = _Chunk(minute.hull, minute.count + 1, minute.sum_d + point[0])
        if self._open.count == CHUNK_BINS:
            self._chunks.append(self._open)
            self._open = _Chunk([], 0, 0.0)

    def fit(self) -> ClockFit:
        """The current mapping; ValueError before the first observation."""
        if self._fit is None:
            current = [self._current] if self._current else []
            minutes = [*self._chunks, self._open]
            points = [p for chunk in minutes for p in chunk.hull] + current
            if not points:
                raise ValueError("no clock observations")
            count = sum(c.count for c in minutes) + len(current)
            mean = (sum(c.sum_d for c in minutes) + sum(p[0] for p in current)) / count
            d, h = np.array(points).T
            self._fit = lower_envelope_fit(d, h, self.min_span_s, mean_s=mean)
        return self._fit
