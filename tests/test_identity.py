"""Who was pressed on, and in which session: `record --subject CODE --session LABEL` stored in
the file's /session (schema 1.6.0), read back, and older files without them still valid."""

from __future__ import annotations

import h5py
import pytest

from schemas.reader import open_recording
from schemas.validate import validate
from schemas.writer import RecordingWriter
from tests.conftest import run_palpation


def test_record_stores_subject_and_session(tmp_path):
    out = tmp_path / "s03-retest.h5"
    r = run_palpation("record", "--simulate", "--headless", "--duration", "2", "--seed", "3",
                      "--sim-rate", "500", "--out", str(out), "--trainee", "Ana",
                      "--subject", "S03", "--session", "retest")
    assert r.returncode == 0, r.stderr
    with h5py.File(out, "r") as f:
        assert f["/session"].attrs["subject"] == "S03"
        assert f["/session"].attrs["session_label"] == "retest"
        assert f.attrs["schema_version"] == "1.6.0"
    rec = open_recording(out)
    assert (rec.session["trainee"], rec.session["subject"], rec.session["session_label"]) == (
        "Ana", "S03", "retest")
    v = run_palpation("validate", "--deep", str(out))
    assert v.returncode == 0 and v.stdout.startswith(f"{out}: valid"), v.stderr


def test_writer_takes_identity_and_leaves_it_out_when_not_given(tmp_path):
    given, bare = tmp_path / "given.h5", tmp_path / "bare.h5"
    RecordingWriter(given, session={"subject": "P-7", "session_label": "2"}, device={},
                    calibration={}, software_version="test").close()
    RecordingWriter(bare, session={"subject": "", "trainee": "Ana"}, device={}, calibration={},
                    software_version="test").close()
    assert (open_recording(given).session["subject"],
            open_recording(given).session["session_label"]) == ("P-7", "2")
    with h5py.File(bare, "r") as f:
        assert "subject" not in f["/session"].attrs and "session_label" not in f["/session"].attrs
    rec = open_recording(bare)
    assert rec.session["subject"] == "" and rec.session["session_label"] == ""
    validate(given)
    validate(bare)


def test_a_1_5_0_file_without_identity_is_valid_and_reads_empty(tmp_path):
    path = tmp_path / "old.h5"
    RecordingWriter(path, session={"trainee": "Ana"}, device={}, calibration={},
                    software_version="old").close()
    with h5py.File(path, "r+") as f:  # what palpation wrote before schema 1.6.0
        f.attrs["schema_version"] = "1.5.0"
    validate(path)
    rec = open_recording(path)
    assert rec.schema_version == "1.5.0"
    assert (rec.session["subject"], rec.session["session_label"]) == ("", "")


@pytest.mark.parametrize("option, value", [("--subject", ""), ("--subject", "   "),
                                           ("--session", "x" * 65), ("--subject", "S03\nJane")])
def test_record_refuses_an_empty_or_oversized_label(tmp_path, option, value):
    out = tmp_path / "refused.h5"
    r = run_palpation("record", "--simulate", "--headless", "--duration", "1", "--out",
                      str(out), option, value)
    assert r.returncode == 1 and r.stderr.count("\n") == 1, r.stderr
    assert r.stderr.startswith(f"palpation: error: {option} ")
    assert "at most 64 characters on one line" in r.stderr
    assert not out.exists()
