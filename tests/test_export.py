"""``palpation export`` to CSV and Parquet on a real recording of the simulated sensor: the
same ASCII column names in both, every Parquet field with its unit, the CSV's JSON sidecar
(metadata, provenance, events, holds), an export of a file still being recorded, outputs
never replaced without --force, and a batch that skips an unreadable file."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from analysis.metrics import recording_metrics
from schemas.reader import open_recording
from tests.conftest import fast_session, run_palpation, wait_until

SIM_SEED = 11


def record_short(out: Path, during=None) -> None:
    """About 10 s of the simulated sensor (seed ``SIM_SEED``) for trainee Ana on subject S03,
    session "2": a hold or two, a pain rating of 6 and a marker while one is pressed, then a
    blind stretch. ``during()`` runs while the file is still being recorded, once 2 s of
    samples have arrived."""
    session, end = fast_session(out, seed=SIM_SEED, trainee="Ana", subject="S03",
                                session_label="2")
    try:
        assert wait_until(lambda: session.status().samples > 2000, timeout=10)
        if during is not None:
            during()
        assert wait_until(lambda: session.live_hold is not None, timeout=15)
        done = len(session.holds)
        session.add_event("pain", 6.0)
        session.add_event("marker", text="thumb slipped")
        assert wait_until(lambda: len(session.holds) > done, timeout=15)
        session.set_blind(True)
        session.set_blind(False)
        end_s = session.holds[-1].hold.end_s
        assert wait_until(lambda: session.status().elapsed_s > end_s + 0.5, timeout=5)
    finally:
        end()


@pytest.fixture(scope="module")
def recording(tmp_path_factory):
    """The recording, and a CSV export of it made while it was still being recorded."""
    folder = tmp_path_factory.mktemp("export")
    path, live_out = folder / "s03.h5", folder / "live" / "s03.csv"
    live_out.parent.mkdir()
    live = {}

    def export_live():
        live["run"] = run_palpation("export", str(path), "--out", str(live_out))

    record_short(path, during=export_live)
    return SimpleNamespace(path=path, live=live["run"], live_out=live_out)


def test_csv_and_parquet_have_the_same_ascii_columns_and_the_samples(recording, tmp_path):
    import pyarrow.parquet as pq

    rec = open_recording(recording.path)
    out_csv, out_pq = tmp_path / "t.csv", tmp_path / "t.parquet"
    assert run_palpation("export", str(recording.path), "--out", str(out_csv)).returncode == 0
    r = run_palpation("export", str(recording.path), "--format", "parquet", "--out", str(out_pq))
    assert r.returncode == 0, r.stderr
    with out_csv.open() as f:
        rows = list(csv.reader(f))
    table = pq.read_table(out_pq)
    assert rows[0] == table.column_names
    assert rows[0] == ["time_s", "host_time_s", "force_n", "raw_counts", "device_tick_us",
                       "sequence", "flags"]
    assert len(rows) - 1 == table.num_rows == len(rec.force) > 5000
    csv_force = np.array([float(r[2]) for r in rows[1:]])
    assert np.array_equal(csv_force, rec.force)
    assert np.array_equal(table.column("force_n").to_numpy(), rec.force)
    assert np.array_equal(table.column("device_tick_us").to_numpy(), rec.device_tick_us)
    assert np.array_equal(table.column("time_s").to_numpy(), rec.timestamps)


def test_every_parquet_field_carries_its_unit(recording, tmp_path):
    import pyarrow.parquet as pq

    out = tmp_path / "t.parquet"
    r = run_palpation("export", str(recording.path), "--format", "parquet", "--out", str(out))
    assert r.returncode == 0, r.stderr
    schema = pq.read_schema(out)
    units = {f.name: f.metadata[b"unit"].decode() for f in schema}
    assert units == {"time_s": "s", "host_time_s": "s", "force_n": "N", "raw_counts": "counts",
                     "device_tick_us": "us", "sequence": "", "flags": ""}
    doc = json.loads(schema.metadata[b"palpation"])
    assert doc["provenance"]["calibration_source"] == "factory"
    assert doc["session"]["subject"] == "S03"


def test_csv_sidecar_holds_metadata_provenance_events_and_holds(recording, tmp_path):
    out = tmp_path / "t.csv"
    r = run_palpation("export", str(recording.path), "--out", str(out))
    assert r.returncode == 0, r.stderr
    doc = json.loads((tmp_path / "t.csv.json").read_text())
    rec = open_recording(recording.path)
    assert doc["columns"]["force_n"]["unit"] == "N"
    assert doc["columns"]["device_tick_us"]["unit"] == "us"
    prov = doc["provenance"]
    assert prov["calibration_source"] == "factory" and prov["still_recording"] is False
    assert prov["recorded_with"] == rec.software_version and prov["settings"]
    assert doc["session"]["trainee"] == "Ana" and doc["session"]["session_label"] == "2"
    assert doc["device"]["device_id"] == "SIM-0001"
    assert "dose" in doc["protocol_toml"]
    pain = [e for e in doc["events"] if e["kind"] == "pain"]
    assert [e["value"] for e in pain] == [6.0]
    assert [e["text"] for e in doc["events"] if e["kind"] == "marker"] == ["thumb slipped"]
    assert {"blind_on", "blind_off", "record_start"} <= {e["kind"] for e in doc["events"]}
    metrics = recording_metrics(rec)
    assert len(doc["holds"]) == len(metrics) >= 1
    assert doc["holds"][0]["trigger_point"] == metrics[0].trigger_point == "upper trapezius L"
    assert [h["plateau_mean_n"] for h in doc["holds"]] == [m.plateau_mean_n for m in metrics]
    (rated,) = [h for h in doc["holds"] if h["pain"] == 6.0]
    assert rated["start_s"] <= pain[0]["time"] <= rated["end_s"] and rated["complete"] is True
    assert doc["hold_columns"]["impulse_n_s"]["unit"] == "N·s"


def test_a_file_still_being_recorded_exports_with_a_warning_and_the_mark(recording):
    r = recording.live
    assert r.returncode == 0, r.stderr
    assert "still being recorded" in r.stderr and str(recording.path) in r.stderr
    doc = json.loads(recording.live_out.with_name("s03.csv.json").read_text())
    assert doc["provenance"]["still_recording"] is True
    written = len(recording.live_out.read_text().splitlines()) - 1
    assert 0 < written < len(open_recording(recording.path).force)  # what was on disk then


def test_an_existing_output_is_replaced_only_with_force(recording, tmp_path):
    out = tmp_path / "t.csv"
    out.write_text("mine\n")
    r = run_palpation("export", str(recording.path), "--out", str(out))
    assert r.returncode == 1
    assert r.stderr.strip().splitlines() == [f"palpation: error: {out} exists: --force "
                                             f"replaces it"]
    assert out.read_text() == "mine\n" and not (tmp_path / "t.csv.json").exists()
    r = run_palpation("export", str(recording.path), "--out", str(out), "--force")
    assert r.returncode == 0, r.stderr
    assert out.read_text().startswith("time_s,") and (tmp_path / "t.csv.json").exists()
    (tmp_path / "other.csv.json").write_text("{}")  # the sidecar alone is an output too
    r = run_palpation("export", str(recording.path), "--out", str(tmp_path / "other.csv"))
    assert r.returncode == 1 and "other.csv.json exists" in r.stderr


def test_a_batch_skips_an_unreadable_file_and_fails_unless_skip_bad(recording, tmp_path):
    folder = tmp_path / "in"
    (folder / "ana").mkdir(parents=True)
    shutil.copyfile(recording.path, folder / "ana" / "s03.h5")
    (folder / "junk.h5").write_text("not a recording")
    out = tmp_path / "out"
    r = run_palpation("export", str(folder), "--format", "parquet", "--out", str(out))
    assert r.returncode == 1
    assert "skipped:" in r.stderr and "junk.h5" in r.stderr and "--skip-bad" in r.stderr
    assert (out / "ana" / "s03.parquet").is_file()
    r = run_palpation("export", str(folder), "--format", "parquet", "--out", str(out),
                      "--skip-bad", "--force")
    assert r.returncode == 0, r.stderr
    assert "junk.h5" in r.stderr
