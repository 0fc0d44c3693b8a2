"""A simulated reliability study (``palpation simulate-study``, ``firmware_bridge.sim.study``):
its files are valid recordings that say who was measured, by whom and when; what the analysis
measures in them follows the study's ground truth (the subjects' levels, the raters' biases);
a seed always gives the same study; an existing study is only replaced with --force."""

from __future__ import annotations

import json
import math
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from analysis.metrics import recording_metrics
from analysis.ppt import ppt_columns
from firmware_bridge.sim.study import TRUTH_NAME, draw_study, write_study
from recorder.cli import main
from schemas.reader import open_recording
from schemas.session_protocol import load_preset
from schemas.validate import validate
from tests.conftest import run_palpation


def measured(out: Path, truth: dict, *, ramp: bool) -> dict[tuple[str, str, str, str], float]:
    """Per (rater, subject, session, point): the mean over the complete holds there of the
    plateau mean (static) or of the force at the subject's button (threshold ramps)."""
    cells: dict[tuple[str, str, str, str], list[float]] = {}
    for entry in truth["files"]:
        rec = open_recording(out / entry["path"])
        metrics = recording_metrics(rec)
        values = ([c["threshold_n"] for c in ppt_columns(rec, metrics)] if ramp
                  else [m.plateau_mean_n for m in metrics])
        for m, value in zip(metrics, values, strict=True):
            if m.complete:
                key = (entry["trainee"], entry["subject"], entry["session_label"],
                       m.trigger_point)
                cells.setdefault(key, []).append(value)
    return {key: float(np.mean(v)) for key, v in cells.items()}


def test_study_files_are_valid_and_say_who_when_and_what(tmp_path: Path) -> None:
    out = tmp_path / "study"
    done = run_palpation("simulate-study", "--out-dir", str(out), "--subjects", "2",
                         "--raters", "2", "--sessions", "2", "--points", "2", "--seed", "3")
    assert done.returncode == 0, done.stderr
    files = sorted(out.rglob("*.h5"))
    names = [str(p.relative_to(out)) for p in files]
    assert names == [f"{r}/{s}-s{k}.h5" for r in ("R1", "R2") for s in ("S01", "S02")
                     for k in (1, 2)]
    assert all(str(p) in done.stdout for p in files)
    truth = json.loads((out / TRUTH_NAME).read_text())
    assert sorted(f["path"] for f in truth["files"]) == names
    starts = set()
    for path in files:
        validate(path, deep=True)
        rec = open_recording(path)
        subject, session = path.stem.split("-s")
        assert (rec.session["trainee"], rec.session["subject"],
                rec.session["session_label"]) == (path.parent.name, subject, session)
        assert rec.session["protocol"] == load_preset("nmt-static").name
        assert len(recording_metrics(rec)) == 2  # --points 2, one repetition each
        starts.add(rec.session_start)
    assert len(starts) == len(files)  # every visit at its own time


def test_plateau_means_follow_the_subjects_levels_and_the_raters_biases(
        tmp_path: Path) -> None:
    protocol = load_preset("nmt-static")
    study = draw_study(replace(protocol, points=protocol.points[:4]), subjects=8, raters=2,
                       sessions=1, seed=5)
    write_study(study, tmp_path, rate_hz=100.0)
    truth = json.loads((tmp_path / TRUTH_NAME).read_text())
    cells = measured(tmp_path, truth, ramp=False)
    assert len(cells) == 8 * 2 * 4
    subjects, raters = truth["subjects"], truth["raters"]
    aimed = {(f["trainee"], f["subject"], p): a for f in truth["files"]
             for p, a in f["aimed_n"].items()}
    assert np.corrcoef(list(cells.values()), [aimed[(r, s, p)] for (r, s, _, p) in cells]
                       )[0, 1] > 0.96
    bias = {}
    for rater in ("R1", "R2"):
        mine = {key: v for key, v in cells.items() if key[0] == rater}
        true = [subjects[s]["levels_n"][p] for (_, s, _, p) in mine]
        assert np.ptp(true) / np.mean(true) > 0.8  # the subjects and points do differ
        assert np.corrcoef(list(mine.values()), true)[0, 1] > 0.8
        # against the subject's level that day, the rater's bias and drift remain
        bias[rater] = np.mean([math.log(v / (subjects[s]["levels_n"][p]
                                             * subjects[s]["session_factors"][k]))
                               for (_, s, k, p), v in mine.items()])
        r = raters[rater]
        assert bias[rater] == pytest.approx(
            math.log(1 + r["bias_frac"] + r["session_drift_frac"]["1"]), abs=0.05)
    assert abs(bias["R1"] - bias["R2"]) > 0.2  # this seed's raters differ clearly


def test_thresholds_at_the_button_follow_the_subjects_thresholds(tmp_path: Path) -> None:
    done = run_palpation("simulate-study", "--out-dir", str(tmp_path), "--protocol",
                         "ppt-ramp", "--subjects", "4", "--raters", "1", "--sessions", "1",
                         "--points", "2", "--seed", "2")
    assert done.returncode == 0, done.stderr
    truth = json.loads((tmp_path / TRUTH_NAME).read_text())
    assert "threshold" in truth["level"]
    cells = measured(tmp_path, truth, ramp=True)
    assert len(cells) == 4 * 2 and all(math.isfinite(v) for v in cells.values())
    aimed = {(f["subject"], p): a for f in truth["files"] for p, a in f["aimed_n"].items()}
    got = np.array(list(cells.values()))
    assert np.corrcoef(got, [aimed[(s, p)] for (_, s, _, p) in cells])[0, 1] > 0.9
    ratio = got / np.array([aimed[(s, p)] for (_, s, _, p) in cells])
    assert np.all(np.abs(ratio - 1) < 0.3)  # rater noise and the 10 % trial CV, bounded


def test_anchored_points_take_the_subjects_6_of_10_that_day(tmp_path: Path) -> None:
    protocol = load_preset("nmt-anchored")
    study = draw_study(replace(protocol, points=protocol.points[:2]), subjects=2, raters=1,
                       sessions=1, seed=4)
    write_study(study, tmp_path, rate_hz=100.0)
    truth = json.loads((tmp_path / TRUTH_NAME).read_text())
    for entry in truth["files"]:
        subject = truth["subjects"][entry["subject"]]
        rec = open_recording(tmp_path / entry["path"])
        anchors = {e.text: e.value for e in rec.events if e.kind == "target_anchor"}
        assert anchors.keys() == set(truth["points"])
        for point, value in anchors.items():  # the force reaction_time_s before the signal
            day = subject["levels_n"][point] * subject["session_factors"]["1"]
            assert value == pytest.approx(day, rel=0.08)
    cells = measured(tmp_path, truth, ramp=False)
    aimed = {(f["subject"], p): a for f in truth["files"] for p, a in f["aimed_n"].items()}
    assert len(cells) == 2 * 2
    for (_, s, _, p), value in cells.items():
        assert value == pytest.approx(aimed[(s, p)], rel=0.15)


def test_a_seed_always_gives_the_same_study(tmp_path: Path) -> None:
    protocol = load_preset("nmt-static")
    one, two = (draw_study(protocol, subjects=3, raters=2, sessions=2, seed=7)
                for _ in range(2))
    assert one.truth([]) == two.truth([])
    other = draw_study(protocol, subjects=3, raters=2, sessions=2, seed=8)
    assert other.truth([])["subjects"] != one.truth([])["subjects"]
    small = replace(protocol, points=protocol.points[:1])
    for folder in ("a", "b"):
        write_study(draw_study(small, subjects=1, raters=1, sessions=1, seed=7),
                    tmp_path / folder, rate_hz=50.0)
    a, b = (open_recording(tmp_path / f / "R1" / "S01-s1.h5") for f in ("a", "b"))
    assert a.force.size > 0 and np.array_equal(a.force, b.force)
    assert (tmp_path / "a" / TRUTH_NAME).read_text() == (tmp_path / "b" / TRUTH_NAME).read_text()


def test_an_existing_folder_is_replaced_only_with_force(tmp_path: Path, capsys) -> None:
    small = ["--subjects", "1", "--sessions", "1", "--points", "1"]
    out = tmp_path / "study"
    assert main(["simulate-study", "--out-dir", str(out), "--raters", "2", *small]) == 0
    kept = (out / "R2" / "S01-s1.h5").read_bytes()
    capsys.readouterr()
    assert main(["simulate-study", "--out-dir", str(out), "--raters", "1", *small]) == 1
    err = capsys.readouterr().err
    assert "not empty" in err and "--force" in err and len(err.splitlines()) == 1
    assert (out / "R2" / "S01-s1.h5").read_bytes() == kept
    assert main(["simulate-study", "--out-dir", str(out), "--raters", "1", "--seed", "9",
                 *small, "--force"]) == 0
    assert sorted(str(p.relative_to(out)) for p in out.rglob("*.h5")) == ["R1/S01-s1.h5"]
    assert json.loads((out / TRUTH_NAME).read_text())["seed"] == 9
