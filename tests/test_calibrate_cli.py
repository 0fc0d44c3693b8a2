"""Calibration end to end: the simulated sensor loaded with known masses, saved records
picked by device identity, recalibration of a recording, and one-line errors."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
from pathlib import Path

import numpy as np
import pytest

from firmware_bridge.sim.adc import AdcModel
from schemas.calibration import coverage_warnings, load_calibration
from schemas.reader import open_recording
from schemas.session_protocol import list_presets, load_preset
from tests.conftest import run_palpation

TRUE_SCALE = AdcModel().counts_per_newton  # what the simulated sensor really does


@pytest.fixture
def data_dir(tmp_path, monkeypatch):
    d = tmp_path / "data"
    monkeypatch.setenv("PALPATION_DATA_DIR", str(d))
    return d


def env(data_dir):
    return {**os.environ, "PALPATION_DATA_DIR": str(data_dir)}


def calibrate(data_dir, *extra):
    r = run_palpation("calibrate", "--simulate", "--points", "0,0.5,1,2,4", "--unit", "kg",
                      "--seconds", "0.5", *extra, env=env(data_dir), timeout=90)
    assert r.returncode == 0, r.stderr
    (path,) = (data_dir / "calibrations").glob("*.json")
    return r, json.loads(path.read_text())


def test_scripted_calibration_recovers_the_true_scale(data_dir):
    r, record = calibrate(data_dir, "--unload")
    counts_per_newton = 1.0 / record["coefficients"][1]
    assert abs(counts_per_newton / TRUE_SCALE - 1) < 0.005
    assert record["device"]["device_id"] == "SIM-0001"
    assert len(record["points"]) == 9 and record["metrics"]["hysteresis_pct_fs"] is not None
    assert "nonlinearity" in r.stdout and "saved" in r.stdout
    check = run_palpation("calibrate", "--simulate", "--check", "1.5", "--unit", "kg",
                          "--seconds", "0.5", env=env(data_dir), timeout=60)
    assert check.returncode == 0, check.stderr
    error_pct = float(check.stdout.split("(")[2].split("%")[0])
    assert abs(error_pct) < 0.5
    assert "PASS: the tolerance is 2 % of the load" in check.stdout


def test_recording_uses_the_saved_calibration_and_recalibrate_rederives_force(data_dir,
                                                                              tmp_path):
    plain = tmp_path / "factory.h5"
    r = run_palpation("record", "--simulate", "--headless", "--duration", "2", "--out",
                      str(plain), env=env(data_dir))
    assert r.returncode == 0, r.stderr
    assert "no calibration for SIM-0001" in r.stderr
    before = open_recording(plain)
    assert before.calibration["source"] == "factory"
    _, record = calibrate(data_dir)
    (cal_path,) = (data_dir / "calibrations").glob("*.json")
    calibrated = tmp_path / "calibrated.h5"
    r = run_palpation("record", "--simulate", "--headless", "--duration", "2", "--out",
                      str(calibrated), env=env(data_dir))
    assert r.returncode == 0, r.stderr
    rec = open_recording(calibrated)
    assert rec.calibration["source"] == "file"
    assert rec.calibration["calibration_id"] == record["id"]
    assert abs(np.median(rec.force[:200])) < 0.05  # tared at rest

    r = run_palpation("recalibrate", str(plain), "--calibration", str(cal_path))
    assert r.returncode == 0, r.stderr
    after = open_recording(plain)
    assert np.array_equal(after.raw_counts, before.raw_counts)
    # same raw counts, same tare: the new force is the old one rescaled by factory/true scale
    slope, intercept = np.polyfit(before.force, after.force, 1)
    assert slope == pytest.approx(4000.0 / TRUE_SCALE, rel=0.005)
    assert abs(intercept) < 0.01
    assert np.ptp(before.force) > 0.01  # there was signal (ADC noise at least) to compare
    assert after.calibration["calibration_id"] == record["id"]
    assert any("recalibrated" in e.text for e in after.events)


def test_bad_calibration_files_are_one_line_errors(tmp_path, data_dir):
    bad = tmp_path / "bad.json"
    bad.write_text('{"schema_name": "palpation-calibration", "id": 3')
    r = run_palpation("record", "--simulate", "--headless", "--duration", "1", "--out",
                      str(tmp_path / "x.h5"), "--calibration", str(bad), env=env(data_dir))
    assert r.returncode == 1 and r.stderr.count("\n") == 1 and "bad.json" in r.stderr
    assert not (tmp_path / "x.h5").exists()
    r = run_palpation("recalibrate", str(tmp_path / "x.h5"), "--calibration", str(bad))
    assert r.returncode == 1 and r.stderr.count("\n") == 1


def test_unknown_display_unit_and_closed_stdin_are_clear(tmp_path, data_dir):
    r = run_palpation("record", "--simulate", "--headless", "--duration", "1", "--out",
                      str(tmp_path / "x.h5"), "--unit", "stone", env=env(data_dir))
    assert r.returncode == 1 and "unknown unit 'stone'" in r.stderr
    r = run_palpation("calibrate", "--simulate", env=env(data_dir),
                      stdin=subprocess.DEVNULL)
    assert r.returncode == 1 and "standard input closed" in r.stderr


def readme_calibration_example() -> list[str]:
    """The README's ``palpation calibrate --simulate ...`` line (its Calibrate section), as
    arguments after ``palpation``."""
    text = (Path(__file__).parents[1] / "README.md").read_text(encoding="utf-8")
    section = text.split("\n## Calibrate\n", 1)[1].split("\n## ", 1)[0]
    (line,) = [ln for ln in section.splitlines()
               if ln.startswith("palpation calibrate --simulate")]
    return shlex.split(line, comments=True)[1:]


def test_the_readme_calibration_example_covers_every_preset_band(data_dir):
    args = readme_calibration_example()
    r = run_palpation(*args, "--protocol", "ppt-ramp", "--seconds", "0.2",
                      env=env(data_dir), timeout=90)
    assert r.returncode == 0, r.stderr
    assert "saved" in r.stdout and "does not cover" not in r.stdout
    (path,) = (data_dir / "calibrations").glob("*.json")
    cal = load_calibration(path)
    for preset, _ in list_presets():
        assert coverage_warnings(cal, load_preset(preset)) == [], preset
