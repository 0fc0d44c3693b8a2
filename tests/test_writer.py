"""RecordingWriter on real files: round trip, block appends, killed writers, full disks."""

from __future__ import annotations

import math
import random
import shutil
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

import h5py
import numpy as np
import pytest

from schemas.events import Event, Hold, LinkStats
from schemas.hdf5 import RecordingFileError
from schemas.reader import open_recording, summarize
from schemas.recover import recover
from schemas.validate import validate
from schemas.writer import RecordingWriter

pytestmark = pytest.mark.hand_made_force  # the writer is given force columns by hand

ROOT = Path(__file__).parents[1]
TESTS = Path(__file__).parent


def block(start: int, n: int) -> dict[str, np.ndarray]:
    """Rows start..start+n of a 1 kHz recording whose every value follows from its sequence."""
    seq = np.arange(start, start + n, dtype=np.int64)
    counts = (1000 + 500 * np.sin(seq / 50.0)).astype(np.int32)
    return {
        "data": counts * 0.01,
        "timestamps": seq / 1000.0,
        "raw_counts": counts,
        "device_tick_us": seq * 1000 + 7,
        "sequence": seq,
        "host_time": seq / 1000.0 + 0.0035,
        "flags": (seq % 8).astype(np.uint8),
    }


def assert_rows(rec, n: int, expected: dict[str, np.ndarray] | None = None) -> None:
    """`rec` holds exactly rows 0..n of `block` (or `expected`); NaN equals NaN."""
    expected = expected or block(0, n)
    got = {
        "data": rec.force,
        "timestamps": rec.timestamps,
        "raw_counts": rec.raw_counts,
        "device_tick_us": rec.device_tick_us,
        "sequence": rec.sequence,
        "host_time": rec.host_time,
        "flags": rec.flags,
    }
    for name, values in expected.items():
        assert got[name].dtype == values.dtype, name
        np.testing.assert_array_equal(got[name], values, err_msg=name)


def new_writer(path: Path, **kw) -> RecordingWriter:
    return RecordingWriter(
        path,
        session=kw.pop("session", {"trainee": "Zoë"}),
        device=kw.pop("device", {"link": "palpation-v1"}),
        calibration=kw.pop("calibration", {"source": "factory", "coefficients": [0.0, 0.01]}),
        software_version="0.1.0-test",
        **kw,
    )


def run_child(body: str, *args: str, **kw) -> subprocess.Popen:
    """A Python child that can `from test_writer import block` and use the real writer."""
    prelude = (
        "import os, sys, time\n"
        f"sys.path[:0] = [{str(ROOT)!r}, {str(TESTS)!r}]\n"
        "from schemas.events import Event, LinkStats\n"
        "from schemas.writer import RecordingWriter\n"
        "from schemas.validate import RecordingFileError\n"
        "from test_writer import block\n"
        "path = sys.argv[1]\n"
        "w = RecordingWriter(path, session={}, device={}, calibration={},"
        " software_version='child')\n"
    )
    return subprocess.Popen(
        [sys.executable, "-c", prelude + body, *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
        **kw,
    )


# ---- round trip ------------------------------------------------------------------------


def write_every_kind_of_value(path: Path, start: datetime) -> tuple[dict, list[Event], list[Hold]]:
    """A finalised recording with every metadata field, table and column: its samples, events
    and holds."""
    w = new_writer(
        path,
        session={"trainee": "Zoë", "instructor": "Ana", "contact_area_cm2": 1.0, "notes": "ü"},
        device={"link": "palpation-v1", "port": "/dev/ttyACM0", "adc_bits": 12,
                "counts_per_newton": 100.0, "usb_identity": "2341:0043 SN123"},
        calibration={"source": "file", "calibration_id": "cal-7", "model": "polynomial",
                     "coefficients": [0.5, 0.01, 1e-6], "unit": "N", "json": '{"id": "cal-7"}'},
        session_start=start,
    )
    rows = block(0, 3000)
    rows["data"][10] = math.nan  # force is allowed to be unknown
    w.append_samples(**rows)
    long_text = "a" + "痛" * 50  # 151 bytes of UTF-8; 120 falls inside the 40th "痛"
    events = [
        Event(0.0, "record_start"),
        Event(0.5, "trigger_point", text="upper trapezius (left) ✓", sample_index=500),
        Event(1.0, "pain", value=6.5, sample_index=1000),
        Event(1.5, "gap", value=3, text="3 frames"),
        Event(2.0, "note", text=long_text),
    ]
    w.append_events(events)
    w.append_clock_pairs([(1.0, 1_000_007), (2.0, 2_000_007)])
    w.append_link_stats(LinkStats(1.0, samples=1000, crc_errors=1))
    w.append_link_stats(LinkStats(2.0, samples=3000, crc_errors=2, garbage_bytes=9,
                                  seq_gaps=1, missing_frames=3, reconnects=1, writer_lost=4))
    hold = Hold("TP1 ✓", 2, 0.5, 2.5, 2.0, 12.5, 10.25, 1.5, 9.0, 11.0, True)
    cut_off = Hold("TP1 ✓", 3, 2.6, 2.999, 0.399, 11.0, 8.0, 0.1, 9.0, 11.0, False,
                   complete=False)
    w.append_holds([hold, cut_off])
    w.close()
    return rows, events, [hold, cut_off]


def test_round_trip_keeps_every_value(tmp_path):
    path = tmp_path / "session.h5"
    start = datetime.fromisoformat("2026-11-23T15:40:00.123+00:00")
    rows, events, (hold, cut_off) = write_every_kind_of_value(path, start)

    validate(path)
    rec = open_recording(path)
    assert_rows(rec, 3000, rows)

    assert rec.finalised and not rec.recovered
    assert rec.schema_version == "1.6.0"
    assert rec.session_start == start
    assert rec.software_version == "0.1.0-test"
    assert rec.session == {"trainee": "Zoë", "instructor": "Ana", "site": "", "protocol": "",
                           "protocol_toml": "", "notes": "ü", "contact_area_cm2": 1.0,
                           "subject": "", "session_label": ""}  # not given: read as ""
    assert rec.device["usb_identity"] == "2341:0043 SN123" and rec.device["adc_bits"] == 12
    assert rec.device["model"] == "" and math.isnan(rec.device["nominal_rate_hz"])
    np.testing.assert_array_equal(rec.calibration["coefficients"], [0.5, 0.01, 1e-6])
    assert rec.calibration["json"] == '{"id": "cal-7"}'

    assert [e.kind for e in rec.events] == [e.kind for e in events]
    assert repr(rec.events[1]) == repr(events[1])
    assert rec.events[2].value == 6.5 and rec.events[2].sample_index == 1000
    assert rec.events[4].text == "a" + "痛" * 39
    assert rec.clock_pairs.tolist() == [(1.0, 1_000_007), (2.0, 2_000_007)]
    assert rec.link_stats[-1]["writer_lost"] == 4
    assert Hold.from_row(rec.holds[0]) == hold and Hold.from_row(rec.holds[1]) == cut_off
    assert rec.holds["complete"].tolist() == [1, 0]

    with h5py.File(path) as f:
        assert f["/acquisition/force/data"].attrs["resolution"] == 0.01
        assert f["/acquisition/force"].attrs["neurodata_type"] == "TimeSeries"
        assert f["/acquisition/force/timestamps"].chunks == (8192,)
        assert f["/acquisition/force/flags"].chunks == (65536,)
    assert rec.summary["samples"] == 3000 and rec.summary["gaps"] == 1
    info = summarize(rec)
    assert info == {**info, "samples": 3000, "gaps": 1, "missing_frames": 3, "crc_errors": 2,
                    "reconnects": 1, "writer_lost": 4, "holds": 1, "finalised": True,
                    "schema_version": "1.6.0", "garbage_bytes": 9}
    assert rec.summary["holds"] == 1  # the cut-off hold has a row but is not counted
    assert info["duration_s"] == pytest.approx(2.999)
    assert info["effective_rate_hz"] == pytest.approx(1000.0)
    assert rec.duration == pytest.approx(2.999) and rec.effective_rate == pytest.approx(1000)


def test_many_small_blocks_and_summary_override(tmp_path):
    path = tmp_path / "blocks.h5"
    w = new_writer(path)
    rng = random.Random(7)
    n = 0
    for i in range(300):
        size = rng.randint(1, 60)
        w.append_samples(**block(n, size))
        n += size
        if i % 10 == 0:
            w.flush()
    w.append_samples(**block(n, 0))  # an empty block is a no-op
    w.close({"writer_lost": 5, "session_end": "2026-11-23T16:00:00.000+00:00"})
    w.close()  # closing twice does nothing
    validate(path)
    rec = open_recording(path)
    assert_rows(rec, n)
    assert rec.summary["samples"] == n and rec.summary["writer_lost"] == 5
    assert rec.summary["session_end"] == "2026-11-23T16:00:00.000+00:00"


def test_hundred_kilohertz_is_trivial_and_every_row_reads_back(tmp_path):
    path = tmp_path / "fast.h5"
    w = new_writer(path)
    begin = time.perf_counter()
    for i in range(100):  # 10 s of 100 kHz in 10 k-row blocks, flushed every 0.5 s
        w.append_samples(**block(i * 10_000, 10_000))
        if i % 5 == 4:
            w.flush()
    w.close()
    assert time.perf_counter() - begin < 5.0
    validate(path)
    rec = open_recording(path)
    assert_rows(rec, 1_000_000)  # all million rows, in order, every column exact
    assert rec.summary["samples"] == 1_000_000


# ---- refusals ----------------------------------------------------------------------------


def test_refuses_to_overwrite(tmp_path):
    path = tmp_path / "taken.h5"
    path.write_bytes(b"precious")
    with pytest.raises(RecordingFileError) as err:
        new_writer(path)
    assert str(err.value) == f"{path} exists; recordings are never overwritten"
    assert path.read_bytes() == b"precious"


@pytest.mark.parametrize("where", ["missing/dir/x.h5", "afile/x.h5"])
def test_unwritable_place_is_one_line(tmp_path, where):
    (tmp_path / "afile").write_text("not a directory")
    path = tmp_path / where
    with pytest.raises(RecordingFileError) as err:
        new_writer(path)
    message = str(err.value)
    assert message.startswith(f"cannot create {path}:") and "\n" not in message


def test_bad_input_is_refused_before_touching_the_file(tmp_path):
    with pytest.raises(ValueError, match="unknown field"):
        new_writer(tmp_path / "a.h5", session={"patient": "x"})
    with pytest.raises(ValueError, match="over 16384 bytes"):
        new_writer(tmp_path / "a.h5", calibration={"json": "x" * 20_000})
    with pytest.raises(ValueError, match="unit must be 'N'"):
        new_writer(tmp_path / "a.h5", calibration={"unit": "lbf"})
    assert not (tmp_path / "a.h5").exists()

    path = tmp_path / "b.h5"
    w = new_writer(path)
    rows = block(0, 100)
    with pytest.raises(ValueError, match="unknown event kind"):
        w.append_events([Event(0.0, "markr")])
    with pytest.raises(ValueError, match="differ in length"):
        w.append_samples(**{**rows, "flags": rows["flags"][:5]})
    with pytest.raises(ValueError, match="reserved for unwritten rows"):
        w.append_samples(**{**rows, "timestamps": np.full(100, np.nan)})
    with pytest.raises(ValueError, match="reserved for unwritten rows"):
        w.append_samples(**{**rows, "flags": np.full(100, 255, np.uint8)})
    with pytest.raises(ValueError, match="finite"):
        w.append_clock_pairs([(math.nan, 5)])
    with pytest.raises(TypeError, match="raw_counts: expected integers"):
        w.append_samples(**{**rows, "raw_counts": rows["data"]})
    with pytest.raises(ValueError, match="raw_counts: values outside the range of int32"):
        w.append_samples(**{**rows, "raw_counts": rows["sequence"] + 2**31})
    w.append_samples(**{**rows, "flags": rows["flags"].astype(np.int64)})  # any integers that fit
    w.close()
    assert len(open_recording(path).sequence) == 100
    with pytest.raises(RecordingFileError, match="already closed"):
        w.append_samples(**rows)


# ---- crashes -------------------------------------------------------------------------------

KILL_CHILD = """
n = 0
w.append_events([Event(0.0, "record_start")])
w.flush()
print(0, flush=True)
while True:
    w.append_samples(**block(n, 100))
    n += 100
    if n % 500 == 0:
        w.append_events([Event(n / 1000, "marker", text=f"at {n}", sample_index=n - 1)])
        w.append_clock_pairs([(n / 1000, n * 1000)])
        w.append_link_stats(LinkStats(n / 1000, samples=n))
        w.flush()
        print(n, flush=True)
    time.sleep(0.001)
"""


@pytest.fixture(scope="module")
def killed_files(tmp_path_factory) -> list[tuple[Path, int]]:
    """Five writers SIGKILLed at different moments; (file, rows flushed before the kill)."""
    folder = tmp_path_factory.mktemp("killed")
    paths = [folder / f"killed{i}.h5" for i in range(5)]
    children = [run_child(KILL_CHILD, str(p)) for p in paths]
    for child in children:
        assert child.stdout.readline().strip() == "0", child.stderr.read()
    for child, delay in zip(children, [0.02, 0.15, 0.3, 0.5, 0.8], strict=True):
        time.sleep(delay * random.uniform(0.5, 1.0))
        child.kill()
    results = []
    for path, child in zip(paths, children, strict=True):
        out, _ = child.communicate(timeout=10)
        assert child.returncode == -9
        results.append((path, int(out.split()[-1]) if out.split() else 0))
    return results


def test_killed_writer_keeps_what_it_flushed(killed_files):
    assert len({flushed for _, flushed in killed_files}) > 1  # different kill moments
    for path, flushed in killed_files:
        rec = open_recording(path)
        n = len(rec.sequence)
        assert n >= flushed
        assert_rows(rec, n)
        assert not rec.finalised and rec.summary is None
        markers = [e for e in rec.events if e.kind == "marker"]
        assert rec.events[0].kind == "record_start"
        assert len(markers) >= flushed // 500
        assert all(e.text == f"at {e.sample_index + 1}" for e in markers)
        assert len(rec.clock_pairs) >= flushed // 500 and len(rec.link_stats) >= flushed // 500
        with pytest.raises(RecordingFileError, match="not finalised.*palpation recover"):
            validate(path)


def test_recover_a_killed_file(killed_files, tmp_path):
    source, flushed = max(killed_files, key=lambda item: item[1])
    path = tmp_path / "session.h5"
    shutil.copy(source, path)
    before = open_recording(path)

    assert recover(path) == path
    validate(path)
    rec = open_recording(path)
    assert rec.finalised and rec.recovered
    assert_rows(rec, len(before.sequence))
    kept = len(before.events)
    assert [repr(e) for e in rec.events[:kept]] == [repr(e) for e in before.events]
    assert [e.text for e in rec.events[kept:-1]] == list(before.salvaged)
    assert rec.events[-1].kind == "note" and rec.events[-1].text == "recovered by palpation recover"
    assert rec.summary["samples"] == len(before.sequence) >= flushed
    assert rec.session_start == before.session_start
    np.testing.assert_array_equal(rec.link_stats, before.link_stats)

    original = tmp_path / "session.orig.h5"
    assert original.read_bytes() == source.read_bytes()  # the original is never touched
    with pytest.raises(RecordingFileError, match="nothing to recover"):
        recover(path)
    again = tmp_path / "again.h5"
    shutil.copy(source, again)
    (tmp_path / "again.orig.h5").write_bytes(b"an older backup")
    with pytest.raises(RecordingFileError, match=r"again\.orig\.h5 exists"):
        recover(again)
    assert again.read_bytes() == source.read_bytes()

    elsewhere = tmp_path / "copy.h5"
    assert recover(original, elsewhere) == elsewhere
    validate(elsewhere)
    assert original.read_bytes() == source.read_bytes()
    assert not list(tmp_path.glob(".*recovering"))


def tear_last_chunk(path: Path, where: str) -> int:
    """Write new bytes past the extent in the last chunk of ``where`` without updating its
    checksum, as a writer killed in the middle of rewriting that chunk leaves it; the extent."""
    with h5py.File(path, "r", swmr=True) as f:
        dset = f[where]
        n, rows, size = dset.shape[0], dset.chunks[0], dset.dtype.itemsize
        info = dset.id.get_chunk_info_by_coord(((n - 1) // rows * rows,))
    past_extent = info.byte_offset + (n % rows) * size
    assert n % rows and past_extent < info.byte_offset + info.size - 4
    with open(path, "r+b") as fh:
        fh.seek(past_extent)
        fh.write(b"\x5a" * size)
    return n


def test_a_chunk_the_kill_left_half_written_keeps_its_flushed_rows(killed_files, tmp_path):
    data = "/acquisition/force/data:"
    # The kill itself may already have torn a chunk of another dataset (a CI run saw it in
    # /acquisition/force/timestamps), so the test tears force/data in a file where it is whole.
    intact = [
        item
        for item in killed_files
        if not any(s.startswith(data) for s in open_recording(item[0]).salvaged)
    ]
    source, _ = max(intact, key=lambda item: item[1])
    path = tmp_path / "torn.h5"
    shutil.copy(source, path)
    before = open_recording(path)
    n = tear_last_chunk(path, "/acquisition/force/data")

    rec = open_recording(path)
    assert len(rec.sequence) == len(before.sequence) and n >= len(before.sequence)
    np.testing.assert_array_equal(rec.force, before.force)
    torn = [s for s in rec.salvaged if s not in before.salvaged]
    assert len(torn) == 1 and torn[0].startswith(f"{data} rows ")
    recovered = tmp_path / "recovered.h5"
    recover(path, recovered)
    validate(recovered)
    again = open_recording(recovered)
    np.testing.assert_array_equal(again.force, before.force)
    notes = [e.text for e in again.events if e.kind == "note"]
    assert all(s in notes for s in rec.salvaged)


def test_a_torn_chunk_in_a_finalised_file_is_damage(tmp_path):
    path = tmp_path / "done.h5"
    w = new_writer(path)
    w.append_samples(**block(0, 1000))
    w.close()
    tear_last_chunk(path, "/acquisition/force/data")
    damaged = r"/acquisition/force/data: damaged \(its checksum does not verify"
    with pytest.raises(RecordingFileError, match=damaged):
        open_recording(path)


RLIMIT_CHILD = """
import resource, signal
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
limit = int(sys.argv[2])
resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
n = 0
try:
    while True:
        w.append_samples(**block(n, 1000))
        n += 1000
        w.flush()
        print(n, flush=True)
except RecordingFileError as exc:
    print("ERR", exc, flush=True)
w.close()
print("CLOSED", flush=True)
"""


def test_file_size_limit_stops_cleanly_and_keeps_the_file(tmp_path):
    path = tmp_path / "full.h5"
    child = run_child(RLIMIT_CHILD, str(path), str(4_000_000))
    out, err = child.communicate(timeout=60)
    lines = out.splitlines()
    assert child.returncode == 0 and err == "", err
    assert lines[-2] == f"ERR cannot write {path}: disk full"
    assert lines[-1] == "CLOSED"
    flushed = int(lines[-3])
    assert flushed > 10_000
    validate(path)  # stopped before HDF5 ran out of room: still closed and finalised normally
    rec = open_recording(path)
    assert_rows(rec, flushed)
    assert rec.events[-1].kind == "note" and "disk full" in rec.events[-1].text
    assert path.stat().st_size <= 4_000_000


EBADF_CHILD = """
n = 0
for _ in range(5):
    w.append_samples(**block(n, 1000))
    n += 1000
w.flush()
print(n, flush=True)
# From here on every write HDF5 attempts fails, as on a dying disk.
os.dup2(os.open(path, os.O_RDONLY), w._f.id.get_vfd_handle())
try:
    for _ in range(50):
        w.append_samples(**block(n, 1000))
        n += 1000
        w.flush()
except RecordingFileError as exc:
    print("ERR", exc, flush=True)
try:
    w.append_samples(**block(n, 10))
except RecordingFileError as exc:
    print("AGAIN", exc, flush=True)
w.close()
print("CLOSED", flush=True)
"""


def test_failed_write_leaves_flushed_rows_and_no_crash(tmp_path):
    path = tmp_path / "broken.h5"
    child = run_child(EBADF_CHILD, str(path))
    out, err = child.communicate(timeout=60)
    lines = out.splitlines()
    assert child.returncode == 0 and err == "", err  # no segfault, no h5py noise
    message = f"cannot write {path}: Bad file descriptor"
    assert lines[1:] == [f"ERR {message}", f"AGAIN {message}", "CLOSED"]
    rec = open_recording(path)
    assert not rec.finalised
    assert len(rec.sequence) >= 5000
    assert_rows(rec, len(rec.sequence))
    recover(path)
    validate(path)
