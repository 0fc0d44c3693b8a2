"""analyze / export end to end: real recordings from the simulated sensor, local worker
processes and a real Dask cluster on loopback, an unreadable file in the batch."""

from __future__ import annotations

import csv
import re
import time
from pathlib import Path

import pytest

from analysis.batch import COLUMNS, run_batch, table_columns
from tests.conftest import ROOT, fast_session, run_palpation


@pytest.fixture(scope="module")
def recordings(tmp_path_factory):
    """Two short recordings with a few fast holds each, plus a file that is not one."""
    folder = tmp_path_factory.mktemp("recs")
    sessions = [fast_session(folder / f"s{i}.h5", seed=10 + i, profile=p)
                for i, p in enumerate(("novice", "expert"))]
    end = time.monotonic() + 30
    while not all(len(s.holds) >= 2 for s, _ in sessions) and time.monotonic() < end:
        time.sleep(0.2)
    for _, stop in sessions:
        stop()
    (folder / "broken.h5").write_text("not a recording")
    return folder


def test_table_columns_are_documented():
    doc = (ROOT / "analysis" / "TABLE.md").read_text()
    assert re.findall(r"^\| `(\w+)` \|", doc, re.M) == list(COLUMNS)


def test_analyze_folder_skips_the_unreadable_file_with_skip_bad(recordings, tmp_path):
    out, summary = tmp_path / "holds.csv", tmp_path / "summary.csv"
    r = run_palpation("analyze", str(recordings), "--out", str(out), "--summary", str(summary))
    assert r.returncode == 1 and "broken.h5" in r.stderr and "--skip-bad" in r.stderr
    assert not out.exists() and not summary.exists()
    r = run_palpation("analyze", str(recordings), "--out", str(out), "--summary", str(summary),
                      "--skip-bad")
    assert r.returncode == 0, r.stderr
    assert "skipped" in r.stderr and "broken.h5" in r.stderr
    rows = list(csv.DictReader(out.open()))
    assert len(rows) >= 4 and {row["file"] for row in rows} == {"s0.h5", "s1.h5"}
    assert list(rows[0]) == list(table_columns())
    assert all(25 < float(row["plateau_mean_n"]) < 55 for row in rows if row["plateau_mean_n"])
    sums = list(csv.DictReader(summary.open()))
    assert sums and {"plateau_cv", "adherence_pct"} <= set(sums[0])


def rows_by_key(result):
    return sorted((r["file"], r["start_s"], r["plateau_mean_n"]) for r in result.rows)


def test_worker_processes_and_a_dask_cluster_give_the_same_table(recordings):
    from dask.distributed import LocalCluster

    paths = sorted(Path(recordings).glob("*.h5"))
    serial = run_batch(paths, jobs=1)
    parallel = run_batch(paths, jobs=2)
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                      dashboard_address=None) as cluster:
        dask = run_batch(paths, scheduler=cluster.scheduler_address)
    assert len(serial.skipped) == len(parallel.skipped) == len(dask.skipped) == 1
    assert rows_by_key(serial) == rows_by_key(parallel) == rows_by_key(dask)


def test_export_csv_and_parquet(recordings, tmp_path):
    import pyarrow.parquet as pq

    from schemas.reader import open_recording

    src = recordings / "s0.h5"
    n = len(open_recording(src).force)
    out = tmp_path / "trace.csv"
    r = run_palpation("export", str(src), "--out", str(out))
    assert r.returncode == 0, r.stderr
    lines = out.read_text().splitlines()
    assert lines[0].startswith("time_s,host_time_s,force_n,")
    assert len(lines) == n + 1
    r = run_palpation("export", str(src), "--format", "parquet", "--out",
                      str(tmp_path / "t.parquet"))
    assert r.returncode == 0, r.stderr
    table = pq.read_table(tmp_path / "t.parquet")
    assert table.num_rows == n and table.schema.field("force_n").metadata[b"unit"] == b"N"


def test_parquet_table_and_bad_output(recordings, tmp_path):
    import pyarrow.parquet as pq

    r = run_palpation("analyze", str(recordings / "s1.h5"), "--out", str(tmp_path / "h.parquet"))
    assert r.returncode == 0, r.stderr
    assert pq.read_table(tmp_path / "h.parquet").num_rows >= 2
    r = run_palpation("analyze", str(recordings), "--out", str(tmp_path / "h.xlsx"))
    assert r.returncode == 1 and ".csv or .parquet" in r.stderr


def test_report_command_writes_a_page_and_names_the_skipped_file(recordings, tmp_path):
    out = tmp_path / "report.html"
    args = ["report", str(recordings / "s0.h5"), str(recordings / "broken.h5"),
            "--reference", str(recordings / "s1.h5"), "--out", str(out)]
    r = run_palpation(*args)
    assert r.returncode == 1 and not out.exists()
    assert r.stderr.count("\n") == 1 and "broken.h5" in r.stderr and "--skip-bad" in r.stderr
    r = run_palpation(*args, "--skip-bad")
    assert r.returncode == 0, r.stderr
    assert "broken.h5" in r.stderr
    page = out.read_text()
    assert page.count('class="plot"') >= 1 and "broken.h5" in page
    r = run_palpation(*args, "--skip-bad")
    assert r.returncode == 1 and f"{out} exists: --force replaces it" in r.stderr
    assert out.read_text() == page
