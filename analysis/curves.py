"""Hold curves compared with each other: an instructor's reference curve (the mean of their
holds at a point) and a trainee's distance to it (dynamic time warping per second of hold,
median difference). Pure functions on numpy arrays; each curve is ``(t, f)``, force in N
against time. The names and definitions the report shows are in
``analysis.definitions.REFERENCE_METRICS``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

__all__ = [
    "dtw_distance",
    "dtw_per_second",
    "median_abs_difference",
    "reference_curve",
    "resample_curve",
]

_NAN = math.nan

def resample_curve(t: np.ndarray, f: np.ndarray, start_s: float, end_s: float, *,
                   dt: float = 0.01) -> np.ndarray:
    """Force on the grid ``0, dt, 2 dt ... <= end_s - start_s`` of time since ``start_s``
    (linear interpolation; 0 outside the samples): a hold's curve for comparison."""
    grid = np.arange(0.0, end_s - start_s + 0.5 * dt, dt) + start_s
    return np.interp(grid, t, f, left=0.0, right=0.0)


def dtw_distance(a: np.ndarray, b: np.ndarray, band: int | None = None) -> float:
    """Dynamic time warping distance: the least sum of |a_i - b_j| over a monotone warping
    path from (0, 0) to (n-1, m-1). ``band``: Sakoe-Chiba half-width in samples (|i - j| <=
    band; widened to |n - m| so the end stays reachable); None = unconstrained. Computed one
    anti-diagonal at a time with numpy, O((n + m) x band) time."""
    x = np.asarray(a, dtype=np.float64).reshape(-1)
    y = np.asarray(b, dtype=np.float64).reshape(-1)
    n, m = x.size, y.size
    if n == 0 or m == 0:
        raise ValueError("both curves need at least one sample")
    w = max(n, m) if band is None else max(int(band), abs(n - m))
    inf = math.inf
    d = np.full((n + 1, m + 1), inf)
    d[0, 0] = 0.0
    flat = d.reshape(-1)
    stride = m + 1
    for k in range(2, n + m + 1):  # i + j = k, 1-based cells
        lo = max(1, k - m, -((w - k) // 2))  # ceil((k - w) / 2)
        hi = min(n, k - 1, (k + w) // 2)
        if hi < lo:
            continue
        i = np.arange(lo, hi + 1)
        j = k - i
        pos = i * stride + j
        best = np.minimum(np.minimum(flat[pos - stride - 1], flat[pos - stride]), flat[pos - 1])
        flat[pos] = np.abs(x[i - 1] - y[j - 1]) + best
    return float(d[n, m])


def median_abs_difference(a: tuple[np.ndarray, np.ndarray], b: tuple[np.ndarray, np.ndarray],
                          *, dt: float = 0.01) -> float:
    """Median |f_a - f_b| of two hold curves ``(t, f)``, each aligned to its own first sample
    (time since start) and resampled to a common ``dt`` grid over the time both cover."""
    ta, fa = (np.asarray(v, dtype=np.float64) for v in a)
    tb, fb = (np.asarray(v, dtype=np.float64) for v in b)
    if ta.size < 2 or tb.size < 2:
        return _NAN
    ta, tb = ta - ta[0], tb - tb[0]
    grid = np.arange(0.0, min(ta[-1], tb[-1]) + 0.5 * dt, dt)
    return float(np.median(np.abs(np.interp(grid, ta, fa) - np.interp(grid, tb, fb))))


def dtw_per_second(a: tuple[np.ndarray, np.ndarray], b: tuple[np.ndarray, np.ndarray], *,
                   dt: float = 0.05, band: int | None = None) -> float:
    """DTW distance of two hold curves ``(t, f)`` (each timed from its own first sample),
    resampled every ``dt`` s, as N per second of hold: the summed force gaps along the best
    alignment (N x dt = N·s) divided by the longer curve's length (s). So it hardly depends on
    ``dt`` (a finer grid lets the warping follow tremor a little more) and not on how long the
    holds were: it is the typical gap, in N, once timing differences are taken out (two flat
    holds 2 N apart are at 2 whatever their lengths)."""
    curves, spans = [], []
    for t, f in (a, b):
        t = np.asarray(t, dtype=np.float64)
        if t.size < 2 or not t[-1] > t[0]:
            return _NAN
        spans.append(float(t[-1] - t[0]))
        curves.append(resample_curve(t, np.asarray(f, dtype=np.float64), float(t[0]),
                                     float(t[-1]), dt=dt))
    return dtw_distance(*curves, band=band) * dt / max(spans)


def reference_curve(curves: Sequence[tuple[np.ndarray, np.ndarray]], *,
                    dt: float = 0.01) -> tuple[np.ndarray, np.ndarray]:
    """The mean of several holds ``(t, f)`` (each timed from its own first sample): each is
    stretched in time to their mean length, and the stretched curves are averaged on a ``dt``
    grid. An instructor's reference at a point is the mean of their holds there, not whichever
    came first; stretching keeps the mean's ramp and release as sharp as each hold's (averaging
    unstretched curves would smear the releases into a staircase). The mean of one curve is
    that curve itself, timed from its first sample (so a hold is at distance 0 from itself)."""
    usable = [(np.asarray(t, dtype=np.float64), np.asarray(f, dtype=np.float64))
              for t, f in curves if len(t) >= 2]
    if not usable:
        return np.empty(0), np.empty(0)
    if len(usable) == 1:
        (t, f), = usable
        return t - t[0], f
    spans = [float(t[-1] - t[0]) for t, _ in usable]
    length = float(np.mean(spans))
    grid = np.arange(0.0, length + 0.5 * dt, dt)
    stack = [np.interp(t[0] + grid * (span / length if length > 0 else 0.0), t, f)
             for (t, f), span in zip(usable, spans, strict=True)]
    return grid, np.mean(stack, axis=0)
