"""Training plans (schemas/plan.py, recorder/cli/plan.py): the steps ``plan new`` builds,
``plan status`` across simulated days (the same-day steps in order, retention dates counted
from the post-test, overdue steps), bad input in one line, and one ``record --plan`` over the
simulated sensor's pty whose file and catalog row say which step it ran."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from recorder.cli import main
from schemas.catalog import Catalog, SessionRow
from schemas.plan import PRACTICE_MODES, Plan, new_plan, next_step, status
from schemas.reader import open_recording
from schemas.session_protocol import load_preset, load_protocol, protocol_of
from tests.conftest import run_palpation
from tests.test_protocol_complete import ONE_HOLD

DAY0 = date(2026, 3, 2)


def _plan(catalog: Path, capsys, *extra: str) -> Plan:
    assert main(["plan", "new", "--trainee", "Ana", "--start", DAY0.isoformat(),
                 "--catalog", str(catalog), *extra]) == 0
    capsys.readouterr()
    with Catalog(catalog) as c:
        (plan,) = c.plans("Ana")
    return plan


def _done(catalog: Path, plan: Plan, step: int, day: date) -> None:
    """Step ``step`` recorded on ``day`` (a catalog row as ``record --plan`` adds one)."""
    start = datetime(day.year, day.month, day.day, 10, step, tzinfo=UTC)
    with Catalog(catalog) as c:
        c.add_session(SessionRow(f"/rec/{plan.plan_id}-{step}.h5", "Ana",
                                 start.isoformat(timespec="milliseconds"), "NMT",
                                 plan.plan_id, step, 12, 1, 1))


def _status(catalog: Path, capsys, day: date) -> dict[str, tuple[str, str]]:
    """``plan status --today DAY``'s table: step -> (state, due day as an offset 'dN')."""
    assert main(["plan", "status", "--today", day.isoformat(), "--catalog", str(catalog)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == f"on {day.isoformat()}"
    header = lines[1]
    out = {}
    for line in lines[2:]:
        step = line[header.index("step"):header.index("holds")].strip()
        state = line[header.index("state"):header.index("due")].strip()
        due = date.fromisoformat(line[header.index("due"):header.index("done")].strip())
        out[step] = (state, f"d{(due - DAY0).days}")
    return out


def test_plan_status_across_simulated_days(tmp_path, capsys):
    catalog = tmp_path / "c.sqlite"
    plan = _plan(catalog, capsys)
    days = lambda n: DAY0 + timedelta(days=n)  # noqa: E731
    assert _status(catalog, capsys, days(0)) == {   # day 0, before the pre-test
        "pre-test": ("DUE", "d0"), "practice": ("upcoming", "d0"),
        "post-test": ("upcoming", "d0"), "retention +1 d": ("upcoming", "d1"),
        "retention +7 d": ("upcoming", "d7"), "retention +56 d": ("upcoming", "d56")}
    _done(catalog, plan, 0, days(0))
    after_pre = _status(catalog, capsys, days(0))
    assert after_pre["pre-test"] == ("done", "d0") and after_pre["practice"] == ("DUE", "d0")
    assert after_pre["post-test"] == ("upcoming", "d0")  # same day, but after the practice
    _done(catalog, plan, 1, days(0))
    _done(catalog, plan, 2, days(0))
    day1 = _status(catalog, capsys, days(1))
    assert day1["post-test"] == ("done", "d0") and day1["retention +1 d"] == ("DUE", "d1")
    assert day1["retention +7 d"] == ("upcoming", "d7")
    _done(catalog, plan, 3, days(1))
    day8 = _status(catalog, capsys, days(8))  # the +7 test was missed yesterday
    assert day8["retention +7 d"] == ("OVERDUE", "d7")
    assert day8["retention +56 d"] == ("upcoming", "d56")
    with Catalog(catalog) as c:
        assert next_step(plan, c.done_steps(plan.plan_id), days(8)).step.name == "retention +7 d"
    _done(catalog, plan, 4, days(8))
    assert _status(catalog, capsys, days(55))["retention +56 d"] == ("upcoming", "d56")
    assert _status(catalog, capsys, days(56))["retention +56 d"] == ("DUE", "d56")
    assert _status(catalog, capsys, days(57))["retention +56 d"] == ("OVERDUE", "d56")
    _done(catalog, plan, 5, days(57))
    assert {s for s, _ in _status(catalog, capsys, days(60)).values()} == {"done"}


def test_missed_days_make_steps_overdue_and_retention_counts_from_the_post_test():
    plan = new_plan("Ana", "nmt-static", load_preset("nmt-static"), start=DAY0,
                    created=datetime(2026, 3, 1, tzinfo=UTC), seed=1)
    day2 = DAY0 + timedelta(days=2)
    nothing = {s.step.name: (s.state, s.due) for s in status(plan, {}, day2)}
    assert nothing["pre-test"] == ("overdue", DAY0) and nothing["post-test"][0] == "overdue"
    assert nothing["retention +1 d"] == ("upcoming", day2 + timedelta(days=1))
    assert next_step(plan, {}, day2).step.name == "pre-test"  # in order, the oldest first
    late = {0: day2, 1: day2, 2: day2}  # pre-test, practice and post-test two days late
    dues = {s.step.name: s.due for s in status(plan, late, day2)}
    assert [dues[f"retention +{d} d"] for d in (1, 7, 56)] == [
        day2 + timedelta(days=d) for d in (1, 7, 56)]


def test_plan_new_builds_tests_without_feedback_and_faded_practice(tmp_path, capsys):
    plan = _plan(tmp_path / "c.sqlite", capsys, "--retention", "2,14", "--pre-holds", "4",
                 "--practice-holds", "10", "--test-holds", "6", "--seed", "9")
    assert [(s.name, s.kind, s.day, s.holds) for s in plan.steps] == [
        ("pre-test", "pre-test", 0, 4), ("practice", "practice", 0, 30),
        ("post-test", "post-test", 0, 6), ("retention +2 d", "retention", 2, 6),
        ("retention +14 d", "retention", 14, 6)]
    assert Plan.from_json(plan.to_json()) == plan
    for index in (0, 2, 3, 4):
        training = plan.step_protocol(index).training
        assert [b.feedback for b in training.blocks] == ["none"]
        assert not any(training.condition(h).live for h in range(training.total_holds))
    practice = plan.step_protocol(1)
    assert load_protocol(practice.to_toml()) == practice  # what the file keeps reads back
    assert [(b.feedback, b.live_share) for b in practice.training.blocks] == [
        ("faded", 1.0), ("faded", 0.5), ("faded", 0.2)]
    live = [practice.training.condition(h).live for h in range(30)]
    assert [sum(live[i:i + 10]) for i in (0, 10, 20)] == [10, 5, 2]
    # nmt-static has 12 points, one hold each: each is repeated to cover the 30 holds
    assert {p.dose.repetitions for p in practice.points} == {3}
    assert [p.label for p in practice.points] == [p.label for p in load_preset("nmt-static").points]


def test_practice_modes_make_three_blocks_of_one_mode_for_a_control_group(tmp_path, capsys):
    base = load_preset("nmt-static")  # 12 holds a pass
    created = datetime(2026, 3, 1, tzinfo=UTC)
    for mode in PRACTICE_MODES[1:]:
        plan = new_plan("Ana", "nmt-static", base, start=DAY0, created=created, seed=1,
                        practice=mode, practice_holds=4)
        assert Plan.from_json(plan.to_json()) == plan
        practice = plan.step_protocol(1)
        assert load_protocol(practice.to_toml()) == practice
        assert [b.feedback for b in practice.training.blocks] == [mode] * 3
        conditions = [practice.training.condition(h) for h in range(12)]
        assert [c.live for c in conditions] == [mode in ("concurrent", "bandwidth")] * 12
        assert [c.results_after for c in conditions] == [mode == "terminal"] * 12
        # summary: after each block of 4 (every 5 holds would skip the blocks' ends)
        assert [c.hold_number for c in conditions if c.summary_after] == (
            [3, 7, 11] if mode == "summary" else [])
        assert [s.step.blocks for s in status(plan, {}, DAY0) if s.index != 1] == [
            s.blocks for s in plan.steps if s.kind != "practice"]  # the tests are unchanged
        assert all(b.feedback == "none" for s in plan.steps if s.kind != "practice"
                   for b in s.blocks)
    catalog = tmp_path / "c.sqlite"
    _plan(catalog, capsys, "--practice", "bandwidth")
    assert main(["plan", "status", "--today", DAY0.isoformat(), "--catalog", str(catalog)]) == 0
    practice_row = next(line for line in capsys.readouterr().out.splitlines()
                        if "  practice  " in line)
    assert "bandwidth ±15% x3" in practice_row


def test_a_plan_written_before_practice_modes_reads_back_as_faded():
    """The JSON a plan made before --practice kept (every block field written, no practice
    key anywhere) reads back, and its practice is the faded 100/50/20 % it always was."""
    block = {"bandwidth_pct": 15.0, "summary_every": 5}
    old = {"plan_id": "ana-20260302-abcdef", "trainee": "Ana", "protocol": "nmt-static",
           "protocol_toml": load_preset("nmt-static").to_toml(),
           "created": "2026-03-01T09:00:00+00:00", "start": "2026-03-02", "seed": 4,
           "steps": [{"name": "pre-test", "kind": "pre-test", "day": 0, "blocks": [
                         {**block, "name": "pre-test", "holds": 12, "feedback": "none",
                          "live_share": 1.0}]},
                     {"name": "practice", "kind": "practice", "day": 0, "blocks": [
                         {**block, "name": f"faded {share:.0%} live", "holds": 12,
                          "feedback": "faded", "live_share": share}
                         for share in (1.0, 0.5, 0.2)]}]}
    plan = Plan.from_json(json.dumps(old))
    assert json.loads(plan.to_json()) == old
    new = new_plan("Ana", "nmt-static", load_preset("nmt-static"), start=DAY0,
                   created=datetime(2026, 3, 1, 9, tzinfo=UTC), seed=4)
    assert plan.steps[1] == new.steps[1]  # the default practice is the old one


def test_plan_steps_keep_the_base_protocols_self_estimate_and_mastery():
    created = datetime(2026, 3, 1, tzinfo=UTC)
    base = load_preset("nmt-training")
    plan = new_plan("Ana", "nmt-training", base, start=DAY0, created=created, seed=1)
    for i in range(len(plan.steps)):
        training = plan.step_protocol(i).training
        assert training.self_estimate and training.mastery_score == base.training.mastery_score
    bare = new_plan("Ana", "nmt-static", load_preset("nmt-static"), start=DAY0,
                    created=created, seed=1)
    assert not bare.step_protocol(0).training.self_estimate


def test_bad_plan_input_is_one_line(tmp_path, capsys):
    catalog = str(tmp_path / "c.sqlite")
    for extra, says in ((["--retention", "7,1"], "retention days"),
                        (["--retention", "a week"], "--retention"),
                        (["--pre-holds", "0"], "pre-test holds"),
                        (["--practice", "blocked"], "unknown practice 'blocked' (use one of "
                                                    "faded, concurrent"),
                        (["--protocol", "no-such"], "no-such")):
        assert main(["plan", "new", "--trainee", "Ana", "--catalog", catalog, *extra]) == 1
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and says in err, err
    out = str(tmp_path / "x.h5")
    assert main(["record", "--plan", "Ana", "--simulate", "--headless", "--out", out,
                 "--catalog", catalog]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no catalog" in err
    tomorrow = date.today() + timedelta(days=1)
    assert main(["plan", "new", "--trainee", "Ana", "--start", tomorrow.isoformat(),
                 "--catalog", catalog]) == 0
    capsys.readouterr()
    for who, says in (("Ana", f"nothing due today for Ana; next: pre-test on {tomorrow}"),
                      ("Bo", "no plan for Bo")):
        assert main(["record", "--plan", who, "--simulate", "--headless", "--out", out,
                     "--catalog", catalog]) == 1
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and says in err, err
    assert not Path(out).exists()


def test_record_plan_runs_the_due_step_and_catalogs_it(tmp_path):
    """Over the simulated sensor's pty: the pre-test of a one-hold plan, its file attributes,
    its catalog row, the next step due, and a catalog rebuilt from the folder equal to the
    live one."""
    (tmp_path / "one.toml").write_text(ONE_HOLD)
    catalog, rebuilt = tmp_path / "live.sqlite", tmp_path / "rebuilt.sqlite"
    r = run_palpation("plan", "new", "--trainee", "Ana Lima", "--protocol",
                      str(tmp_path / "one.toml"), "--pre-holds", "1", "--test-holds", "1",
                      "--practice-holds", "1", "--catalog", str(catalog))
    assert r.returncode == 0, r.stderr
    out, truth = tmp_path / "recordings" / "pre.h5", tmp_path / "truth.json"
    out.parent.mkdir()
    r = run_palpation("record", "--plan", "Ana Lima", "--simulate", "--headless",
                      "--until-complete", "--duration", "40", "--seed", "2", "--out", str(out),
                      "--truth", str(truth), "--catalog", str(catalog))
    assert r.returncode == 0, r.stderr
    assert "pre-test (step 0 of" in r.stdout
    with Catalog(catalog) as c:
        (plan,) = c.plans()
        (row,) = c.sessions()
        done = c.done_steps(plan.plan_id)
    rec = open_recording(out)
    assert rec.session["trainee"] == "Ana Lima" and rec.session["plan_id"] == plan.plan_id
    assert rec.session["plan_step"] == 0 and Plan.from_json(rec.session["plan"]) == plan
    assert protocol_of(rec).training == plan.step_protocol(0).training  # no-feedback test
    served = json.loads(truth.read_text())["holds"]
    assert (row.path, row.trainee, row.plan_id, row.plan_step) == (
        str(out.resolve()), "Ana Lima", plan.plan_id, 0)
    assert row.holds == len(served) == 1 and row.protocol == "one hold"
    assert row.start == rec.session_start.isoformat(timespec="milliseconds")
    assert next_step(plan, done, date.today()).step.name == "practice"
    r = run_palpation("catalog", "rebuild", str(tmp_path / "recordings"), "--catalog",
                      str(rebuilt))
    assert r.returncode == 0, r.stderr
    with Catalog(rebuilt) as c:
        assert c.sessions() == [row] and c.plans() == [plan]
