"""Tests for analysis.reliability against independent published reference values."""

from __future__ import annotations

import math

import numpy as np
import pytest

from analysis.reliability import (
    ICC_KINDS,
    MIN_PAIRS,
    MIN_TARGETS,
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
        icc(np.array([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0], [7.0, 8.0], [9.0, 10.0]]),
            "ICC(3,1)")


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
    a = [10, 12, 14, 16, 18] * 2
    b = [9, 13, 12, 15, 16] * 2
    # d = [1, -1, 2, 1, 2] twice; mean 1; SS about the mean 2 * (0+4+1+0+1) = 12; s^2 = 12/9
    ba = bland_altman(a, b)
    s = math.sqrt(12 / 9)
    t9 = 2.2622  # t(0.975, 9), printed tables
    assert ba.n == 10
    assert ba.bias == pytest.approx(1.0)
    assert ba.sd_diff == pytest.approx(s)
    assert ba.loa_low == pytest.approx(1 - 1.96 * s)
    assert ba.loa_high == pytest.approx(1 + 1.96 * s)
    se_bias = s / math.sqrt(10)
    se_loa = s * math.sqrt(1 / 10 + 1.96**2 / (2 * 9))
    assert ba.bias_ci == pytest.approx((1 - t9 * se_bias, 1 + t9 * se_bias), abs=1e-4)
    lo, hi = 1 - 1.96 * s, 1 + 1.96 * s
    assert ba.loa_low_ci == pytest.approx((lo - t9 * se_loa, lo + t9 * se_loa), abs=1e-4)
    assert ba.loa_high_ci == pytest.approx((hi - t9 * se_loa, hi + t9 * se_loa), abs=1e-4)
    with pytest.raises(ValueError, match="equally long"):
        bland_altman(a, b[:-1])


def test_lins_ccc_hand_computed():
    x = np.arange(1.0, 11.0)  # 1..10: mean 5.5, variance over n 8.25
    assert lins_ccc(x, x) == pytest.approx(1.0)
    assert lins_ccc(x, x[::-1]) == pytest.approx(-1.0)
    # shift by 1: cov 8.25, (mean diff)^2 1 -> 16.5 / (16.5 + 1) = 33/35
    assert lins_ccc(x, x + 1) == pytest.approx(33 / 35)
    # y = 2x: var_y 33, cov 16.5, (5.5 - 11)^2 = 30.25 -> 33 / (8.25 + 33 + 30.25) = 6/13
    assert lins_ccc(x, 2 * x) == pytest.approx(6 / 13)
    with pytest.raises(ValueError, match="same constant"):
        lins_ccc(np.full(10, 2.0), np.full(10, 2.0))


# ----------------------------------------------------------------------------- refusals


def test_designs_too_small_are_refused_with_a_reason():
    """Below MIN_TARGETS targets no ICC, below MIN_PAIRS pairs no limits of agreement or CCC:
    a one-line reason instead of a number nobody should read (issue 15)."""
    assert (MIN_TARGETS, MIN_PAIRS) == (5, 10)
    four = SF[:4]
    for kind in ICC_KINDS:
        with pytest.raises(ValueError, match=r"needs at least 5 targets, got 4") as exc:
            icc(four, kind)
        assert "\n" not in str(exc.value)
    assert icc(SF[:5], "ICC(2,1)").n == 5  # five targets are enough
    a, b = np.arange(9.0), np.arange(9.0) + np.array([0.1, -0.2] * 4 + [0.3])
    with pytest.raises(ValueError, match=r"Bland-Altman .*at least 10 pairs needed, got 9"):
        bland_altman(a, b)
    with pytest.raises(ValueError, match=r"Lin's CCC: at least 10 pairs needed, got 9"):
        lins_ccc(a, b)
    assert bland_altman(np.append(a, 9.0), np.append(b, 9.2)).n == 10


# ----------------------------------------------------------------------------- worked examples
# Bland JM, Altman DG (1986). Statistical methods for assessing agreement between two methods of
# clinical measurement. Lancet 327(8476):307-310, Table 1: peak expiratory flow rate (l/min) of
# 17 subjects, first reading with the Wright and with the mini Wright peak flow meter. The paper:
# mean difference -2.1, SD 38.8, limits (mean +- 2 SD) -79.7 to 75.5; 95 % CI of the bias -22.1
# to 17.9 (t = 2.12 on 16 df); SE of a limit sqrt(3 s^2 / n) = 16.3, CI of the lower limit
# -114.3 to -45.1.
PEFR_WRIGHT = [494, 395, 516, 434, 476, 557, 413, 442, 650, 433, 417, 656, 267, 478, 178, 423,
               427]  # fmt: skip
PEFR_MINI = [512, 430, 520, 428, 500, 600, 364, 380, 658, 445, 432, 626, 260, 477, 259, 350,
             451]  # fmt: skip


def test_bland_altman_lancet_1986_peak_flow():
    ba = bland_altman(PEFR_WRIGHT, PEFR_MINI)
    assert ba.n == 17
    assert round(ba.bias, 1) == -2.1
    assert round(ba.sd_diff, 1) == 38.8
    # The paper's limits are the rounded bias -+ 2 x the rounded SD; ours use 1.96 SD.
    assert ba.bias - 2 * ba.sd_diff == pytest.approx(-79.7, abs=0.1)
    assert ba.bias + 2 * ba.sd_diff == pytest.approx(75.5, abs=0.1)
    assert ba.loa_low == pytest.approx(ba.bias - 1.96 * ba.sd_diff)
    assert ba.bias_ci == pytest.approx((-22.1, 17.9), abs=0.1)
    # The CI half-width of a limit: the paper's 2.12 x 16.3 = 34.6 with the 1986 approximation
    # sqrt(3 s^2/n); the 1999 standard error used here, s sqrt(1/n + 1.96^2/(2(n-1))), is 0.7 %
    # wider (34.8).
    half = ba.loa_low_ci[1] - ba.loa_low
    assert half == pytest.approx((114.3 - 45.1) / 2, abs=0.3)
    assert ba.loa_high_ci[1] - ba.loa_high == pytest.approx(half)


def test_lins_ccc_peak_flow_by_lins_decomposition():
    """CCC = r x C_b (Lin 1989, eq. 3: precision times accuracy), computed another way on the
    Lancet data: C_b = 2 / (v + 1/v + u^2), v = s_x/s_y, u = (mean_x - mean_y)/sqrt(s_x s_y)."""
    x, y = np.array(PEFR_WRIGHT, float), np.array(PEFR_MINI, float)
    r = np.corrcoef(x, y)[0, 1]
    v = x.std() / y.std()
    u = (x.mean() - y.mean()) / math.sqrt(x.std() * y.std())
    assert lins_ccc(x, y) == pytest.approx(r * 2 / (v + 1 / v + u * u), rel=1e-12)
    assert round(lins_ccc(x, y), 3) == 0.943


# Bobbitt Z (2020). "How to Calculate Intraclass Correlation Coefficient in R", Statology: four
# judges rate 10 college entrance exams; R irr::icc(model = "twoway", type = "agreement",
# unit = "single") prints ICC(A,1) = 0.782, 95 % CI 0.554 < ICC < 0.931.
EXAMS = np.array([[1, 1, 3, 6, 6, 7, 8, 9, 8, 7], [2, 3, 8, 4, 5, 5, 7, 9, 8, 8],
                  [0, 4, 1, 5, 5, 6, 6, 9, 8, 8], [1, 2, 3, 3, 6, 4, 6, 8, 8, 9]], float).T

# Zaiontz C. Real Statistics Using Excel, "Intraclass Correlation", Example 1: 8 wines rated
# by 4 judges; ICC = .728 (two-way random, single rater). pingouin ships it as its "icc" data.
WINES = np.array([[1, 2, 0, 1], [1, 3, 3, 2], [3, 8, 1, 4], [6, 4, 3, 3], [6, 5, 5, 6],
                  [7, 5, 6, 2], [8, 7, 7, 9], [9, 9, 9, 8]], float)


def test_icc_statology_exams_against_irr():
    r = icc(EXAMS, "ICC(2,1)")
    assert (r.n, r.k) == (10, 4)
    assert round(r.value, 3) == 0.782
    assert (round(r.ci_low, 3), round(r.ci_high, 3)) == (0.554, 0.931)


def test_icc_real_statistics_wines_and_pingouin():
    import pandas as pd
    import pingouin as pg

    assert round(icc(WINES, "ICC(2,1)").value, 3) == 0.728
    shipped = pg.read_dataset("icc").pivot(index="Wine", columns="Judge", values="Scores")
    np.testing.assert_array_equal(shipped.to_numpy(float), WINES)
    long = pd.DataFrame({"wine": np.repeat(np.arange(8), 4), "judge": np.tile(np.arange(4), 8),
                         "score": WINES.ravel()})
    ref = pg.intraclass_corr(long, "wine", "judge", "score").set_index("Type")
    names = ["ICC(1,1)", "ICC(A,1)", "ICC(C,1)", "ICC(1,k)", "ICC(A,k)", "ICC(C,k)"]  # 0.7
    for kind, name in zip(ICC_KINDS, names, strict=True):
        mine = icc(WINES, kind)
        assert mine.value == pytest.approx(ref.loc[name, "ICC"], abs=1e-9)
        f_value = mine.F
        assert f_value == pytest.approx(ref.loc[name, "F"], rel=1e-9)
        assert mine.p == pytest.approx(ref.loc[name, "pval"], rel=1e-6)
        lo, hi = ref.loc[name, "CI95"]
        assert (mine.ci_low, mine.ci_high) == pytest.approx((lo, hi), abs=6e-3)  # 2 decimals
