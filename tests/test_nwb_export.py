"""``palpation export --format nwb`` on a real recording of the simulated sensor: the file
opens in pynwb with the recording's force and timestamps unchanged, its holds table is the
analysis's holds, its events, subject, trainee and metadata are there, NWB Inspector finds
nothing critical nor any best-practice violation, and a batch runs in two worker processes."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections import Counter

import numpy as np
import pynwb
import pytest

from analysis.metrics import recording_metrics
from schemas.reader import open_recording
from tests.conftest import ROOT, run_palpation
from tests.test_export import record_short


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """(the recording, its NWB export made by the command)."""
    folder = tmp_path_factory.mktemp("nwb")
    path, out = folder / "s03.h5", folder / "s03.nwb"
    record_short(path)
    r = run_palpation("export", str(path), "--format", "nwb", "--out", str(out))
    assert r.returncode == 0, r.stderr
    return path, out


def test_force_timestamps_and_counts_are_the_recordings(exported):
    path, out = exported
    rec = open_recording(path)
    with pynwb.NWBHDF5IO(str(out), "r") as io:
        nwb = io.read()
        force, counts = nwb.acquisition["force"], nwb.acquisition["raw_counts"]
        assert force.unit == "newtons" and counts.unit == "counts"
        assert np.array_equal(force.data[:], rec.force)
        assert np.array_equal(force.timestamps[:], rec.timestamps)
        assert np.array_equal(counts.data[:], rec.raw_counts)
        assert np.array_equal(counts.timestamps[:], rec.timestamps)
        assert force.resolution == pytest.approx(1 / rec.device["counts_per_newton"])


def test_holds_table_rows_are_the_analysis_holds(exported):
    path, out = exported
    metrics = recording_metrics(open_recording(path))
    with pynwb.NWBHDF5IO(str(out), "r") as io:
        holds = io.read().intervals["holds"].to_dataframe()
    assert len(holds) == len(metrics) >= 1
    for (_, row), m in zip(holds.iterrows(), metrics, strict=True):
        assert (row.start_time, row.stop_time) == (m.start_s, m.end_s)
        assert (row.trigger_point, row.repetition) == (m.trigger_point, m.repetition)
        assert (row.feedback, bool(row.blind), bool(row.complete)) == (
            m.feedback, m.blind, m.complete)
        assert (row.score, row.plateau_mean_n) == (m.score, m.plateau_mean_n)
    assert list(holds.pain[holds.pain.notna()]) == [6.0]  # the rating made during a hold


def test_events_identity_and_metadata(exported):
    path, out = exported
    rec = open_recording(path)
    with pynwb.NWBHDF5IO(str(out), "r") as io:
        nwb = io.read()
        pain = nwb.events["pain"].to_dataframe()
        marker = nwb.events["marker"].to_dataframe()
        assert list(pain.value) == [6.0]
        assert list(marker.annotation) == ["thumb slipped"]
        assert {"blind_on", "blind_off", "trigger_point", "clock_fit"} <= set(nwb.events)
        fits = nwb.events["clock_fit"].to_dataframe()
        assert {"offset_s", "rate", "from_sample"} <= set(fits.columns)
        assert nwb.subject.subject_id == "S03" and nwb.subject.species == "Homo sapiens"
        assert tuple(nwb.experimenter) == ("Ana",) and nwb.session_id == "2"
        assert nwb.session_start_time == rec.session_start
        assert nwb.protocol == rec.session["protocol_toml"]
        device = nwb.devices["force_sensor"]
        assert device.serial_number == "SIM-0001" and device.model.name == "palpation simulator"
        notes = json.loads(nwb.data_collection)
    assert notes["provenance"]["calibration_source"] == "factory"
    assert notes["provenance"]["still_recording"] is False
    assert notes["calibration"]["coefficients"] == rec.calibration["coefficients"].tolist()


def test_nwb_inspector_finds_nothing_critical_nor_a_violation(exported):
    from nwbinspector import inspect_nwbfile

    messages = list(inspect_nwbfile(nwbfile_path=str(exported[1])))
    levels = Counter(m.importance.name for m in messages)
    shown = "\n".join(f"{m.importance.name} {m.check_function_name} {m.object_name}: "
                      f"{m.message}" for m in messages)
    assert levels["CRITICAL"] == levels["BEST_PRACTICE_VIOLATION"] == 0, shown
    assert levels["PYNWB_VALIDATION"] == levels["ERROR"] == 0, shown


def test_a_batch_in_two_worker_processes(exported, tmp_path):
    path, _ = exported
    folder = tmp_path / "in"
    for name in ("ana/s03.h5", "ben/s03.h5"):
        (folder / name).parent.mkdir(parents=True)
        shutil.copyfile(path, folder / name)
    out = tmp_path / "out"
    r = run_palpation("export", str(folder), "--format", "nwb", "--jobs", "2", "--out", str(out))
    assert r.returncode == 0, r.stderr
    force = open_recording(path).force
    for name in ("ana/s03.nwb", "ben/s03.nwb"):
        with pynwb.NWBHDF5IO(str(out / name), "r") as io:
            assert np.array_equal(io.read().acquisition["force"].data[:], force)


def test_without_pynwb_the_error_names_the_extra(exported, tmp_path):
    code = ("import sys; sys.modules['pynwb'] = None; from recorder.cli import main; "
            f"sys.exit(main(['export', {str(exported[0])!r}, '--format', 'nwb', '--out', "
            f"{str(tmp_path / 'x.nwb')!r}]))")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                       timeout=60, cwd=ROOT)
    assert r.returncode == 1
    assert r.stderr.strip().splitlines() == [
        "palpation: error: NWB export needs pynwb: pip install 'palpation-recorder[nwb]'"]
    assert not (tmp_path / "x.nwb").exists()
