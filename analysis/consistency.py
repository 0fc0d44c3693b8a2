"""Across-hold statistics of the hold table: consistency per trigger point and feedback
condition, variable error, and error-detection accuracy (pure; rows are
``analysis.metrics.HoldMetrics``, which re-exports these names)."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from analysis.metrics import HoldMetrics

__all__ = ["ConsistencyRow", "consistency", "estimate_accuracy", "variable_error"]

_NAN = math.nan


@dataclass
class ConsistencyRow:
    """Across-hold statistics of one trigger point with feedback on (blind False) or off."""

    trigger_point: str
    blind: bool
    n: int
    plateau_mean_n: float
    plateau_sd_n: float
    plateau_cv: float
    duration_mean_s: float
    duration_sd_s: float
    duration_cv: float
    variable_error_n: float
    adherence_pct: float
    mean_score: float
    estimates: int
    estimate_accuracy_pct: float
    reps: list[int] = field(default_factory=list)


def _sd(x: np.ndarray) -> float:
    return float(np.std(x, ddof=1)) if x.size > 1 else _NAN


def variable_error(values: Iterable[float]) -> float:
    """Variable error: SD (n - 1) of the constant errors; non-finite values are ignored."""
    v = np.asarray(list(values), dtype=np.float64)
    return _sd(v[np.isfinite(v)])


def estimate_accuracy(rows: Iterable[HoldMetrics]) -> tuple[int, int]:
    """Error-detection accuracy as counts: (holds with a self-estimate and a plateau, how
    many of them the estimate got right)."""
    judged = [r for r in rows if math.isfinite(r.self_estimate)
              and math.isfinite(r.plateau_mean_n)]
    return len(judged), sum(bool(r.estimate_correct) for r in judged)


def _mean(values: Iterable[float]) -> float:
    """Mean of the finite values (NaN: none)."""
    v = np.asarray(list(values), dtype=np.float64)
    v = v[np.isfinite(v)]
    return float(v.mean()) if v.size else _NAN


def consistency(rows: Sequence[HoldMetrics]) -> list[ConsistencyRow]:
    """Per trigger point and feedback condition (blind False = feedback on): n, mean, SD
    (n - 1) and CV of the plateau mean and of the duration, variable error, dose
    adherence (% of holds with ``dose_met``), the mean score (of the scored holds) and the
    error-detection accuracy (``estimate_accuracy``). Holds without a plateau count in n,
    duration and adherence but not in the plateau statistics. Rows in order of first
    appearance."""
    groups: dict[tuple[str, bool], list[HoldMetrics]] = {}
    for r in rows:
        groups.setdefault((r.trigger_point, bool(r.blind)), []).append(r)
    out = []
    for (tp, blind), rs in groups.items():
        pm = np.array([r.plateau_mean_n for r in rs], dtype=np.float64)
        pm = pm[np.isfinite(pm)]
        du = np.array([r.duration_s for r in rs], dtype=np.float64)
        pmean = float(pm.mean()) if pm.size else _NAN
        dmean = float(du.mean())
        psd, dsd = _sd(pm), _sd(du)
        out.append(ConsistencyRow(
            trigger_point=tp, blind=blind, n=len(rs),
            plateau_mean_n=pmean, plateau_sd_n=psd,
            plateau_cv=psd / pmean if pmean > 0 else _NAN,
            duration_mean_s=dmean, duration_sd_s=dsd,
            duration_cv=dsd / dmean if dmean > 0 else _NAN,
            variable_error_n=variable_error(r.constant_error_n for r in rs),
            adherence_pct=100.0 * sum(r.dose_met for r in rs) / len(rs),
            mean_score=_mean(r.score for r in rs),
            estimates=(acc := estimate_accuracy(rs))[0],
            estimate_accuracy_pct=100.0 * acc[1] / acc[0] if acc[0] else _NAN,
            reps=[r.repetition for r in rs],
        ))
    return out
