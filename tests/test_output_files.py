"""Files we write for people to share (calibration records, the HTML report) get the
permissions any new file gets under the user's umask, not the 0600 of a private temporary
file: a report written into a class folder is readable by the class."""

from __future__ import annotations

import os
import stat
import time

import numpy as np
import pytest

from analysis.report import write_report
from schemas.atomic import write_text_atomic
from schemas.calibration import Calibration, CalPoint, fit, save_calibration
from tests.conftest import fast_session


@pytest.fixture(scope="module")
def recording(tmp_path_factory):
    out = tmp_path_factory.mktemp("rec") / "session.h5"
    _, end = fast_session(out)
    time.sleep(1.5)
    end()
    return out


@pytest.fixture(params=[0o022, 0o002], ids=["umask022", "umask002"])
def umask(request):
    old = os.umask(request.param)
    yield request.param
    os.umask(old)


def mode(path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_calibration_and_report_files_follow_the_umask(tmp_path, umask, recording):
    expected = 0o666 & ~umask  # 0644 or 0664
    points = [CalPoint(load, 1000.0 + 100.0 * load, "load", 10, 1.0)
              for load in np.arange(0.0, 60.0, 10.0)]
    saved = save_calibration(Calibration.from_fit(fit(points, "linear")), tmp_path / "cal")
    assert mode(saved) == expected
    report = tmp_path / "report.html"
    write_report([recording], report)
    assert report.stat().st_size > 0 and mode(report) == expected
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_an_atomic_write_replaces_the_whole_file_and_leaves_no_temporary(tmp_path, umask):
    target = tmp_path / "notes.txt"
    target.write_text("old")
    os.chmod(target, 0o600)
    write_text_atomic(target, "new text")
    assert target.read_text() == "new text" and mode(target) == 0o666 & ~umask
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt"]
    with pytest.raises(OSError):
        write_text_atomic(tmp_path / "missing" / "x.txt", "text")
