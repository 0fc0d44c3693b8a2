"""The hold score (analysis.score) on holds whose metrics are computed by hand: piecewise-linear
force curves (tests.test_metrics.synthetic) at 1 kHz, so every deduction of analysis/TABLE.md's
formula can be worked out on paper; the mastery rule; and whether a self-estimate was right.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest

from analysis.metrics import hold_metrics
from analysis.score import (
    HoldScore,
    estimate_correct,
    graded_time_in_band,
    mastery,
    score_hold,
    score_metrics,
)
from schemas.session_protocol import Dose
from tests.test_metrics import newtons, one_hold, synthetic

DOSE = newtons(25.0, 35.0, 8.0, 20.0)  # target 30 N; near-band credit reaches 3 N outside


def scored(knots, dose: Dose = DOSE):
    """(row, score) of the one hold in the force curve through ``knots``."""
    t, f = synthetic(knots)
    m = hold_metrics(t, f, one_hold(t, f, dose), dose)
    return m, score_metrics(m)


def items(s: HoldScore) -> dict[str, float]:
    return {d.item: d.points for d in s.deductions}


def test_a_trapezoid_held_in_the_band_scores_100() -> None:
    m, s = scored([(0, 0), (1, 0), (3, 30), (14, 30), (15, 0), (16, 0)])
    assert s.score == 100.0 and s.deductions == () and s.largest is None
    assert m.score == 100.0  # the row carries its score
    assert m.drift_n == pytest.approx(0.0, abs=1e-9)
    # the same hold under a coached ramp of 10-20 N/s: 15 N/s is inside the corridor
    coached = dataclasses.replace(DOSE, ramp_min=10.0, ramp_max=20.0)
    assert scored([(0, 0), (1, 0), (3, 30), (14, 30), (15, 0), (16, 0)], coached)[1].score \
        == 100.0
    # loading at 25 N/s (30 N in 1.2 s) is 25 % over the corridor's 20: 0.2 x 25 = 5 points
    m, s = scored([(0, 0), (1, 0), (2.2, 30), (14, 30), (15, 0), (16, 0)], coached)
    assert m.ramp_rate_n_per_s == pytest.approx(25.0, rel=1e-3)
    assert items(s) == {"ramp rate": pytest.approx(5.0, abs=0.02)}
    assert s.score == pytest.approx(95.0, abs=0.02)
    assert s.largest.text() == "ramp 25 % too fast: −5"


def test_a_plateau_18_percent_over_the_band_top() -> None:
    level = 35.0 * 1.18  # 41.3 N
    m, s = scored([(0, 0), (1, 0), (3, level), (14, level), (15, 0), (16, 0)])
    assert m.peak_over_band_pct == pytest.approx(18.0, abs=0.01)
    # overshoot: 2/3 point per % over the band's top
    assert items(s)["overshoot"] == pytest.approx(12.0, abs=0.01)
    assert [d.text() for d in s.deductions if d.item == "overshoot"] == ["overshoot 18 %: −12"]
    # graded time in band: only the ramps pass the band (25-35 N, 10 N) and its 3 N margins
    # (half credit on average), 13 N of each ramp: up at 41.3/2 N/s, down at 41.3 N/s
    credit = 13.0 / (level / 2.0) + 13.0 / level
    assert m.graded_time_in_band_s == pytest.approx(credit, abs=0.005)
    assert items(s)["time in band"] == pytest.approx(40.0 * (1 - credit / 8.0), abs=0.03)
    assert set(items(s)) == {"overshoot", "time in band"}
    assert s.score == pytest.approx(100 - 12 - 40 * (1 - credit / 8.0), abs=0.05)
    assert s.largest.item == "time in band"


def test_an_early_release_at_6_of_8_s() -> None:
    # 1.5 N (the hold's 5 % threshold) crossed at 1.000 s going up and 7.000 s going down
    m, s = scored([(0, 0), (0.95, 0), (1.95, 30), (6.525, 30), (7.025, 0), (8, 0)])
    assert m.duration_s == pytest.approx(6.0, abs=0.002) and m.early_release
    # 15 x (8 - 6) / 8
    assert items(s)["early release"] == pytest.approx(3.75, abs=0.01)
    assert [d.text() for d in s.deductions if d.item == "early release"] == [
        "released at 6.0 of 8 s: −4"]
    # loading at 30 N/s: 22-25 N at half credit on average, 25-30 N full; 4.575 s of plateau;
    # release at 60 N/s: 30-25 N full, 25-22 N at half
    credit = 0.5 * 3 / 30 + 5 / 30 + 4.575 + 5 / 60 + 0.5 * 3 / 60
    assert m.graded_time_in_band_s == pytest.approx(credit, abs=0.005)
    assert items(s)["time in band"] == pytest.approx(40 * (1 - credit / 8), abs=0.03)
    assert s.score == pytest.approx(100 - 3.75 - 40 * (1 - credit / 8), abs=0.05)


def test_near_misses_earn_partial_credit() -> None:
    """A plateau 1 N over the band's top keeps 2/3 of its time credit; 3 N over, none."""
    scores = [scored([(0, 0), (1, 0), (3, lv), (14, lv), (15, 0), (16, 0)])[1].score
              for lv in (34.0, 35.5, 36.0, 38.0, 40.0)]
    assert scores[0] == 100.0
    assert all(a > b for a, b in zip(scores, scores[1:], strict=False))  # continuous, falling
    assert scores[2] > 85.0 and scores[3] < 70.0


def test_steadiness_and_drift_deductions() -> None:
    t, f = synthetic([(0, 0), (1, 0), (3, 30), (14, 30), (15, 0), (16, 0)])
    # a 10 Hz tremor of 0.9 N amplitude on the plateau: SD 0.9/sqrt(2) = 0.636 N = 2.12 % of
    # 30 N, 1.12 % over the free 1 %, 2.5 points per %
    wobble = np.where((t > 3.5) & (t < 13.5), 0.9 * np.sin(2 * np.pi * 10 * t), 0.0)
    m = hold_metrics(t, f + wobble, one_hold(t, f + wobble, DOSE), DOSE)
    pct = m.steadiness_n / 30.0 * 100
    assert pct == pytest.approx(0.9 / math.sqrt(2) / 30 * 100, rel=0.1)
    assert items(score_metrics(m))["steadiness"] == pytest.approx(2.5 * (pct - 1.0), abs=1e-6)
    # a plateau fading from 32 to 28 N: drift -4 N = 13 % of the target, capped at 10 points
    m, s = scored([(0, 0), (1, 0), (3, 32), (14, 28), (15, 0), (16, 0)])
    assert m.drift_n == pytest.approx(-4.0 * (m.plateau_end_s - m.plateau_start_s) / 11, rel=0.02)
    assert items(s)["drift"] == pytest.approx(min(10.0, abs(m.drift_n) / 30 * 100), abs=1e-6)


def test_unjudged_holds_have_no_score() -> None:
    t, f = synthetic([(0, 0), (1, 0), (3, 30), (14, 30)])  # still pressed at the end
    m = hold_metrics(t, f, one_hold(t, f, DOSE), DOSE)
    assert not m.complete and math.isnan(m.score)
    nan_band = Dose(unit="N", target_low=math.nan, target_high=math.nan)
    assert math.isnan(score_metrics(dataclasses.replace(m, complete=True, band_low_n=math.nan,
                                                        band_high_n=nan_band.target_high)).score)
    assert math.isnan(graded_time_in_band(t, f, math.nan, math.nan))


def test_score_hold_is_the_tables_score_of_the_same_samples() -> None:
    t, f = synthetic([(0, 0), (1, 0), (3, 41.3), (14, 41.3), (15, 0), (16, 0)])
    m = hold_metrics(t, f, one_hold(t, f, DOSE), DOSE)
    live = score_hold(t, f, m.start_s, m.end_s, DOSE)
    assert live.score == pytest.approx(m.score, abs=0.05)
    assert [d.item for d in live.deductions] == [d.item for d in score_metrics(m).deductions]
    # judged against another band (a point's anchored band: 36-44 N), the plateau is in it
    anchored = score_hold(t, f, m.start_s, m.end_s, DOSE, band_n=(36.0, 44.0))
    assert anchored.score > 95.0 and "overshoot" not in items(anchored)


def test_mastery_counts_the_last_scored_holds() -> None:
    m = mastery([90, 50, 80, 76, 74, 75], count=4, window=5, threshold=75)
    assert (m.met, m.passing, m.considered) == (False, 3, 5)
    assert m.text() == "mastery: 3 of last 5 >= 75 (need 4)"
    m = mastery([90, 50, 80, 76, 74, 75, math.nan, 99], count=4, window=5, threshold=75)
    assert (m.met, m.passing, m.considered) == (True, 4, 5)  # 80 76 74 75 99; NaN skipped
    assert m.text() == "mastery met: 4 of last 5 >= 75 (need 4)"
    m = mastery([80, 80], count=4, window=5)
    assert (m.met, m.passing, m.considered) == (False, 2, 2)


@pytest.mark.parametrize(("level", "right"), [(22.0, -1), (25.0, 0), (30.0, 0), (35.0, 0),
                                              (37.0, 1)])
def test_estimate_correct_against_the_plateau(level: float, right: int) -> None:
    m, _ = scored([(0, 0), (1, 0), (3, level), (14, level), (15, 0), (16, 0)])
    assert m.plateau_mean_n == pytest.approx(level, rel=1e-3)
    for value in (-1, 0, 1):
        assert estimate_correct(value, m) is (value == right)
    no_plateau = dataclasses.replace(m, plateau_mean_n=math.nan)
    assert not estimate_correct(right, no_plateau)
