"""``palpation reliability`` end to end: a simulated study recorded, analysed and assessed,
checked against the study's ground truth and against pingouin; and hold tables written here to
test what is left out, what is dropped and what is refused."""

from __future__ import annotations

import csv
import json
import re

import numpy as np
import pandas as pd
import pingouin as pg
import pytest
from conftest import run_palpation

from recorder.cli import main

STATEMENT = "ICC(2,1), two-way random effects, absolute agreement, single measures"


# ---------------------------------------------------------------------------- a simulated study
@pytest.fixture(scope="module")
def study(tmp_path_factory):
    """5 subjects x 4 points, 2 raters, 2 sessions of pressure-pain-threshold ramps (3 trials a
    point) from ``palpation simulate-study``, analysed by ``palpation analyze``, as the
    README's research path runs: (folder, truth)."""
    folder = tmp_path_factory.mktemp("study")
    for args in (("simulate-study", "--out-dir", str(folder), "--subjects", "5", "--raters", "2",
                  "--sessions", "2", "--protocol", "ppt-ramp", "--points", "4", "--seed", "11"),
                 ("analyze", str(folder), "--out", str(folder / "holds.csv"))):
        done = run_palpation(*args, timeout=120)
        assert done.returncode == 0, done.stderr
    return folder, json.loads((folder / "study.truth.json").read_text())


def _aimed(truth: dict) -> dict[tuple[str, str, str, str], float]:
    """(rater, subject, point, session) -> the threshold the rater's probe met that visit."""
    return {(f["trainee"], f["subject"], point, f["session_label"]): level
            for f in truth["files"] for point, level in f["aimed_n"].items()}


def test_study_end_to_end_against_truth_and_pingouin(study):
    folder, truth = study
    out, report = folder / "rel.json", folder / "rel.html"
    done = run_palpation("reliability", str(folder / "holds.csv"), "--out", str(out),
                         "--report", str(report), timeout=120)
    assert done.returncode == 0, done.stderr
    assert "measure threshold_n (N)" in done.stdout  # a table of ramps: the threshold
    assert STATEMENT in done.stdout
    assert "ICC(1,1), one-way random effects, absolute agreement, single measures" in report \
        .read_text()
    res = json.loads(out.read_text())
    by = {(d["design"], d["scope"]): d for d in res["results"]}
    assert set(by) == {("test-retest", "rater R1"), ("test-retest", "rater R2"),
                       ("test-retest", "pooled over raters"), ("inter-rater", "session 1"),
                       ("inter-rater", "session 2"), ("intra-rater", "rater R1"),
                       ("intra-rater", "rater R2")}
    aimed = _aimed(truth)
    for session in ("1", "2"):
        d = by[("inter-rater", f"session {session}")]
        assert len(d["targets"]) == 20 and d["columns"] == ["R1", "R2"]
        # Each cell (the mean of 3 trials) is the threshold the rater's probe met, within the
        # subject's trial scatter (10 % CV, so about 6 % for a mean of 3).
        cells = np.array(d["scores"])
        want = np.array([[aimed[(r, *t.split(" / "), session)] for r in ("R1", "R2")]
                         for t in d["targets"]])
        assert np.median(np.abs(cells / want - 1)) < 0.08
        # The raters' true mean difference lies in the Bland-Altman bias's 95 % CI.
        lo, hi = d["pairs"][0]["bland_altman"]["bias_ci"]
        assert lo < np.mean(want[:, 0] - want[:, 1]) < hi
    # pingouin on the cell means computed here from the hold table itself.
    holds = pd.read_csv(folder / "holds.csv")
    holds = holds[holds["complete"]]
    cells = holds[holds["session"] == 1].groupby(["subject", "trigger_point", "trainee"],
                                                   as_index=False)["threshold_n"].mean()
    ref = pg.intraclass_corr(cells.assign(target=cells["subject"] + cells["trigger_point"]),
                             "target", "trainee", "threshold_n").set_index("Type")
    mine = by[("inter-rater", "session 1")]["icc"]
    assert mine["ICC(2,1)"]["value"] == pytest.approx(ref.loc["ICC(A,1)", "ICC"], abs=1e-9)
    assert mine["ICC(3,1)"]["value"] == pytest.approx(ref.loc["ICC(C,1)", "ICC"], abs=1e-9)
    # The page: one Bland-Altman plot per pair, one marker per target.
    page = report.read_text()
    assert page.count('<svg class="plot"') == 3 + 2 + 2 * 3
    first = re.search(r'<svg class="plot".*?</svg>', page, re.S).group(0)
    assert first.count("<circle") == 20


# ---------------------------------------------------------------------------- tables made here
COLUMNS = ["file", "trainee", "subject", "session", "session_start", "protocol", "trigger_point",
           "repetition", "complete", "plateau_mean_n"]


def _holds(subjects=8, sessions=("1", "2"), raters=("Ana",), reps=2, seed=3) -> list[dict]:
    """Hold rows: subject s's level 20 + 4 s N, each rater a bias, each hold noise (1 N)."""
    rng = np.random.default_rng(seed)
    rows = []
    for r, rater in enumerate(raters):
        for session in sessions:
            for s in range(subjects):
                for rep in range(1, reps + 1):
                    rows.append({"file": f"{rater}/S{s}-s{session}.h5", "trainee": rater,
                                 "subject": f"S{s}", "session": session,
                                 "session_start": "2026-01-05T09:00:00+00:00",
                                 "protocol": "NMT static compression",
                                 "trigger_point": "upper trapezius L", "repetition": rep,
                                 "complete": True,
                                 "plateau_mean_n": 20 + 4 * s + r + rng.normal(0, 1.0)})
    return rows


def _write(path, rows) -> str:
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=COLUMNS)
        w.writeheader()
        w.writerows(rows)
    return str(path)


def _run(capsys, *args) -> tuple[int, str, str]:
    code = main(["reliability", *map(str, args)])
    out, err = capsys.readouterr()
    return code, out, err


def _icc_of(rows, kind="ICC(A,1)") -> float:
    """pingouin's ICC of sessions as raters over the cell means (mean of a subject's holds)."""
    df = pd.DataFrame(rows).groupby(["subject", "session"], as_index=False)["plateau_mean_n"] \
        .mean()
    ref = pg.intraclass_corr(df, "subject", "session", "plateau_mean_n").set_index("Type")
    return float(ref.loc[kind, "ICC"])


def test_incomplete_holds_are_left_out_and_counted(tmp_path, capsys):
    rows = _holds()
    rows[-1] = {**rows[-1], "complete": False, "plateau_mean_n": 95.0}  # cut off, far off
    table, out = _write(tmp_path / "holds.csv", rows), tmp_path / "r.json"
    code, text, _ = _run(capsys, table, "--design", "test-retest", "--out", out)
    assert code == 0
    assert "1 incomplete holds left out (--include-incomplete keeps them)" in text
    res = json.loads(out.read_text())
    assert res["incomplete_left_out"] == 1
    icc = res["results"][0]["icc"]["ICC(2,1)"]["value"]
    assert icc == pytest.approx(_icc_of(rows[:-1]), abs=1e-9)

    code, text, _ = _run(capsys, table, "--design", "test-retest", "--out", out, "--force",
                         "--include-incomplete")
    assert code == 0 and "1 incomplete holds kept" in text
    kept = json.loads(out.read_text())["results"][0]["icc"]["ICC(2,1)"]["value"]
    assert kept == pytest.approx(_icc_of(rows), abs=1e-9)
    assert kept < icc - 0.01  # the far-off hold costs agreement


def test_unbalanced_targets_and_sparse_columns_are_dropped_with_a_count(tmp_path, capsys):
    rows = [r for r in _holds(sessions=("1", "2", "3"))
            if not (r["subject"] == "S7" and r["session"] == "2")]
    rows = [r for r in rows if r["session"] != "3" or r["subject"] in ("S0", "S1")]
    code, text, _ = _run(capsys, _write(tmp_path / "holds.csv", rows), "--design",
                         "test-retest")
    assert code == 0
    assert ("7 targets x 2 sessions (1, 2); 1 targets dropped (not in every column); "
            "column(s) 3 dropped (fewer than half the targets)") in text


def test_too_small_designs_are_refused_with_the_reason(tmp_path, capsys):
    # 3 subjects: no ICC, no limits of agreement, nothing to report -> exit 1, one line.
    table = _write(tmp_path / "three.csv", _holds(subjects=3))
    code, text, err = _run(capsys, table, "--design", "test-retest")
    assert code == 1
    assert "refused: an ICC needs at least 5 targets, got 3" in text
    assert err.count("\n") == 1 and err.startswith("palpation: error: no statistic could be")
    # 6 subjects: the ICC, but Bland-Altman and CCC refused (6 pairs) -> said, exit 0.
    table = _write(tmp_path / "six.csv", _holds(subjects=6))
    code, text, _ = _run(capsys, table, "--design", "test-retest")
    assert code == 0 and STATEMENT + ": " in text
    assert "refused: Bland-Altman limits of agreement: at least 10 pairs needed, got 6" in text
    assert "refused: Lin's CCC: at least 10 pairs needed, got 6" in text


@pytest.mark.parametrize(("args", "message"), [
    (["--measure", "peak_force"], "no column 'peak_force'; measures include plateau_mean_n"),
    (["--design", "inter-rater"], "no inter-rater design: no session has holds from two or "
                                  "more raters (column 'trainee')"),
    (["--out", "r.txt"], "r.txt: give a file name ending in .csv or .json"),
])
def test_bad_requests_are_one_line_errors(tmp_path, capsys, args, message):
    table = _write(tmp_path / "holds.csv", _holds())
    code, _, err = _run(capsys, table, *[str(tmp_path / a) if a == "r.txt" else a
                                         for a in args])
    assert code == 1 and message in err and err.count("\n") == 1


def test_unreadable_tables_and_existing_outputs(tmp_path, capsys):
    garbage = tmp_path / "holds.csv"
    garbage.write_bytes(b"\xff\xfe\x00 not a table")
    code, _, err = _run(capsys, garbage)
    assert code == 1 and "cannot be read as a hold table" in err and err.count("\n") == 1
    code, _, err = _run(capsys, tmp_path / "missing.csv")
    assert code == 1 and "missing.csv: no such file" in err

    table = _write(tmp_path / "holds.csv", _holds())
    out = tmp_path / "r.csv"
    out.write_text("keep me\n")
    code, _, err = _run(capsys, table, "--out", out)
    assert code == 1 and "r.csv exists: --force replaces it" in err
    assert out.read_text() == "keep me\n"
    code, _, _ = _run(capsys, table, "--out", out, "--force")
    rows = list(csv.DictReader(out.open()))
    assert code == 0 and {"ICC(2,1)", "SEM", "MDC95", "CCC 1-2"} <= {r["statistic"]
                                                                     for r in rows}


def test_parquet_table_gives_the_csv_results(tmp_path, capsys):
    import pyarrow as pa
    import pyarrow.parquet as pq

    rows = _holds(raters=("Ana", "Ben"))
    csv_path = _write(tmp_path / "holds.csv", rows)
    pq.write_table(pa.Table.from_pylist(rows), tmp_path / "holds.parquet")
    results = []
    for table in (csv_path, tmp_path / "holds.parquet"):
        out = tmp_path / f"{len(results)}.json"
        code, _, _ = _run(capsys, table, "--out", out)
        assert code == 0
        results.append(json.loads(out.read_text())["results"])
    assert results[0] == results[1]
    assert [d["scope"] for d in results[0]] == ["rater Ana", "rater Ben", "pooled over raters",
                                                "session 1", "session 2", "rater Ana",
                                                "rater Ben"]
