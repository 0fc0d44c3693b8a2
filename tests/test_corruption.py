"""Damaged recordings never crash a command (tests/corruption.py does the damage)."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
from conftest import run_palpation

from schemas.calibration import Calibration, CalPoint, fit

HARNESS = Path(__file__).with_name("corruption.py")
VARIANTS = 200


def test_damaged_copies_of_a_recording_end_in_one_line_errors_never_a_traceback(tmp_path):
    recording = tmp_path / "session.h5"
    done = run_palpation("record", "--simulate", "--headless", "--duration", "6",
                         "--seed", "3", "--out", str(recording))
    assert done.returncode == 0, done.stderr
    loads = np.linspace(0.0, 100.0, 6)
    cal = Calibration.from_fit(
        fit([CalPoint(f, 83_000 + 4173.2 * f, "load" if f else "tare") for f in loads]),
        device={"device_id": "SIM-0001"}, software_version="test")
    cal_file = tmp_path / "cal.json"
    cal_file.write_text(cal.to_json())
    tally_file = tmp_path / "tally.json"
    subprocess.run([sys.executable, str(HARNESS), str(recording), "--calibration", str(cal_file),
                    "--variants", str(VARIANTS), "--json", str(tally_file)],
                   check=True, timeout=900, capture_output=True)
    tally = json.loads(tally_file.read_text())
    print(f"\ncorruption: {tally['variants']} variants {tally['kinds']}, {tally['runs']} runs, "
          f"accepted by validate {tally['accepted']} (content changed: "
          f"{len(tally['accepted_changed'])}), {tally['seconds']} s")
    assert tally["variants"] == VARIANTS and tally["runs"] == VARIANTS * 7 + VARIANTS // 10
    assert tally["tracebacks"] == []
    assert tally["crashes"] == []
    assert tally["hangs"] == []
    assert tally["unclear"] == []
    assert tally["accepted_changed"] == []
