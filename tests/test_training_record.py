"""A training schedule end to end: ``record --simulate`` over a real pty with the simulated
therapist, a protocol with a short ``[training]``, and the real file. Every hold the
simulator served is in ``/holds`` with the feedback ``Training.condition(n)`` gives hold n,
and the file's ``feedback`` events say the same as they happen."""

from __future__ import annotations

import json

import numpy as np

from firmware_bridge.sim.truth import therapist_times
from schemas.reader import open_recording
from schemas.session_protocol import load_protocol, protocol_of
from schemas.validate import validate
from tests.conftest import run_palpation

DRILL = """
name = "training drill"
kind = "static"
unit = "N"

[dose]
target_low = 30.0
target_high = 40.0
min_hold_s = 0.5
max_hold_s = 1.5
ramp_min = 40.0
ramp_max = 80.0
repetitions = 10

[[point]]
name = "upper trapezius"
side = "left"

[training]
seed = 3
self_estimate = true

[[training.block]]
name = "pre-test"
holds = 1
feedback = "none"

[[training.block]]
name = "practice"
holds = 2
feedback = "faded"
live_share = 0.5
"""


def test_each_recorded_hold_has_the_feedback_its_schedule_gives(tmp_path):
    (tmp_path / "drill.toml").write_text(DRILL)
    training = load_protocol(DRILL).training
    out, truth = tmp_path / "drill.h5", tmp_path / "truth.json"
    r = run_palpation("record", "--simulate", "--headless", "--seed", "2",
                      "--protocol", str(tmp_path / "drill.toml"), "--duration", "17",
                      "--out", str(out), "--truth", str(truth))
    assert r.returncode == 0, r.stderr
    validate(out)
    rec = open_recording(out)
    assert protocol_of(rec).training == training

    # the holds are the simulator's: its ground truth, mapped to session seconds
    served = [h for h in _served(rec, json.loads(truth.read_text()))
              if h[1] < rec.timestamps[-1] - 0.5]
    complete = rec.holds[rec.holds["complete"] == 1]
    assert len(served) == len(complete) >= 2
    for (start, _), row in zip(served, complete, strict=True):
        assert abs(row["start"] - start) < 0.05

    # each row's columns are the schedule's condition of that hold (no blind trial here)
    conditions = [training.condition(n) for n in range(len(complete))]
    assert [row["feedback"].decode() for row in complete] == [c.feedback for c in conditions]
    assert [bool(row["feedback_live"]) for row in complete] == [c.live for c in conditions]
    assert {c.live for c in conditions} == {False, True}  # seed 3: hold 1 live, holds 0, 2 not

    # the feedback events: one at the start, one at each hold's end with the next condition
    feedback = [e for e in rec.events if e.kind == "feedback"]
    ends = [float(row["end"]) for row in complete]
    assert [round(e.time, 6) for e in feedback[1:]] == [round(t, 6) for t in ends]
    assert feedback[0].time <= rec.timestamps[0] + 0.5
    assert [(e.value, e.text) for e in feedback] == [
        (float(training.condition(n).live), training.condition(n).feedback)
        for n in range(len(complete) + 1)]
    # ... so a hold's condition is the latest feedback event at or before its start
    for row, c in zip(complete, conditions, strict=True):
        latest = [e for e in feedback if e.time <= row["start"]][-1]
        assert (latest.text, bool(latest.value)) == (c.feedback, c.live)

    blocks = [(e.value, e.text) for e in rec.events if e.kind == "training_block"]
    assert blocks == [(0, "pre-test: none"), (1, "practice: faded")]


def _served(rec, truth: dict) -> list[tuple[float, float]]:
    """(start, end) in session seconds of the holds the simulated therapist planned (its
    truth file), through the therapist's clock of each recorded sample."""
    clock = therapist_times(truth, rec.sequence)
    return [(float(np.interp(h["start_s"], clock, rec.timestamps)),
             float(np.interp(h["end_s"], clock, rec.timestamps)))
            for h in truth["holds"] if h["start_s"] < clock[-1]]
