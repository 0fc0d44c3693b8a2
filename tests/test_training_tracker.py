"""The hold tracker under a training schedule: hold count, the next hold's condition and its
events, each row's feedback columns, self-estimates and an anchored band; on square presses
whose holds are known by construction."""

from __future__ import annotations

import math
from dataclasses import replace

import pytest

from recorder.hold_tracker import HoldTracker
from schemas.events import Event
from schemas.events import Hold as HoldRow
from schemas.training import Training, TrainingBlock
from tests.test_stage_holds import feed, presses
from tests.test_stage_holds import protocol as plain_protocol

SCHEDULE = Training((TrainingBlock("pre", 1, "none"),
                     TrainingBlock("practice", 4, "faded", live_share=0.5),
                     TrainingBlock("kr", 2, "terminal")), seed=3, self_estimate=True)


def protocol(training: Training | None = SCHEDULE):
    base = plain_protocol(repetitions=20)
    return replace(base, training=training)


def test_rows_and_feedback_events_follow_the_schedule_hold_by_hold():
    tracker = HoldTracker(protocol(), math.nan)
    start = tracker.start_events(0.0, 0)
    assert [(e.kind, e.value, e.text) for e in start] == [
        ("training_block", 0, "pre: none"), ("feedback", 0.0, "none")]
    t, force = presses(8)
    out = feed(tracker, t, force)
    rows = [x for x in out if isinstance(x, HoldRow)]
    assert len(rows) == 8 and tracker.hold_count == 8
    for n, row in enumerate(rows):
        c = SCHEDULE.condition(n)
        assert (row.feedback, row.feedback_live) == (c.feedback, c.live), n
    assert sum(row.feedback_live for row in rows[1:5]) == 2  # 50 % of the faded block
    ends = [x.time for x in out if isinstance(x, Event) and x.kind == "hold_end"]
    feedback = [x for x in out if isinstance(x, Event) and x.kind == "feedback"]
    assert [e.time for e in feedback] == ends  # one after every hold, at its end
    assert [(e.value, e.text) for e in feedback] == [
        (float(SCHEDULE.condition(n).live), SCHEDULE.condition(n).feedback)
        for n in range(1, 9)]
    blocks = [(x.time, x.value, x.text) for x in out
              if isinstance(x, Event) and x.kind == "training_block"]
    assert blocks == [(ends[0], 1, "practice: faded"), (ends[4], 2, "kr: terminal")]
    assert tracker.condition == SCHEDULE.condition(8)  # past the end: the last block goes on


def test_a_blind_trial_turns_live_feedback_off_in_the_row():
    tracker = HoldTracker(protocol(Training((TrainingBlock("all", 5, "concurrent"),))),
                          math.nan)
    t, force = presses(2)
    half = len(t) // 2
    first = [x for x in feed(tracker, t[:half], force[:half]) if isinstance(x, HoldRow)]
    tracker.set_blind(True, 5.0, 0)
    second = [x for x in feed(tracker, t[half:], force[half:]) if isinstance(x, HoldRow)]
    assert [(r.feedback, r.feedback_live, r.blind) for r in first + second] == [
        ("concurrent", True, False), ("concurrent", False, True)]


def test_without_a_schedule_rows_have_no_mode_and_live_is_not_blind():
    tracker = HoldTracker(protocol(None), math.nan)
    assert tracker.condition is None and tracker.start_events(0.0, 0) == []
    tracker.set_blind(True, 0.0, 0)
    out = feed(tracker, *presses(2))
    rows = [x for x in out if isinstance(x, HoldRow)]
    assert [(r.feedback, r.feedback_live) for r in rows] == [("", False), ("", False)]
    assert not [x for x in out if isinstance(x, Event) and x.kind == "feedback"]
    assert tracker.hold_count == 2


def test_self_estimates_are_awaited_after_holds_without_live_feedback():
    tracker = HoldTracker(protocol(), math.nan)
    t, force = presses(1)
    feed(tracker, t, force)
    assert tracker.hold_count == 1 and tracker.awaiting_estimate  # "pre" has no feedback
    [event] = tracker.self_estimate(1, 4.5, 450)
    assert (event.kind, event.value, event.text, event.sample_index) == (
        "self_estimate", 1, "firm", 450)
    assert not tracker.awaiting_estimate
    with pytest.raises(ValueError, match="-1, 0 or \\+1"):
        tracker.self_estimate(2, 4.6, 451)


def test_an_anchored_band_judges_the_next_holds_and_is_the_bands_answer():
    tracker = HoldTracker(protocol(None), math.nan)
    t, force = presses(3, level=22.0)  # below the protocol's 30-50 N band
    third = len(t) // 3
    before = [x for x in feed(tracker, t[:third], force[:third]) if isinstance(x, HoldRow)]
    tracker.set_band(0, 20.0, 24.0)
    assert tracker.band_n() == (20.0, 24.0) and tracker.band_n(1) == (30.0, 50.0)
    after = [x for x in feed(tracker, t[third:], force[third:]) if isinstance(x, HoldRow)]
    assert [(r.target_low_n, r.target_high_n) for r in before] == [(30.0, 50.0)]
    assert [(r.target_low_n, r.target_high_n) for r in after] == [(20.0, 24.0)] * 2
    assert before[0].time_in_band == 0.0
    assert [r.time_in_band for r in after] == pytest.approx([3.0, 3.0], abs=0.02)
