"""The hold score: 0 to 100, with the deductions that made it, a mastery rule over recent
scores, and whether a trainee's self-estimate of a hold was right.

Why a score: a trainee learns from one number they can chase and the reason it is not 100
(CPR trainers grade every compression the same way). It is continuous, so a near miss earns
nearly full credit instead of a flag; each term is capped, so one fault cannot hide the
others; the total is clipped to 0..100. The formula, and why each term weighs what it does,
is in ``analysis/TABLE.md`` ("The hold score"); the constants below are its only home.

Pure: ``score_metrics`` reads a row of the hold table (``analysis.metrics.HoldMetrics``),
which carries the dose the hold was judged against, so a score needs nothing else.
``score_hold`` is the live window's call on a hold it has just seen end: the same metrics on
the same samples, so the window and the report give a hold the same score.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from analysis.metrics import HoldMetrics
    from schemas.session_protocol import Dose

__all__ = ["DRIFT_MAX", "EARLY_RELEASE_MAX", "NEAR_BAND_FRAC", "OVERSHOOT_MAX", "RAMP_MAX",
           "STEADINESS_MAX", "TIME_IN_BAND_MAX", "Deduction", "HoldScore", "Mastery",
           "estimate_correct", "graded_time_in_band", "mastery", "score_hold", "score_metrics"]

TIME_IN_BAND_MAX = 40.0  # all of the minimum hold outside the band
NEAR_BAND_FRAC = 0.10  # graded time in band: credit falls to 0 this far (x target) outside it
EARLY_RELEASE_MAX = 15.0  # released at once (scaled by the share of the minimum hold missed)
OVERSHOOT_PER_PCT = 2.0 / 3.0  # per % of the peak above the band's top ...
OVERSHOOT_MAX = 20.0  # ... reached at 30 %
STEADINESS_FREE_PCT = 1.0  # SD about the trend, % of the target, a steady hand's tremor
STEADINESS_PER_PCT = 2.5  # per % beyond it ...
STEADINESS_MAX = 10.0  # ... reached at 5 % (the "unsteady" flag)
DRIFT_PER_PCT = 1.0  # per % of the target the plateau's trend changed ...
DRIFT_MAX = 10.0  # ... reached at 10 %
RAMP_PER_PCT = 0.2  # per % the loading rate lies outside the protocol's corridor ...
RAMP_MAX = 10.0  # ... reached at 50 %


@dataclass(frozen=True)
class Deduction:
    """Points taken off a hold's score for one fault: ``item`` names the term ("time in band",
    "overshoot", "steadiness", "drift", "ramp rate", "early release"), ``points`` (> 0) what it
    cost, ``detail`` what was measured, e.g. "overshoot 18 %"."""

    item: str
    points: float
    detail: str

    def text(self) -> str:
        """The deduction as a trainee reads it, e.g. "overshoot 18 %: −12"."""
        pts = f"{self.points:.0f}" if self.points >= 0.95 else f"{self.points:.1f}"
        return f"{self.detail}: −{pts}"


@dataclass(frozen=True)
class HoldScore:
    """A hold's score (0..100; NaN for a hold that is not judged: cut off by the recording's
    end, or without a target band) and its deductions, largest first."""

    score: float
    deductions: tuple[Deduction, ...] = ()

    @property
    def largest(self) -> Deduction | None:
        """The deduction that cost the most (None: a perfect or unjudged hold)."""
        return self.deductions[0] if self.deductions else None


def graded_time_in_band(t_s: np.ndarray, force_n: np.ndarray, low_n: float,
                        high_n: float) -> float:
    """Time in the band with partial credit near it (s): each sample weighs its interval since
    the one before, fully inside the band (edges included), falling linearly to nothing
    ``NEAR_BAND_FRAC`` x the target (the band's middle) outside it. So a plateau just over the
    band's top keeps most of its credit: the score is continuous in the force. NaN without a
    band."""
    if not _finite(low_n, high_n) or high_n <= 0:
        return math.nan
    t, f = np.asarray(t_s, dtype=np.float64), np.asarray(force_n, dtype=np.float64)
    if t.size < 2:
        return 0.0
    margin = NEAR_BAND_FRAC * 0.5 * (low_n + high_n)
    outside = np.maximum(np.maximum(low_n - f[1:], f[1:] - high_n), 0.0)
    weight = np.clip(1.0 - outside / margin, 0.0, 1.0) if margin > 0 else (outside == 0)
    return float(np.sum(weight * np.maximum(np.diff(t), 0.0)))


def _finite(*values: float) -> bool:
    return all(isinstance(v, (int, float)) and math.isfinite(v) for v in values)


def _clip(x: float, cap: float) -> float:
    return min(max(x, 0.0), cap)


def _time_terms(m: HoldMetrics) -> list[Deduction]:
    """Time in band against the minimum hold (the whole hold when the dose sets none), and
    the early release."""
    out = []
    need = m.min_hold_s if _finite(m.min_hold_s) and m.min_hold_s > 0 else m.duration_s
    if _finite(need, m.graded_time_in_band_s) and need > 0:
        pts = TIME_IN_BAND_MAX * _clip(1.0 - m.graded_time_in_band_s / need, 1.0)
        out.append(Deduction("time in band", pts,
                             f"time in band {m.graded_time_in_band_s:.1f} of {need:g} s"))
    if _finite(m.min_hold_s, m.duration_s) and m.min_hold_s > 0:
        pts = EARLY_RELEASE_MAX * _clip((m.min_hold_s - m.duration_s) / m.min_hold_s, 1.0)
        out.append(Deduction("early release", pts,
                             f"released at {m.duration_s:.1f} of {m.min_hold_s:g} s"))
    return out


def _force_terms(m: HoldMetrics) -> list[Deduction]:
    """Overshoot above the band, steadiness and drift on the plateau, and the loading rate
    against the protocol's corridor."""
    out = []
    if _finite(m.peak_over_band_pct):
        pts = _clip(OVERSHOOT_PER_PCT * m.peak_over_band_pct, OVERSHOOT_MAX)
        out.append(Deduction("overshoot", pts, f"overshoot {m.peak_over_band_pct:.0f} %"))
    if _finite(m.steadiness_n, m.target_n) and m.target_n > 0:
        pct = m.steadiness_n / m.target_n * 100.0
        pts = _clip(STEADINESS_PER_PCT * (pct - STEADINESS_FREE_PCT), STEADINESS_MAX)
        out.append(Deduction("steadiness", pts, f"unsteady {pct:.1f} % of target"))
    if _finite(m.drift_n, m.target_n) and m.target_n > 0:
        pct = m.drift_n / m.target_n * 100.0
        out.append(Deduction("drift", _clip(DRIFT_PER_PCT * abs(pct), DRIFT_MAX),
                             f"drift {pct:+.0f} % of target"))
    rate, low, high = m.ramp_rate_n_per_s, m.ramp_min_n_per_s, m.ramp_max_n_per_s
    if _finite(rate) and (_finite(low) or _finite(high)):
        off = 0.0
        if _finite(low) and low > 0 and rate < low:
            off = (low - rate) / low * 100.0
        elif _finite(high) and rate > high:
            off = (rate - high) / high * 100.0
        word = "slow" if _finite(low) and rate < low else "fast"
        out.append(Deduction("ramp rate", _clip(RAMP_PER_PCT * off, RAMP_MAX),
                             f"ramp {off:.0f} % too {word}"))
    return out


def score_metrics(m: HoldMetrics) -> HoldScore:
    """The score of the hold in row ``m``: 100 minus its deductions (each capped), clipped to
    0..100; only deductions that cost something are listed. NaN (no deductions) for a hold the
    recording's end cut off, or one without a target band (nothing to judge it against)."""
    if not m.complete or not _finite(m.band_low_n, m.band_high_n):
        return HoldScore(math.nan)
    ded = sorted((d for d in (*_time_terms(m), *_force_terms(m)) if d.points > 0),
                 key=lambda d: -d.points)
    total = math.fsum(d.points for d in ded)
    return HoldScore(min(max(100.0 - total, 0.0), 100.0), tuple(ded))


def score_hold(t_s: np.ndarray, force_n: np.ndarray, start_s: float, end_s: float, dose: Dose,
               area_cm2: float = math.nan,
               band_n: tuple[float, float] | None = None) -> HoldScore:
    """The score of the hold from ``start_s`` to ``end_s`` in the samples ``t_s``, ``force_n``
    (any stretch holding it), judged against ``dose`` and ``band_n`` (N; default: the dose's
    band, e.g. a point's anchored band otherwise): the hold table's metrics of those samples,
    scored by ``score_metrics``. The hold counts as complete (it has ended)."""
    # analysis.metrics scores its rows with this module, so it is imported here, when called
    from analysis.metrics import band_or_nan, hold_metrics, span_hold

    band = band_n if band_n is not None else band_or_nan(dose, area_cm2)
    hold = span_hold(t_s, force_n, start_s, end_s, band)
    return score_metrics(hold_metrics(t_s, force_n, hold, dose, area_cm2=area_cm2, band_n=band))


@dataclass(frozen=True)
class Mastery:
    """The mastery rule over the latest scores: ``met`` when ``passing`` of the last
    ``considered`` (at most ``window``) scored ``threshold`` or more, and ``passing`` reached
    ``needed``."""

    met: bool
    passing: int
    considered: int
    needed: int
    window: int
    threshold: float

    def text(self) -> str:
        """E.g. "mastery: 3 of last 5 >= 75 (need 4)"; "mastery met: ..." once met."""
        return (f"mastery{' met' if self.met else ''}: {self.passing} of last "
                f"{self.considered} >= {self.threshold:g} (need {self.needed})")


def mastery(scores: Sequence[float], count: int = 4, window: int = 5,
            threshold: float = 75.0) -> Mastery:
    """Whether ``count`` of the last ``window`` scored holds reached ``threshold``, e.g. 4 of
    the last 5 >= 75; unscored holds (NaN) are skipped, as they were not judged."""
    last = [s for s in scores if math.isfinite(s)][-window:] if window > 0 else []
    passing = sum(s >= threshold for s in last)
    return Mastery(met=passing >= count, passing=passing, considered=len(last), needed=count,
                   window=window, threshold=float(threshold))


def estimate_correct(value: int, m: HoldMetrics) -> bool:
    """Whether a self-estimate (-1 too light, 0 right, +1 too firm) says where the hold's
    plateau mean lay: under the band, in it (edges included) or over it. False for a hold
    without a plateau or a band: there is no level to have estimated right."""
    if not _finite(m.plateau_mean_n, m.band_low_n, m.band_high_n):
        return False
    level = m.plateau_mean_n
    actual = -1 if level < m.band_low_n else (1 if level > m.band_high_n else 0)
    return int(value) == actual
