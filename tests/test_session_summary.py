"""The session summary and the hold cut off by the end of a recording, end to end: the real
simulator on a pty, the real recorder, real files reopened, checked against the simulated
therapist's ground truth and against ``palpation analyze``'s hold table.

The protocol (written to tmp_path) has short holds so that a recording of seconds holds
several: 0.5-4.5 s, band 20-40 N, three repetitions at each of two points. With seed 26 the
novice therapist's first hold lasts 3.99 s (dose met) and her second 5.18 s (too long), both
far from the 4.5 s limit, and her first plateau runs from 4.5 s to 6.6 s.
"""

from __future__ import annotations

import csv
import json
import re
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pytest

from analysis.batch import analyse_file
from analysis.definitions import hold_flags
from analysis.metrics import recording_metrics
from analysis.summary import session_summary, summary_lines
from firmware_bridge.sim.device import SimulatedSensor
from firmware_bridge.sim.server import PtyServer
from firmware_bridge.sim.therapist import Therapist
from recorder.session import RecordingSession, SessionOptions
from schemas.reader import open_recording
from schemas.session_protocol import resolve_protocol
from tests.conftest import run_palpation, wait_until

SEED = 26
PROTOCOL = """
name = "summary test"
kind = "static"
unit = "N"
contact_area_cm2 = 2.0

[dose]
target_low = 20.0
target_high = 40.0
min_hold_s = 0.5
max_hold_s = 4.5
repetitions = 3
rest_s = 1.0
ramp_min = 40.0
ramp_max = 80.0

[[point]]
muscle = "upper trapezius"
side = "left"

[[point]]
muscle = "levator scapulae"
side = "left"
"""
POINTS = ["upper trapezius L", "levator scapulae L"]


@pytest.fixture
def protocol_file(tmp_path) -> Path:
    path = tmp_path / "short.toml"
    path.write_text(PROTOCOL)
    return path


def therapist_time(rec, origin_tick_us: int) -> np.ndarray:
    """The simulated therapist's time of every sample (the device clock is exact)."""
    return (rec.device_tick_us - origin_tick_us) / 1e6


def truth_dose_met(th: Therapist, hold, dose) -> bool:
    """Whether a simulated hold met the dose, from the true force on a 1 ms grid."""
    t = np.arange(hold.start_s, hold.end_s, 1e-3)
    f = th.force(t)
    low, high = dose.band_n()
    in_band = float(np.count_nonzero((f >= low) & (f <= high))) * 1e-3
    return in_band >= dose.min_hold_s and hold.end_s - hold.start_s <= dose.max_hold_s


def session_block(stdout: str) -> list[str]:
    """The lines of the "session" block a command printed."""
    lines = stdout.splitlines()
    return lines[lines.index("session"):]


def record_until_mid_third_hold(protocol, out: Path) -> tuple[dict, Therapist]:
    """Record the novice therapist with the real session and stop it (as Esc or --duration
    would) a second into the third hold; returns the simulator's truth and its therapist."""
    sensor = SimulatedSensor(rate_hz=500.0, seed=SEED, dose=protocol.points[0].dose,
                             profile="novice", trigger_points=POINTS, contact_area_cm2=2.0)
    server = PtyServer(sensor)
    session = RecordingSession(SessionOptions(
        port=server.start(), out=out, protocol=protocol,
        metadata={"trainee": "Ana", "protocol": protocol.name,
                  "protocol_toml": protocol.to_toml()}))
    session.start()
    try:
        assert wait_until(lambda: len(session.holds) == 2 and session.live_hold is not None
                          and session.live_hold.confirmed and session.live_hold.elapsed_s > 1.0,
                          40)
        session.stop()
    finally:
        session.stop()
        server.close()
    return sensor.truth(server.t0), sensor.therapist


def check_summary_against_truth(s, th: Therapist, done, dose) -> None:
    """The summary against the truth: holds per point, planned repetitions, dose met."""
    assert (s.trainee, s.protocol, s.holds, s.incomplete) == ("Ana", "summary test", 2, 1)
    # while a file is still being recorded its last hold may be in progress, not cut off
    assert "1 incomplete (cut off by the end of the recording," in summary_lines(s)[3]
    assert "1 incomplete (in progress, or cut off by a disconnect" in summary_lines(s, True)[3]
    expected_met = [truth_dose_met(th, h, dose) for h in done]
    assert expected_met == [True, False]  # the seed's holds: one met, one too long
    assert s.dose_met == sum(expected_met)
    by_point = {p.trigger_point: (p.planned, p.holds, p.dose_met, p.incomplete)
                for p in s.points}
    assert by_point == {
        POINTS[0]: (dose.repetitions, sum(h.trigger_point == POINTS[0] for h in done),
                    sum(expected_met), 1),
        POINTS[1]: (dose.repetitions, 0, 0, 0)}
    assert s.most_common_flag and s.most_common_flag_holds >= 1  # the too-long one at least


def check_analyze_table_agrees(s, out: Path, done) -> None:
    """Analyze's table of the same file: the cut hold is a row, not judged."""
    rows = analyse_file(out)
    assert [r["complete"] for r in rows] == [True, True, False]
    assert not any(rows[-1][k] for k in ("dose_met", "early_release", "too_long"))
    whole = [r for r in rows if r["complete"]]
    assert s.dose_met == sum(r["dose_met"] for r in whole)
    assert s.mean_time_in_band_s == pytest.approx(np.mean([r["time_in_band_s"] for r in whole]))
    assert [r["duration_s"] for r in whole] == pytest.approx(
        [h.end_s - h.start_s for h in done], abs=0.05)


def check_command_line_agrees(s, rec, out: Path, tmp_path: Path) -> None:
    """Info (text and JSON) and analyze on the command line say what the summary says."""
    info = run_palpation("info", str(out))
    assert info.returncode == 0, info.stderr
    assert "holds              2 done, 1 incomplete" in info.stdout
    assert re.search(rf"\n +{POINTS[0]} +2 of 3 done, 1 met the dose, 1 incomplete\n",
                     info.stdout)
    assert re.search(rf"\n +{POINTS[1]} +0 of 3 done, 0 met the dose\n", info.stdout)
    shown = run_palpation("info", str(out), "--json")
    assert shown.returncode == 0, shown.stderr
    data = json.loads(shown.stdout)
    assert data["session"] == json.loads(json.dumps(asdict(s)))
    assert data["holds"] == data["session"]["holds"] == 2
    table = tmp_path / "holds.csv"
    analyzed = run_palpation("analyze", str(out), "--out", str(table))
    assert analyzed.returncode == 0, analyzed.stderr
    assert [r["complete"] for r in csv.DictReader(table.open())] == ["True", "True", "False"]
    flags = [f.name for m in recording_metrics(rec) for f in hold_flags(m)]
    assert flags.count(s.most_common_flag) == s.most_common_flag_holds
    assert "incomplete" in flags and s.most_common_flag != "incomplete"


def test_a_session_stopped_mid_hold_counts_it_nowhere_and_agrees_with_analyze(
        protocol_file, tmp_path):
    protocol = resolve_protocol(str(protocol_file))
    dose = protocol.points[0].dose
    out = tmp_path / "cut.h5"
    truth, th = record_until_mid_third_hold(protocol, out)
    rec = open_recording(out)
    now = therapist_time(rec, truth["therapist_origin_tick_us"])[-1]
    planned = th.schedule
    done = [h for h in planned if h.end_s < now]
    (cut,) = [h for h in planned if h.start_s < now < h.end_s]  # the truth: cut mid-hold

    # /holds: the two whole holds, then the cut one marked incomplete, starting where it did
    assert rec.holds["complete"].tolist() == [1] * len(done) + [0] == [1, 1, 0]
    offset = now - rec.timestamps[-1]  # therapist time minus session time
    assert rec.holds["start"][-1] + offset == pytest.approx(cut.start_s, abs=0.05)
    assert rec.summary["holds"] == len(done)

    s = session_summary(rec)
    check_summary_against_truth(s, th, done, dose)
    check_analyze_table_agrees(s, out, done)
    check_command_line_agrees(s, rec, out, tmp_path)


def test_record_ends_with_the_summary_and_a_cut_off_hold_is_incomplete(protocol_file, tmp_path):
    out, truth_file = tmp_path / "rec.h5", tmp_path / "truth.json"
    r = run_palpation("record", "--simulate", "--headless", "--protocol", str(protocol_file),
                      "--profile", "novice", "--seed", str(SEED), "--sim-rate", "500",
                      "--duration", "5.2", "--trainee", "Ana", "--out", str(out),
                      "--truth", str(truth_file))
    assert r.returncode == 0, r.stderr
    for transport in ("samples", "crc_errors", "writer_lost"):  # the writer's figures, kept
        assert f"  {transport} " in r.stdout
    truth = json.loads(truth_file.read_text())
    rec = open_recording(out)
    now = therapist_time(rec, truth["therapist_origin_tick_us"])[-1]
    first = truth["holds"][0]
    assert first["plateau_start_s"] < now < first["release_s"]  # ended mid-hold
    assert rec.holds["complete"].tolist() == [0]
    block = session_block(r.stdout)
    assert block[1:5] == [
        "  trainee            Ana", "  protocol           summary test",
        "  calibration        the device's factory scale (not calibrated: palpation calibrate)",
        "  holds              0 done, 1 incomplete (cut off by the end of the recording, a "
        "disconnect or a gap: not judged, not counted)"]
    assert "  dose met           0 of 0 holds" in block
    info = run_palpation("info", str(out))
    assert info.returncode == 0, info.stderr
    assert session_block(info.stdout) == block  # one summary, printed by both
