"""The recording session's training commands on the real pipeline: the simulated sensor on a
pty, the real session and file. ``status()`` follows the schedule hold by hold, a
self-estimate is awaited after a hold without live feedback and recorded when given, and a
wrong one is refused in the caller's thread."""

from __future__ import annotations

from dataclasses import replace

import pytest

from schemas.reader import open_recording
from schemas.session_protocol import load_preset
from schemas.training import Training, TrainingBlock
from tests.conftest import simulated_session, wait_until

SCHEDULE = Training((TrainingBlock("pre-test", 1, "none"),
                     TrainingBlock("practice", 3, "concurrent")), self_estimate=True)


def short_training():
    """nmt-training's first point with 2 s holds loaded fast, and a two-block schedule."""
    p = load_preset("nmt-training")
    dose = replace(p.points[0].dose, min_hold_s=2.0, max_hold_s=2.0, repetitions=4,
                   rest_s=0.5, ramp_min=40.0, ramp_max=80.0)
    return replace(p, points=(replace(p.points[0], dose=dose),), training=SCHEDULE)


def test_status_follows_the_schedule_and_a_self_estimate_is_awaited_then_recorded(tmp_path):
    protocol, out = short_training(), tmp_path / "estimate.h5"
    with simulated_session(out, protocol, seed=4) as (session, _, _):
        assert session.training == SCHEDULE
        first = session.status()
        assert (first.condition, first.holds_done, first.awaiting_estimate) == (
            SCHEDULE.condition(0), 0, False)
        assert wait_until(lambda: session.status().holds_done == 1, 15)
        after = session.status()
        assert after.condition == SCHEDULE.condition(1) and after.condition.live
        assert after.awaiting_estimate  # hold 0 had no feedback: "too light, right, firm?"
        with pytest.raises(ValueError, match="-1, 0 or \\+1"):
            session.set_self_estimate(2)
        session.set_self_estimate(-1)
        assert wait_until(lambda: not session.status().awaiting_estimate, 2)
    rec = open_recording(out)
    [estimate] = [e for e in rec.events if e.kind == "self_estimate"]
    first_end = float(rec.holds[0]["end"])
    assert (estimate.value, estimate.text) == (-1, "light") and estimate.time > first_end
    assert rec.holds[0]["feedback"] == b"none" and rec.holds[0]["feedback_live"] == 0
