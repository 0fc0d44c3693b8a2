"""Peak-preserving decimation for drawing: a long trace reduced to a few thousand points.

Screen pixels, not samples, bound what a plot can show; drawing 60 000 samples of a hold
costs far more than drawing the 2 × 1000 extremes of 1000 columns, and looks the same
(pyqtgraph's 'peak' downsampling does the same thing per frame; doing it once per hold,
and only on the newest samples each frame, keeps the window's frame time flat).
"""

from __future__ import annotations

import numpy as np


def peak_decimate(x: np.ndarray, y: np.ndarray, max_points: int) -> tuple[np.ndarray, np.ndarray]:
    """At most ``max_points`` points keeping each bucket's minimum and maximum, in order."""
    n = len(x)
    if n <= max_points or max_points < 4:
        return x, y
    buckets = max_points // 2
    size = n // buckets
    m = buckets * size
    yb = y[:m].reshape(buckets, size)
    lo = yb.argmin(axis=1)
    hi = yb.argmax(axis=1)
    first = np.minimum(lo, hi)
    second = np.maximum(lo, hi)
    base = np.arange(buckets) * size
    idx = np.empty(2 * buckets + (n - m > 0), dtype=np.int64)
    idx[0:2 * buckets:2] = base + first
    idx[1:2 * buckets:2] = base + second
    if n - m > 0:
        idx[-1] = n - 1
    return x[idx], y[idx]
