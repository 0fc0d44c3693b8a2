"""Hold tables a study can rely on (`palpation analyze`): incomplete holds marked for a gap or a
disconnect inside them and left out of the summaries, the settings and provenance with every
table, who and which session each row is about, and honest exits. Real files: written offline
from the simulated therapist (whose holds are the ground truth), recorded live from the
simulated sensor over a pty, or a simulated study (``firmware_bridge.sim.study``)."""

from __future__ import annotations

import contextlib
import csv
import json
import re
import time
from dataclasses import fields
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from analysis.batch import COLUMNS, SUMMARY_COLUMNS
from analysis.hold_records import HoldConfig
from analysis.holds import config_for_band
from analysis.settings import DEFAULT_SETTINGS, SETTINGS_HELP
from firmware_bridge.sim.device import SimulatedSensor
from firmware_bridge.sim.offline import point_events, render_holds, write_recording
from firmware_bridge.sim.server import Faults, PtyServer
from firmware_bridge.sim.simulator import protocol_dose
from firmware_bridge.sim.study import draw_study, write_study
from firmware_bridge.sim.therapist import Therapist
from recorder.cli import main
from recorder.session import RecordingSession, SessionOptions
from schemas.reader import open_recording
from schemas.session_protocol import Dose, load_preset
from tests.conftest import ROOT

START = datetime(2026, 1, 5, 9, tzinfo=UTC)


def table(path: Path) -> list[dict]:
    return list(csv.DictReader(path.open()))


@pytest.fixture
def analyze(capsys):
    """``palpation analyze ARGS`` run in this process (the command's own code, without a
    fresh interpreter's imports each time): its exit status, stdout and stderr."""
    def run(*args) -> SimpleNamespace:
        capsys.readouterr()
        code = main(["analyze", *map(str, args)])
        got = capsys.readouterr()
        return SimpleNamespace(returncode=code, stdout=got.out, stderr=got.err)

    return run


@pytest.fixture(scope="module")
def gapped(tmp_path_factory) -> tuple[Path, list]:
    """Four holds of the simulated expert under ``nmt-static`` at 1 kHz, written offline
    with stretches of no samples: hold 1 loses 20 ms of its plateau (under max_gap_s), hold 2
    0.5 s, hold 3 its release (from 0.2 s before it to 0.5 s after the hold's end); hold 4 is
    whole. Returns the file and the holds' truth."""
    path = tmp_path_factory.mktemp("gapped") / "gaps.h5"
    proto = load_preset("nmt-static")
    th = Therapist("expert", seed=3, **protocol_dose(proto))
    t, holds = render_holds(th, 4, 1000.0)
    mid = [0.5 * (h.plateau_start_s + h.release_s) for h in holds]
    gaps = [(mid[0], mid[0] + 0.02), (mid[1], mid[1] + 0.5),
            (holds[2].release_s - 0.2, holds[2].end_s + 0.5)]
    keep = np.ones(t.size, dtype=bool)
    for a, b in gaps:
        keep &= ~((t >= a) & (t < b))
    write_recording(path, proto, t[keep], th.force(t)[keep], button=th.button(t)[keep],
                    events=point_events(proto, holds), session={"trainee": "Ana"},
                    start=START, settings={"rate_hz": 1000.0})
    return path, holds


# ---------------------------------------------------------------------------- settings
def test_the_documented_settings_and_columns_are_the_codes():
    doc = (ROOT / "analysis" / "TABLE.md").read_text()
    documented = re.findall(r"^\| `--([\w-]+)` \| ([^|]+) \| (.*) \|$", doc, re.M)
    assert [(n.replace("-", "_"), float(v), text) for n, v, text in documented] == [
        (n, v, SETTINGS_HELP[n]) for n, v in DEFAULT_SETTINGS.as_dict().items()]
    rows = {n: (u.strip(), d.replace("\\|", "|")) for n, u, d in
            re.findall(r"^\| `(\w+)` \| ([^|]*) \| (.*) \|$", doc, re.M)}
    assert {n: rows[n] for n in COLUMNS} == COLUMNS
    assert all(n.isascii() for n in [*COLUMNS, *SUMMARY_COLUMNS])
    # the defaults are the live recorder's detector
    defaults = {f.name: f.default for f in fields(HoldConfig)}
    assert (DEFAULT_SETTINGS.debounce_s, DEFAULT_SETTINGS.merge_gap_s) == (
        defaults["min_hold_s"], defaults["merge_gap_s"])
    assert config_for_band(30.0, 50.0).off_n == pytest.approx(2.0)  # 5 % of the 40 N target


def test_options_reach_the_detector_and_the_plateau_and_are_stated(gapped, tmp_path, analyze):
    path, truth = gapped
    out = tmp_path / "h.csv"
    r = analyze(str(path), "--out", str(out), "--debounce-s", "30")
    assert r.returncode == 0, r.stderr
    assert table(out) == [] and r.stdout.startswith("0 holds")  # every hold is < 30 s
    r = analyze(str(path), "--out", str(out), "--force",
                      "--plateau-min-s", "100", "--off-frac", "0.04")
    assert r.returncode == 0, r.stderr
    rows = table(out)
    assert len(rows) == len(truth) and all(row["plateau_mean_n"] == "" for row in rows)
    side = json.loads((tmp_path / "h.csv.json").read_text())
    assert side["settings"] == {**DEFAULT_SETTINGS.as_dict(), "plateau_min_s": 100.0,
                                "off_frac": 0.04}
    assert side["files"]["gaps.h5"]["calibration_source"] == "factory"
    assert side["columns"]["impulse_n_s"]["unit"] == "N·s"
    r = analyze(str(path), "--out", str(tmp_path / "x.csv"),
                      "--off-frac", "0.2")
    assert r.returncode == 1 and r.stderr.count("\n") == 1 and "off_frac" in r.stderr
    assert not (tmp_path / "x.csv").exists()


# ---------------------------------------------------------------------------- incomplete
def test_a_gap_in_a_hold_or_hiding_its_release_makes_it_incomplete(gapped, tmp_path, analyze):
    path, truth = gapped
    out, summary = tmp_path / "h.csv", tmp_path / "s.csv"
    r = analyze(str(path), "--out", str(out), "--summary", str(summary))
    assert r.returncode == 0, r.stderr
    rows = table(out)
    starts = [float(row["start_s"]) for row in rows]
    assert starts == pytest.approx([h.start_s for h in truth], abs=0.01)
    assert [row["complete"] for row in rows] == ["True", "False", "False", "True"]
    assert [row["score"] == "" for row in rows] == [False, True, True, False]
    assert "(2 incomplete)" in r.stdout and "2 incomplete holds left out" in r.stdout
    sums = table(summary)  # one point per hold in nmt-static
    assert [(s["n"], s["incomplete_left_out"]) for s in sums] == [
        ("1", "0"), ("0", "1"), ("0", "1"), ("1", "0")]
    assert sums[0]["plateau_mean_n"] == rows[0]["plateau_mean_n"]
    # a longer max_gap_s lets the 0.5 s gap pass; a shorter one catches the 20 ms one
    for gap, complete in (("1.0", ["True", "True", "False", "True"]),
                          ("0.01", ["False", "False", "False", "True"])):
        r = analyze(str(path), "--out", str(out), "--force", "--max-gap-s", gap)
        assert r.returncode == 0, r.stderr
        assert [row["complete"] for row in table(out)] == complete, gap


@contextlib.contextmanager
def live_session(out: Path, faults: Faults | None = None):
    """The simulated expert (1 kHz, short holds from 0.3 s on) over a pty, recorded by the
    real session under ``nmt-static``; yields (first hold's truth, sensor) and stops it all."""
    protocol = load_preset("nmt-static")
    dose = Dose(unit="N", target_low=30.0, target_high=50.0, min_hold_s=1.5, max_hold_s=1.5,
                rest_s=1.0)
    therapist = Therapist("expert", dose=dose, seed=5, start_delay_s=0.3,
                          trigger_points=[p.label for p in protocol.points])
    first = therapist.holds_between(0, 20)[0]
    sensor = SimulatedSensor(rate_hz=1000.0, seed=5, load=therapist)
    server = PtyServer(sensor, faults=faults(first) if faults else None)
    session = RecordingSession(SessionOptions(port=server.start(), out=out, protocol=protocol,
                                              metadata={"protocol_toml": protocol.to_toml()}))
    session.start()
    try:
        yield first, sensor
    finally:
        session.stop()
        server.close()


def test_a_disconnect_inside_a_hold_makes_it_incomplete(tmp_path, analyze):
    """The simulated sensor unplugged for 0.3 s in the first hold's plateau, recorded live."""
    out = tmp_path / "unplugged.h5"
    unplug = lambda first: Faults(disconnect_after=first.plateau_start_s + 0.3,  # noqa: E731
                                  reappear_after=0.3)
    with live_session(out, unplug) as (first, sensor):
        time.sleep(first.end_s + 1.0)
    origin = sensor.truth()["therapist_origin_tick_us"]
    rec = open_recording(out)
    kinds = [e.kind for e in rec.events]
    assert "disconnect" in kinds and "reconnect" in kinds
    # ground truth: the device went away inside the hold, which ended before the recording
    lost = int(np.argmax(np.diff(rec.timestamps)))
    lost_at = (rec.device_tick_us[lost] - origin) / 1e6
    assert first.plateau_start_s < lost_at < first.release_s
    # the therapist's clock runs on through the outage, as the session's does
    assert lost_at + (rec.timestamps[-1] - rec.timestamps[lost]) > first.end_s + 0.4
    r = analyze(str(out), "--out", str(tmp_path / "h.csv"))
    assert r.returncode == 0, r.stderr
    rows = table(tmp_path / "h.csv")
    assert len(rows) == 1 and rows[0]["complete"] == "False"
    assert float(rows[0]["start_s"]) < rec.timestamps[lost] < float(rows[0]["end_s"])


# ---------------------------------------------------------------------------- honest exits
def test_a_file_still_being_recorded_is_analysed_with_a_warning(tmp_path, analyze):
    """Analysed in the first hold's plateau while the session writes it, then once
    finalised."""
    out = tmp_path / "live.h5"
    with live_session(out) as (first, _):
        time.sleep(first.plateau_start_s + 0.5)
        r = analyze(out, "--out", tmp_path / "h.csv")
    assert r.returncode == 0, r.stderr
    assert "live.h5 is still being recorded" in r.stderr
    rows = table(tmp_path / "h.csv")
    assert [(row["complete"], row["still_recording"]) for row in rows] == [("False", "True")]
    side = json.loads((tmp_path / "h.csv.json").read_text())
    assert side["files"]["live.h5"]["still_recording"] is True
    r = analyze(out, "--out", tmp_path / "h.csv", "--force")
    assert r.returncode == 0 and "still being recorded" not in r.stderr
    done = table(tmp_path / "h.csv")
    assert len(done) == 1 and done[0]["still_recording"] == "False"
    assert float(done[0]["end_s"]) > float(rows[0]["end_s"])  # the file went on
    assert done[0]["recorded_with"] == open_recording(out).software_version != ""


def test_unreadable_files_fail_the_batch_unless_skip_bad_and_outputs_are_kept(
        gapped, tmp_path, analyze):
    path, truth = gapped
    folder = path.parent
    (folder / "broken.h5").write_text("not a recording")
    try:
        out = tmp_path / "h.csv"
        r = analyze(str(folder), "--out", str(out))
        assert r.returncode == 1 and "broken.h5" in r.stderr and "--skip-bad" in r.stderr
        assert not out.exists()
        r = analyze(str(folder), "--out", str(out), "--skip-bad")
        assert r.returncode == 0, r.stderr
        assert "broken.h5" in r.stderr and len(table(out)) == len(truth)
        assert json.loads((tmp_path / "h.csv.json").read_text())["skipped"][0].startswith(
            str(folder / "broken.h5"))
        before = out.read_bytes()
        r = analyze(str(path), "--out", str(out), "--skip-bad")
        assert r.returncode == 1 and "h.csv exists: --force replaces it" in r.stderr
        assert out.read_bytes() == before
        out.rename(tmp_path / "kept.csv")  # its sidecar is still in the way
        r = analyze(str(path), "--out", str(out))
        assert r.returncode == 1 and "h.csv.json exists: --force" in r.stderr
        assert not out.exists()
        r = analyze(str(path), "--out", str(out), "--force")
        assert r.returncode == 0 and len(table(out)) == len(truth)
    finally:
        (folder / "broken.h5").unlink()


def test_parquet_carries_units_and_provenance(gapped, tmp_path, analyze):
    import pyarrow.parquet as pq

    path, truth = gapped
    out = tmp_path / "h.parquet"
    r = analyze(str(path), "--out", str(out))
    assert r.returncode == 0, r.stderr
    t = pq.read_table(out)
    meta = t.schema.metadata
    assert t.num_rows == len(truth) and t.column_names == list(
        c for c in COLUMNS if not c.startswith("ref_"))
    assert meta[b"unit:impulse_n_s"] == "N·s".encode() and meta[b"unit:plateau_mean_n"] == b"N"
    prov = json.loads(meta[b"palpation"])
    assert prov["settings"] == DEFAULT_SETTINGS.as_dict()
    assert prov["files"]["gaps.h5"]["schema_version"] == open_recording(path).schema_version
    assert t.column("complete").to_pylist() == [True, False, False, True]


# ---------------------------------------------------------------------------- a study
@pytest.fixture(scope="module")
def ppt_study(tmp_path_factory) -> tuple[Path, dict]:
    """A threshold-ramp study: one subject seen by two raters, one session (offline)."""
    folder = tmp_path_factory.mktemp("study")
    study = draw_study(load_preset("ppt-ramp"), subjects=1, raters=2, sessions=1, seed=3)
    write_study(study, folder, rate_hz=100.0)
    return folder, json.loads((folder / "study.truth.json").read_text())


def test_a_study_table_keeps_folders_apart_and_names_subject_and_session(ppt_study, tmp_path,
                                                                        analyze):
    folder, truth = ppt_study
    ref = folder / truth["files"][0]["path"]
    out, summary = tmp_path / "h.csv", tmp_path / "s.csv"
    r = analyze(str(folder), "--out", str(out), "--summary", str(summary),
                      "--reference", str(ref))
    assert r.returncode == 0, r.stderr
    rows = table(out)
    files = {f["path"]: f for f in truth["files"]}
    assert sorted(files) == ["R1/S01-s1.h5", "R2/S01-s1.h5"]  # the same name in two folders
    assert {row["file"] for row in rows} == set(files)
    for row in rows:
        f = files[row["file"]]
        assert (row["trainee"], row["subject"], row["session"]) == (
            f["trainee"], f["subject"], f["session_label"])
    assert list(rows[0]) == list(COLUMNS)
    # the reference's own ramps at each point are 3, their durations differ from their mean
    own = [row for row in rows if row["file"] == truth["files"][0]["path"]]
    assert {row["ref_holds"] for row in rows} == {"3"}
    assert sum(float(row["ref_duration_diff_s"]) for row in own) == pytest.approx(0, abs=1e-6)
    # the per-site threshold summary beside the summary, against the table and the truth
    ppt = table(tmp_path / "s-ppt.csv")
    assert "threshold summary -> " in r.stdout and len(ppt) == 2 * len(truth["points"])
    for site in ppt:
        series = [float(row["threshold_n"]) for row in rows if row["file"] == site["file"]
                  and row["trigger_point"] == site["site"]]
        assert float(site["mean_n"]) == pytest.approx(np.mean(series))
        aimed = files[site["file"]]["aimed_n"][site["site"]]
        assert float(site["mean_n"]) == pytest.approx(aimed, rel=0.3)
    # a file named alone is named by its file name; two of the same name by their folders
    r = analyze(str(ref), "--out", str(tmp_path / "one.csv"))
    assert r.returncode == 0 and {row["file"] for row in table(tmp_path / "one.csv")} == {
        ref.name}
    r = analyze(*(folder / f for f in files), "--out", str(tmp_path / "two.csv"))
    assert r.returncode == 0 and {row["file"] for row in table(tmp_path / "two.csv")} == set(
        files)
