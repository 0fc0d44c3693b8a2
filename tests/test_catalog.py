"""The catalog (schemas/catalog.py) on real SQLite files: two real processes adding sessions at
the same moment lose none and see no "database is locked"; a damaged or foreign catalog is a
one-line error that leaves the file alone; rebuild recreates the sessions (and their plans)
from real recording files, names the unreadable ones, and keeps plans not yet recorded."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest

from recorder.cli import main
from schemas.catalog import Catalog, CatalogError, SessionRow, rebuild
from schemas.events import Event, Hold
from schemas.plan import new_plan, plan_attrs
from schemas.session_protocol import load_preset
from schemas.writer import RecordingWriter
from tests.conftest import ROOT, run_palpation

PER_PROCESS = 1000
# One writer: a separate Python process (importing only the catalog) that opens the catalog,
# waits for the go file, then adds PER_PROCESS sessions, one transaction each, as fast as it
# can; it prints when it began and ended (monotonic: one clock per machine). Any error (e.g.
# "database is locked") escapes as a traceback and a non-zero exit.
WRITER = """
import sys, time
from pathlib import Path
from schemas.catalog import Catalog, SessionRow
path, name, go, n = sys.argv[1:]
catalog = Catalog(path)
Path(go + "." + name).touch()
while not Path(go).exists():
    time.sleep(0.001)
began = time.monotonic()
for i in range(int(n)):
    catalog.add_session(SessionRow(f"/recordings/{name}-{i:04d}.h5", name,
                                   f"2026-03-02T09:00:{i % 60:02d}.000+00:00", "p", None, None,
                                   i % 7, 1000 + i, i))
print(began, time.monotonic())
"""


def row(writer: str, i: int) -> SessionRow:
    """A made-up session ``i`` of ``writer``."""
    start = datetime(2026, 3, 2, 9, tzinfo=UTC) + timedelta(seconds=i)
    return SessionRow(path=f"/recordings/{writer}-{i:04d}.h5", trainee=writer,
                      start=start.isoformat(timespec="milliseconds"), protocol="p",
                      plan_id=None, plan_step=None, holds=i % 7, size_bytes=1000 + i,
                      mtime_ns=i)


def test_two_processes_adding_sessions_at_once_lose_none(tmp_path):
    path, go = tmp_path / "catalog.sqlite", tmp_path / "go"
    names = ("left", "right")
    procs = [subprocess.Popen([sys.executable, "-c", WRITER, str(path), name, str(go),
                               str(PER_PROCESS)], cwd=ROOT, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True)
             for name in names]
    deadline = time.monotonic() + 30
    while not all(Path(f"{go}.{n}").exists() for n in names) and time.monotonic() < deadline:
        time.sleep(0.01)  # both have the catalog open
    go.touch()
    spans = []
    for p in procs:
        out, err = p.communicate(timeout=60)
        assert p.returncode == 0, err  # no "database is locked" escaped
        spans.append([float(x) for x in out.split()])
    # both were adding at the same time: each began before the other had finished (SQLite
    # makes one wait for the other's lock, mostly until it is done: the rows need not mix)
    assert max(b for b, _ in spans) < min(e for _, e in spans)
    with Catalog(path) as catalog:
        rows = catalog.sessions()
        assert len(rows) == 2 * PER_PROCESS
        assert {r.path for r in rows} == {f"/recordings/{n}-{i:04d}.h5" for n in names
                                          for i in range(PER_PROCESS)}
        for r in rows:  # every row whole: its fields are the ones written with its path
            i = int(r.path[-7:-3])
            assert (r.trainee, r.holds, r.size_bytes, r.mtime_ns) == (
                r.path.split("/")[2].split("-")[0], i % 7, 1000 + i, i)
        assert len(catalog.sessions(trainee="left")) == PER_PROCESS
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_a_damaged_or_foreign_catalog_is_one_line_and_left_alone(tmp_path, capsys):
    damaged = tmp_path / "damaged.sqlite"
    damaged.write_bytes(b"this is no database\n" * 300)
    foreign = tmp_path / "foreign.sqlite"
    with sqlite3.connect(foreign) as db:
        db.execute("CREATE TABLE invoices (id INTEGER)")
    before = {p: p.read_bytes() for p in (damaged, foreign)}
    for path, says in ((damaged, "not a database"), (foreign, "not a palpation catalog")):
        with pytest.raises(CatalogError, match=says):
            Catalog(path)
        for argv in (("plan", "status"), ("catalog", "list"), ("catalog", "rebuild", ".")):
            assert main([*argv, "--catalog", str(path)]) == 1, argv
            err = capsys.readouterr().err
            assert err.count("\n") == 1 and str(path) in err and says in err, err
        assert path.read_bytes() == before[path]


def _recording(path: Path, session: dict, complete: int, incomplete: int) -> None:
    """A real recording file with ``complete`` whole holds and ``incomplete`` cut off."""
    w = RecordingWriter(path, session=session, device={}, calibration={},
                        session_start=datetime(2026, 3, 2, 10, tzinfo=UTC),
                        software_version="test")
    n = 100
    t = np.arange(n) / 100
    w.append_samples(data=np.zeros(n), timestamps=t, raw_counts=np.zeros(n, np.int64),
                     device_tick_us=(t * 1e6).astype(np.int64), sequence=np.arange(n),
                     host_time=t, flags=np.zeros(n, np.uint8))
    w.append_holds([Hold("upper trapezius L", k + 1, k, k + 0.5, 0.5, 40.0, 35.0, 0.5, 30.0,
                         50.0, False, complete=k < complete) for k in range(complete + incomplete)])
    w.append_events([Event(0.0, "note", text="made by a test")])
    w.close()


def test_rebuild_recreates_sessions_and_plans_from_the_files(tmp_path):
    folder = tmp_path / "recordings"
    (folder / "ana").mkdir(parents=True)
    plan = new_plan("Ana", "nmt-static", load_preset("nmt-static"), start=date(2026, 3, 2),
                    created=datetime(2026, 3, 1, tzinfo=UTC), seed=5)
    unrecorded = new_plan("Bo", "nmt-static", load_preset("nmt-static"),
                          start=date(2026, 4, 1), created=datetime(2026, 3, 1, tzinfo=UTC))
    _recording(folder / "ana" / "pre.h5", {**plan_attrs(plan, 0), "protocol": "NMT"}, 3, 1)
    _recording(folder / "free.h5", {"trainee": "Cy", "protocol": "NMT"}, 2, 0)
    (folder / "broken.h5").write_bytes(b"\x89HDF\r\n\x1a\n" + b"\0" * 100)
    cat_path = tmp_path / "c.sqlite"
    with Catalog(cat_path) as catalog:
        catalog.add_plan(unrecorded)
        catalog.add_session(row("stale", 1))  # a session whose file is gone
        done = rebuild(catalog, folder)
        rows = {Path(r.path).name: r for r in catalog.sessions()}
        plans = {p.plan_id: p for p in catalog.plans()}
    assert (done.sessions, done.plans) == (2, 1)
    assert len(done.unreadable) == 1 and "broken.h5" in done.unreadable[0]
    assert set(rows) == {"pre.h5", "free.h5"}
    pre, free = rows["pre.h5"], rows["free.h5"]
    assert (pre.trainee, pre.plan_id, pre.plan_step, pre.holds) == ("Ana", plan.plan_id, 0, 3)
    assert (free.trainee, free.plan_id, free.plan_step, free.holds) == ("Cy", None, None, 2)
    assert pre.start == "2026-03-02T10:00:00.000+00:00" and pre.day == date(2026, 3, 2)
    stat = (folder / "free.h5").stat()
    assert (free.size_bytes, free.mtime_ns) == (stat.st_size, stat.st_mtime_ns)
    assert plans == {plan.plan_id: plan, unrecorded.plan_id: unrecorded}
    r = run_palpation("catalog", "rebuild", str(folder), "--catalog", str(cat_path))
    assert r.returncode == 0
    assert r.stderr.count("\n") == 1 and "broken.h5" in r.stderr
    assert "2 sessions and 1 plans" in r.stdout
