"""The session summary: how a recorded session went, for the trainee at the end of ``palpation
record`` and for anyone running ``palpation info`` on the file.

It says who (trainee), what they followed (protocol) and how the force was measured
(calibration); then per trigger point the holds done against the protocol's repetitions and how
many met the dose, the mean time in band, the most common flag, the mean score
(``analysis.score``) and, when the trainee estimated their holds, how many estimates were right
(error-detection accuracy).

Why it is computed from the file through the analysis code: the holds are the rows of
``palpation analyze``'s table (``analysis.metrics.recording_metrics``) and the flags are the
report's (``analysis.definitions.hold_flags``), so the summary cannot disagree with the table or
the report about the same file. A hold the end of the recording cut off (``complete`` False,
``analysis.holds``) is listed as incomplete and counted nowhere else: not as done, not against
the dose, not in the time in band, not in the flags. Holds pressed after the protocol was
complete (a ``protocol_complete`` event, until the next ``trigger_point``) are not in the table,
so not here either, as the recorder's ``/holds`` has no row for them.

Pure: no printing; ``summary_lines`` gives the text, ``dataclasses.asdict`` the JSON.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from dataclasses import dataclass, field

from analysis.definitions import hold_flags
from analysis.metrics import estimate_accuracy, recording_metrics
from schemas.session_protocol import protocol_of

__all__ = ["PointSummary", "SessionSummary", "calibration_text", "session_summary",
           "summary_lines"]


@dataclass
class PointSummary:
    """One trigger point: ``planned`` is the protocol's repetitions there (0: the point is not
    in the protocol), ``holds`` the complete holds, ``dose_met`` those that met the dose,
    ``incomplete`` the holds the recording's end cut off."""

    trigger_point: str
    planned: int
    holds: int = 0
    dose_met: int = 0
    incomplete: int = 0


@dataclass
class SessionSummary:
    """A session at a glance; counts are of complete holds unless named ``incomplete``.

    mean_time_in_band_s: mean time in the target band over the complete holds (NaN: none).
    most_common_flag: the flag (``analysis.definitions``) raised by the most complete holds,
    "" when none raised one; most_common_flag_holds: by how many.
    mean_score: mean score of the scored holds (NaN: none). estimates: complete holds with a
    self-estimate and a plateau; estimates_right: how many of those were right
    (``analysis.consistency.estimate_accuracy``).
    """

    trainee: str
    protocol: str
    calibration: str
    holds: int
    incomplete: int
    dose_met: int
    mean_time_in_band_s: float
    most_common_flag: str
    most_common_flag_holds: int
    mean_score: float
    estimates: int
    estimates_right: int
    points: list[PointSummary] = field(default_factory=list)


def session_summary(rec) -> SessionSummary:
    """The summary of a ``schemas.reader.Recording``, from its hold table rows (those of
    ``palpation analyze``) and the protocol stored in it."""
    rows = recording_metrics(rec)
    proto = protocol_of(rec)
    points = {p.label: PointSummary(p.label, p.dose.repetitions)
              for p in (proto.points if proto is not None else [])}
    done = [m for m in rows if m.complete]
    for m in rows:
        point = points.setdefault(m.trigger_point, PointSummary(m.trigger_point, 0))
        point.holds += m.complete
        point.dose_met += m.complete and m.dose_met
        point.incomplete += not m.complete
    flags = Counter(f.name for m in done for f in hold_flags(m))
    flag, flag_holds = flags.most_common(1)[0] if flags else ("", 0)
    scores = [m.score for m in done if math.isfinite(m.score)]
    estimates, right = estimate_accuracy(done)
    session = rec.session or {}
    return SessionSummary(
        trainee=str(session.get("trainee", "")),
        protocol=proto.name if proto is not None else str(session.get("protocol", "")),
        calibration=calibration_text(rec.calibration or {}),
        holds=len(done), incomplete=len(rows) - len(done),
        dose_met=sum(m.dose_met for m in done),
        mean_time_in_band_s=(math.fsum(m.time_in_band_s for m in done) / len(done)
                             if done else math.nan),
        most_common_flag=flag, most_common_flag_holds=flag_holds,
        mean_score=math.fsum(scores) / len(scores) if scores else math.nan,
        estimates=estimates,
        estimates_right=right,
        points=list(points.values()))


def calibration_text(attrs: dict) -> str:
    """How a recording's force was measured, from its /calibration attributes: the
    calibration file's id, date and range, or which plain scale stood in for one."""
    source = str(attrs.get("source", ""))
    if source == "file":
        try:
            record = json.loads(str(attrs.get("json", "")))
            span = record["range"]
            return (f"calibration {str(attrs.get('calibration_id', ''))[:8]} of "
                    f"{str(record['created'])[:10]}, calibrated "
                    f"{float(span['min_n']):.1f}–{float(span['max_n']):.1f} N")
        except (ValueError, KeyError, TypeError):
            return f"calibration {str(attrs.get('calibration_id', ''))[:8]}"
    return {"factory": "the device's factory scale (not calibrated: palpation calibrate)",
            "device": "the gauge's own newtons",
            "none": "none (the force column holds tared counts)",
            "recalibrating": "an interrupted recalibration"}.get(source, source or "unknown")


def summary_lines(s: SessionSummary, live: bool = False) -> list[str]:
    """The summary as text, one fact a line; per point "done of planned". ``live``: the file
    is still being recorded, so its last hold may be one in progress, not one cut off."""
    cut = "in progress, or cut off by" if live else "cut off by the end of the recording,"
    lines = [f"trainee            {s.trainee or '(not named)'}",
             f"protocol           {s.protocol or '(none stored)'}",
             f"calibration        {s.calibration}",
             f"holds              {s.holds} done" + (
                 f", {s.incomplete} incomplete ({cut} a disconnect or a gap: not judged, not "
                 "counted)" if s.incomplete else "")]
    width = max((len(p.trigger_point) for p in s.points), default=0)
    for p in s.points:
        planned = f" of {p.planned}" if p.planned else ""
        extra = f", {p.incomplete} incomplete" if p.incomplete else ""
        lines.append(f"  {p.trigger_point:<{width}}  {p.holds}{planned} done, "
                     f"{p.dose_met} met the dose{extra}")
    lines.append(f"dose met           {s.dose_met} of {s.holds} holds")
    tib = (f"{s.mean_time_in_band_s:.1f} s" if math.isfinite(s.mean_time_in_band_s)
           else "— (no hold done)")
    lines.append(f"mean time in band  {tib}")
    flag = (f"{s.most_common_flag} ({s.most_common_flag_holds} of {s.holds} holds)"
            if s.most_common_flag else "none")
    lines.append(f"most common flag   {flag}")
    score = f"{s.mean_score:.0f} of 100" if math.isfinite(s.mean_score) else "— (no hold scored)"
    lines.append(f"mean score         {score}")
    if s.estimates:
        lines.append(f"self-estimates     {s.estimates_right} of {s.estimates} right "
                     f"({100.0 * s.estimates_right / s.estimates:.0f} %)")
    return lines
