"""Learning curves of whole training plans (schemas.plan, analysis.learning): the simulated
learner (firmware_bridge.sim.learner) runs a plan offline (firmware_bridge.sim.offline.run_plan
writes one real recording per step), the analysis detects the holds from the force, and the
curves must show what the learner's ground truth (each file's NAME.truth.json) says:

- with faded practice, the error without feedback decays from the post-test to +56 days, and
  stays above the error with live feedback in practice (a positive gap across sessions);
- with concurrent practice (live feedback on every practice hold), the error without feedback
  a week later is far above faded practice's, and so is the dependency gap across sessions.

Seed 1, nmt-training (36 holds a pass); both plans render and analyse in about 5 s."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import numpy as np
import pytest

from analysis.learning import (
    SessionPoint,
    gap_sentences,
    learning_curves,
    learning_section,
    learning_text,
    recording_rows,
)
from analysis.metrics import recording_metrics
from firmware_bridge.sim.offline import run_plan
from firmware_bridge.sim.simulator import LearnerFile
from schemas.plan import new_plan
from schemas.reader import open_recording
from schemas.session_protocol import load_preset

START = datetime(2026, 3, 2, 9)
STEPS = ("pre-test", "practice", "post-test", "retention +1 d", "retention +7 d",
         "retention +56 d")
TRUTH_TOL_N = 0.3  # analysed plateau mean against the level the learner's hands produced


@dataclass
class PlanRun:
    """One plan's curve, by step name, and each step's truth: the learner's mean |produced −
    target| over the holds made with and without live feedback (NaN without such holds)."""

    points: dict[str, SessionPoint]
    curves: dict[str, list[SessionPoint]]
    truth_on_n: dict[str, float]
    truth_off_n: dict[str, float]
    truth_counts: dict[str, tuple[int, int]]


def _truth_errors(path: Path) -> tuple[float, float, int, int]:
    learner = json.loads(path.with_suffix(".truth.json").read_text())["learner"]
    holds = learner["holds"][:learner["holds_made"]]
    on = [abs(h["produced_n"] - h["target_n"]) for h in holds if h["live"]]
    off = [abs(h["produced_n"] - h["target_n"]) for h in holds if not h["live"]]
    mean = lambda v: float(np.mean(v)) if v else float("nan")  # noqa: E731
    return mean(on), mean(off), len(on), len(off)


def _run(out: Path, practice: str) -> PlanRun:
    plan = new_plan("Ana", "nmt-training", load_preset("nmt-training"), start=START.date(),
                    created=START.astimezone(), seed=1, practice=practice)
    written = run_plan(plan, out, LearnerFile(out / "learner.json", 35.0, 1), seed=1,
                       profile="expert", rate_hz=100.0, start=START)
    assert [w.name for w in written] == list(STEPS)
    rows = []
    for w in written:
        rec = open_recording(w.path)
        rows += recording_rows(rec, recording_metrics(rec))
    curves = learning_curves(rows)
    by_file = {p.file: p for p in curves["Ana"]}
    truth = {w.name: _truth_errors(w.path) for w in written}
    return PlanRun(points={w.name: by_file[w.path.name] for w in written}, curves=curves,
                   truth_on_n={k: v[0] for k, v in truth.items()},
                   truth_off_n={k: v[1] for k, v in truth.items()},
                   truth_counts={k: (v[2], v[3]) for k, v in truth.items()})


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, PlanRun]:
    return {mode: _run(tmp_path_factory.mktemp(mode), mode) for mode in ("faded", "concurrent")}


@pytest.mark.parametrize("mode", ["faded", "concurrent"])
def test_the_curves_follow_the_learners_truth(runs, mode):
    """Every session's hold counts with and without live feedback are the schedule's, and its
    errors are the learner's within TRUTH_TOL_N: the curves below measure the learner."""
    run = runs[mode]
    for step, p in run.points.items():
        assert (p.holds_on, p.holds_off) == run.truth_counts[step], step
        for got, truth in ((p.abs_error_on_n, run.truth_on_n[step]),
                           (p.abs_error_off_n, run.truth_off_n[step])):
            assert got == pytest.approx(truth, abs=TRUTH_TOL_N, nan_ok=True), step
    on, off = run.truth_counts["practice"]
    assert (on, off) == ((108, 0) if mode == "concurrent" else (61, 47))  # 36 + 18 + 7 live


def test_faded_practice_is_learnt_then_decays_slowly(runs):
    p = runs["faded"].points
    pre, practice, post = p["pre-test"], p["practice"], p["post-test"]
    assert pre.abs_error_off_n > 10.0 and post.abs_error_off_n < 3.0  # learnt: 14 N -> 1.6
    assert p["retention +56 d"].abs_error_off_n > post.abs_error_off_n + 2.0  # decay by 8 weeks
    for step in STEPS[2:]:  # every later test is set against the practice's live holds
        q = p[step]
        assert q.feedback_session == practice.session and q.holds_on == 0
        assert q.later_error_gap_n == pytest.approx(q.abs_error_off_n
                                                    - practice.abs_error_on_n)
        assert q.later_score_gap == pytest.approx(practice.score_on - q.score_off)
    assert p["retention +56 d"].later_error_gap_n > 2.0
    assert pre.feedback_session == 0 and practice.feedback_session == 0


def test_concurrent_practice_leaves_a_larger_gap_across_sessions(runs):
    faded, conc = runs["faded"].points, runs["concurrent"].points
    week = "retention +7 d"
    # with the screen on every practice hold both are as good; a week later without it,
    # concurrent practice is back near the pre-test and faded practice kept its gain
    assert abs(conc["practice"].abs_error_on_n - faded["practice"].abs_error_on_n) < 1.0
    assert conc[week].abs_error_off_n > faded[week].abs_error_off_n + 8.0
    assert conc[week].abs_error_off_n > 0.8 * conc["pre-test"].abs_error_off_n
    assert conc[week].later_error_gap_n > faded[week].later_error_gap_n + 8.0
    assert conc[week].later_score_gap > faded[week].later_score_gap + 10.0
    # the post-test, minutes after practice, hides it: the gap grows from there
    gaps = [conc[s].later_error_gap_n for s in STEPS[2:5]]
    assert gaps == sorted(gaps) and gaps[0] < 2.0


def test_the_gap_across_sessions_is_shown_in_text_and_html(runs):
    run = runs["concurrent"]
    p, practice = run.points, run.points["practice"]
    (sentence,) = gap_sentences(run.curves["Ana"])
    week = p["retention +7 d"]
    assert sentence.startswith(f"Dependency gap across sessions: with live feedback in "
                               f"S{practice.session} (2026-03-02) "
                               f"{practice.abs_error_on_n:.1f} N")
    assert (f"S{week.session} +7 d {week.abs_error_off_n:.1f} N "
            f"({week.later_error_gap_n:+.1f}), score {week.score_off:.0f}") in sentence
    assert f"S{p['post-test'].session} same day" in sentence
    assert f"S{p['retention +56 d'].session} +56 d" in sentence
    text = " ".join(learning_text(run.curves))
    assert " ".join(sentence.split()) in " ".join(text.split())
    html = learning_section(run.curves)
    assert html.count("<svg") == 2 and "mean error per session" in html
    assert html.count('<p class="gap">') == 1 and f"+7 d {week.abs_error_off_n:.1f} N" in html
