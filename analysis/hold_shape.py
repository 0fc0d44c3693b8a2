"""What the force curve of one hold shows: its plateau, the loading ramp and the overshoot.

Pure functions on the samples of one hold (numpy arrays); ``analysis.metrics`` turns them into
the hold table's row. Definitions (forces in N, times in s):

* Smoothed force ``s``: centred 100 ms moving average of the hold's samples. It removes
  8-12 Hz physiological tremor (a 10 Hz sine averages out exactly) but leaves a linear ramp
  unchanged, so it is used to *locate* things; levels are averaged from the raw force.
* Plateau: the part of the hold after the overshoot has settled and before the release.
  1. ``core``: the middle half of the stretch from the smoothed peak to the end of the hold.
     Its median smoothed force is the eventual level ``L``; a straight line (least squares)
     fitted to the core samples within 10 % of ``L`` is the trend (fatigue drift).
  2. The plateau starts at the first sample at or after the peak whose smoothed force lies
     within +-``PLATEAU_TOL`` (8 %) of ``L`` around the trend (the overshoot has settled),
     and ends half a smoothing window (50 ms) before the last sample within +-4 % (half
     the tolerance) of it: the release has begun there, and the smoothed force starts
     falling half a window before the raw force does.
  3. Inside it, samples whose smoothed force falls more than ``PLATEAU_TOL`` x ``L`` below the
     trend are re-press dips and are left out (the therapist briefly unloaded; the level they
     held is what is measured).
  4. There is no plateau (plateau metrics NaN) when the window lasts less than
     ``PLATEAU_MIN_S`` (0.5 s), or when the trend changes by more than ``PLATEAU_MAX_CHANGE``
     (20 % of ``L``) across it (a ramp straight into a release has no level to report).
* plateau_mean_n: mean raw force over the plateau samples (dips excluded); plateau_cv its
  SD / mean.
* steadiness_n: SD of the plateau force (raw, dips excluded) about the least-squares line
  through it: tremor and wander, not the slow fatigue drift (which would otherwise dominate
  the SD of a long hold and say nothing about a steady hand).
* drift_n: that line's change from the first to the last plateau sample (negative: the force
  faded): the slow fatigue drift steadiness leaves out.
* ramp_rate_n_per_s: 0.6 L / (t80 - t20) where t20/t80 are the first times the smoothed
  force reaches 20 % / 80 % of the plateau mean on the loading side (before the peak),
  linearly interpolated between samples.
* overshoot_pct (settling overshoot): (peak of the *smoothed* force - plateau mean) / plateau
  mean x 100. The raw peak also carries the tremor, which would make even a perfect loading
  look like a few % overshoot.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from analysis.settings import DEFAULT_SETTINGS, AnalysisSettings

__all__ = ["PLATEAU_MAX_CHANGE", "PLATEAU_MIN_S", "PLATEAU_TOL", "SMOOTH_S", "Shape", "shape"]

# The defaults (analysis.settings: an analysis may set others)
SMOOTH_S = DEFAULT_SETTINGS.smooth_s  # moving-average window: locates peak, plateau and ramp
PLATEAU_TOL = DEFAULT_SETTINGS.plateau_tol  # smoothed force within this fraction of the level
PLATEAU_MIN_S = DEFAULT_SETTINGS.plateau_min_s  # shorter windows are not a plateau
PLATEAU_MAX_CHANGE = DEFAULT_SETTINGS.plateau_max_change  # trend change, fraction of the level
_NAN = math.nan


def _smooth(f: np.ndarray, w: int) -> np.ndarray:
    """Centred moving average over 2*w+1 samples (shrinking at the edges)."""
    n = f.size
    if w <= 0 or n < 3:
        return f.astype(np.float64, copy=True)
    c = np.empty(n + 1)
    c[0] = 0.0
    np.cumsum(f, out=c[1:])
    i = np.arange(n)
    lo = np.maximum(i - w, 0)
    hi = np.minimum(i + w + 1, n)
    return (c[hi] - c[lo]) / (hi - lo)


def _line(x: np.ndarray, y: np.ndarray) -> tuple[float, float, float]:
    """Least-squares line through (x, y) as (mean x, mean y, slope)."""
    xm = float(x.mean())
    dx = x - xm
    den = float(np.square(dx).sum())  # ufunc reductions, not BLAS: no thread start-up
    slope = float((dx * (y - y.mean())).sum()) / den if den > 0 else 0.0
    return xm, float(y.mean()), slope


def _first_crossing(t: np.ndarray, s: np.ndarray, level: float) -> float:
    """Interpolated time of the first sample of ``s`` at or above ``level`` (NaN if none)."""
    idx = np.flatnonzero(s >= level)
    if idx.size == 0:
        return _NAN
    k = int(idx[0])
    if k == 0 or s[k] == s[k - 1]:
        return float(t[k])
    return float(t[k - 1] + (level - s[k - 1]) * (t[k] - t[k - 1]) / (s[k] - s[k - 1]))


def _plateau(t: np.ndarray, s: np.ndarray, ipk: int,
             rule: AnalysisSettings) -> tuple[np.ndarray, int, int] | None:
    """(keep-mask over [p0, p1], p0, p1) in the hold's sample indices, or None."""
    n = s.size
    if n - ipk < 8:
        return None
    c0 = ipk + (n - ipk) // 4
    c1 = ipk + 3 * (n - ipk) // 4
    core = s[c0:c1]
    if core.size < 4:
        return None
    level = float(np.median(core))
    if not level > 0:
        return None
    keep = np.abs(core - level) <= 0.10 * level
    if np.count_nonzero(keep) < 4:
        return None
    xm, ym, slope = _line(t[c0:c1][keep], core[keep])
    tol = rule.plateau_tol * level
    tail_t = t[ipk:]
    dev = s[ipk:] - (ym + slope * (tail_t - xm))
    inside = np.flatnonzero(np.abs(dev) <= tol)
    settled = np.flatnonzero(np.abs(dev) <= 0.5 * tol)
    if settled.size == 0:
        return None
    p0 = ipk + int(inside[0])
    # release: the smoothed force leaves the trend half a window before the raw force does
    p1 = int(np.searchsorted(t, t[ipk + int(settled[-1])] - 0.5 * rule.smooth_s, "right")) - 1
    if p1 <= p0:
        return None
    span = float(t[p1] - t[p0])
    if span < rule.plateau_min_s or abs(slope) * span > rule.plateau_max_change * level:
        return None
    mask = dev[p0 - ipk:p1 - ipk + 1] >= -tol  # drop re-press dips
    return mask, p0, p1


@dataclass(frozen=True)
class Shape:
    """What the force curve of one hold shows: its plateau and loading ramp (NaN: not found)."""

    plateau_mean_n: float = _NAN
    cv: float = _NAN
    steadiness_n: float = _NAN
    overshoot_pct: float = _NAN
    ramp_n_per_s: float = _NAN
    plateau_start_s: float = _NAN
    plateau_end_s: float = _NAN
    drift_n: float = _NAN


def shape(tt: np.ndarray, ff: np.ndarray, rule: AnalysisSettings = DEFAULT_SETTINGS) -> Shape:
    """Plateau (level, CV, steadiness about its trend, the trend's change across it, overshoot
    of the smoothed peak above it) and the 20-80 % loading rate, from the samples ``tt``,
    ``ff`` of one hold (8 or more), the plateau as ``rule`` (its smooth_s and plateau_*)
    defines it."""
    n = ff.size
    dt = float(tt[-1] - tt[0]) / (n - 1)
    w = int(round(0.5 * rule.smooth_s / dt)) if dt > 0 else 0
    s = _smooth(ff, w)
    ipk = int(np.argmax(s))
    pl = _plateau(tt, s, ipk, rule)
    if pl is None:
        return Shape()
    mask, p0, p1 = pl
    pt, pf = tt[p0:p1 + 1][mask], ff[p0:p1 + 1][mask]
    plateau_mean = float(pf.mean())
    sd = float(pf.std(ddof=1)) if pf.size > 1 else _NAN
    xm, ym, slope = _line(pt, pf)
    resid = pf - (ym + slope * (pt - xm))
    load_t, load_s = tt[:ipk + 1], s[:ipk + 1]
    t20 = _first_crossing(load_t, load_s, 0.2 * plateau_mean)
    t80 = _first_crossing(load_t, load_s, 0.8 * plateau_mean)
    return Shape(
        plateau_mean_n=plateau_mean,
        cv=sd / plateau_mean if plateau_mean > 0 else _NAN,
        steadiness_n=float(np.sqrt(np.square(resid).sum() / max(pf.size - 2, 1))),
        overshoot_pct=(float(s[ipk]) - plateau_mean) / plateau_mean * 100.0,
        ramp_n_per_s=0.6 * plateau_mean / (t80 - t20) if t80 > t20 else _NAN,
        plateau_start_s=float(tt[p0]), plateau_end_s=float(tt[p1]),
        drift_n=slope * float(pt[-1] - pt[0]),
    )
