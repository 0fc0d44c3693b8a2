"""Tests of hold metrics (analysis.metrics) against the simulated therapist and synthetic holds.

The simulator knows each hold's start/end (5 % of target crossings), plateau level (mean smooth
force over the planned plateau, drift included, tremor and re-press dips excluded) and peak,
so the metrics are checked through the real ADC model (noise, rounding) for a steady expert
and a novice with 4 % tremor, 15-30 % overshoot and re-press dips. Synthetic holds pin down the
ramp slope, the early-release flag, the errors and the no-plateau case.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import re
from pathlib import Path

import numpy as np
import pytest

from analysis.curves import (
    dtw_distance,
    dtw_per_second,
    median_abs_difference,
    reference_curve,
    resample_curve,
)
from analysis.definitions import METRICS, hold_flags
from analysis.holds import config_for_band, segment_holds
from analysis.metrics import (
    HoldMetrics,
    consistency,
    hold_metrics,
    recording_metrics,
    variable_error,
)
from firmware_bridge.sim.therapist import HoldTruth
from schemas.events import Event, Hold
from schemas.reader import open_recording
from schemas.session_protocol import Dose
from schemas.writer import RecordingWriter
from tests.conftest import TRAPEZIUS_LEFT_RIGHT, therapist_stream

FS = 1000.0


class Stream:
    """One cycle (12 holds) of a simulated therapist at 1 kHz through the ADC, in newtons."""

    def __init__(self, profile: str, seed: int) -> None:
        self.th, self.end_s, self.t, self.true_n, self.force_n = therapist_stream(
            profile, seed, cycles=1, fs=FS)
        self.truth: list[HoldTruth] = self.th.holds_between(0.0, self.end_s)
        self.config = config_for_band(self.th.band_low_n, self.th.band_high_n)
        self.dose = newtons(self.th.band_low_n, self.th.band_high_n, 8.0, 20.0)
        self.holds = segment_holds(self.t, self.force_n, self.config)
        self.rows = [hold_metrics(self.t, self.force_n, h, self.dose, area_cm2=2.0,
                                  trigger_point=g.trigger_point, repetition=g.repetition)
                     for h, g in zip(self.holds, self.truth, strict=True)]


@functools.cache
def stream(profile: str, seed: int) -> Stream:
    """Cached: generating the stream is the expensive part of these tests."""
    return Stream(profile, seed)


def synthetic(levels: list[tuple[float, float]], fs: float = FS) -> tuple[np.ndarray, np.ndarray]:
    """Piecewise-linear force through (time, force) knots, sampled at ``fs``."""
    kt, kf = zip(*levels, strict=True)
    t = np.arange(0.0, kt[-1], 1.0 / fs)
    return t, np.interp(t, kt, kf)


def newtons(low: float, high: float, min_hold_s: float, max_hold_s: float) -> Dose:
    """A protocol dose in newtons."""
    return Dose(unit="N", target_low=low, target_high=high, min_hold_s=min_hold_s,
                max_hold_s=max_hold_s)


def one_hold(t: np.ndarray, f: np.ndarray, dose: Dose, area_cm2: float = math.nan):
    cfg = config_for_band(*dose.band_n(area_cm2))
    holds = segment_holds(t, f, cfg)
    assert len(holds) == 1
    return holds[0]


# ---------------------------------------------------------------- against the simulator
@pytest.mark.parametrize("profile", ["expert", "novice"])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_metrics_match_simulated_truth(profile: str, seed: int) -> None:
    s = stream(profile, seed)
    assert len(s.holds) == len(s.truth) == s.th.holds_per_cycle  # exact count
    for m, g in zip(s.rows, s.truth, strict=True):
        assert abs(m.duration_s - (g.end_s - g.start_s)) < 0.050
        assert m.plateau_mean_n == pytest.approx(g.plateau_level_n, rel=0.01)
        assert g.plateau_start_s - 1.0 < m.plateau_start_s < g.release_s
        assert g.plateau_start_s < m.plateau_end_s < g.end_s
        assert m.peak_n >= m.plateau_mean_n
        assert 0 < m.steadiness_n < 0.1 * m.plateau_mean_n
        assert m.constant_error_n == pytest.approx(m.plateau_mean_n - 30.0)
        assert m.ramp_rate_n_per_s > 0
        assert m.ramp_rate_kpa_per_s == pytest.approx(m.ramp_rate_n_per_s / 2.0 * 10.0)
        # impulse: the numerical integral of the true force over the truth interval
        a, b = np.searchsorted(s.t, (g.start_s, g.end_s))
        true_impulse = np.trapezoid(s.true_n[a:b], s.t[a:b])
        assert m.impulse_n_s == pytest.approx(true_impulse, rel=2e-3)


def test_novice_overshoots_and_trembles_more_than_expert() -> None:
    for seed in (0, 1, 2):
        nov, exp = stream("novice", seed).rows, stream("expert", seed).rows
        assert np.mean([m.overshoot_pct for m in nov]) > np.mean([m.overshoot_pct for m in exp])
        assert (np.median([m.steadiness_n for m in nov])
                > np.median([m.steadiness_n for m in exp]))
    # per hold, the overshoot follows the truth's peak over plateau
    for m, g in zip(stream("novice", 0).rows, stream("novice", 0).truth, strict=True):
        truth_pct = (g.peak_n - g.plateau_level_n) / g.plateau_level_n * 100
        assert m.overshoot_pct == pytest.approx(truth_pct, abs=3.0)


def test_consistency_on_simulated_rows() -> None:
    rows = stream("expert", 0).rows
    table = consistency(rows)
    assert [r.trigger_point for r in table] == list(dict.fromkeys(m.trigger_point for m in rows))
    assert all(r.n == 3 and not r.blind for r in table)
    assert all(r.plateau_cv < 0.1 for r in table)


# ---------------------------------------------------------------- synthetic holds
def test_ramp_rate_of_a_known_linear_ramp() -> None:
    dose = newtons(25.0, 35.0, 8.0, 20.0)
    # 0 -> 30 N at 10 N/s, hold 10 s, release in 1 s
    t, f = synthetic([(0, 0), (1, 0), (4, 30), (14, 30), (15, 0), (16, 0)])
    m = hold_metrics(t, f, one_hold(t, f, dose), dose, area_cm2=1.0)
    assert m.ramp_rate_n_per_s == pytest.approx(10.0, rel=1e-3)
    assert m.ramp_rate_kpa_per_s == pytest.approx(100.0, rel=1e-3)  # 10 N/s on 1 cm²
    assert m.plateau_mean_n == pytest.approx(30.0, rel=1e-3)
    assert m.overshoot_pct == pytest.approx(0.0, abs=0.1)
    assert m.steadiness_n == pytest.approx(0.0, abs=1e-6)
    assert m.impulse_n_s == pytest.approx(0.5 * 30 * 3 * (1 - 0.05**2) + 300 + 15, rel=2e-3)
    assert not m.early_release and m.dose_met
    assert m.target_n == 30.0  # the band's midpoint
    no_area = hold_metrics(t, f, one_hold(t, f, dose), dose)
    assert math.isnan(no_area.ramp_rate_kpa_per_s)
    # the same band as a pressure on 2 cm² (125-175 kPa): the same hold in newtons
    kpa = Dose(unit="kPa", target_low=125.0, target_high=175.0, min_hold_s=8.0,
               max_hold_s=20.0)
    p = hold_metrics(t, f, one_hold(t, f, kpa, 2.0), kpa, area_cm2=2.0)
    assert p.target_n == 30.0 and p.plateau_mean_n == m.plateau_mean_n
    assert p.ramp_rate_kpa_per_s == pytest.approx(50.0, rel=1e-3)  # 10 N/s on 2 cm²
    # without the area a pressure band has no newtons: no target, no errors
    bare = hold_metrics(t, f, one_hold(t, f, dose), kpa)
    assert math.isnan(bare.target_n) and math.isnan(bare.abs_error_n)


def test_early_release_and_errors_on_a_synthetic_plateau() -> None:
    dose = newtons(36.0, 44.0, 8.0, 20.0)  # target 40 N
    t, f = synthetic([(0, 0), (1, 0), (2, 35), (7, 35), (7.5, 0), (8, 0)])
    m = hold_metrics(t, f, one_hold(t, f, dose), dose)
    assert m.early_release and not m.dose_met
    assert m.plateau_mean_n == pytest.approx(35.0, rel=1e-3)
    assert m.constant_error_n == pytest.approx(-5.0, abs=0.05)
    assert m.abs_error_n == pytest.approx(5.0, abs=0.05)
    assert m.pct_error == pytest.approx(12.5, abs=0.15)
    assert m.time_in_band_s == 0.0 and math.isnan(m.time_to_band_s)


def test_hold_without_plateau_reports_nan() -> None:
    dose = newtons(25.0, 35.0, 1.0, 20.0)
    t, f = synthetic([(0, 0), (1, 0), (4, 30), (7, 0), (8, 0)])  # up and straight down
    m = hold_metrics(t, f, one_hold(t, f, dose), dose)
    for name in ("plateau_mean_n", "plateau_cv", "steadiness_n", "overshoot_pct",
                 "ramp_rate_n_per_s", "abs_error_n", "constant_error_n", "pct_error"):
        assert math.isnan(getattr(m, name)), name
    assert m.peak_n == pytest.approx(30.0, abs=0.05)
    assert m.impulse_n_s == pytest.approx(0.5 * 6 * 30, rel=5e-3)


def test_dips_are_left_out_of_the_plateau_and_steadiness_ignores_drift() -> None:
    dose = newtons(25.0, 35.0, 8.0, 20.0)
    t, f = synthetic([(0, 0), (1, 0), (3, 30), (15, 27), (16, 0), (17, 0)])  # -3 N drift
    dip = (t > 8) & (t < 8.5)
    f = f.copy()
    f[dip] *= 0.6
    m = hold_metrics(t, f, one_hold(t, f, dose), dose)
    expected = 28.5  # mean of the drifting line
    assert m.plateau_mean_n == pytest.approx(expected, rel=0.005)
    assert m.steadiness_n < 0.2  # the drift is not fluctuation
    assert m.plateau_cv > m.steadiness_n / m.plateau_mean_n


def test_events_pain_and_button_inside_the_hold_only() -> None:
    dose = newtons(25.0, 35.0, 8.0, 20.0)
    t, f = synthetic([(0, 0), (1, 0), (3, 30), (13, 30), (14, 0), (15, 0)])
    h = one_hold(t, f, dose)
    evs = [Event(0.5, "pain", 9.0), Event(5.0, "pain", 4.0), Event(9.0, "pain", 6.0),
           Event(6.0, "button_down"), Event(6.3, "button_up"), Event(10.0, "button_down"),
           Event(14.9, "button_down"), Event(14.9, "pain", 1.0)]
    m = hold_metrics(t, f, h, dose, evs)
    assert m.pain == 6.0 and m.button_presses == 2
    assert math.isnan(hold_metrics(t, f, h, dose).pain)


# ---------------------------------------------------------------- across holds
def row(tp: str, plateau: float, duration: float, blind: bool = False,
        met: bool = True) -> HoldMetrics:
    nan = math.nan
    values = dict.fromkeys((f.name for f in dataclasses.fields(HoldMetrics)), nan)
    values.update(trigger_point=tp, repetition=1, blind=blind, duration_s=duration,
                  plateau_mean_n=plateau, early_release=False, too_long=False, dose_met=met,
                  button_presses=0, target_n=40.0, abs_error_n=abs(plateau - 40.0),
                  constant_error_n=plateau - 40.0)
    return HoldMetrics(**values)


def test_consistency_cv_on_hand_made_rows() -> None:
    rows = [row("A", 38.0, 10.0), row("A", 40.0, 12.0), row("A", 42.0, 14.0, met=False),
            row("A", 30.0, 9.0, blind=True), row("B", math.nan, 11.0)]
    table = {(r.trigger_point, r.blind): r for r in consistency(rows)}
    a = table[("A", False)]
    assert a.n == 3
    assert a.plateau_mean_n == pytest.approx(40.0)
    assert a.plateau_sd_n == pytest.approx(2.0)
    assert a.plateau_cv == pytest.approx(0.05)
    assert a.duration_mean_s == pytest.approx(12.0)
    assert a.duration_cv == pytest.approx(2.0 / 12.0)
    assert a.variable_error_n == pytest.approx(2.0)
    assert a.adherence_pct == pytest.approx(200.0 / 3.0)
    assert table[("A", True)].n == 1 and math.isnan(table[("A", True)].plateau_sd_n)
    assert math.isnan(table[("B", False)].plateau_mean_n) and table[("B", False)].n == 1
    assert variable_error([1.0, 3.0, math.nan]) == pytest.approx(math.sqrt(2.0))
    assert math.isnan(variable_error([1.0]))


# ---------------------------------------------------------------- curve comparison
def test_dtw_identity_symmetry_and_growth() -> None:
    s = stream("expert", 0)
    h, g = s.holds[0], s.holds[1]
    a = resample_curve(s.t, s.force_n, h.start_s, h.end_s, dt=0.05)
    b = resample_curve(s.t, s.force_n, g.start_s, g.end_s, dt=0.05)
    assert dtw_distance(a, a, band=10) == 0.0
    assert dtw_distance(a, b, band=20) == pytest.approx(dtw_distance(b, a, band=20))
    d = [dtw_distance(a, a * (1 + k), band=10) for k in (0.05, 0.1, 0.2)]
    assert 0 < d[0] < d[1] < d[2]
    # a time shift costs little with warping, much without
    shifted = np.roll(a, 5)
    assert dtw_distance(a, shifted, band=10) < 0.2 * dtw_distance(a, shifted, band=0)
    # an unconstrained DTW never costs more than a banded one
    assert dtw_distance(a, b) <= dtw_distance(a, b, band=5)
    # brute-force reference on a small case
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=7), rng.normal(size=9)
    ref = np.full((8, 10), np.inf)
    ref[0, 0] = 0
    for i in range(1, 8):
        for j in range(1, 10):
            ref[i, j] = abs(x[i - 1] - y[j - 1]) + min(ref[i - 1, j - 1], ref[i - 1, j],
                                                       ref[i, j - 1])
    assert dtw_distance(x, y) == pytest.approx(ref[7, 9])


def test_median_abs_difference() -> None:
    t = np.arange(0, 10, 0.001)
    f = np.minimum(t * 10, 30.0)
    assert median_abs_difference((t, f), (t + 100.0, f)) == pytest.approx(0.0, abs=1e-9)
    assert median_abs_difference((t, f), (t + 5.0, f + 2.0)) == pytest.approx(2.0)


# ---------------------------------------------------------------- a recording file
PROTOCOL = """
name = "test"
description = "two points"
kind = "static"
unit = "N"
contact_area_cm2 = 2.0
[dose]
target_low = 25.5
target_high = 34.5
min_hold_s = 8.0
max_hold_s = 20.0
""" + TRAPEZIUS_LEFT_RIGHT


def write_recording(path: Path, s: Stream, with_rows: bool, protocol: str = PROTOCOL,
                    session: dict | None = None) -> None:
    """The stream as a recording file: its holds at two points, the first three blind, a
    pain rating in each of the first six (and their /holds rows with ``with_rows``)."""
    n = s.t.size
    w = RecordingWriter(path, session={"protocol_toml": protocol, **(session or {})},
                        device={}, calibration={}, software_version="test")
    w.append_samples(data=s.force_n, timestamps=s.t, raw_counts=np.zeros(n, np.int64),
                     device_tick_us=(s.t * 1e6).astype(np.int64),
                     sequence=np.arange(n) % 65536, host_time=s.t,
                     flags=np.zeros(n, np.uint8))
    labels = ["upper trapezius L", "upper trapezius R"]
    evs = [Event(1.0, "blind_on")]
    rows = []
    for k, g in enumerate(s.truth[:6]):
        lab = labels[k // 3]
        if k == 3:
            evs.append(Event(g.start_s - 1.0, "trigger_point", 1.0, lab))
            evs.append(Event(g.start_s - 0.5, "blind_off"))
        evs.append(Event(g.start_s + 3.0, "pain", float(k)))
        rows.append(Hold(lab, g.repetition, g.start_s, g.end_s, g.end_s - g.start_s, 0.0, 0.0,
                         0.0, 25.5, 34.5, k < 3))
    w.append_events(sorted(evs, key=lambda e: e.time))
    if with_rows:
        w.append_holds(rows)
    w.close()


@pytest.mark.parametrize("with_rows", [True, False])
def test_recording_metrics_from_a_file(tmp_path: Path, with_rows: bool) -> None:
    s = stream("expert", 0)
    path = tmp_path / "rec.h5"
    write_recording(path, s, with_rows)
    out = recording_metrics(open_recording(path))
    assert len(out) == len(s.truth)
    for k, (m, g) in enumerate(zip(out[:6], s.truth[:6], strict=True)):
        assert m.trigger_point == ("upper trapezius L" if k < 3 else "upper trapezius R")
        assert m.repetition == g.repetition
        assert m.blind == (k < 3)
        assert m.pain == float(k)
        assert m.plateau_mean_n == pytest.approx(g.plateau_level_n, rel=0.01)
        assert m.ramp_rate_kpa_per_s == pytest.approx(m.ramp_rate_n_per_s * 5.0)
    ref = stream("expert", 0).rows
    assert [m.duration_s for m in out] == [m.duration_s for m in ref]
    table = consistency(out)
    assert {(r.trigger_point, r.blind) for r in table} == {("upper trapezius L", True),
                                                          ("upper trapezius R", False)}


# ---------------------------------------------------------------- flags and definitions
def test_a_hold_past_the_maximum_is_too_long_and_flagged_only_for_that() -> None:
    dose = newtons(25.0, 35.0, 8.0, 20.0)
    t, f = synthetic([(0, 0), (1, 0), (3, 30), (24, 30), (25, 0), (26, 0)])
    m = hold_metrics(t, f, one_hold(t, f, dose), dose)
    assert m.duration_s == pytest.approx(23.85, abs=0.01)  # 1.5 N (5 % of 30) to 1.5 N
    assert m.too_long and not m.early_release and not m.dose_met
    assert (m.band_low_n, m.band_high_n, m.min_hold_s, m.max_hold_s) == (25.0, 35.0, 8.0, 20.0)
    assert [fl.name for fl in hold_flags(m)] == ["too long"]
    # the same hold cut to 12 s raises nothing; a ramp dose (maximum 0) has no maximum
    t, f = synthetic([(0, 0), (1, 0), (3, 30), (14, 30), (15, 0), (16, 0)])
    m = hold_metrics(t, f, one_hold(t, f, dose), dose)
    assert not m.too_long and m.dose_met and hold_flags(m) == []
    ramp = newtons(25.0, 35.0, 0.0, 0.0)
    assert not hold_metrics(t, f, one_hold(t, f, ramp), ramp).too_long


def test_overshoot_is_judged_against_the_band_top() -> None:
    dose = newtons(25.0, 35.0, 8.0, 20.0)
    for peak, flagged in ((42.0, True), (39.0, False)):
        t, f = synthetic([(0, 0), (1, 0), (3, peak), (4, 32), (14, 32), (15, 0), (16, 0)])
        m = hold_metrics(t, f, one_hold(t, f, dose), dose)
        assert m.peak_over_band_pct == pytest.approx((peak - 35.0) / 35.0 * 100, abs=0.05)
        assert ("overshoot" in [fl.name for fl in hold_flags(m)]) is flagged
    # too little time in band: a plateau under the band for the whole hold
    t, f = synthetic([(0, 0), (1, 0), (3, 22), (14, 22), (15, 0), (16, 0)])
    m = hold_metrics(t, f, one_hold(t, f, dose), dose)
    assert [fl.name for fl in hold_flags(m)] == ["too little time in band"]


def test_every_column_of_the_table_document_has_its_one_definition() -> None:
    doc = (Path(__file__).parents[1] / "analysis" / "TABLE.md").read_text()
    rows = dict(re.findall(r"^\| `(\w+)` \| [^|]* \| (.*) \|$", doc, re.M))
    assert list(METRICS) == [f.name for f in dataclasses.fields(HoldMetrics)]
    for name, metric in METRICS.items():
        assert rows[name].replace("\\|", "|") == metric.definition, name


# ---------------------------------------------------------------- reference and DTW per second
def test_dtw_per_second_is_the_force_gap_whatever_the_lengths() -> None:
    a = (np.arange(0, 10, 0.001), np.full(10_000, 30.0))
    b = (np.arange(0, 15, 0.001), np.full(15_000, 32.0))
    assert dtw_per_second(a, b) == pytest.approx(2.0, rel=1e-3)
    def curve(s: Stream, k: int) -> tuple[np.ndarray, np.ndarray]:
        i, j = np.searchsorted(s.t, (s.holds[k].start_s, s.holds[k].end_s))
        return s.t[i:j] - s.holds[k].start_s, s.force_n[i:j]

    expert, other, novice = curve(stream("expert", 0), 0), curve(stream("expert", 1), 0), \
        curve(stream("novice", 1), 0)
    assert dtw_per_second(expert, expert) == 0.0
    assert 0 < dtw_per_second(expert, other) < dtw_per_second(expert, novice) < 5.0
    # nearly independent of the grid (a finer one lets the warping follow tremor a little)
    coarse, fine = dtw_per_second(expert, novice, dt=0.05), dtw_per_second(expert, novice,
                                                                           dt=0.02)
    assert fine == pytest.approx(coarse, rel=0.2)


def test_reference_curve_is_the_mean_of_the_holds_at_a_point() -> None:
    s = stream("expert", 0)
    at = [(h, g) for h, g in zip(s.holds, s.truth, strict=True)
          if g.trigger_point == s.truth[0].trigger_point]
    assert len(at) == 3
    curves = []
    for h, _ in at:
        i, j = np.searchsorted(s.t, (h.start_s, h.end_s))
        curves.append((s.t[i:j] - h.start_s, s.force_n[i:j]))
    t, f = reference_curve(curves)
    lengths = [g.end_s - g.start_s for _, g in at]
    assert t[-1] == pytest.approx(np.mean(lengths), abs=0.06)
    middle = (t > 0.4 * t[-1]) & (t < 0.6 * t[-1])
    level = np.mean([g.plateau_level_n for _, g in at])
    assert np.mean(f[middle]) == pytest.approx(level, rel=0.02)
    # one hold is its own reference
    one_t, one_f = reference_curve(curves[:1])
    assert np.allclose(one_f, np.interp(one_t + curves[0][0][0], *curves[0]), atol=1e-3)
