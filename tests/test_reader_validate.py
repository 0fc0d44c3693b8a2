"""Reading recordings and validating them against the schema, good files and broken ones."""

from __future__ import annotations

import inspect
import json
import re
import shutil
import subprocess
from pathlib import Path

import h5py
import numpy as np
import pytest
from test_writer import assert_rows, block, new_writer, run_child

from schemas.events import TABLES, Event, Hold, LinkStats
from schemas.hdf5 import RecordingFileError
from schemas.reader import open_recording, summarize
from schemas.validate import event_kinds, load_schema, validate
from schemas.writer import RecordingWriter

SCHEMAS = Path(__file__).parents[1] / "schemas"
ROWS = 3000


@pytest.fixture(scope="module")
def good_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("good") / "good.h5"
    w = new_writer(path)
    for start in range(0, ROWS, 1000):
        w.append_samples(**block(start, 1000))
        w.append_events([Event(start / 1000, "marker", text=f"block {start}")])
        w.append_link_stats(LinkStats(start / 1000, samples=start + 1000))
        w.append_clock_pairs([(start / 1000, start * 1000)])
        w.flush()
    w.close()
    return path


@pytest.fixture
def copy_of(good_file, tmp_path):
    def make(name: str = "copy.h5") -> Path:
        target = tmp_path / name
        shutil.copy(good_file, target)
        return target

    return make


def test_good_file_validates_and_reads(good_file):
    validate(good_file)
    rec = open_recording(good_file)
    assert_rows(rec, ROWS)
    assert [e.text for e in rec.events] == ["block 0", "block 1000", "block 2000"]
    info = summarize(rec)
    assert set(info) >= {"samples", "duration_s", "effective_rate_hz", "gaps", "missing_frames",
                         "crc_errors", "reconnects", "writer_lost", "holds", "schema_version",
                         "finalised"}
    stored = {k: v for k, v in rec.summary.items() if k != "session_end"}
    assert {k: info[k] for k in stored} == pytest.approx(stored)


def test_schema_json_agrees_with_code_and_document():
    schema = load_schema()
    assert schema == json.loads((SCHEMAS / "recording-v1.json").read_text())
    datasets = {o["path"]: o for o in schema["objects"] if o["kind"] == "dataset"}
    for where, (dtype, _) in TABLES.items():
        fields = [(f["name"], np.dtype(f["dtype"])) for f in datasets[where]["fields"]]
        assert fields == [(name, dtype[name]) for name in dtype.names], where
    per_sample = [p.rsplit("/", 1)[1] for p, o in datasets.items() if o.get("per_sample")]
    keywords = inspect.signature(RecordingWriter.append_samples).parameters
    assert per_sample == [k for k in keywords if k != "self"]
    document = (SCHEMAS / "RECORDING.md").read_text()
    for kind in event_kinds():
        assert f"`{kind}`" in document, kind
    for obj in schema["objects"]:
        assert f"`{obj['path']}`" in document or obj["path"] == "/", obj["path"]


def h5_edit(path: Path, edit) -> None:
    with h5py.File(path, "r+") as f:
        edit(f)


def replace_dataset(f: h5py.File, where: str, dtype) -> None:
    rows = f[where][()]
    del f[where]
    f.create_dataset(where, data=rows.astype(dtype) if rows.dtype.names is None else rows[:0],
                     maxshape=(None,), chunks=True, dtype=dtype)


def narrow_holds(f: h5py.File) -> None:
    """/holds as files before schema 1.3.0 have it: without the ``complete`` column (nor
    1.4.0's ``feedback`` columns)."""
    rows = f["/holds"][()]
    names = [n for n in rows.dtype.names if n not in ("complete", "feedback", "feedback_live")]
    del f["/holds"]
    f.create_dataset("/holds", data=rows[names].astype([(n, rows.dtype[n]) for n in names]),
                     maxshape=(None,), chunks=True)


def make_foreign(path: Path) -> None:
    path.unlink()
    with h5py.File(path, "w") as f:
        f.create_dataset("x", data=[1, 2, 3])


def cut(path: Path, size: int) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: size if size > 0 else len(data) // 2])


BROKEN = [
    # (name, make it broken, expected message after "FILE: ", reader refuses too)
    ("truncated", lambda p: cut(p, 0), r"damaged or truncated HDF5 file \(truncated file: ",
     True),
    ("cut in the superblock", lambda p: cut(p, 40), r"damaged or truncated HDF5 file \(", True),
    ("text file", lambda p: p.write_text("time,force\n0,1\n"), r"not an HDF5 file$", True),
    ("empty file", lambda p: p.write_bytes(b""), r"not an HDF5 file$", True),
    ("foreign HDF5", make_foreign,
     r"not a palpation recording \(no schema_name attribute\)$", True),
    ("other schema", lambda p: h5_edit(p, lambda f: f.attrs.__setitem__("schema_name", "nwb")),
     r"not a palpation recording \(schema_name 'nwb'\)$", True),
    ("future version",
     lambda p: h5_edit(p, lambda f: f.attrs.__setitem__("schema_version", "2.0.0")),
     r"written by a newer palpation \(schema 2\.0\.0\); upgrade palpation$", True),
    ("wrong dtype",
     lambda p: h5_edit(p, lambda f: replace_dataset(f, "/acquisition/force/raw_counts", "f8")),
     r"/acquisition/force/raw_counts: dtype float64, expected int32$", True),
    ("wrong compound",
     lambda p: h5_edit(p, lambda f: replace_dataset(f, "/events", [("time", "f8")])),
     r"/events: dtype compound\(time:float64\), expected compound\(time:float64, ", True),
    ("1.3.0 holds without complete", lambda p: h5_edit(p, narrow_holds),
     r"/holds: dtype compound\(trigger_point:S48, .*, blind:uint8\), expected "
     r"compound\(trigger_point:S48, .*, blind:uint8, complete:uint8, feedback:S12, "
     r"feedback_live:uint8\)$", True),
    ("missing dataset", lambda p: h5_edit(p, lambda f: f.__delitem__("/acquisition/force/flags")),
     r"/acquisition/force/flags: dataset missing$", True),
    ("missing attribute", lambda p: h5_edit(p, lambda f: f["/device"].attrs.__delitem__("port")),
     r"/device: attribute 'port' missing$", True),
    ("wrong unit",
     lambda p: h5_edit(p, lambda f: f["/acquisition/force/data"].attrs.__setitem__("unit", "kN")),
     r"/acquisition/force/data: attribute 'unit' is 'kN', expected 'N'$", True),
    ("attribute type",
     lambda p: h5_edit(p, lambda f: f["/session"].attrs.__setitem__("contact_area_cm2", "big")),
     r"/session: attribute 'contact_area_cm2' has type str, expected float64$", True),
    ("session_start",
     lambda p: h5_edit(p, lambda f: f.attrs.__setitem__("session_start", "2026-11-23 15:40")),
     r"/: attribute 'session_start' is '2026-11-23 15:40', expected an ISO-8601 time", True),
    ("lengths differ",
     lambda p: h5_edit(p, lambda f: f["/acquisition/force/host_time"].resize((ROWS - 1,))),
     rf"/acquisition/force/host_time: length {ROWS - 1}, expected {ROWS} ", False),
    ("not finalised", lambda p: h5_edit(p, lambda f: f.attrs.__setitem__("finalised", np.int8(0))),
     r"recording not finalised \(interrupted\?\); run `palpation recover FILE`$", False),
]


@pytest.mark.parametrize(
    ("name", "breakage", "pattern", "reader_refuses"), BROKEN, ids=[b[0] for b in BROKEN]
)
def test_broken_files_get_one_line_naming_the_path(copy_of, name, breakage, pattern,
                                                   reader_refuses):
    path = copy_of()
    breakage(path)
    with pytest.raises(RecordingFileError) as err:
        validate(path)
    message = str(err.value)
    assert "\n" not in message and "Traceback" not in message
    expected = pattern.replace("FILE", re.escape(str(path)))
    assert re.match(re.escape(f"{path}: ") + expected, message), message
    if reader_refuses:
        with pytest.raises(RecordingFileError) as err:
            open_recording(path)
        assert str(err.value).startswith(f"{path}: ")


def test_a_file_before_1_3_validates_and_reads_its_holds_as_complete(tmp_path):
    path = tmp_path / "v1.2.h5"
    w = new_writer(path)
    w.append_samples(**block(0, 1000))
    w.append_holds([Hold(f"TP{i}", 1, i, i + 0.5, 0.5, 30.0, 29.0, 0.4, 25.0, 35.0, False)
                    for i in range(2)])
    w.close()

    def as_1_2(f):
        narrow_holds(f)
        f.attrs["schema_version"] = "1.2.0"

    h5_edit(path, as_1_2)
    validate(path)
    with h5py.File(path) as f:
        assert "complete" not in f["/holds"].dtype.names
    rec = open_recording(path)
    assert rec.schema_version == "1.2.0"
    assert rec.holds["complete"].tolist() == [1, 1]
    assert rec.holds["trigger_point"].tolist() == [b"TP0", b"TP1"]
    assert summarize(rec)["holds"] == rec.summary["holds"] == 2


def test_missing_file(tmp_path):
    with pytest.raises(RecordingFileError, match=r"nope\.h5: no such file$"):
        open_recording(tmp_path / "nope.h5")


def test_lengths_that_differ_are_cut_to_the_shortest(copy_of):
    path = copy_of()
    h5_edit(path, lambda f: f["/acquisition/force/host_time"].resize((ROWS - 10,)))
    rec = open_recording(path)
    assert_rows(rec, ROWS - 10)


def test_unwritten_tail_is_not_returned(copy_of):
    """What a failed flush can leave: extents past the data, the rest reads as fill values."""
    path = copy_of()

    def leave_unwritten_tail(f):
        f.attrs["finalised"] = np.int8(0)
        for name in ("data", "timestamps", "sequence", "flags"):
            f[f"/acquisition/force/{name}"].resize((ROWS + 200,))
        for name in ("raw_counts", "device_tick_us", "host_time"):
            ds = f[f"/acquisition/force/{name}"]
            ds.resize((ROWS + 300,))
            ds[ROWS:ROWS + 100] = ds[ROWS - 100:ROWS]  # written here, missing elsewhere
        f["/events"].resize((len(f["/events"]) + 2,))
        f["/acquisition/link_stats"].resize((len(f["/acquisition/link_stats"]) + 1,))

    h5_edit(path, leave_unwritten_tail)
    rec = open_recording(path)
    assert not rec.finalised and rec.summary is None
    assert_rows(rec, ROWS)
    assert len(rec.events) == 3 and len(rec.link_stats) == 3
    assert summarize(rec)["samples"] == ROWS


EXIT_CHILD = """
n = 0
for _ in range(4):
    w.append_samples(**block(n, 500))
    n += 500
    w.append_events([Event(n / 1000, "marker")])
    w.flush()
print(n, flush=True)
if sys.argv[2] == "wait":
    sys.stdin.readline()
    w.append_samples(**block(n, 500))
    w.close()
    print("closed", flush=True)
os._exit(0)  # as if the power went: no close, no cleanup
"""


def test_interrupted_file_reads_and_validate_says_recover(tmp_path):
    path = tmp_path / "cut-short.h5"
    child = run_child(EXIT_CHILD, str(path), "exit")
    out, err = child.communicate(timeout=30)
    assert child.returncode == 0, err
    flushed = int(out.split()[0])
    rec = open_recording(path)
    assert not rec.finalised and rec.summary is None
    assert_rows(rec, flushed)
    assert len(rec.events) == 4
    info = summarize(rec)
    assert info["samples"] == flushed and info["finalised"] is False
    with pytest.raises(RecordingFileError) as err:
        validate(path)
    assert str(err.value) == (
        f"{path}: recording not finalised (interrupted?); run `palpation recover {path}`"
    )


def test_recording_can_be_read_while_it_is_written(tmp_path):
    path = tmp_path / "live.h5"
    child = run_child(EXIT_CHILD, str(path), "wait", stdin=subprocess.PIPE)
    try:
        flushed = int(child.stdout.readline())
        live = open_recording(path)
        assert not live.finalised
        assert_rows(live, flushed)
        child.stdin.write("go on\n")
        child.stdin.flush()
        assert child.stdout.readline().strip() == "closed"
    finally:
        child.communicate(timeout=30)
    validate(path)
    assert_rows(open_recording(path), flushed + 500)
