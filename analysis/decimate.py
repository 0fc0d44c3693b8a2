"""Peak-preserving decimation for drawing: a long trace reduced to a few thousand points.

Screen pixels, not samples, bound what a plot can show; drawing 60 000 samples of a hold
costs far more than drawing the 2 × 1000 extremes of 1000 columns, and looks the same
(pyqtgraph's 'peak' downsampling does the same thing per frame; doing it once per hold,
and only on the newest samples each frame, keeps the window's frame time flat).
"""

from __future__ import annotations

import numpy as np


def peak_decimate(x: np.ndarray, y: np.ndarray, max_points: int) -> tuple[np.ndarray, np.ndarray]:
    """At most ``max_points`` points keeping each bucket's minimum and maximum, in order; the
    last bucket may be short, so the newest sample is always drawn."""
    n = len(x)
    if n <= max_points or max_points < 4:
        return x, y
    size = -(-n // (max_points // 2))
    buckets = -(-n // size)
    padded = np.empty(buckets * size, dtype=y.dtype)
    padded[:n] = y
    padded[n:] = y[-1]
    yb = padded.reshape(buckets, size)
    lo, hi = yb.argmin(axis=1), yb.argmax(axis=1)
    base = np.arange(buckets) * size
    idx = np.empty(2 * buckets, dtype=np.int64)
    idx[0::2] = base + np.minimum(lo, hi)
    idx[1::2] = base + np.maximum(lo, hi)
    np.minimum(idx, n - 1, out=idx)
    idx[-1] = n - 1
    return x[idx], y[idx]
