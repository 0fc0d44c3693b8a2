"""Tests for analysis.reliability against independent published reference values."""

from __future__ import annotations

import math

import numpy as np
import pytest

from analysis.reliability import (
    ICC_KINDS,
    bland_altman,
    icc,
    icc_all,
    lins_ccc,
    mdc95,
    sd_pooled,
    sem,
    wide_from_long,
)

# Shrout & Fleiss (1979), Table 2: 6 targets x 4 judges.
SF = np.array(
    [[9, 2, 5, 8], [6, 1, 3, 2], [8, 4, 6, 8], [7, 1, 2, 6], [10, 5, 6, 9], [6, 2, 4, 7]],
    dtype=float,
)
# Published point estimates (Shrout & Fleiss 1979, Table 4).
SF_ICC = {
    "ICC(1,1)": 0.17,
    "ICC(2,1)": 0.29,
    "ICC(3,1)": 0.71,
    "ICC(1,k)": 0.44,
    "ICC(2,k)": 0.62,
    "ICC(3,k)": 0.91,
}
# R psych::ICC output for the same data (psych documentation / printed example):
# (F, df1, df2, p, lower bound, upper bound); CIs printed to 3 (lower) / 2 (upper) decimals.
SF_PSYCH = {
    "ICC(1,1)": (1.8, 5, 18, 0.16477, -0.133, 0.72),
    "ICC(2,1)": (11.0, 5, 15, 0.00013, 0.019, 0.76),
    "ICC(3,1)": (11.0, 5, 15, 0.00013, 0.342, 0.95),
    "ICC(1,k)": (1.8, 5, 18, 0.16477, -0.884, 0.91),
    "ICC(2,k)": (11.0, 5, 15, 0.00013, 0.071, 0.93),
    "ICC(3,k)": (11.0, 5, 15, 0.00013, 0.676, 0.99),
}

# McGraw & Wong (1996), Table 6 example (10 subjects x 2 measurements), with the R
# DescTools::ICC output: (estimate, F, df1, df2, p, lwr.ci, upr.ci).
MW = np.array(
    [[103, 119], [82, 65], [116, 106], [102, 102], [99, 105],
     [98, 100], [104, 107], [62, 85], [97, 101], [107, 110]],
    dtype=float,
)  # fmt: skip
MW_R = {
    "ICC(1,1)": (0.722, 6.18, 9, 10, 0.00437, 0.241, 0.922),
    "ICC(2,1)": (0.720, 6.00, 9, 9, 0.00677, 0.228, 0.922),
    "ICC(3,1)": (0.714, 6.00, 9, 9, 0.00677, 0.197, 0.920),
    "ICC(1,k)": (0.838, 6.18, 9, 10, 0.00437, 0.389, 0.959),
    "ICC(2,k)": (0.837, 6.00, 9, 9, 0.00677, 0.371, 0.959),
    "ICC(3,k)": (0.833, 6.00, 9, 9, 0.00677, 0.329, 0.959),
}


# ----------------------------------------------------------------------------- ICC reference data


@pytest.mark.parametrize("kind", ICC_KINDS)
def test_shrout_fleiss_published_icc(kind):
    assert round(icc(SF, kind).value, 2) == SF_ICC[kind]


@pytest.mark.parametrize("kind", ICC_KINDS)
def test_shrout_fleiss_psych_f_p_and_ci(kind):
    r = icc(SF, kind)
    F, df1, df2, p, lo, hi = SF_PSYCH[kind]
    f_value = r.F
    assert f_value == pytest.approx(F, abs=0.05)
    assert (r.df1, r.df2) == (df1, df2)
    assert r.p == pytest.approx(p, abs=5e-6)
    assert r.ci_low == pytest.approx(lo, abs=5e-4)
    assert r.ci_high == pytest.approx(hi, abs=5e-3)
    assert r.ci_low <= r.value <= r.ci_high


@pytest.mark.parametrize("kind", ICC_KINDS)
def test_mcgraw_wong_table6_against_r(kind):
    r = icc(MW, kind)
    est, F, df1, df2, p, lo, hi = MW_R[kind]
    assert r.value == pytest.approx(est, abs=5e-4)
    f_value = r.F
    assert f_value == pytest.approx(F, abs=5e-3)
    assert (r.df1, r.df2) == (df1, df2)
    assert r.p == pytest.approx(p, abs=5e-6)
    assert r.ci_low == pytest.approx(lo, abs=5e-4)
    assert r.ci_high == pytest.approx(hi, abs=5e-4)


def test_kind_aliases_and_errors():
    assert icc(SF, "ICC(3,4)").value == icc(SF, "ICC(3,k)").value
    assert icc(SF, "ICC2k").kind == "ICC(2,k)"
    assert icc(SF, "icc(1,1)").kind == "ICC(1,1)"
    with pytest.raises(ValueError, match="k=4"):
        icc(SF, "ICC(2,3)")
    with pytest.raises(ValueError, match="unknown ICC kind"):
        icc(SF, "ICC(4,1)")
    with pytest.raises(ValueError, match="2-D"):
        icc(SF[:, 0], "ICC(2,1)")
    with pytest.raises(ValueError, match="at least 2"):
        icc(SF[:1], "ICC(2,1)")
    with pytest.raises(ValueError, match="NaN"):
        icc(np.where(SF == 9, np.nan, SF), "ICC(2,1)")
    # Raters differ by a constant only: consistency residual is exactly zero.
    with pytest.raises(ValueError, match="error mean square is zero"):
        icc(np.array([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]]), "ICC(3,1)")


def test_confidence_level_changes_width():
    r95, r80 = icc(SF, "ICC(2,1)", 0.95), icc(SF, "ICC(2,1)", 0.80)
    assert r95.ci_low < r80.ci_low < r80.ci_high < r95.ci_high


# ----------------------------------------------------------------------------- CI properties


def _two_way(rng, n, k, var_s, var_r, var_e):
    return (
        rng.normal(0, math.sqrt(var_s), (n, 1))
        + rng.normal(0, math.sqrt(var_r), (1, k))
        + rng.normal(0, math.sqrt(var_e), (n, k))
    )


def test_ci_narrows_with_n():
    # Consistency and one-way ICCs: the CI shrinks roughly like 1/sqrt(n). (The ICC(2,1) interval
    # need not: with few random raters its width is dominated by the rater-variance uncertainty.)
    rng = np.random.default_rng(1)
    for kind in ("ICC(1,1)", "ICC(3,1)", "ICC(3,k)"):
        widths = {}
        for n in (10, 200):
            r = icc(_two_way(rng, n, 3, 1.0, 0.1, 0.3), kind)
            widths[n] = r.ci_high - r.ci_low
            assert r.ci_low <= r.value <= r.ci_high
        assert widths[200] < widths[10] / 3


@pytest.mark.parametrize(
    ("kind", "var_r", "true_value", "band"),
    [
        ("ICC(1,1)", 0.0, 0.6, (0.91, 0.98)),  # one-way model: exact interval
        ("ICC(3,1)", 0.5, 0.6, (0.91, 0.98)),  # consistency, rater effects present: exact
        ("ICC(2,1)", 0.5, 0.6 / 1.5, (0.90, 0.99)),  # absolute agreement: approximate interval
    ],
)
def test_ci_simulation_coverage(kind, var_r, true_value, band):
    rng = np.random.default_rng(12345)
    reps, hits = 500, 0
    for _ in range(reps):
        r = icc(_two_way(rng, 15, 3, 0.6, var_r, 0.4), kind)
        hits += r.ci_low <= true_value <= r.ci_high
    assert band[0] <= hits / reps <= band[1]


def test_against_pingouin():
    """pingouin (0.7: types ICC(1,1), ICC(A,1), ICC(C,1), ... for one-way, agreement and
    consistency) is the independent implementation; it rounds CIs to 2 decimals."""
    import pandas as pd
    import pingouin as pg

    rng = np.random.default_rng(7)
    scores = _two_way(rng, 12, 4, 2.0, 0.5, 1.0) + 50
    n, k = scores.shape
    df = pd.DataFrame(
        {
            "subject": np.repeat(np.arange(n), k),
            "rater": np.tile(np.arange(k), n),
            "score": scores.ravel(),
        }
    )
    ref = pg.intraclass_corr(data=df, targets="subject", raters="rater", ratings="score")
    ref = ref.set_index("Type")
    names = dict(zip(ICC_KINDS, ["ICC(1,1)", "ICC(A,1)", "ICC(C,1)", "ICC(1,k)", "ICC(A,k)",
                                 "ICC(C,k)"], strict=True))
    for kind, r in icc_all(scores).items():
        row = ref.loc[names[kind]]
        assert r.value == pytest.approx(row["ICC"], abs=1e-6)
        f_value = r.F
        assert f_value == pytest.approx(row["F"], rel=1e-6)
        lo, hi = row["CI95"]
        assert r.ci_low == pytest.approx(lo, abs=6e-3)  # pingouin rounds CIs to 2 decimals
        assert r.ci_high == pytest.approx(hi, abs=6e-3)


# ----------------------------------------------------------------------------- long -> wide


def test_wide_from_long_pivots_and_refuses_gaps():
    subj = ["s2", "s1", "s1", "s2", "s3", "s3"]
    rater = ["B", "A", "B", "A", "B", "A"]
    value = [4.0, 1.0, 2.0, 3.0, 6.0, 5.0]
    scores, subjects, raters = wide_from_long(subj, rater, value)
    assert subjects == ["s1", "s2", "s3"] and raters == ["A", "B"]
    np.testing.assert_array_equal(scores, [[1, 2], [3, 4], [5, 6]])

    with pytest.raises(ValueError, match=r"incomplete design: 1 of 6 .*'s3', 'B'"):
        wide_from_long(subj[:4] + ["s3"], rater[:4] + ["A"], value[:5])
    with pytest.raises(ValueError, match="duplicate"):
        wide_from_long(["a", "a"], ["x", "x"], [1.0, 2.0])
    with pytest.raises(ValueError, match="equally long"):
        wide_from_long(["a"], ["x", "y"], [1.0])
    with pytest.raises(ValueError, match="finite"):
        wide_from_long(["a", "b"], ["x", "x"], [1.0, float("nan")])


def test_wide_from_long_roundtrip_gives_same_icc():
    n, k = SF.shape
    subj = np.repeat(np.arange(n), k)
    rater = np.tile(np.arange(k), n)
    order = np.random.default_rng(0).permutation(n * k)
    scores, _, _ = wide_from_long(subj[order], rater[order], SF.ravel()[order])
    np.testing.assert_array_equal(scores, SF)


# ----------------------------------------------------------------------------- SEM / MDC


def test_sem_and_mdc_hand_computed():
    x = np.array([[1.0, 3.0], [2.0, 4.0]])
    # pooled SD of 1, 2, 3, 4 = sqrt(5/3)
    assert sd_pooled(x) == pytest.approx(math.sqrt(5 / 3))
    assert sem(x, 0.75) == pytest.approx(math.sqrt(5 / 3) * 0.5)
    assert sem(x, 1.0) == 0.0
    with pytest.raises(ValueError):
        sem(x, 1.2)
    # docs/SOURCES.md (Chesterton 2007): SEM 6.27 N/cm2 -> MDC ~ 17 N/cm2.
    assert mdc95(6.27) == pytest.approx(1.96 * math.sqrt(2) * 6.27)
    assert round(mdc95(6.27)) == 17


# ----------------------------------------------------------------------------- Bland-Altman / CCC


def test_bland_altman_hand_computed():
    a = [10, 12, 14, 16, 18]
    b = [9, 13, 12, 15, 16]
    # d = [1, -1, 2, 1, 2]; mean 1; SS about the mean 0+4+1+0+1 = 6; s^2 = 6/4 = 1.5
    ba = bland_altman(a, b)
    s = math.sqrt(1.5)
    t4 = 2.7764  # t(0.975, 4), printed tables
    assert ba.n == 5
    assert ba.bias == pytest.approx(1.0)
    assert ba.sd_diff == pytest.approx(s)
    assert ba.loa_low == pytest.approx(1 - 1.96 * s)
    assert ba.loa_high == pytest.approx(1 + 1.96 * s)
    se_bias = s / math.sqrt(5)
    se_loa = s * math.sqrt(1 / 5 + 1.96**2 / (2 * 4))
    assert ba.bias_ci == pytest.approx((1 - t4 * se_bias, 1 + t4 * se_bias), abs=1e-4)
    lo, hi = 1 - 1.96 * s, 1 + 1.96 * s
    assert ba.loa_low_ci == pytest.approx((lo - t4 * se_loa, lo + t4 * se_loa), abs=1e-4)
    assert ba.loa_high_ci == pytest.approx((hi - t4 * se_loa, hi + t4 * se_loa), abs=1e-4)
    with pytest.raises(ValueError):
        bland_altman([1, 2], [1, 2])
    with pytest.raises(ValueError):
        bland_altman([1, 2, 3], [1, 2])


def test_lins_ccc_hand_computed():
    assert lins_ccc([1, 2, 3], [1, 2, 3]) == pytest.approx(1.0)
    assert lins_ccc([1, 2, 3], [3, 2, 1]) == pytest.approx(-1.0)
    # shift by 1: var 2/3 each, cov 2/3, mean diff 1 -> (4/3) / (4/3 + 1) = 4/7
    assert lins_ccc([1, 2, 3], [2, 3, 4]) == pytest.approx(4 / 7)
    # b = 2a: var_a 1.25, var_b 5, cov 2.5, (2.5 - 5)^2 = 6.25 -> 5 / 12.5
    assert lins_ccc([1, 2, 3, 4], [2, 4, 6, 8]) == pytest.approx(0.4)
    with pytest.raises(ValueError):
        lins_ccc([2, 2], [2, 2])
