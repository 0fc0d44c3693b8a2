"""schemas.recalibrate on real recording files written by the real writer (and one by the CLI)."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest

from schemas.calibration import Calibration, CalibrationError, CalPoint, fit
from schemas.events import Event
from schemas.hdf5 import RecordingFileError
from schemas.reader import open_recording
from schemas.recalibrate import recalibrate
from schemas.validate import per_sample_paths, validate
from schemas.writer import RecordingWriter
from tests.conftest import run_palpation

ROOT = Path(__file__).parents[1]
TESTS = Path(__file__).parent
TRUE_CPN = 4173.2  # the sensor's real counts per newton
FACTORY = 1 / 4000.0  # what the factory calibration claims (4 % off, as in the simulator)
ZERO1, ZERO2 = 84_213, 84_513  # tare at the start; the zero drifted, re-tare at 2.5 s
RETARE_S = 2.5
N = 5000  # 5 s at 1 kHz


def synthetic(n: int = N, tares: bool = True) -> dict[str, np.ndarray]:
    """Per-sample columns of a 1 kHz session with one 0..40 N press and, with `tares`, a
    re-tare at 2.5 s after the zero drifted by 300 counts; force as the recorder computed it."""
    seq = np.arange(n, dtype=np.int64)
    t = seq / 1000.0
    host = t + 0.004  # the read that delivered the sample
    true_n = 40.0 * np.clip(np.sin(np.pi * t / 5.0), 0.0, None)
    zero = np.where(host >= RETARE_S, ZERO2, ZERO1) if tares else np.full(n, ZERO1)
    counts = np.rint(zero + TRUE_CPN * true_n).astype(np.int32)
    return {
        "true_n": true_n,
        "data": (counts - zero) * FACTORY,
        "timestamps": t,
        "raw_counts": counts,
        "device_tick_us": seq * 1000,
        "sequence": seq,
        "host_time": host,
        "flags": np.zeros(n, np.uint8),
    }


def open_writer(path: Path, *, tares: bool = True, device_id: str = "SIM-0001",
                tare_events: list[Event] | None = None) -> RecordingWriter:
    """A writer that has written the synthetic session (in 1000-row blocks), not closed."""
    writer = RecordingWriter(
        path,
        session={"trainee": "Zoë"},
        device={"device_id": device_id, "link": "palpation-v1", "counts_per_newton": 4000.0},
        calibration={"source": "factory", "model": "polynomial", "unit": "N",
                     "coefficients": [-ZERO1 * FACTORY, FACTORY]},
        software_version="0.1.0-test",
    )
    columns = synthetic(tares=tares)
    columns.pop("true_n")
    for a in range(0, N, 1000):
        writer.append_samples(**{k: v[a : a + 1000] for k, v in columns.items()})
    if tare_events is None:
        tare_events = [Event(0.0, "tare", value=ZERO1, text="counts at zero load")]
        if tares:
            tare_events.append(Event(RETARE_S, "tare", value=ZERO2, text="counts at zero load"))
    writer.append_events([*tare_events, Event(1.0, "marker", text="upper trapezius")])
    writer.flush()
    return writer


def make_recording(path: Path, **kw) -> Path:
    open_writer(path, **kw).close()
    return path


def make_cal(device_id: str = "SIM-0001", points: int = 11) -> Calibration:
    """The sensor's true scale, calibrated another day (its own zero: 83 000 counts)."""
    loads = np.linspace(0.0, 100.0, points)
    fitted = fit([CalPoint(f, 83_000 + TRUE_CPN * f, "load" if f else "tare") for f in loads])
    return Calibration.from_fit(fitted, device={"device_id": device_id},
                                software_version="0.1.0-test")


def columns_of(path: Path) -> dict[str, bytes]:
    """Raw bytes and dtype of every per-sample dataset."""
    with h5py.File(path, "r") as f:
        return {p: (f[p].dtype.str, f[p][()].tobytes()) for p in per_sample_paths()}


def events_bytes(path: Path) -> list[bytes]:
    with h5py.File(path, "r") as f:
        return [row.tobytes() for row in f["/events"][()]]


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_recalibration_rewrites_force_with_each_tare_and_leaves_raw_counts_alone(tmp_path):
    path = make_recording(tmp_path / "session.h5")
    before = columns_of(path)
    events_before = events_bytes(path)
    old = open_recording(path)
    expected_true = synthetic()["true_n"]
    assert np.abs(old.force - expected_true).max() > 1.0  # the factory scale is 4 % off
    cal = make_cal()

    summary = recalibrate(path, cal)

    after = columns_of(path)
    force_path = "/acquisition/force/data"
    for where in per_sample_paths():
        if where != force_path:
            assert after[where] == before[where], where  # bit for bit, dtype included
    rec = open_recording(path)
    # Counts were rounded to integers: within half a count of the truth, before and after the
    # re-tare (without the tare rule the second half would be 300 counts = 0.07 N off).
    assert np.abs(rec.force - expected_true).max() < 0.5 / TRUE_CPN + 1e-9
    assert rec.force.dtype == np.float64

    assert summary == {
        "path": str(path),
        "samples": N,
        "calibration_id": cal.id,
        "old_calibration_id": "",
        "old_source": "factory",
        "old_coefficients": [-ZERO1 * FACTORY, FACTORY],
        "new_coefficients": cal.tared_coefficients(ZERO1),
        "tare_events": 2,
        "max_abs_delta_n": pytest.approx(np.abs(rec.force - old.force).max()),
        "above_range": 0,
        "resolution_n": pytest.approx(1 / TRUE_CPN),
        "holds_not_updated": 0,
    }
    attrs = rec.calibration
    assert (attrs["source"], attrs["calibration_id"], attrs["model"], attrs["unit"]) == (
        "file", cal.id, "polynomial", "N")
    np.testing.assert_array_equal(attrs["coefficients"], cal.tared_coefficients(ZERO1))
    assert Calibration.from_json(attrs["json"]) == cal
    with h5py.File(path, "r") as f:
        assert f[force_path].attrs["resolution"] == pytest.approx(1 / TRUE_CPN)
    assert events_bytes(path)[:-1] == events_before  # earlier events untouched
    note = rec.events[-1]
    assert (note.kind, note.text, note.sample_index) == ("note", f"recalibrated with {cal.id}", -1)
    assert note.time >= rec.timestamps[-1]
    validate(path)

    # Again with the same calibration: nothing moves but a second note.
    again = recalibrate(path, cal)
    assert again["max_abs_delta_n"] == 0.0 and again["old_calibration_id"] == cal.id
    assert columns_of(path) == after
    assert [e.kind for e in open_recording(path).events[-2:]] == ["note", "note"]


def test_without_tare_events_the_calibration_is_used_as_is(tmp_path):
    path = make_recording(tmp_path / "s.h5", tares=False, tare_events=[])
    cal = make_cal()
    summary = recalibrate(path, cal)
    rec = open_recording(path)
    np.testing.assert_array_equal(rec.force, cal.force(rec.raw_counts))
    assert summary["tare_events"] == 0
    assert summary["new_coefficients"] == cal.coefficients


def test_block_size_does_not_change_the_result_and_sample_tied_tares_apply_from_their_sample(
    tmp_path,
):
    one = make_recording(tmp_path / "one.h5")
    many = tmp_path / "many.h5"
    shutil.copy(one, many)
    cal = make_cal()
    recalibrate(one, cal)
    recalibrate(many, cal, block_rows=7)
    assert columns_of(one) == columns_of(many)

    tied = make_recording(tmp_path / "tied.h5", tare_events=[
        Event(0.0, "tare", value=ZERO1),
        Event(9.0, "tare", value=ZERO1 + 1000, sample_index=3000),  # the index wins
        Event(9.0, "tare", value=ZERO1 + 2000, sample_index=3000),  # same sample: latest wins
    ])
    recalibrate(tied, cal, block_rows=1000)
    rec = open_recording(tied)
    zero = np.where(np.arange(N) >= 3000, ZERO1 + 2000, ZERO1)
    np.testing.assert_allclose(rec.force, cal.force(rec.raw_counts) - cal.force(zero),
                               rtol=0, atol=1e-9)


def test_unfinalised_recordings_are_refused_and_left_alone(tmp_path):
    path = tmp_path / "killed.h5"
    child = (
        "import os, signal, sys\n"
        f"sys.path[:0] = [{str(ROOT)!r}, {str(TESTS)!r}]\n"
        "from pathlib import Path\n"
        "from test_recalibrate import open_writer\n"
        "open_writer(Path(sys.argv[1]))\n"
        "os.kill(os.getpid(), signal.SIGKILL)\n"
    )
    subprocess.run([sys.executable, "-c", child, str(path)], cwd=ROOT, timeout=60)
    assert not open_recording(path).finalised
    before = digest(path)
    with pytest.raises(RecordingFileError) as info:
        recalibrate(path, make_cal())
    message = str(info.value)
    assert "\n" not in message
    assert message == (f"{path}: recording not finalised (interrupted?); run "
                       f"`palpation recover {path}`")
    assert digest(path) == before

    for bad, why in ((tmp_path / "absent.h5", "no such file"),):
        with pytest.raises(RecordingFileError, match=why):
            recalibrate(bad, make_cal())
    foreign = tmp_path / "foreign.h5"
    with h5py.File(foreign, "w") as f:
        f["x"] = [1, 2, 3]
    with pytest.raises(RecordingFileError, match="not a palpation recording"):
        recalibrate(foreign, make_cal())


def test_calibration_of_another_device_or_too_big_is_refused(tmp_path):
    path = make_recording(tmp_path / "s.h5")
    before = digest(path)
    with pytest.raises(CalibrationError, match="recorded with device 'SIM-0001' but "
                       "calibration .* is for 'SIM-0002'; refused"):
        recalibrate(path, make_cal("SIM-0002"))
    with pytest.raises(CalibrationError, match="over the 16384 a recording's"):
        recalibrate(path, make_cal(points=400))
    broken = make_cal()
    broken.coefficients = [0.0, -1.0]
    with pytest.raises(CalibrationError, match="calibration .*: residuals"):
        recalibrate(path, broken)
    assert digest(path) == before
    summary = recalibrate(path, make_cal("SIM-0002"), allow_other_device=True)
    assert summary["samples"] == N


def test_recording_made_by_the_cli_simulator(tmp_path):
    path = tmp_path / "sim.h5"
    done = run_palpation("record", "--simulate", "--headless", "--duration", "1",
                         "--out", str(path))
    assert done.returncode == 0, done.stderr
    old = open_recording(path)
    tares = [e for e in old.events if e.kind == "tare"]
    assert tares and old.device["device_id"] == "SIM-0001"
    cal = make_cal()
    summary = recalibrate(path, cal)
    rec = open_recording(path)
    assert np.array_equal(rec.raw_counts, old.raw_counts)
    # The simulator's true scale is 4173.2 counts/N: force is now (counts - zero) / 4173.2,
    # zero being the latest tare the recorder had when it read the sample.
    zero = np.full(len(rec.raw_counts), tares[0].value)
    for tare in tares:
        zero[rec.host_time >= tare.time] = tare.value
    np.testing.assert_allclose(rec.force, (rec.raw_counts - zero) / TRUE_CPN, rtol=0, atol=1e-9)
    assert summary["samples"] == len(rec.force) > 0
    assert json.loads(rec.calibration["json"])["id"] == cal.id
    validate(path)
