"""Feedback condition, self-estimates and anchored targets joined to holds from a recording's
events, and learning curves per trainee (analysis.learning), on real files written with
schemas.writer and reopened, carrying the simulated therapist's holds (tests.test_metrics)."""

from __future__ import annotations

import csv
import math
from datetime import datetime
from pathlib import Path

import numpy as np
import pytest

from analysis.learning import (
    READING,
    gap_sentences,
    learning_curves,
    learning_section,
    learning_text,
    recording_rows,
)
from analysis.metrics import recording_metrics
from analysis.report import build_report
from analysis.summary import session_summary, summary_lines
from schemas.events import Event
from schemas.reader import open_recording
from schemas.session_protocol import protocol_of
from schemas.writer import RecordingWriter
from tests.conftest import run_palpation
from tests.test_metrics import PROTOCOL, Stream, stream

POINT = "upper trapezius L"  # the protocol's first point: every hold's, without trigger_point


def write(path: Path, s: Stream, events: list[Event], trainee: str = "",
          start: datetime | None = None) -> Path:
    """The stream's samples and ``events`` as a finalised recording (no /holds rows)."""
    n = s.t.size
    w = RecordingWriter(path, session={"protocol_toml": PROTOCOL, "trainee": trainee},
                        device={}, calibration={}, software_version="test",
                        session_start=start)
    w.append_samples(data=s.force_n, timestamps=s.t, raw_counts=np.zeros(n, np.int64),
                     device_tick_us=(s.t * 1e6).astype(np.int64),
                     sequence=np.arange(n) % 65536, host_time=s.t,
                     flags=np.zeros(n, np.uint8))
    w.append_events(sorted(events, key=lambda e: e.time))
    w.close()
    return path


def feedback(time: float, live: bool, mode: str = "faded") -> Event:
    return Event(time, "feedback", 1.0 if live else 0.0, mode)


def test_feedback_condition_and_self_estimates_from_the_events(tmp_path: Path) -> None:
    s = stream("expert", 0)
    g = s.truth
    events = [feedback(0.0, True), feedback(g[0].end_s + 0.4, False),
              feedback(g[1].end_s + 0.4, True, "concurrent"),
              Event(g[3].start_s - 0.5, "blind_on"), Event(g[3].end_s + 0.5, "blind_off"),
              Event(g[0].end_s + 1.0, "self_estimate", 0.0, "right"),
              Event(g[1].end_s + 1.0, "self_estimate", 1.0, "firm"),
              Event(g[1].end_s + 1.5, "self_estimate", -1.0, "light"),  # second: ignored
              Event(g[4].start_s + 2.0, "self_estimate", 0.0, "right")]  # inside hold 4
    rows = recording_metrics(open_recording(write(tmp_path / "fb.h5", s, events)))
    assert len(rows) == len(g)
    assert [m.feedback for m in rows[:4]] == ["faded", "faded", "concurrent", "concurrent"]
    assert [m.feedback_live for m in rows[:5]] == [True, False, True, False, True]
    assert rows[3].blind and not rows[4].blind
    # the first estimate after a hold's end and before the next hold's start is its own
    assert rows[0].self_estimate == 0.0 and rows[1].self_estimate == 1.0
    assert all(math.isnan(m.self_estimate) for m in rows[2:])
    # the expert's plateaus lie in the band (25.5-34.5 N): "right" was right, "firm" wrong
    assert 25.5 < rows[0].plateau_mean_n < 34.5 and 25.5 < rows[1].plateau_mean_n < 34.5
    assert rows[0].estimate_correct and not rows[1].estimate_correct
    assert not any(m.estimate_correct for m in rows[2:])
    summary = session_summary(open_recording(tmp_path / "fb.h5"))
    assert (summary.estimates, summary.estimates_right) == (2, 1)
    assert "self-estimates     1 of 2 right (50 %)" in summary_lines(summary)
    assert summary.mean_score == pytest.approx(np.mean([m.score for m in rows]))
    point = learning_curves(recording_rows(open_recording(tmp_path / "fb.h5"), rows))[""][0]
    assert (point.estimates, point.estimate_accuracy_pct) == (2, 50.0)
    assert (point.holds_on, point.holds_off) == (len(rows) - 2, 2)


def test_without_feedback_events_live_feedback_is_not_blind(tmp_path: Path) -> None:
    s = stream("expert", 0)
    events = [Event(s.truth[1].start_s - 0.5, "blind_on"), Event(s.truth[2].start_s - 0.5,
                                                                "blind_off")]
    rows = recording_metrics(open_recording(write(tmp_path / "b.h5", s, events)))
    assert [m.feedback for m in rows[:3]] == ["", "", ""]
    assert [m.feedback_live for m in rows[:3]] == [True, False, True]


def test_an_anchored_target_sets_the_band_of_later_holds(tmp_path: Path) -> None:
    s = stream("expert", 0)
    g = s.truth
    anchor_at = 0.5 * (g[5].end_s + g[6].start_s)
    path = write(tmp_path / "anchor.h5", s, [Event(anchor_at, "target_anchor", 40.0, POINT)])
    rec = open_recording(path)
    dose = protocol_of(rec).points[0].dose
    low, high = dose.anchored_band_n(40.0)
    assert (low, high) == pytest.approx((34.0, 46.0))  # 40 N +- 15 %
    rows = recording_metrics(rec)
    before, after = rows[:6], rows[6:]
    assert all((m.band_low_n, m.band_high_n) == (25.5, 34.5) for m in before)
    assert all((m.band_low_n, m.band_high_n) == pytest.approx((low, high)) for m in after)
    assert all(m.target_n == pytest.approx(40.0) for m in after)
    # the expert holds about 30 N: in the protocol's band for well over the minimum hold,
    # under the anchored one (34-46 N) nearly all the time, and scored for it
    assert all(m.time_in_band_s > 8.0 for m in before)
    assert all(m.time_in_band_s < 1.0 for m in after)
    assert all(m.constant_error_n == pytest.approx(m.plateau_mean_n - 40.0) for m in after)
    assert max(m.score for m in after) < min(m.score for m in before) - 20


SESSIONS = {  # file: (trainee, start, stream seed)
    "ana-3.h5": ("Ana", datetime(2026, 1, 9, 10, 0), 2),
    "ana-1.h5": ("Ana", datetime(2026, 1, 1, 10, 0), 0),
    "ana-2.h5": ("Ana", datetime(2026, 1, 2, 10, 0), 1),
    "ben-1.h5": ("Ben", datetime(2026, 1, 3, 10, 0), 0),
}


@pytest.fixture(scope="module")
def sessions(tmp_path_factory) -> Path:
    """Four sessions: each a simulated cycle of 12 holds, the first 6 with live feedback
    (concurrent) and the last 6 without (none: a retention test)."""
    d = tmp_path_factory.mktemp("learning")
    for name, (trainee, start, seed) in SESSIONS.items():
        s = stream("expert", seed)
        events = [feedback(0.0, True, "concurrent"), feedback(s.truth[5].end_s + 0.4, False,
                                                              "none")]
        write(d / name, s, events, trainee, start)
    return d


def test_learning_curves_per_trainee_and_session(sessions: Path) -> None:
    recs = {n: open_recording(sessions / n) for n in SESSIONS}
    rows = {n: recording_metrics(r) for n, r in recs.items()}
    curves = learning_curves(row for n in SESSIONS for row in recording_rows(recs[n], rows[n]))
    assert list(curves) == ["Ana", "Ben"]
    ana = curves["Ana"]
    assert [p.file for p in ana] == ["ana-1.h5", "ana-2.h5", "ana-3.h5"]  # by date
    assert [p.session for p in ana] == [1, 2, 3]
    assert [p.date for p in ana] == ["2026-01-01", "2026-01-02", "2026-01-09"]
    for p in [*ana, *curves["Ben"]]:
        ms = rows[p.file]
        on, off = ms[:6], ms[6:]
        assert (p.holds, p.holds_on, p.holds_off) == (12, 6, 6)
        assert not any(m.feedback_live for m in off) and all(m.feedback_live for m in on)
        assert p.score_on == pytest.approx(np.mean([m.score for m in on]))
        assert p.score_off == pytest.approx(np.mean([m.score for m in off]))
        assert p.score_gap == pytest.approx(p.score_on - p.score_off)
        assert p.abs_error_off_n == pytest.approx(np.mean([m.abs_error_n for m in off]))
        assert p.error_gap_n == pytest.approx(p.abs_error_off_n - p.abs_error_on_n)
        assert p.score == pytest.approx(np.mean([m.score for m in ms]))
    text = learning_text(curves)
    assert text[0] == "Learning curve: Ana" and " ".join(text[-4:]).endswith(READING[-60:])
    first = text[2].split()
    assert first[:3] == ["S1", "2026-01-01", "6/6"]
    shown = [float(v) for v in first[3:6]]
    assert shown == pytest.approx([ana[0].score_on, ana[0].score_off, ana[0].score_gap],
                                  abs=0.5)
    page = build_report(list(recs.values()))
    section = page.split('id="learning"')[1].split("</section>")[0]
    assert section.count('<table class="learning">') == 2
    assert section.count("<tr><td") == 4 and 'data-points="2"' in section
    assert "dependency gap (score)" in section and "feedback-on minus feedback-off" in section


def test_analyze_prints_and_writes_the_learning_curves(sessions: Path, tmp_path: Path) -> None:
    r = run_palpation("analyze", str(sessions), "--out", str(tmp_path / "holds.csv"),
                      "--learning", "-")
    assert r.returncode == 0, r.stderr
    assert "Learning curve: Ana" in r.stdout and "Learning curve: Ben" in r.stdout
    out = tmp_path / "learning.csv"
    r = run_palpation("analyze", str(sessions), "--out", str(tmp_path / "holds.csv"),
                      "--learning", str(out), "--force")
    assert r.returncode == 0, r.stderr
    table = list(csv.DictReader(out.open()))
    assert [(row["trainee"], row["session"], row["holds_on"], row["holds_off"])
            for row in table] == [("Ana", "1", "6", "6"), ("Ana", "2", "6", "6"),
                                  ("Ana", "3", "6", "6"), ("Ben", "1", "6", "6")]
    holds = list(csv.DictReader((tmp_path / "holds.csv").open()))
    ana1 = [float(h["score"]) for h in holds if h["file"] == "ana-1.h5"
            and h["feedback_live"] == "False"]
    assert float(table[0]["score_off"]) == pytest.approx(np.mean(ana1))
    r = run_palpation("analyze", str(sessions), "--out", str(tmp_path / "holds.csv"),
                      "--learning", str(tmp_path / "learning.json"))
    assert r.returncode == 1 and "learning.json" in r.stderr and "Traceback" not in r.stderr


def _hold(file: str, start: str, live: bool, error_n: float, score: float) -> dict:
    """A complete hold's row of the hold table, as ``palpation analyze`` writes it (text
    cells, as read back from a CSV)."""
    return {"file": file, "trainee": "Cy", "session_start": start, "complete": "True",
            "feedback_live": str(live), "score": score, "abs_error_n": error_n,
            "self_estimate": "nan", "plateau_mean_n": 30.0, "estimate_correct": "False"}


def test_the_gap_across_sessions_by_hand() -> None:
    """Practice with live feedback on two of three holds (errors 1 and 2 N, scores 96 and 90),
    then a test the same day (4 N, 80), one 7 days later (7 N, 60), a second practice on day 8
    (live only: 1 N, 95), and a test on day 9 (3 N, 85): each test is set against the last
    session before it with live feedback, its own within-session gap stays as it was."""
    rows = [_hold("p1", "2026-05-04T10:00:00", True, 1.0, 96.0),
            _hold("p1", "2026-05-04T10:00:00", True, 2.0, 90.0),
            _hold("p1", "2026-05-04T10:00:00", False, 5.0, 70.0),
            _hold("t1", "2026-05-04T11:00:00", False, 4.0, 80.0),
            _hold("t2", "2026-05-11T10:00:00", False, 6.0, 62.0),
            _hold("t2", "2026-05-11T10:00:00", False, 8.0, 58.0),
            _hold("p2", "2026-05-12T10:00:00", True, 1.0, 95.0),
            _hold("t3", "2026-05-13T10:00:00", False, 3.0, 85.0)]
    (points,) = learning_curves(rows).values()
    assert [p.feedback_session for p in points] == [0, 1, 1, 0, 4]
    assert [p.later_error_gap_n for p in points[1:3]] == [2.5, 5.5]  # 4 - 1.5, 7 - 1.5
    assert [p.later_score_gap for p in points[1:3]] == [13.0, 33.0]  # 93 - 80, 93 - 60
    assert (points[4].later_error_gap_n, points[4].later_score_gap) == (2.0, 10.0)
    assert math.isnan(points[0].later_error_gap_n) and math.isnan(points[3].later_score_gap)
    assert (points[0].error_gap_n, points[0].score_gap) == (3.5, 23.0)  # within S1: 5 - 1.5
    assert gap_sentences(points) == [
        "Dependency gap across sessions: with live feedback in S1 (2026-05-04) 1.5 N, score "
        "93; without it: S2 same day 4.0 N (+2.5), score 80 (+13); S3 +7 d 7.0 N (+5.5), "
        "score 60 (+33).",
        "Dependency gap across sessions: with live feedback in S4 (2026-05-12) 1.0 N, score "
        "95; without it: S5 +1 d 3.0 N (+2.0), score 85 (+10)."]
    text = "\n".join(learning_text({"Cy": points}))
    assert "S3 +7 d 7.0 N (+5.5)" in text and "S5 +1 d 3.0 N" in text
    html = learning_section({"Cy": points})
    assert html.count("<svg") == 2 and html.count('<p class="gap">') == 2
    none = learning_curves(r for r in rows if r["file"] in ("t1", "t2"))["Cy"]
    assert gap_sentences(none) == ["Dependency gap across sessions: none to show (no "
                                   "session had live feedback)."]
