"""A file still being recorded is not an interrupted one: `validate`, `info` and `recover` tell
them apart by the lock a live writer holds (schemas.recording_lock), with a real recorder
process writing the file, then stopped cleanly or killed."""

from __future__ import annotations

import json
import signal
import subprocess

import pytest

from analysis.provenance import provenance
from schemas.hdf5 import RecordingFileError
from schemas.reader import open_recording, still_recording
from schemas.recording_lock import SUPPORTED
from schemas.recover import recover
from schemas.validate import validate
from schemas.writer import RecordingWriter
from tests.conftest import ROOT, palpation_cmd, run_palpation, wait_until

pytestmark = pytest.mark.skipif(not SUPPORTED, reason="the writer's lock needs Linux OFD locks")


def start_recorder(out) -> subprocess.Popen:
    """`palpation record --simulate --headless` writing ``out``, once it has flushed samples."""
    proc = subprocess.Popen(
        palpation_cmd("record", "--simulate", "--headless", "--duration", "60", "--seed", "2",
                      "--sim-rate", "500", "--out", str(out), "--subject", "S01"),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT)

    def flushed() -> bool:
        try:
            return out.exists() and len(open_recording(out).force) > 0
        except RecordingFileError:  # created, its layout not flushed yet
            return False

    if not wait_until(flushed, timeout=20, step=0.1):
        proc.kill()
        pytest.fail(f"no samples in {out} within 20 s: {proc.communicate(timeout=10)[1]}")
    return proc


def test_a_file_being_recorded_says_so_then_validates_once_stopped(tmp_path):
    out = tmp_path / "live.h5"
    proc = start_recorder(out)
    try:
        assert still_recording(out)
        v = run_palpation("validate", str(out))
        assert v.returncode == 1 and v.stderr.count("\n") == 1, v.stderr
        assert "still being recorded" in v.stderr and "recover" not in v.stderr
        shown = run_palpation("info", "--json", str(out))
        assert shown.returncode == 0, shown.stderr
        info = json.loads(shown.stdout)
        assert info["finalised"] is False and info["still_recording"] is True
        assert "session_end" not in info and info["samples"] > 0
        assert info["provenance"]["schema_version"] == "1.6.0"
        assert info["provenance"]["still_recording"] is True
        r = run_palpation("recover", str(out))
        assert r.returncode == 1 and "still being recorded" in r.stderr
        assert not out.with_suffix(".orig.h5").exists()
    finally:
        proc.send_signal(signal.SIGTERM)  # stops cleanly, like Ctrl-C
        _, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert not still_recording(out)
    validate(out)
    rec = open_recording(out)
    assert rec.finalised and rec.session["subject"] == "S01"
    text = run_palpation("info", str(out))
    assert text.returncode == 0 and "session_end" in text.stdout
    assert "still being recorded" not in text.stdout and "interrupted" not in text.stdout


def test_a_killed_recording_is_interrupted_and_recovers(tmp_path):
    out = tmp_path / "killed.h5"
    proc = start_recorder(out)
    proc.kill()
    proc.communicate(timeout=30)
    assert not still_recording(out)
    assert provenance(open_recording(out))["still_recording"] is False
    with pytest.raises(RecordingFileError, match=r"interrupted\?\); run `palpation recover"):
        validate(out)
    text = run_palpation("info", str(out))
    assert text.returncode == 0, text.stderr
    assert "session_end" not in text.stdout
    assert f"interrupted (not finalised): run `palpation recover {out}`" in text.stdout
    recover(out)
    validate(out)
    assert open_recording(out).recovered


def test_the_lock_spans_the_writer_from_creation_to_finalising(tmp_path):
    path = tmp_path / "inproc.h5"
    writer = RecordingWriter(path, session={}, device={}, calibration={},
                             software_version="test")
    assert still_recording(path)  # a second description in the same process sees it too
    writer.close()
    assert not still_recording(path)
    assert not still_recording(tmp_path / "missing.h5")
