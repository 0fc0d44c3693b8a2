"""A classroom station's publisher (issue 14): what the live window would show, sent as JSON
messages (``recorder.station_messages``) on the station's LSL marker stream, for the
instructor's class view.

Threads, and who owns what: the publisher has a thread of its own per session, never the
link's reader thread (the reader must not do extra work). Every ``PERIOD_S`` it reads what the
window reads (``session.status()``, ``holds``, ``live_warnings``, ``pain_ratings`` and the
ring buffer, each replaced or appended in one step by the reader thread) and owns the marker
outlet and its own bookkeeping (holds, warnings and ratings already sent, the scores so far).
``halt`` (the caller's thread, before ``session.stop()``) ends the thread; ``close`` (after
it) sends what the stop added (the last holds) and ``bye``. Headless or with the window, the same.

A finished hold is scored as the window's results view scores it (``analysis.score.
score_hold`` on its samples from the ring, against the point's dose and band) and flagged as
the window's verdict flags it (``analysis.definitions.hold_flags`` of its row of
``analysis.metrics.hold_metrics``). Its feedback condition is the schedule's for its number
(``Training.condition``); live feedback also needs no blind trial, as the station sees it
when it sends the hold (within ``PERIOD_S`` of its end).
"""

from __future__ import annotations

import threading
import time

from analysis.definitions import hold_flags
from analysis.metrics import hold_metrics
from analysis.score import HoldScore, mastery, score_hold
from recorder.hold_tracker import PointHold
from recorder.lsl import MarkerOutlet
from recorder.session import RecordingSession
from recorder.station_messages import (
    bye_message,
    encode,
    hold_message,
    link_message,
    pain_message,
    state_message,
    warning_message,
)

PERIOD_S = 0.15  # how often the session is read
HEARTBEAT_S = 0.5  # a state message at least this often, changed or not (spec: <= 1 s)
UNCHANGING = ("session_s", "samples")  # state fields whose change alone sends nothing


class StationPublisher:
    """Publishes one session's state, holds, pain ratings, warnings and link changes."""

    def __init__(self, session: RecordingSession, station: str, pseudonym: str = "") -> None:
        self.session = session
        self.station = station
        self.pseudonym = pseudonym
        self.sent = 0  # messages sent
        self._outlet = MarkerOutlet(station)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"station {station}",
                                        daemon=True)
        self._holds_sent = 0
        self._pains_sent = 0
        self._warnings: set[str] = set()
        self._scores: list[float] = []
        self._state: dict | None = None
        self._state_at = -float("inf")
        self._connected = True

    def start(self) -> None:
        """The first state (and the start's warnings), then every ``PERIOD_S``."""
        for text in self.session.warnings:
            self._send(warning_message(self.station, 0.0, text))
        self.poll()
        self._thread.start()

    def halt(self) -> None:
        """End the thread and send what changed since its last poll (the state the session
        ends in): call it before ``session.stop()``, whose closing port is no loss of the
        link."""
        if self._stop.is_set():
            return
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(5.0)
        self.poll()

    def close(self) -> None:
        """After ``session.stop()``: send what the stop added, then ``bye``; withdraw the
        stream."""
        self.halt()
        self.poll(final=True)
        self._send(bye_message(self.station, self.session.status().elapsed_s))
        self._outlet.close()

    def _run(self) -> None:
        while not self._stop.wait(PERIOD_S):
            self.poll()

    def poll(self, final: bool = False) -> None:
        """Send what changed since the last poll: link, holds, ratings, warnings, state.
        ``final``: the session has stopped (its port closed: no link change, no state)."""
        st = self.session.status()
        now = st.elapsed_s
        if st.connected != self._connected and not final:
            self._connected = st.connected
            state = "reconnected" if st.connected else "lost"
            reason = st.error or ("" if st.connected else "the sensor's link dropped")
            self._send(link_message(self.station, now, state, reason))
        holds = self.session.holds
        for number in range(self._holds_sent, len(holds)):
            self._send(self._hold(number, holds, now))
        self._holds_sent = len(holds)
        ratings = self.session.pain_ratings
        for _, value in ratings[self._pains_sent:]:
            self._send(pain_message(self.station, now, value))
        self._pains_sent = len(ratings)
        warnings = dict(self.session.live_warnings)  # kind -> text: a new kind is sent
        for kind in sorted(warnings.keys() - self._warnings):
            self._send(warning_message(self.station, now, warnings[kind]))
        self._warnings = set(warnings)
        if not final:
            self._send_state()

    def _send_state(self) -> None:
        state = state_message(self.session, self.station, self.pseudonym, self._mastery())
        key = {k: v for k, v in state.items() if k not in UNCHANGING}
        at = time.monotonic()
        if key != self._state or at - self._state_at >= HEARTBEAT_S:
            self._send(state)
            self._state, self._state_at = key, at

    def _mastery(self) -> str:
        """The mastery line over the holds scored so far (the schedule's rule, else the
        default one)."""
        protocol = self.session.protocol
        training = protocol.training if protocol is not None else None
        if training is None:
            return mastery(self._scores).text()
        return mastery(self._scores, training.mastery_count, training.mastery_window,
                       training.mastery_score).text()

    def _hold(self, number: int, holds: list[PointHold], now: float) -> dict:
        """The message of hold ``number`` (0-based over the complete holds), scored."""
        rec = holds[number]
        point = rec.point_index
        repetition = sum(1 for h in holds[:number + 1] if h.point_index == point)
        protocol = self.session.protocol
        label = protocol.points[point].label if protocol is not None else ""
        score, flags = self._judge(rec)
        if score is not None:
            self._scores.append(score.score)
        training = protocol.training if protocol is not None else None
        condition = training.condition(number) if training is not None else None
        live = (condition is None or condition.live) and not self.session.blind
        return hold_message(self.station, now, rec, label, repetition, score, flags,
                            condition.feedback if condition is not None else "", live)

    def _judge(self, rec: PointHold) -> tuple[HoldScore | None, list[str]]:
        """The hold's score and flags from its samples in the ring (none for a threshold
        ramp, a session without a protocol, or a hold no longer in the ring)."""
        session, h = self.session, rec.hold
        protocol = session.protocol
        dose = protocol.points[rec.point_index].dose if protocol is not None else None
        part = session.ring.since(h.start_s) if session.ring is not None else None
        if dose is None or dose.is_threshold_ramp or part is None or not len(part.time):
            return None, []
        keep = part.time <= h.end_s
        t, force_n = part.time[keep], part.force[keep]
        score = score_hold(t, force_n, h.start_s, h.end_s, dose, session.contact_area_cm2,
                           band_n=rec.band_n)
        metrics = hold_metrics(t, force_n, h, dose, area_cm2=session.contact_area_cm2,
                               band_n=rec.band_n)
        return score, [flag.name for flag in hold_flags(metrics)]

    def _send(self, message: dict) -> None:
        self._outlet.push(encode(message))
        self.sent += 1
