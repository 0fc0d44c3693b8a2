"""Subject-anchored dose in the live window (recorder/anchor.py ``point_target``): the first
approach to each point is coached as such, with no band and no band cue, and the audio cue
silent; once the simulated subject's signal anchors the point, the window draws, states and
coaches the band the file's target_anchor event derives. The real simulator on a pty, the
real session and file, the real window offscreen; what the trainee saw is read from the
window's widgets (``LiveWindow.feedback_state``) on the window's own timer."""

from __future__ import annotations

import time
from collections import defaultdict

import pyqtgraph as pg
import pytest

from recorder.anchor import approach_message
from recorder.coach import MESSAGES, Cue
from recorder.cue_audio import cue_now
from recorder.cue_tone import cue_frequency
from recorder.window import LiveWindow
from schemas.reader import open_recording
from tests.conftest import simulated_session
from tests.test_anchor import SEED, short_anchored
from tests.test_training_window import force_now, shown_force, spin

APP = pg.mkQApp("palpation-tests")


def watch(window: LiveWindow, session, provisional: tuple[float, float]):
    """Sample the window after each of its frames: the frames of each point's first
    approach, and those once it is anchored, each with the audio cue's pitch then and the
    force. The session is asked after the frame (the subject may anchor in between), so a
    frame counts as a first approach when the point was still unanchored after it, and as
    anchored when it already was at the sample before it."""
    frames: dict[tuple[int, bool], list] = defaultdict(list)  # (point, anchored)
    was_anchored: dict[int, bool] = defaultdict(bool)
    verdicts = {}  # id -> the verdicts shown, each judged once

    def sample() -> None:
        verdict = window.verdict_label.verdict
        if verdict is not None:
            verdicts[id(verdict)] = verdict
        point = session.point_index
        force = force_now(session)
        pitch = cue_now(session, force)  # before the band is read: it saw no later band
        band = session.band_n(point)
        st = window.feedback_state()
        if st.point != point or session.point_index != point:
            return  # the point changed around the frame
        anchored = band != provisional
        if not anchored or was_anchored[point]:
            frames[(point, anchored)].append((st, pitch, force, shown_force(window, session)[0]))
        was_anchored[point] = anchored

    window.timer.timeout.connect(sample)
    return frames, verdicts


def test_the_first_approach_is_coached_without_a_band_until_the_subject_anchors_it(tmp_path):
    protocol, out = short_anchored(), tmp_path / "anchored.h5"
    provisional = protocol.points[0].dose.band_n()
    with simulated_session(out, protocol, SEED) as (session, _, _):
        window = LiveWindow(session)
        window.show()
        frames, verdicts = watch(window, session, provisional)
        try:
            end = time.monotonic() + 40
            while time.monotonic() < end and len(frames[(1, True)]) < 50:
                spin(0.02)
        finally:
            window.close()
    rec = open_recording(out)
    anchors = [e for e in rec.events if e.kind == "target_anchor"]
    assert [e.text for e in anchors] == [p.label for p in protocol.points]
    worded = 0
    for point, event in enumerate(anchors):
        _check_approach(frames[(point, False)], provisional, point)
        band = protocol.points[point].dose.anchored_band_n(event.value)
        worded += _check_anchored(frames[(point, True)], band, event.value, point)
    assert worded > 10, worded  # the first point's second repetition gets there
    _check_verdicts(list(verdicts.values()), rec, protocol)


def _check_verdicts(verdicts, rec, protocol) -> None:
    """Each verdict after a hold judges it by the band the analysis gives it: the subject's
    (the target_anchor event's) for a hold begun after the point was anchored, else the
    provisional one (the anchoring hold keeps the band it began with)."""
    anchors = {e.text: e for e in rec.events if e.kind == "target_anchor"}
    later = 0
    for v in verdicts:
        m = v.metrics
        point = next(p for p in protocol.points if p.label == m.trigger_point)
        anchor = anchors[m.trigger_point]
        anchored = m.start_s > anchor.time  # the hold began after the subject's signal
        band = (point.dose.anchored_band_n(anchor.value) if anchored
                else point.dose.band_n())
        assert (m.band_low_n, m.band_high_n) == pytest.approx(band, abs=1e-9), m
        later += anchored
    assert later >= 1, len(verdicts)  # a hold after an anchor was judged


def _check_approach(frames, provisional: tuple[float, float], point: int) -> None:
    """Before the anchor: the approach message, the trace and readout live, no band drawn,
    no band cue, no target stated, and the audio cue silent, also where the provisional
    band would have given it a pitch."""
    holding = [f for f in frames if f[0].in_hold]
    assert len(holding) > 20, (point, len(holding))
    for st, pitch, _, _ in frames:
        assert st.cue_text == approach_message(6.0), (point, st.cue_text)
        assert st.live_visible and not st.cues_visible and st.band_shown is None, point
        assert "target" not in st.note_text and pitch is None, point
    assert any(cue_frequency(force, provisional) is not None for _, _, force, _ in holding)


def _check_anchored(frames, band: tuple[float, float], target_n: float, point: int) -> int:
    """After the anchor: the band drawn is the event's (N shown as N), the note states it,
    the cue coaches it (PRESS HARDER only for a readout under it, HOLD inside it, EASE OFF
    over it: the provisional band, 10-14 N, says otherwise near both edges of the anchored
    ones) and the audio cue sounds in the holds. Returns how many frames were judged so."""
    assert len(frames) > 20, (point, len(frames))
    low, high = band
    text = f"target {target_n:.1f} N from 6/10, band {low:.1f}–{high:.1f} N"
    for st, _, _, _ in frames:
        assert st.band_shown == pytest.approx(band, abs=1e-9), (point, st.band_shown, band)
        assert st.note_text.endswith(text), (point, st.note_text)
        assert st.cue_text != approach_message(6.0), point
    holding = [f for f in frames if f[0].in_hold]
    assert holding and all(st.cues_visible for st, _, _, _ in holding), point
    assert any(pitch is not None for _, pitch, _, _ in holding), point
    where = {MESSAGES[Cue.BELOW]: (0.0, low), MESSAGES[Cue.IN_BAND]: (low, high),
             MESSAGES[Cue.ABOVE]: (high, float("inf"))}  # the readout shows 0.1 N
    judged = [(st.cue_text, shown) for st, _, _, shown in holding if st.cue_text in where]
    for cue, shown in judged:
        assert where[cue][0] - 0.05 <= shown <= where[cue][1] + 0.05, (point, cue, shown, band)
    return len(judged)
