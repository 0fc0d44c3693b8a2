"""The protocol's end, over the real command, the real simulator on a pty and the real file:
``record --until-complete`` ends the recording there, and without it the holds pressed after
it are counted nowhere (not in ``/holds``, ``analyze``, ``info`` nor the report); offline,
moving to a point after the end counts holds again, as live."""

from __future__ import annotations

import csv
import json
import time

import numpy as np

from analysis.metrics import recording_metrics
from firmware_bridge.sim.simulator import protocol_dose
from firmware_bridge.sim.therapist import Therapist
from firmware_bridge.sim.truth import therapist_times
from schemas.events import Event
from schemas.reader import open_recording
from schemas.session_protocol import protocol_of
from schemas.writer import RecordingWriter
from tests.conftest import run_palpation
from tests.test_metrics import PROTOCOL, stream
from tests.test_report import _rows, _sections

ONE_HOLD = """
name = "one hold"
description = "one trigger point, one 1-5 s hold"
kind = "static"
unit = "N"

[dose]
target_low = 30.0
target_high = 40.0
min_hold_s = 1.0
max_hold_s = 5.0
ramp_min = 40.0
ramp_max = 80.0

[[point]]
name = "upper trapezius"
muscle = "trapezius (upper fibres)"
side = "left"
note = "mid-belly of the upper fibres"
"""


def test_record_until_complete_stops_after_the_last_hold_headless(tmp_path):
    (tmp_path / "one.toml").write_text(ONE_HOLD)
    out, truth = tmp_path / "one.h5", tmp_path / "truth.json"
    began = time.monotonic()
    r = run_palpation("record", "--simulate", "--headless", "--until-complete", "--seed", "2",
                      "--protocol", str(tmp_path / "one.toml"), "--duration", "60",
                      "--out", str(out), "--truth", str(truth))
    took = time.monotonic() - began
    assert r.returncode == 0, r.stderr
    assert took < 30  # not the 60 s cap: the simulated hold is over about 8 s in
    rec = open_recording(out)
    served = json.loads(truth.read_text())["holds"]
    assert len(served) == 1 and len(rec.holds) == 1
    hold = rec.holds[0]
    assert abs(hold["duration"] - (served[0]["end_s"] - served[0]["start_s"])) < 0.05
    # it stopped at the protocol's end: within a second or so of the hold's end
    assert rec.timestamps[-1] - hold["end"] < 2.0
    assert [(e.kind, e.text) for e in rec.events if e.kind == "protocol_complete"] == [
        ("protocol_complete", "one hold")]


def _served_holds(rec, truth: dict) -> list[tuple[float, float]]:
    """(start, end) in session seconds of every hold the simulated therapist made during the
    recording: its first cycle is in the truth file, the later ones are drawn again from the
    same seed, profile and dose (checked against the file's first cycle)."""
    proto = protocol_of(rec)
    options = protocol_dose(proto)
    therapist = Therapist(truth["profile"]["name"], seed=truth["seed"],
                          start_delay_s=truth["start_delay_s"], dose=options["dose"],
                          trigger_points=options["trigger_points"])
    clock = therapist_times(truth, rec.sequence)
    holds = therapist.holds_between(float(clock[0]), float(clock[-1]))
    assert [h.start_s for h in holds[:len(truth["holds"])]] == [
        h["start_s"] for h in truth["holds"]]
    return [(float(np.interp(h.start_s, clock, rec.timestamps)),
             float(np.interp(h.end_s, clock, rec.timestamps))) for h in holds]


def test_holds_after_the_protocols_end_are_counted_nowhere(tmp_path):
    """One point, one repetition of 0.5-2 s: the simulated therapist goes on to a second hold
    about 7 s after the first, past the protocol's end (the recording goes on, no
    --until-complete). /holds, analyze's table, info's summary and the report all hold the
    first hold only, the one the simulator served first."""
    (tmp_path / "short.toml").write_text(ONE_HOLD.replace("max_hold_s = 5.0", "max_hold_s = 2.0")
                                         .replace("min_hold_s = 1.0", "min_hold_s = 0.5"))
    out, truth_path = tmp_path / "short.h5", tmp_path / "truth.json"
    r = run_palpation("record", "--simulate", "--headless", "--seed", "2",
                      "--protocol", str(tmp_path / "short.toml"), "--duration", "18",
                      "--out", str(out), "--truth", str(truth_path))
    assert r.returncode == 0, r.stderr
    rec = open_recording(out)
    served = _served_holds(rec, json.loads(truth_path.read_text()))
    ended = [e.time for e in rec.events if e.kind == "protocol_complete"]
    assert len(ended) == 1 and abs(ended[0] - served[0][1]) < 0.05
    after = [h for h in served if h[0] > ended[0]]
    assert after and after[0][1] < rec.timestamps[-1] - 0.5  # a whole hold past the end

    def is_first(start: float) -> bool:
        return abs(start - served[0][0]) < 0.05

    assert len(rec.holds) == 1 and is_first(float(rec.holds[0]["start"]))
    assert rec.holds[0]["complete"] == 1
    r = run_palpation("analyze", str(out), "--out", str(tmp_path / "holds.csv"))
    assert r.returncode == 0, r.stderr
    with open(tmp_path / "holds.csv", newline="") as fh:
        table = list(csv.DictReader(fh))
    assert len(table) == 1 and is_first(float(table[0]["start_s"]))
    r = run_palpation("info", "--json", str(out))
    assert r.returncode == 0, r.stderr
    info = json.loads(r.stdout)
    assert info["holds"] == info["session"]["holds"] == 1
    assert info["session"]["incomplete"] == 0
    assert info["session"]["mean_time_in_band_s"] == float(rec.holds[0]["time_in_band"])
    r = run_palpation("report", str(out), "--out", str(tmp_path / "report.html"))
    assert r.returncode == 0, r.stderr
    [body] = _sections((tmp_path / "report.html").read_text()).values()
    rows = _rows(body)
    assert len(rows) == 1 and rows[0][0] == "1"  # repetition 1, of the first hold's length
    assert abs(float(rows[0][1]) - (served[0][1] - served[0][0])) <= 0.06


def test_moving_to_a_point_after_the_end_counts_holds_again(tmp_path):
    """Offline, the same rule as live: of an expert's 12 simulated holds, those that start
    between a protocol_complete event (after the 4th) and the next trigger_point event
    (before the 8th) are left out, and those after it are counted again."""
    s = stream("expert", 0)
    ended, reopened = s.truth[3].end_s, s.truth[7].start_s - 1.0
    n = s.t.size
    path = tmp_path / "reopened.h5"
    w = RecordingWriter(path, session={"protocol_toml": PROTOCOL}, device={}, calibration={},
                        software_version="test")
    w.append_samples(data=s.force_n, timestamps=s.t, raw_counts=np.zeros(n, np.int64),
                     device_tick_us=(s.t * 1e6).astype(np.int64),
                     sequence=np.arange(n) % 65536, host_time=s.t, flags=np.zeros(n, np.uint8))
    w.append_events([Event(ended, "protocol_complete", text="test"),
                     Event(reopened, "trigger_point", 1.0, "upper trapezius R")])
    w.close()
    rows = recording_metrics(open_recording(path))
    kept = [*s.truth[:4], *s.truth[7:]]
    assert len(rows) == len(kept) == 9
    for m, g in zip(rows, kept, strict=True):
        assert abs(m.start_s - g.start_s) < 0.05
    assert [m.trigger_point for m in rows] == ["upper trapezius L"] * 4 + [
        "upper trapezius R"] * 5
