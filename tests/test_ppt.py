"""Pressure-pain thresholds (analysis/ppt.py): each ramp's threshold read from real recordings of
the simulated therapist working a threshold-ramp protocol, checked against the simulator's
ground truth; the per-site summary (first-trial rule, left-right difference, change against
the MDC) on those recordings and on rows built by hand where the numbers must be exact.

The recordings are rendered without real time, as ``firmware_bridge/sim/offline.py`` renders a
plan's sessions: the simulated therapist's force (``Therapist``, its threshold ramps from
``firmware_bridge/sim/threshold_ramp.py``) at 1 kHz through the simulated ADC (its noise and
rounding, read back with the ADC's true scale), the subject's button as flags bit 0, written by
the real writer and reopened by the real reader. A live recording of the same would take half a
minute per file.
"""

from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from analysis.metrics import recording_metrics
from analysis.ppt import (
    PPT_COLUMNS,
    PPT_SUMMARY_COLUMNS,
    first_press,
    ppt_columns,
    ppt_hold_rows,
    ppt_summary_rows,
)
from analysis.reliability import icc
from firmware_bridge.sim.adc import AdcModel
from firmware_bridge.sim.therapist import HoldTruth, Therapist
from schemas.events import Event
from schemas.reader import open_recording
from schemas.session_protocol import load_protocol
from schemas.writer import RecordingWriter
from tests.conftest import TRAPEZIUS_LEFT_RIGHT

FS = 1000.0
PPT_TOML = """
name = "ppt two sites"
description = "PPT at the upper trapezius, both sides: a sensitive subject (250 kPa cut-off)"
kind = "ppt_ramp"
unit = "kPa"
contact_area_cm2 = 1.0
[dose]
target_low = 0.0
target_high = 250.0
min_hold_s = 0.0
max_hold_s = 0.0
ramp_min = 40.0
ramp_max = 60.0
repetitions = 3
rest_s = 1.0
""" + TRAPEZIUS_LEFT_RIGHT
# The bound on a recorded threshold against the truth's: the first sample with the button
# down comes at most one 1 kHz sample after the press, 0.1 N on an expert's steepest slope
# (ramp and tremor, test_therapist), plus 4 SD of the ADC's noise (25 counts at 4173 counts/N).
ADC = AdcModel()
THRESHOLD_TOL_N = 0.1 + 4 * ADC.noise_counts / ADC.counts_per_newton


def write_simulated(path: Path, toml: str, *, seed: int, session: dict | None = None,
                    profile: str = "expert", unpress: int | None = None) -> list[HoldTruth]:
    """The simulated therapist working once through the protocol ``toml`` as a recording at
    ``path`` (see the module docstring), with ``trigger_point`` events where the point changes
    as the recorder writes them; ``unpress``: the index of a ramp whose button is not
    recorded. Returns the truth of its holds."""
    proto = load_protocol(toml)
    labels = [p.label for p in proto.points]
    th = Therapist(profile, dose=proto.points[0].dose, seed=seed, start_delay_s=1.0,
                   contact_area_cm2=proto.contact_area_cm2, trigger_points=labels)
    holds = th.cycle_holds(0)
    idx = np.arange(int((holds[-1].end_s + 1.0) * FS))
    t = idx / FS
    adc = replace(ADC, seed=seed)
    counts, _ = adc.counts(th.force(t), idx)
    button = th.button(t)
    if unpress is not None:
        button[(t >= holds[unpress].start_s) & (t <= holds[unpress].end_s + 2.0)] = False
    w = RecordingWriter(path, session={"protocol": proto.name, "protocol_toml": toml,
                                       "contact_area_cm2": proto.contact_area_cm2 or math.nan,
                                       **(session or {})},
                        device={}, calibration={}, software_version="test")
    w.append_samples(data=(counts - adc.offset_counts) / adc.counts_per_newton, timestamps=t,
                     raw_counts=counts.astype(np.int64), device_tick_us=(t * 1e6).astype(np.int64),
                     sequence=idx % 65536, host_time=t, flags=button.astype(np.uint8))
    w.append_events([Event(h.end_s, "trigger_point", labels.index(nxt.trigger_point),
                           nxt.trigger_point)
                     for h, nxt in zip(holds, holds[1:], strict=False)
                     if nxt.trigger_point != h.trigger_point])
    w.close()
    return holds


@pytest.fixture(scope="module")
def sessions(tmp_path_factory) -> list[tuple[Path, list[HoldTruth]]]:
    """Two sessions of subject S01 by rater Ana (seeds 3 and 5; a seed is a subject's set of
    thresholds, so the second session's differ: the change is known from the truth)."""
    d = tmp_path_factory.mktemp("ppt")
    out = []
    for k, seed in enumerate((3, 5), start=1):
        path = d / f"s{k}.h5"
        holds = write_simulated(path, PPT_TOML, seed=seed, session={
            "trainee": "Ana", "subject": "S01", "session_label": str(k)})
        out.append((path, holds))
    return out


def _rows(path: Path) -> list[dict]:
    rec = open_recording(path)
    return ppt_hold_rows(rec, recording_metrics(rec), path.name)


# ---------------------------------------------------------------------------- per ramp
def test_each_ramps_threshold_is_the_truths_force_at_the_button(sessions):
    """Every ramp found, in order, at its point and repetition; its threshold_n the truth's
    force at the press within the sampling and noise bound, far below the ramp's peak (the
    therapist goes on ramping for a reaction time after the press); kPa on the 1 cm² probe."""
    for path, truth in sessions:
        rec = open_recording(path)
        metrics = recording_metrics(rec)
        cols = ppt_columns(rec, metrics)
        assert [(m.trigger_point, m.repetition) for m in metrics] == [
            (h.trigger_point, h.repetition) for h in truth]
        for m, c, h in zip(metrics, cols, truth, strict=True):
            assert set(c) == set(PPT_COLUMNS)
            assert abs(c["threshold_n"] - h.threshold_n) < THRESHOLD_TOL_N
            assert m.peak_n - c["threshold_n"] > 5 * THRESHOLD_TOL_N
            assert c["threshold_kpa"] == pytest.approx(c["threshold_n"] * 10.0)


def test_a_ramp_without_a_press_or_an_area_has_no_threshold(tmp_path):
    """The button of the second ramp not recorded: its threshold is NaN and the others are
    unchanged; a file whose protocol is in newtons with no contact area has thresholds in N
    but none in kPa."""
    path = tmp_path / "unpressed.h5"
    truth = write_simulated(path, PPT_TOML, seed=3, unpress=1)
    rec = open_recording(path)
    cols = ppt_columns(rec, recording_metrics(rec))
    assert math.isnan(cols[1]["threshold_n"]) and math.isnan(cols[1]["threshold_kpa"])
    assert abs(cols[0]["threshold_n"] - truth[0].threshold_n) < THRESHOLD_TOL_N
    newtons = (PPT_TOML.replace('unit = "kPa"', 'unit = "N"')
               .replace("contact_area_cm2 = 1.0\n", "")
               .replace("target_high = 250.0", "target_high = 25.0")
               .replace("ramp_min = 40.0", "ramp_min = 4.0")
               .replace("ramp_max = 60.0", "ramp_max = 6.0"))
    path = tmp_path / "newtons.h5"
    truth = write_simulated(path, newtons, seed=3)
    rec = open_recording(path)
    cols = ppt_columns(rec, recording_metrics(rec))
    assert len(cols) == len(truth)
    for c, h in zip(cols, truth, strict=True):
        assert abs(c["threshold_n"] - h.threshold_n) < THRESHOLD_TOL_N
        assert math.isnan(c["threshold_kpa"])


def test_a_press_is_the_buttons_first_down_edge_within_the_span():
    flags = np.array([0, 0, 1, 1, 0, 1, 1, 0], dtype=np.uint8)
    assert first_press(flags, 0, 8) == 2
    assert first_press(flags, 3, 8) == 5  # down before the span began: its next press
    assert first_press(flags, 2, 8) == 2  # the press on the span's first sample
    assert first_press(flags, 3, 5) is None
    assert first_press(np.array([1, 1, 0], dtype=np.uint8), 0, 3) is None
    assert first_press(np.array([6, 7, 2], dtype=np.uint8), 0, 3) == 1  # bit 0 only


# ---------------------------------------------------------------------------- per site
def test_summary_per_site_against_the_truth(sessions):
    """Per session and site: the series and its mean are the truth's thresholds (all kept, or
    the first dropped), L-R % by hand from the rows, and the change from session 1 to 2 is
    the difference of the means; two pairs are too few for the data's own MDC, so nothing is
    flagged, and a given MDC flags exactly the changes beyond it."""
    rows = [r for path, _ in sessions for r in _rows(path)]
    truth = {(k, h.trigger_point): [] for k in (1, 2) for h in sessions[0][1]}
    for k, (_, holds) in enumerate(sessions, start=1):
        for h in holds:
            truth[(k, h.trigger_point)].append(h.threshold_n)
    for rule, first in (("keep", 0), ("drop", 1)):
        out = ppt_summary_rows(rows, first_trial=rule)
        assert [(r["session"], r["site"]) for r in out] == [
            (str(k), site) for k, site in truth]
        for r in out:
            assert set(r) == set(PPT_SUMMARY_COLUMNS)
            want = truth[(int(r["session"]), r["site"])][first:]
            series = [float(v) for v in r["series_n"].split(";")]
            assert series == pytest.approx(want, abs=THRESHOLD_TOL_N + 0.005)
            assert (r["n_used"], r["n_dropped"]) == (3 - first, first)
            assert r["mean_n"] == pytest.approx(np.mean(want), abs=THRESHOLD_TOL_N)
            assert r["mean_kpa"] == pytest.approx(10 * r["mean_n"])
        for k in ("1", "2"):
            left, right = (next(r for r in out if r["session"] == k and r["site"] == site)
                           for site in ("upper trapezius L", "upper trapezius R"))
            mine = [[x["threshold_n"] for x in rows
                     if x["session"] == k and x["trigger_point"] == site][first:]
                    for site in ("upper trapezius L", "upper trapezius R")]
            a, b = np.mean(mine[0]), np.mean(mine[1])
            assert left["lr_diff_pct"] == right["lr_diff_pct"] == pytest.approx(
                (a - b) / ((a + b) / 2) * 100)
    out = ppt_summary_rows(rows)
    first, second = out[:2], out[2:]
    assert all(r["previous_session"] == "" and math.isnan(r["change_n"]) for r in first)
    changes = []
    for before, after in zip(first, second, strict=True):
        assert after["previous_session"] == "1"
        assert after["change_n"] == pytest.approx(after["mean_n"] - before["mean_n"])
        changes.append(abs(after["change_n"]))
        assert after["mdc_from"].startswith("unknown") and not after["change_beyond_mdc"]
    assert min(changes) > 0.2  # the two seeds' subjects differ
    given = float(np.mean(changes))
    out = ppt_summary_rows(rows, mdc_n=given)
    assert [r["change_beyond_mdc"] for r in out[2:]] == [c > given for c in changes]
    assert sorted(r["change_beyond_mdc"] for r in out[2:]) == [False, True]
    assert all(r["mdc_n"] == given and r["mdc_from"] == "given" for r in out)


def _row(subject: str, session: int, site: str, rep: int, value: float, *,
         complete: bool = True, trainee: str = "Ana") -> dict:
    return {"file": f"{trainee}/{subject}-s{session}.h5", "trainee": trainee,
            "subject": subject, "session": str(session),
            "session_start": f"2026-0{session}-01T10:00:00", "protocol": "ppt",
            "trigger_point": site, "repetition": rep, "complete": complete,
            "max_hold_s": 0.0, "threshold_n": value, "threshold_kpa": value * 10}


def test_the_data_mdc_flags_only_changes_beyond_it():
    """Six subjects, one site, two sessions, one ramp each: five change by a few tenths of a
    newton, S6 by 4 N. The MDC is 1.96 sqrt(2) SEM with SEM = SD of all scores x sqrt(1 -
    ICC(2,1)), computed here by hand from the scores; only S6's change is beyond it."""
    first = [30.0, 36.0, 41.0, 47.0, 52.0, 58.0]
    delta = [0.5, -0.4, 0.3, -0.6, 0.2, 4.0]
    rows = [_row(f"S{i + 1}", s, "upper trapezius L", 1, v + (d if s == 2 else 0.0))
            for i, (v, d) in enumerate(zip(first, delta, strict=True)) for s in (1, 2)]
    out = ppt_summary_rows(rows)
    scores = np.array([[v, v + d] for v, d in zip(first, delta, strict=True)])
    value = icc(scores, "ICC(2,1)").value
    mdc = 1.96 * math.sqrt(2) * scores.std(ddof=1) * math.sqrt(1 - value)
    assert 0.6 < mdc < 4.0
    later = [r for r in out if r["session"] == "2"]
    assert [r["change_n"] for r in later] == pytest.approx(delta)
    assert all(r["mdc_n"] == pytest.approx(mdc) for r in out)
    assert [r["change_beyond_mdc"] for r in later] == [False] * 5 + [True]
    assert later[0]["mdc_from"] == f"data (ICC(2,1) = {value:.2f}, 6 pairs)"


def test_incomplete_and_unpressed_ramps_are_left_out_and_counted():
    rows = [_row("S1", 1, "piriformis L", 1, 40.0, complete=False),
            _row("S1", 1, "piriformis L", 2, math.nan),
            _row("S1", 1, "piriformis L", 3, 44.0),
            _row("S1", 1, "piriformis L", 4, 46.0),
            {**_row("S1", 1, "piriformis L", 5, 90.0), "max_hold_s": 20.0}]  # a hold
    for rule, dropped in (("keep", 0), ("drop", 1)):
        (r,) = ppt_summary_rows(rows, first_trial=rule)
        assert (r["n_dropped"], r["n_incomplete"], r["n_no_press"], r["n_used"]) == (
            dropped, 1 - dropped, 1, 2)
        assert r["mean_n"] == pytest.approx(45.0) and r["series_n"] == "44.00;46.00"
        assert math.isnan(r["lr_diff_pct"])  # no right side


def test_sessions_are_compared_only_for_a_named_subject_and_the_same_rater():
    rows = [_row("", s, "infraspinatus R", 1, 30.0 + s) for s in (1, 2)]
    rows += [_row("S2", 1, "infraspinatus R", 1, 30.0, trainee="Ana"),
             _row("S2", 2, "infraspinatus R", 1, 35.0, trainee="Ben")]
    out = ppt_summary_rows(rows, mdc_n=1.0)
    assert len(out) == 4
    assert all(math.isnan(r["change_n"]) and not r["change_beyond_mdc"] for r in out)


def test_bad_options_are_refused():
    with pytest.raises(ValueError, match="first_trial must be one of keep, drop"):
        ppt_summary_rows([], first_trial="first")
    with pytest.raises(ValueError, match="MDC"):
        ppt_summary_rows([], mdc_n=-1.0)
    assert ppt_summary_rows([]) == []
