"""Subject-anchored dose (recorder/anchor.py): the pure anchor stage on hand-built force
ramps, and the whole path over a real pty with the simulated therapist and subject, judged
against the simulator's ground truth."""

from __future__ import annotations

import time
from dataclasses import replace

import numpy as np
import pytest

from firmware_bridge.frames import FLAG_BUTTON
from firmware_bridge.sim.truth import therapist_times
from recorder.anchor import AnchorStage
from schemas.reader import open_recording
from schemas.session_protocol import load_preset
from tests.conftest import run_palpation, simulated_session, wait_until

FS = 1000.0


def anchored(reaction_time_s: float = 0.3, points: int = 2):
    """The nmt-anchored preset (target_pain 6) cut to ``points`` points."""
    p = load_preset("nmt-anchored")
    dose = replace(p.points[0].dose, reaction_time_s=reaction_time_s)
    return replace(p, points=tuple(replace(pt, dose=dose) for pt in p.points[:points]))


def feed(stage: AnchorStage, t: np.ndarray, f: np.ndarray, point: int, chunk: int = 37):
    """Feed in uneven chunks, as the reader thread does."""
    for a in range(0, len(t), chunk):
        stage.feed(t[a:a + chunk], f[a:a + chunk], point)


def ramp_then_plateau(t: np.ndarray) -> np.ndarray:
    """5 N/s from 1 s, a plateau at 30 N from 7 s."""
    return np.clip(5.0 * (t - 1.0), 0.0, 30.0)


@pytest.mark.parametrize("reaction", [0.3, 0.5])
def test_the_target_is_the_force_reaction_time_before_the_signal(reaction):
    stage = AnchorStage.for_protocol(anchored(reaction))
    t = np.arange(0.0, 6.5, 1 / FS)
    feed(stage, t, ramp_then_plateau(t), 0)
    anchor = stage.signal(0, 6.0, holding=True)
    # a straight ramp: the window's mean is the force at its centre, 5 N/s x (5 - reaction) s
    # (within half a sample, 2.5 mN, should float rounding drop a window's end sample)
    assert anchor.target_n == pytest.approx(5.0 * (5.0 - reaction), abs=3e-3)
    assert (anchor.point_index, anchor.time_s) == (0, 6.0)
    assert stage.anchored == {0: anchor.target_n}
    assert not stage.unanchored(0) and stage.unanchored(1)


def test_tremor_is_averaged_out_of_the_target():
    """10 Hz tremor of 2 N on the ramp: one sample could be 2 N off, the 100 ms mean is not."""
    stage = AnchorStage.for_protocol(anchored())
    t = np.arange(0.0, 6.5, 1 / FS)
    feed(stage, t, ramp_then_plateau(t) + 2.0 * np.sin(2 * np.pi * 10.0 * t + 0.3), 0)
    assert stage.signal(0, 6.0, holding=True).target_n == pytest.approx(23.5, abs=0.05)


def test_a_second_signal_at_an_anchored_point_does_nothing():
    stage = AnchorStage.for_protocol(anchored())
    t = np.arange(0.0, 9.0, 1 / FS)
    feed(stage, t[:5000], ramp_then_plateau(t[:5000]), 0)
    first = stage.signal(0, 4.9, holding=True)
    feed(stage, t[5000:], ramp_then_plateau(t[5000:]), 0)
    assert stage.signal(0, 8.5, holding=True) is None  # the subject asks to stop
    assert stage.signal(0, 8.6, holding=True, rating=6.0) is None
    assert stage.anchored == {0: first.target_n}
    assert first.target_n == pytest.approx(5.0 * 3.6, abs=3e-3)


def test_only_a_rating_equal_to_target_pain_anchors():
    stage = AnchorStage.for_protocol(anchored())
    t = np.arange(0.0, 6.5, 1 / FS)
    feed(stage, t, ramp_then_plateau(t), 0)
    assert stage.signal(0, 5.0, holding=True, rating=5.0) is None
    assert stage.signal(0, 5.5, holding=True, rating=7.0) is None
    assert stage.unanchored(0)
    assert stage.signal(0, 6.0, holding=True, rating=6.0).target_n == pytest.approx(23.5, abs=3e-3)


def test_no_anchor_without_a_hold_or_a_force():
    stage = AnchorStage.for_protocol(anchored())
    assert stage.signal(0, 0.1, holding=True) is None  # no force seen yet
    t = np.arange(0.0, 0.9, 1 / FS)
    feed(stage, t, ramp_then_plateau(t), 0)
    assert stage.signal(0, 0.8, holding=True) is None  # nothing on the sensor then
    t = np.arange(0.9, 6.5, 1 / FS)
    feed(stage, t, ramp_then_plateau(t), 0)
    assert stage.signal(0, 6.0, holding=False) is None  # a press at rest is no rating
    assert stage.signal(1, 6.0, holding=True) is None  # not the point being fed
    assert stage.unanchored(0)


def test_a_new_point_never_reads_the_last_points_force():
    """40 N at point 0 until 5 s, then 10 N at point 1: a signal at point 1 0.1 s after the
    move reaches back before its history, and takes point 1's earliest force."""
    stage = AnchorStage.for_protocol(anchored())
    t = np.arange(0.0, 5.2, 1 / FS)
    f = np.where(t < 5.0, 40.0, 10.0)
    before = t < 5.0
    feed(stage, t[before], f[before], 0)
    feed(stage, t[~before], f[~before], 1)
    assert stage.signal(1, 5.1, holding=True).target_n == pytest.approx(10.0)


def test_the_history_stays_short():
    """A minute at 1 kHz keeps only the last history_s seconds (reaction + window + 1 s)."""
    stage = AnchorStage.for_protocol(anchored())
    t = np.arange(0.0, 60.0, 1 / FS)
    feed(stage, t, ramp_then_plateau(t), 0, chunk=250)
    assert stage.history_s == pytest.approx(1.4)
    assert stage.force_at(58.0) == pytest.approx(30.0)  # inside the history
    assert stage.force_at(50.0) == pytest.approx(30.0)  # long gone: the oldest kept sample
    assert np.isnan(AnchorStage.for_protocol(anchored()).force_at(1.0))


def test_a_fixed_band_protocol_has_no_anchor_stage():
    assert AnchorStage.for_protocol(load_preset("nmt-static")) is None
    assert AnchorStage.for_protocol(None) is None


# ---- end to end: the simulated therapist and subject over a real pty ----------------------

SEED = 5


def short_anchored():
    """nmt-anchored cut to 2 points for a test: a provisional band of 10-14 N (the simulated
    subject's 6/10 forces are 75-125 % of its middle, 9-15 N, reached 2-3 s into the 5 N/s
    first approach), 2 s holds, 2 repetitions, 0.5 s rests."""
    p = load_preset("nmt-anchored")
    dose = replace(p.points[0].dose, target_low=10.0, target_high=14.0, min_hold_s=2.0,
                   max_hold_s=2.0, repetitions=2, rest_s=0.5)
    return replace(p, points=tuple(replace(pt, dose=dose) for pt in p.points[:2]))


def true_force_then(rec, truth, therapist, start_s: float, end_s: float) -> float:
    """The applied force the simulator made over the recorded samples in [start_s, end_s]
    (session seconds), mean, seen through the factory scale as the file's force is."""
    keep = (rec.timestamps >= start_s) & (rec.timestamps <= end_s)
    scale = truth["adc"]["counts_per_newton"] / truth["adc"]["nominal_counts_per_newton"]
    return float(therapist.force(therapist_times(truth, rec.sequence[keep])).mean()) * scale


def test_the_subjects_button_anchors_each_point_at_its_true_6_of_10(tmp_path):
    """Both points are anchored by the simulated subject's button: each target_anchor is the
    recorded force 0.3 s before the press and lies within a justified tolerance of the
    simulator's true 6/10 force of the point; the later hold at the first point is judged by
    the anchored band; ratings other than 6, or a 6 at an anchored point, change nothing."""
    protocol, out = short_anchored(), tmp_path / "anchored.h5"
    provisional = protocol.points[0].dose.band_n()
    with simulated_session(out, protocol, SEED) as (session, sensor, server):
        assert wait_until(lambda: session.point_index == 0 and session.live_hold, 10)
        session.add_event("pain", 5.0)  # not target_pain: no anchor
        assert wait_until(lambda: session.band_n(0) != provisional, 15)
        session.add_event("pain", 6.0)  # the point is anchored already: nothing
        assert wait_until(lambda: session.band_n(1) != provisional, 30), "point 2 unanchored"
        time.sleep(0.2)
        truth = sensor.truth(server.t0)
    assert run_palpation("validate", "--deep", str(out)).returncode == 0
    rec = open_recording(out)
    anchors = [e for e in rec.events if e.kind == "target_anchor"]
    assert [e.text for e in anchors] == [p.label for p in protocol.points]
    presses = [e.time for e in rec.events if e.kind == "button_down"]
    scale = truth["adc"]["counts_per_newton"] / truth["adc"]["nominal_counts_per_newton"]
    for event, served in zip(anchors, truth["anchors"], strict=True):
        assert event.time in presses  # the signal is the press
        # the mechanics: the mean of the recorded force 0.3 s before the press (±50 ms),
        # against what the simulator applied to those samples: ADC noise only (6 mN a sample)
        then = true_force_then(rec, truth, sensor.therapist, event.time - 0.35,
                               event.time - 0.25)
        assert event.value == pytest.approx(then, abs=0.02)
        # the clinical question: the subject's reaction differs from the assumed 0.3 s, which
        # moves the target by the ramp's local rate (an expert's in-ramp wobble: within 20 %
        # of its mean) times the difference; the hand's slow wander (expert: 0.4 % RMS, two
        # sines peaking under 0.8 %) and the tremor left in a 100 ms mean stay within 1 %.
        # Reading the force at the press itself (no correction) is off by the whole
        # reaction, about 1.2-1.5 N here: outside the tolerance.
        rate = next(h["ramp_n_per_s"] for h in truth["holds"]
                    if h["trigger_point"] == served["trigger_point"] and h["repetition"] == 1)
        tolerance = 1.2 * rate * abs(served["reaction_s"] - 0.3) + 0.01 * served["pain_n"]
        assert event.value / scale == pytest.approx(served["pain_n"], abs=tolerance)
        near = np.abs(rec.timestamps - event.time) <= 0.05
        at_press = float(rec.force[near].mean()) / scale
        assert abs(at_press - served["pain_n"]) > tolerance  # it would catch no correction
    # the later repetition at the first point is judged by its anchored band
    later = [r for r in rec.holds if r["trigger_point"].decode() == anchors[0].text
             and r["repetition"] == 2]
    assert len(later) == 1 and later[0]["complete"]
    band = protocol.points[0].dose.anchored_band_n(anchors[0].value)
    assert (later[0]["target_low_n"], later[0]["target_high_n"]) == pytest.approx(band)
    assert band != pytest.approx(provisional, abs=0.5)


def test_the_trainee_typing_the_rating_anchors_the_point(tmp_path):
    """The trainee types 6 part-way up the first approach (the subject said it): the point's
    target is the force 0.3 s before the key, against the simulator's applied force then; the
    subject's button that follows at the anchored point changes nothing."""
    protocol, out = short_anchored(), tmp_path / "typed.h5"
    with simulated_session(out, protocol, SEED) as (session, sensor, server):
        scale = sensor.adc.counts_per_newton / sensor.adc.nominal_counts_per_newton
        key_n = 0.6 * sensor.therapist.point_pain_n[0] * scale
        assert wait_until(lambda: session.live_hold is not None
                          and session.ring.latest(10).force.mean() >= key_n, 12, step=0.005)
        session.add_event("pain", 6.0)
        assert wait_until(lambda: bool((session.ring.latest(200).flags & FLAG_BUTTON).any()),
                          8), "the subject never pressed"
        time.sleep(0.2)
        truth = sensor.truth(server.t0)
    rec = open_recording(out)
    (anchor,) = [e for e in rec.events if e.kind == "target_anchor"]
    (typed,) = [e for e in rec.events if e.kind == "pain"]
    assert anchor.time == typed.time and anchor.text == protocol.points[0].label
    then = true_force_then(rec, truth, sensor.therapist, typed.time - 0.35, typed.time - 0.25)
    assert anchor.value == pytest.approx(then, abs=0.02)
    assert anchor.value < 0.75 * sensor.therapist.point_pain_n[0] * scale  # not the button's
    assert any(e.kind == "button_down" and e.time > anchor.time for e in rec.events)
