"""The simulated learner: pure and seeded, the dependency gap of live feedback, better
retention from knowledge of results, decay over days; the offline plan's recordings reopen,
validate, and the analysis finds in them the holds the learner aimed (ground truth)."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import numpy as np
import pytest

from analysis.metrics import recording_metrics
from firmware_bridge.sim.learner import Learner
from schemas.reader import open_recording
from schemas.session_protocol import load_protocol
from schemas.training import Training, TrainingBlock
from schemas.validate import validate
from tests.conftest import TRAPEZIUS_LEFT_RIGHT, run_palpation

TARGET_N = 40.0


def practise(learner: Learner, training: Training, day: float,
             holds: int | None = None) -> list[float]:
    """Holds under ``training`` on ``day`` made exactly at the learner's aim; their absolute
    errors, % of target."""
    errors = []
    for k in range(training.total_holds if holds is None else holds):
        c = training.condition(k)
        aim = learner.hold_aim(TARGET_N, c, day)
        learner.after_hold(aim, TARGET_N, c)
        errors.append(100.0 * abs(aim / TARGET_N - 1.0))
    return errors


def one_block(feedback: str, holds: int = 30, **kw) -> Training:
    return Training((TrainingBlock("block", holds, feedback, **kw),), seed=3)


NO_FEEDBACK = one_block("none", 10)


def test_same_seed_same_holds_and_saved_state_carries_on() -> None:
    a, b = Learner(seed=4), Learner(seed=4)
    faded = one_block("faded", 20, live_share=0.5)
    assert practise(a, faded, 0.0) == practise(b, faded, 0.0)
    restored = Learner.from_dict(json.loads(json.dumps(a.to_dict())))
    assert practise(restored, NO_FEEDBACK, 2.0) == practise(a, NO_FEEDBACK, 2.0)
    assert practise(Learner(seed=5), faded, 0.0) != practise(Learner(seed=4), faded, 0.0)


def test_concurrent_feedback_low_error_in_practice_large_gap_without_it() -> None:
    learner = Learner(seed=1, baseline_error_pct=35.0)
    practice = practise(learner, one_block("concurrent"), 0.0)
    test = practise(learner, NO_FEEDBACK, 0.0)
    assert np.mean(practice) < 6.0
    assert np.mean(test) - np.mean(practice) > 10.0  # the dependency gap, in % of target


def test_terminal_and_faded_retain_better_than_concurrent_at_one_week() -> None:
    at_week = {}
    for mode, kw in (("concurrent", {}), ("terminal", {}), ("faded", {"live_share": 0.5})):
        learner = Learner(seed=2, baseline_error_pct=35.0)
        practise(learner, one_block(mode, **kw), 0.0)
        at_week[mode] = np.mean(practise(learner, NO_FEEDBACK, 7.0))
    assert at_week["concurrent"] > 28.0  # back near the 35 % baseline
    assert at_week["terminal"] < at_week["concurrent"] / 2
    assert at_week["faded"] < at_week["concurrent"] / 2


def test_learning_decays_with_days() -> None:
    learner = Learner(seed=3, baseline_error_pct=-30.0)
    practise(learner, one_block("terminal", 40), 0.0)
    errors = []
    for day in (0.0, 7.0, 56.0, 400.0):
        learner.advance_to(day)
        errors.append(abs(learner.error_pct))
    assert errors == sorted(errors)
    assert errors[0] < 5.0 and errors[-1] > 25.0
    with pytest.raises(ValueError, match="before the learner's last hold"):
        learner.advance_to(1.0)


def test_self_estimates_sense_the_error_sign() -> None:
    learner = Learner(seed=6, baseline_error_pct=40.0)
    training = Training((TrainingBlock("test", 10, "none"),), self_estimate=True)
    answers = [learner.after_hold(TARGET_N * 1.4, TARGET_N, training.condition(k))
               for k in range(10)]
    assert answers.count(1) >= 8  # 40 % too firm is mostly sensed as too firm
    assert learner.after_hold(TARGET_N, TARGET_N, one_block("none").condition(0)) is None


def test_bad_state_is_refused() -> None:
    with pytest.raises(ValueError, match="not a learner state"):
        Learner.from_dict({"format": "something else"})


SMALL_PROTOCOL = """
name = "two points"
description = "two points, two repetitions"
kind = "static"
unit = "N"

[dose]
target_low = 30.0
target_high = 50.0
min_hold_s = 8.0
max_hold_s = 20.0
repetitions = 2
rest_s = 5.0
""" + TRAPEZIUS_LEFT_RIGHT


def feedback_at(rec, time_s: float) -> float:
    """The value of the last ``feedback`` event at or before ``time_s``."""
    evs = [e for e in rec.events if e.kind == "feedback" and e.time <= time_s]
    return max(evs, key=lambda e: e.time).value


def test_offline_plan_files_validate_and_hold_the_learners_aims(tmp_path: Path) -> None:
    proto = tmp_path / "two.toml"
    proto.write_text(SMALL_PROTOCOL)
    out = tmp_path / "plan"
    done = run_palpation("simulate", "--offline-plan", str(out), "--trainee", "Ana",
                         "--protocol", str(proto), "--retention-days", "7", "--seed", "2",
                         "--start-date", "2026-01-05", timeout=120)
    assert done.returncode == 0, done.stderr
    files = sorted(out.glob("*.h5"))
    assert [f.name for f in files] == ["ana-00-pre-test.h5", "ana-01-practice.h5",
                                       "ana-02-post-test.h5", "ana-03-retention-7-d.h5"]
    assert json.loads((out / "learner.json").read_text())["state"]["holds"] == 4 + 12 + 4 + 4
    for path in files:
        validate(path)
        rec = open_recording(path)
        truth = json.loads(path.with_suffix(".truth.json").read_text())
        aims = truth["learner"]["holds"]
        assert rec.session["trainee"] == "Ana"
        assert rec.session_start.date() == date(2026, 1, 12 if "retention" in path.name else 5)
        metrics = recording_metrics(rec)
        assert len(metrics) == len(aims) == len(truth["holds"])
        for m, aim, hold in zip(metrics, aims, truth["holds"], strict=True):
            assert abs(m.start_s - hold["start_s"]) < 0.05
            assert m.plateau_mean_n == pytest.approx(aim["aim_n"], rel=0.06)
            assert feedback_at(rec, m.start_s) == float(aim["live"])


QUICK_TRAINING = SMALL_PROTOCOL.replace("min_hold_s = 8.0", "min_hold_s = 1.0").replace(
    "max_hold_s = 20.0", "max_hold_s = 2.0\nramp_min = 40.0\nramp_max = 80.0") + """
[training]
self_estimate = true

[[training.block]]
name = "results after each"
holds = 2
feedback = "terminal"

[[training.block]]
name = "live"
holds = 2
feedback = "concurrent"
"""


def test_recorded_session_keeps_the_learner_after_the_holds_made(tmp_path: Path) -> None:
    proto, state, truth_path, out = (tmp_path / n for n in ("q.toml", "s.json", "t.json",
                                                           "r.h5"))
    proto.write_text(QUICK_TRAINING)
    training = load_protocol(proto).training
    done = run_palpation("record", "--simulate", "--headless", "--protocol", str(proto),
                         "--learner", str(state), "--duration", "8", "--sim-rate", "200",
                         "--out", str(out), "--truth", str(truth_path), timeout=60)
    assert done.returncode == 0, done.stderr
    learner = json.loads(truth_path.read_text())["learner"]
    assert len(learner["holds"]) == 4  # the therapist aims a whole pass ahead
    for k, aim in enumerate(learner["holds"]):
        assert (aim["feedback"], aim["live"]) == (training.condition(k).feedback,
                                                 training.condition(k).live)
    made = sum(m.complete for m in recording_metrics(open_recording(out)))
    assert 1 <= made <= learner["holds_made"] <= made + 1  # one may end after the last sample
    saved = json.loads(state.read_text())
    assert saved == learner["after"] and saved["state"]["holds"] == learner["holds_made"] < 4


def test_learner_without_a_training_protocol_is_a_one_line_error(tmp_path: Path) -> None:
    done = run_palpation("simulate", "--protocol", "nmt-static", "--learner",
                         str(tmp_path / "x.json"), "--duration", "0.1")
    assert done.returncode != 0
    assert "[training]" in done.stderr and "Traceback" not in done.stderr
    assert not (tmp_path / "x.json").exists()
