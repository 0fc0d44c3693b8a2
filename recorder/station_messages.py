"""The messages a classroom station publishes on its LSL marker stream: the one home of their
format (issue 14). A station (``palpation record --lsl --station NAME``) sends them; the class
view (``palpation class``) reads them with ``decode``.

Every message is one JSON object, one LSL string sample:
``{"v": 1, "station": str, "kind": str, "session_s": float, ...}`` (``session_s``: seconds
since the station's session started). The kinds and their fields:

- ``state``: at the start, at every change and at least every second (the heartbeat):
  ``trainee`` (the pseudonym when given, else the trainee, else ""), ``protocol``,
  ``protocol_kind``, ``point_index``, ``point``, ``points``, ``band_n`` ([low, high] N),
  ``min_hold_s``, ``max_hold_s``, ``feedback`` (mode or ""), ``block`` (name or ""),
  ``live`` (live feedback on for the current hold), ``mastery`` (text or ""), ``link``
  ("connected" | "lost"), ``holds_done``, ``complete``, ``samples``.
- ``hold``: as each complete hold ends: ``point_index``, ``point``, ``repetition``,
  ``start_s``, ``end_s``, ``duration_s``, ``time_in_band_s``, ``peak_n``, ``mean_n``,
  ``score`` (0..100 or null), ``deduction`` (the largest, as text, or ""), ``flags`` (names
  from ``analysis.definitions.hold_flags``), ``complete``, ``feedback``, ``feedback_live``.
- ``pain``: ``value``. ``warning``: ``text``. ``link``: ``state`` ("lost" |
  "reconnected"), ``reason``. ``bye``: the station stops.

NaN and infinities travel as null. A reader ignores kinds and fields it does not know (a
later version may add some; only a new ``v`` changes what a field means).

Pure: no LSL, no threads. ``state_message`` only reads the session's attributes.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from typing import TYPE_CHECKING

from recorder.hold_tracker import PointHold

if TYPE_CHECKING:
    from analysis.score import HoldScore
    from recorder.session import RecordingSession

VERSION = 1
KINDS = ("state", "hold", "pain", "warning", "link", "bye")


def encode(message: dict) -> str:
    """The message as one line of JSON (NaN and infinities as null)."""
    return json.dumps(_finite(message), ensure_ascii=False, allow_nan=False,
                      separators=(",", ":"))


def decode(text: str) -> dict:
    """The message in ``text``; ValueError (one line) when it is not JSON, not an object,
    of another version, or without a ``station`` or ``kind`` string."""
    try:
        message = json.loads(text)
    except (json.JSONDecodeError, TypeError) as exc:
        raise ValueError(f"station message is not JSON: {str(exc).splitlines()[0]}") from None
    if not isinstance(message, dict):
        raise ValueError(f"station message is not a JSON object: {type(message).__name__}")
    if message.get("v") != VERSION:
        raise ValueError(f"station message of version {message.get('v')!r}, "
                         f"expected {VERSION}")
    for key in ("station", "kind"):
        if not isinstance(message.get(key), str) or not message[key]:
            raise ValueError(f"station message without a {key!r} string")
    return message


def _finite(value):
    """``value`` with every NaN or infinite float (in lists and dicts too) as None."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value


def message(station: str, kind: str, session_s: float, **fields) -> dict:
    """A message of ``kind`` with the common fields first."""
    return {"v": VERSION, "station": station, "kind": kind, "session_s": float(session_s),
            **fields}


def state_message(session: RecordingSession, station: str, pseudonym: str = "",
                  mastery: str = "") -> dict:
    """The station's state now: who, where in the protocol, the band and hold window of the
    current point, the feedback condition, the link and the counts. ``pseudonym`` replaces
    the trainee's name; ``mastery`` is the mastery line over the holds scored so far."""
    st = session.status()
    protocol = session.protocol
    index = st.point_index
    point = protocol.points[index] if protocol is not None else None
    condition = st.condition
    return message(
        station, "state", st.elapsed_s,
        trainee=pseudonym or str(session.options.metadata.get("trainee", "")),
        protocol=protocol.name if protocol else "", protocol_kind=protocol.kind if protocol else "",
        point_index=index, point=point.label if point else "",
        points=len(protocol.points) if protocol else 0, band_n=list(session.band_n(index)),
        min_hold_s=point.dose.min_hold_s if point else math.nan,
        max_hold_s=point.dose.max_hold_s if point else math.nan,
        feedback=condition.feedback if condition else "",
        block=condition.block_name if condition else "",
        live=(condition is None or condition.live) and not st.blind, mastery=mastery,
        link="connected" if st.connected else "lost", holds_done=st.holds_done,
        complete=session.protocol_complete, samples=st.samples)


def hold_message(station: str, session_s: float, rec: PointHold, point: str, repetition: int,
                 score: HoldScore | None, flags: Sequence[str], feedback: str = "",
                 feedback_live: bool = True) -> dict:
    """Hold ``rec`` (its point's ``point`` label and ``repetition``) as it ended, with its
    score (None: not scored, e.g. a threshold ramp), the largest deduction and its flags."""
    h = rec.hold
    largest = score.largest if score is not None else None
    return message(
        station, "hold", session_s, point_index=rec.point_index, point=point,
        repetition=repetition, start_s=h.start_s, end_s=h.end_s, duration_s=h.duration_s,
        time_in_band_s=h.time_in_band_s, peak_n=h.peak_n, mean_n=h.mean_n,
        score=score.score if score is not None else None,
        deduction=largest.text() if largest is not None else "", flags=list(flags),
        complete=h.complete, feedback=feedback, feedback_live=bool(feedback_live))


def pain_message(station: str, session_s: float, value: float) -> dict:
    return message(station, "pain", session_s, value=float(value))


def warning_message(station: str, session_s: float, text: str) -> dict:
    return message(station, "warning", session_s, text=text)


def link_message(station: str, session_s: float, state: str, reason: str = "") -> dict:
    """``state``: "lost" or "reconnected"."""
    return message(station, "link", session_s, state=state, reason=reason)


def bye_message(station: str, session_s: float) -> dict:
    return message(station, "bye", session_s)
