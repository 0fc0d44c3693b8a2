"""Reliability of repeated pressure measurements: ICC, SEM, MDC, Bland–Altman, Lin's CCC.

numpy for the arithmetic, ``scipy.stats`` for the F and Student t distributions.

Data layout: ``scores[n_subjects, k]`` where the k columns are raters (inter-rater) or sessions
(test-retest). Complete designs only; :func:`wide_from_long` pivots tidy data and refuses gaps.

ICC definitions (Shrout & Fleiss 1979; McGraw & Wong 1996), from the two-way ANOVA mean squares
with n subjects (rows) and k raters (columns):

* MSR  between-subjects mean square,            df n-1
* MSC  between-raters (columns) mean square,    df k-1
* MSE  residual (subject x rater) mean square,  df (n-1)(k-1)
* MSW  within-subject mean square (one-way),    df n(k-1)

====================  ==========================================  ===================
kind                  estimate                                    McGraw & Wong name
====================  ==========================================  ===================
ICC(1,1)              (MSR-MSW) / (MSR+(k-1)MSW)                  ICC(1)
ICC(2,1)              (MSR-MSE) / (MSR+(k-1)MSE+k(MSC-MSE)/n)     ICC(A,1)
ICC(3,1)              (MSR-MSE) / (MSR+(k-1)MSE)                  ICC(C,1)
ICC(1,k)              (MSR-MSW) / MSR                             ICC(k)
ICC(2,k)              (MSR-MSE) / (MSR+(MSC-MSE)/n)               ICC(A,k)
ICC(3,k)              (MSR-MSE) / MSR                             ICC(C,k)
====================  ==========================================  ===================

Confidence intervals follow McGraw & Wong (1996, Table 7): exact F-based intervals for the one-way
and consistency forms, and the Satterthwaite-type approximation (non-integer denominator df ``v``)
for the absolute-agreement forms ICC(2,·). The F statistic and p value test H0: ICC = 0
(F = MSR/MSW for ICC(1,·), MSR/MSE for ICC(2,·) and ICC(3,·), as psych/pingouin report).

F and t quantiles and the F survival function (accurate for tiny p values) come from
``scipy.stats``; non-integer degrees of freedom (the ICC(2,·) intervals) are supported there.

Designs too small for a statistic are refused with a ``ValueError`` that says why, rather than
answered with a number nobody should read: an ICC needs ``MIN_TARGETS`` targets (Koo & Li 2016
ask for at least 30 in a study; with 4 targets and 2 raters the 95 % CI of ICC(2,1) around a
true 0.8 is typically wider than 1), Bland–Altman and Lin's CCC ``MIN_PAIRS`` pairs (below 10
the 95 % CI of each limit of agreement is wider than ±1.27 SD of the differences, and the CCC's
inference is asymptotic).
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats

__all__ = [
    "ICC_KINDS",
    "MIN_PAIRS",
    "MIN_TARGETS",
    "AnovaTable",
    "BlandAltman",
    "ICCResult",
    "anova_two_way",
    "bland_altman",
    "icc",
    "icc_all",
    "lins_ccc",
    "mdc95",
    "sd_pooled",
    "sem",
    "wide_from_long",
]

ICC_KINDS = ("ICC(1,1)", "ICC(2,1)", "ICC(3,1)", "ICC(1,k)", "ICC(2,k)", "ICC(3,k)")
MIN_TARGETS = 5  # fewest targets (rows) an ICC is computed for
MIN_PAIRS = 10  # fewest pairs Bland-Altman limits or Lin's CCC are computed for


# --------------------------------------------------------------------------------------------
# Data shaping
# --------------------------------------------------------------------------------------------


def wide_from_long(
    subject: Sequence, rater: Sequence, value: Sequence[float]
) -> tuple[np.ndarray, list, list]:
    """Pivot tidy (subject, rater, value) records into ``scores[n_subjects, k_raters]``.

    Returns ``(scores, subjects, raters)`` with subjects and raters in sorted order (order of
    first appearance if the labels are not mutually comparable). Refuses incomplete designs
    (a subject missing a rater), duplicated (subject, rater) cells and non-finite values, because
    the ANOVA-based ICCs below are defined for complete, balanced designs only.
    """
    subject, rater = list(subject), list(rater)
    values = np.asarray(value, dtype=float)
    if not (len(subject) == len(rater) == values.size) or values.ndim != 1:
        raise ValueError(
            f"subject, rater and value must be 1-D and equally long "
            f"(got {len(subject)}, {len(rater)}, {values.size})"
        )
    if not np.all(np.isfinite(values)):
        raise ValueError("values must be finite (no NaN/inf): the design must be complete")

    def _levels(labels: list) -> list:
        uniq = list(dict.fromkeys(labels))
        try:
            return sorted(uniq)
        except TypeError:
            return uniq

    subjects, raters = _levels(subject), _levels(rater)
    s_idx = {s: i for i, s in enumerate(subjects)}
    r_idx = {r: j for j, r in enumerate(raters)}
    scores = np.full((len(subjects), len(raters)), np.nan)
    for s, r, v in zip(subject, rater, values, strict=True):
        i, j = s_idx[s], r_idx[r]
        if not np.isnan(scores[i, j]):
            raise ValueError(f"duplicate measurement for subject {s!r}, rater {r!r}")
        scores[i, j] = v
    missing = np.argwhere(np.isnan(scores))
    if missing.size:
        shown = ", ".join(f"({subjects[i]!r}, {raters[j]!r})" for i, j in missing[:10])
        more = f" and {len(missing) - 10} more" if len(missing) > 10 else ""
        raise ValueError(
            f"incomplete design: {len(missing)} of {scores.size} (subject, rater) cells are "
            f"missing: {shown}{more}. ICCs here need every subject measured by every "
            f"rater/session; drop the incomplete subjects or use a mixed-model approach."
        )
    return scores, subjects, raters


def _as_scores(scores) -> np.ndarray:
    x = np.asarray(scores, dtype=float)
    if x.ndim != 2:
        raise ValueError(f"scores must be 2-D [n_subjects, k_raters], got shape {x.shape}")
    n, k = x.shape
    if n < 2 or k < 2:
        raise ValueError(f"need at least 2 subjects and 2 raters/sessions, got shape {x.shape}")
    if not np.all(np.isfinite(x)):
        raise ValueError("scores contain NaN/inf; ICCs need a complete design (see wide_from_long)")
    return x


# --------------------------------------------------------------------------------------------
# ANOVA and ICC
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class AnovaTable:
    """Mean squares of the two-way (subjects x raters) ANOVA without replication."""

    n: int
    k: int
    msr: float  # between subjects, df n-1
    msc: float  # between raters, df k-1
    mse: float  # residual, df (n-1)(k-1)
    msw: float  # within subjects (one-way), df n(k-1)


def anova_two_way(scores) -> AnovaTable:
    x = _as_scores(scores)
    n, k = x.shape
    grand = x.mean()
    ss_total = float(((x - grand) ** 2).sum())
    ss_rows = float(k * ((x.mean(axis=1) - grand) ** 2).sum())
    ss_cols = float(n * ((x.mean(axis=0) - grand) ** 2).sum())
    ss_err = max(ss_total - ss_rows - ss_cols, 0.0)
    ss_within = max(ss_total - ss_rows, 0.0)
    return AnovaTable(
        n=n,
        k=k,
        msr=ss_rows / (n - 1),
        msc=ss_cols / (k - 1),
        mse=ss_err / ((n - 1) * (k - 1)),
        msw=ss_within / (n * (k - 1)),
    )


@dataclass(frozen=True)
class ICCResult:
    kind: str  # canonical name, e.g. "ICC(2,1)" or "ICC(3,k)"
    value: float
    ci_low: float
    ci_high: float
    F: float  # test statistic for H0: ICC = 0
    df1: float
    df2: float
    p: float  # one-sided p value, P(F(df1, df2) > F)
    n: int
    k: int
    confidence: float = 0.95


_KIND_RE = re.compile(r"^\s*ICC\s*\(?\s*([123])\s*,?\s*(1|k|\d+)\s*\)?\s*$", re.IGNORECASE)


def _parse_kind(kind: str, k: int) -> tuple[int, bool]:
    """Return (model 1/2/3, average?) for 'ICC(2,1)', 'ICC(3,k)', 'ICC(3,4)' (k=4), 'ICC2k'."""
    m = _KIND_RE.match(kind) if isinstance(kind, str) else None
    if m is None:
        raise ValueError(f"unknown ICC kind {kind!r}; expected one of {ICC_KINDS}")
    model, unit = int(m.group(1)), m.group(2).lower()
    if unit == "1":
        return model, False
    if unit == "k" or int(unit) == k:
        return model, True
    raise ValueError(f"{kind!r} asks for the average of {unit} ratings but the data have k={k}")


def icc(scores, kind: str = "ICC(2,1)", confidence: float = 0.95) -> ICCResult:
    """Intraclass correlation ``kind`` of ``scores[n_subjects, k]`` with its F-based CI.

    ``kind`` is one of ``ICC_KINDS``; ``"ICC(2,4)"`` with k = 4 and the psych-style short names
    (``"ICC2"``, ``"ICC3k"``) are accepted too. Raises ``ValueError`` if the relevant error mean
    square is exactly zero (perfect agreement), where the F statistic and its CI are undefined.
    """
    if not 0.0 < confidence < 1.0:
        raise ValueError("confidence must be in (0, 1)")
    a = anova_two_way(scores)
    n, k = a.n, a.k
    model, average = _parse_kind(kind, k)
    name = f"ICC({model},{'k' if average else '1'})"
    if n < MIN_TARGETS:
        raise ValueError(f"{name} needs at least {MIN_TARGETS} targets, got {n}: its 95 % CI "
                         f"would be too wide to read")
    q = 1.0 - (1.0 - confidence) / 2.0  # upper tail level, e.g. 0.975
    err_ms = a.msw if model == 1 else a.mse
    if err_ms <= 0.0:
        raise ValueError(
            f"{name}: the error mean square is zero (perfect agreement); the ICC is 1 but its "
            f"F test and confidence interval are undefined"
        )
    if a.msr <= 0.0:
        raise ValueError(f"{name}: no between-subject variance (all subject means equal)")

    df1 = n - 1
    if model == 1:
        df2 = n * (k - 1)
        value = (a.msr - a.msw) / (a.msr + (k - 1) * a.msw) if not average else 1 - a.msw / a.msr
    elif model == 3:
        df2 = (n - 1) * (k - 1)
        value = (a.msr - a.mse) / (a.msr + (k - 1) * a.mse) if not average else 1 - a.mse / a.msr
    else:
        df2 = (n - 1) * (k - 1)
        if average:
            value = (a.msr - a.mse) / (a.msr + (a.msc - a.mse) / n)
        else:
            value = (a.msr - a.mse) / (a.msr + (k - 1) * a.mse + k * (a.msc - a.mse) / n)
    F = a.msr / err_ms
    p = stats.f.sf(F, df1, df2)

    ci = _ci_exact if model in (1, 3) else _ci_agreement
    lo, hi = ci(a, F, df1, df2, q, average)
    return ICCResult(
        kind=name,
        value=float(value),
        ci_low=float(lo),
        ci_high=float(hi),
        F=float(F),
        df1=float(df1),
        df2=float(df2),
        p=float(p),
        n=n,
        k=k,
        confidence=confidence,
    )


def _ci_exact(a: AnovaTable, F: float, df1: float, df2: float, q: float,
              average: bool) -> tuple[float, float]:
    """Exact limits of the one-way and consistency forms: F / F_q(df1, df2) and
    F * F_q(df2, df1) bound the ratio (1 + k rho/(1-rho)) (one-way) or (1 + k rho_c/(1-rho_c))
    (consistency)."""
    k = a.k
    f_lo = F / stats.f.ppf(q, df1, df2)
    f_hi = F * stats.f.ppf(q, df2, df1)
    if average:
        return 1.0 - 1.0 / f_lo, 1.0 - 1.0 / f_hi
    return (f_lo - 1.0) / (f_lo + k - 1.0), (f_hi - 1.0) / (f_hi + k - 1.0)


def _ci_agreement(a: AnovaTable, F: float, df1: float, df2: float, q: float,
                  average: bool) -> tuple[float, float]:
    """McGraw & Wong (1996) limits of absolute agreement: approximate df v (Satterthwaite),
    based on the single-rater estimate; the average-measure limits are its Spearman-Brown
    step-up."""
    n, k = a.n, a.k
    r = (a.msr - a.mse) / (a.msr + (k - 1) * a.mse + k * (a.msc - a.mse) / n)
    fj = a.msc / a.mse
    num = (k - 1) * (n - 1) * (k * r * fj + n * (1 + (k - 1) * r) - k * r) ** 2
    den = (n - 1) * k**2 * r**2 * fj**2 + (n * (1 + (k - 1) * r) - k * r) ** 2
    v = num / den
    f_star = stats.f.ppf(q, df1, v)
    f_star2 = stats.f.ppf(q, v, df1)
    c = k * a.msc + (k * n - k - n) * a.mse
    lo = n * (a.msr - f_star * a.mse) / (f_star * c + n * a.msr)
    hi = n * (f_star2 * a.msr - a.mse) / (c + n * f_star2 * a.msr)
    if average:
        return lo * k / (1 + lo * (k - 1)), hi * k / (1 + hi * (k - 1))
    return lo, hi

def icc_all(scores, confidence: float = 0.95) -> dict[str, ICCResult]:
    """All six Shrout & Fleiss ICCs, keyed by ``ICC_KINDS``."""
    return {kind: icc(scores, kind, confidence) for kind in ICC_KINDS}


# --------------------------------------------------------------------------------------------
# SEM / MDC
# --------------------------------------------------------------------------------------------


def sd_pooled(scores) -> float:
    """SD of all n x k scores pooled together (sample SD, ddof=1), i.e. sqrt(SS_total/(nk-1))."""
    x = _as_scores(scores)
    return float(x.std(ddof=1))


def sem(scores, icc_value: float) -> float:
    """Standard error of measurement, ``SD_pooled * sqrt(1 - ICC)``.

    SD_pooled is the sample SD of *all* n x k scores pooled (:func:`sd_pooled`), the usual
    choice in the algometry literature (Weir 2005 discusses it and the alternative sqrt(MSE),
    which does not depend on the ICC form). The result is in the units of ``scores``.
    """
    if not math.isfinite(icc_value) or icc_value > 1.0:
        raise ValueError(f"icc_value must be finite and <= 1, got {icc_value}")
    return sd_pooled(scores) * math.sqrt(1.0 - icc_value)


def mdc95(sem_value: float) -> float:
    """Minimal detectable change at 95 %: ``1.96 * sqrt(2) * SEM`` (difference of two scores)."""
    if not sem_value >= 0:
        raise ValueError("SEM must be >= 0")
    return 1.96 * math.sqrt(2.0) * sem_value


# --------------------------------------------------------------------------------------------
# Bland–Altman and Lin's CCC
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class BlandAltman:
    n: int
    bias: float  # mean of a - b
    sd_diff: float  # sample SD (ddof=1) of a - b
    loa_low: float  # bias - 1.96 SD
    loa_high: float  # bias + 1.96 SD
    bias_ci: tuple[float, float]
    loa_low_ci: tuple[float, float]
    loa_high_ci: tuple[float, float]
    confidence: float = 0.95


def _paired(a, b, what: str) -> tuple[np.ndarray, np.ndarray]:
    x, y = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if x.ndim != 1 or x.shape != y.shape:
        raise ValueError(f"a and b must be 1-D and equally long, got {x.shape} and {y.shape}")
    if x.size < MIN_PAIRS:
        raise ValueError(f"{what}: at least {MIN_PAIRS} pairs needed, got {x.size}; the "
                         f"estimate would be too uncertain to read")
    if not (np.all(np.isfinite(x)) and np.all(np.isfinite(y))):
        raise ValueError("a and b must be finite")
    return x, y


def bland_altman(a, b, confidence: float = 0.95) -> BlandAltman:
    """Bland–Altman bias and 95 % limits of agreement of ``a - b``, with CIs.

    CIs use t(1 - alpha/2, n-1) times the approximate standard errors of Bland & Altman (1999):
    SE(bias) = s / sqrt(n) and SE(bias ± 1.96 s) = s * sqrt(1/n + 1.96^2 / (2(n-1)))
    (≈ sqrt(3 s^2 / n), the 1986 simplification, for large n). The limits of agreement are always
    bias ± 1.96 SD; ``confidence`` only sets the level of the CIs around them.
    Refused (``ValueError``) below ``MIN_PAIRS`` pairs.
    """
    x, y = _paired(a, b, "Bland-Altman limits of agreement")
    d = x - y
    n = d.size
    bias = float(d.mean())
    s = float(d.std(ddof=1))
    t = float(stats.t.ppf(1.0 - (1.0 - confidence) / 2.0, n - 1))
    se_bias = s / math.sqrt(n)
    se_loa = s * math.sqrt(1.0 / n + 1.96**2 / (2.0 * (n - 1)))
    lo, hi = bias - 1.96 * s, bias + 1.96 * s
    return BlandAltman(
        n=n,
        bias=bias,
        sd_diff=s,
        loa_low=lo,
        loa_high=hi,
        bias_ci=(bias - t * se_bias, bias + t * se_bias),
        loa_low_ci=(lo - t * se_loa, lo + t * se_loa),
        loa_high_ci=(hi - t * se_loa, hi + t * se_loa),
        confidence=confidence,
    )


def lins_ccc(a, b) -> float:
    """Lin's (1989) concordance correlation coefficient.

    ``2 s_ab / (s_a^2 + s_b^2 + (mean_a - mean_b)^2)`` with moments over n (not n-1), as in Lin.
    Refused (``ValueError``) below ``MIN_PAIRS`` pairs.
    """
    x, y = _paired(a, b, "Lin's CCC")
    mx, my = x.mean(), y.mean()
    sxy = float(((x - mx) * (y - my)).mean())
    den = float(x.var() + y.var() + (mx - my) ** 2)
    if den == 0.0:
        raise ValueError("CCC undefined: both series are the same constant")
    return 2.0 * sxy / den
