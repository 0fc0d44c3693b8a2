"""Learning curves per trainee: how each session went, with and without live feedback.

Why: live force feedback that is later removed often leaves little behind (issue 13). What a
trainee has learnt shows in the holds they make *without* the screen, so every session is
split into feedback-on and feedback-off holds (``HoldMetrics.feedback_live``), and the
**dependency gap** (feedback-on minus feedback-off performance) is shown plainly: near 0 the
trainee does as well without the screen; a large gap that does not shrink over sessions is
dependency on the feedback. A plan's practice has live feedback and its tests do not, so the
gap that matters for a plan lies across sessions: the error (and score) with live feedback in
the last session that had it, against each later session without it (post-test, retention
tests), where what the screen held up decays.

Input: rows of the hold table (``palpation analyze``: a ``dict`` per hold with ``file``,
``trainee``, ``session_start`` and every ``HoldMetrics`` field), so the same curves come from a
batch table or from recordings (``recording_rows``). Only complete holds count; the score is
``analysis.score``'s, the error the absolute error of the plateau mean against the target.
Pure: ``learning_curves`` gives the numbers, ``learning_text`` the plain-text table and
``learning_section`` the report's HTML (a table and charts of score and error per trainee).
"""

from __future__ import annotations

import math
import textwrap
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from datetime import date, datetime
from pathlib import Path

import numpy as np

from analysis.batch import write_table
from analysis.svg import Series, esc, num, svg_plot
from schemas.atomic import write_text_atomic

__all__ = ["READING", "SessionPoint", "gap_sentences", "learning_curves", "learning_section",
           "learning_text", "recording_rows", "write_learning"]

READING = ("How to read it: the score (0–100) and the error (|plateau mean − target|) of each "
           "session's holds, split into holds made with live feedback (on) and without it "
           "(off). The gap is feedback-on minus feedback-off performance: score on − off, and "
           "error off − on. Near 0, the trainee does as well without the screen; a large "
           "positive gap that does not shrink across sessions means they depend on the "
           "feedback, and what counts is the feedback-off line. Across sessions: the error "
           "and score with live feedback in the last session that had it (a plan's practice) "
           "against each later session without it (post-test, retention tests), with the gap "
           "in brackets: there what was learnt with the screen shows how much of it lasts. "
           "The score saturates inside the band, so the error (N) tells more once the trainee "
           "is close. Self-estimates right: the share of holds whose too light / right / too "
           "firm estimate was right.")


@dataclass(frozen=True)
class SessionPoint:
    """One session of a trainee: ``session`` numbers them from 1 by start; counts are of
    complete holds; means are NaN without holds (or scores) on that side; ``score_gap`` =
    score_on − score_off, ``error_gap_n`` = abs_error_off_n − abs_error_on_n (both positive
    when the trainee did better with feedback); ``estimates`` the holds with a self-estimate
    and a plateau, ``estimate_accuracy_pct`` the % of them estimated right (error-detection
    accuracy; NaN without estimates). Across sessions, for a session without live feedback:
    ``feedback_session`` the last earlier session with live feedback (0: none, or this session
    had live feedback), ``later_error_gap_n`` = abs_error_off_n − that session's
    abs_error_on_n and ``later_score_gap`` = its score_on − score_off (NaN without one)."""

    trainee: str
    session: int
    date: str
    file: str
    holds: int
    score: float
    abs_error_n: float
    holds_on: int
    score_on: float
    abs_error_on_n: float
    holds_off: int
    score_off: float
    abs_error_off_n: float
    score_gap: float
    error_gap_n: float
    estimates: int
    estimate_accuracy_pct: float
    feedback_session: int = 0
    later_error_gap_n: float = math.nan
    later_score_gap: float = math.nan


def recording_rows(rec, metrics: Sequence) -> list[dict]:
    """Hold-table rows (as ``palpation analyze`` writes them) of a ``schemas.reader.Recording``
    and its ``HoldMetrics``, for ``learning_curves``."""
    session = {"file": Path(rec.path).name, "trainee": str((rec.session or {}).get("trainee", "")),
               "session_start": rec.session_start.isoformat()}
    return [{**session, **asdict(m)} for m in metrics]


def _mean(rows: list[Mapping], key: str) -> float:
    v = np.array([float(r[key]) for r in rows], dtype=np.float64)
    v = v[np.isfinite(v)]
    return float(v.mean()) if v.size else math.nan


def _truth(value) -> bool:
    """A boolean cell of the hold table: a bool, or its text in a table read back."""
    return value is True or str(value).strip().lower() in ("true", "1")


def _point(trainee: str, k: int, start: str, file: str, rows: list[Mapping]) -> SessionPoint:
    on = [r for r in rows if _truth(r["feedback_live"])]
    off = [r for r in rows if not _truth(r["feedback_live"])]
    s_on, s_off = _mean(on, "score"), _mean(off, "score")
    e_on, e_off = _mean(on, "abs_error_n"), _mean(off, "abs_error_n")
    judged = [r for r in rows if math.isfinite(float(r["self_estimate"]))
              and math.isfinite(float(r["plateau_mean_n"]))]
    right = sum(_truth(r["estimate_correct"]) for r in judged)
    return SessionPoint(
        trainee=trainee, session=k, date=datetime.fromisoformat(start).date().isoformat(),
        file=file, holds=len(rows), score=_mean(rows, "score"),
        abs_error_n=_mean(rows, "abs_error_n"), holds_on=len(on), score_on=s_on,
        abs_error_on_n=e_on, holds_off=len(off), score_off=s_off, abs_error_off_n=e_off,
        score_gap=s_on - s_off, error_gap_n=e_off - e_on, estimates=len(judged),
        estimate_accuracy_pct=100.0 * right / len(judged) if judged else math.nan)


def learning_curves(rows: Iterable[Mapping]) -> dict[str, list[SessionPoint]]:
    """Per trainee (in order of appearance), one point per session in order of its start,
    from hold-table rows, with the gap across sessions (``_across``); incomplete holds are
    left out, sessions without a complete hold too."""
    sessions: dict[str, dict[tuple[str, str], list[Mapping]]] = {}
    for r in rows:
        if not _truth(r["complete"]):
            continue
        key = (str(r["session_start"]), str(r["file"]))
        sessions.setdefault(str(r["trainee"]), {}).setdefault(key, []).append(r)
    return {trainee: _across([_point(trainee, k, start, file, got[(start, file)])
                              for k, (start, file) in enumerate(
                                  sorted(got, key=lambda s: datetime.fromisoformat(s[0])), 1)])
            for trainee, got in sessions.items()}


def _across(points: list[SessionPoint]) -> list[SessionPoint]:
    """``points`` (one trainee's, in order) with each session without live feedback set
    against the last earlier session with it."""
    out, ref = [], None
    for p in points:
        if p.holds_on:
            ref = p
        elif ref is not None:
            p = replace(p, feedback_session=ref.session,
                        later_error_gap_n=p.abs_error_off_n - ref.abs_error_on_n,
                        later_score_gap=ref.score_on - p.score_off)
        out.append(p)
    return out


def gap_sentences(points: Sequence[SessionPoint]) -> list[str]:
    """The dependency gap across sessions in words, one sentence per session with live
    feedback that later sessions without it are set against, e.g. "Dependency gap across
    sessions: with live feedback in S2 (2026-03-02) 0.9 N, score 99; without it: S3 same day
    1.6 N (+0.7), score 99 (+0); S4 +1 d ..." (days counted from the session with feedback);
    one sentence saying why when there is none."""
    by_ref: dict[int, list[SessionPoint]] = {}
    for p in points:
        if p.feedback_session:
            by_ref.setdefault(p.feedback_session, []).append(p)
    if not by_ref:
        why = ("no session without live feedback follows one with it"
               if any(p.holds_on for p in points) else "no session had live feedback")
        return [f"Dependency gap across sessions: none to show ({why})."]
    out = []
    for k, later in by_ref.items():
        ref = next(q for q in points if q.session == k)
        day0 = date.fromisoformat(ref.date)
        parts = []
        for p in later:
            days = (date.fromisoformat(p.date) - day0).days
            parts.append(f"S{p.session} {'same day' if days == 0 else f'+{days} d'} "
                         f"{_cell(p.abs_error_off_n, 1)} N ({_cell(p.later_error_gap_n, 1, True)}"
                         f"), score {_cell(p.score_off, 0)} ({_cell(p.later_score_gap, 0, True)})")
        out.append(f"Dependency gap across sessions: with live feedback in S{ref.session} "
                   f"({ref.date}) {_cell(ref.abs_error_on_n, 1)} N, score "
                   f"{_cell(ref.score_on, 0)}; without it: {'; '.join(parts)}.")
    return out


def _cell(value: float, digits: int, sign: bool = False) -> str:
    if not math.isfinite(value):
        return "—"
    value = round(value, digits) + 0.0  # no "-0"
    return f"{value:+.{digits}f}" if sign else f"{value:.{digits}f}"


def learning_text(curves: Mapping[str, Sequence[SessionPoint]]) -> list[str]:
    """The learning curves as a plain-text table per trainee, and how to read them."""
    lines = []
    head = (f"{'session':<8}{'date':<12}{'holds on/off':>13}{'score on':>10}{'off':>6}"
            f"{'gap':>6}{'error on N':>12}{'off':>6}{'gap':>6}{'estimates right %':>19}")
    for trainee, points in curves.items():
        lines += [f"Learning curve: {trainee or '(no trainee name)'}", head]
        for p in points:
            lines.append(
                f"{'S' + str(p.session):<8}{p.date:<12}{f'{p.holds_on}/{p.holds_off}':>13}"
                f"{_cell(p.score_on, 0):>10}{_cell(p.score_off, 0):>6}"
                f"{_cell(p.score_gap, 0, True):>6}{_cell(p.abs_error_on_n, 1):>12}"
                f"{_cell(p.abs_error_off_n, 1):>6}{_cell(p.error_gap_n, 1, True):>6}"
                f"{_cell(p.estimate_accuracy_pct, 0):>19}")
        for sentence in gap_sentences(points):
            lines += textwrap.wrap(sentence, 96, break_on_hyphens=False)
        lines.append("")
    return [*lines, *textwrap.wrap(READING, 96, break_on_hyphens=False)]


def _charts(trainee: str, points: Sequence[SessionPoint]) -> str:
    """Two small charts per trainee, with and without live feedback: the mean score per
    session, and the mean error (N), which goes on telling where the score saturates."""
    x = np.array([p.session for p in points], dtype=np.float64)
    ticks = [(float(p.session), f"S{p.session}\n{p.date[5:]}") for p in points]

    def pair(on: str, off: str) -> list[Series]:
        return [Series(x, np.array([getattr(p, on) for p in points]), "#1f77b4",
                       markers=True, label="feedback on"),
                Series(x, np.array([getattr(p, off) for p in points]), "#d62728",
                       markers=True, dashed=True, label="feedback off")]

    who = trainee or "trainee"
    return (svg_plot(pair("score_on", "score_off"), xlabel="", ylabel="score (0–100)",
                     xticks=ticks, width=420, height=240, yrange=(0.0, 100.0),
                     title=f"{who}: mean score per session")
            + svg_plot(pair("abs_error_on_n", "abs_error_off_n"), xlabel="",
                       ylabel="|error| (N)", xticks=ticks, width=420, height=240, ymin=0.0,
                       title=f"{who}: mean error per session"))


def learning_section(curves: Mapping[str, Sequence[SessionPoint]]) -> str:
    """The report's "Learning curves" section: per trainee charts of the mean score and
    error with and without feedback, the table with the dependency gap in each session, and
    the gap across sessions in words; "" without sessions."""
    parts = []
    for trainee, points in curves.items():
        body = "".join(
            f'<tr><td class="l">S{p.session}</td><td class="l">{esc(p.date)}</td>'
            f"<td>{p.holds_on}</td><td>{p.holds_off}</td><td>{num(p.score_on, 0)}</td>"
            f"<td>{num(p.score_off, 0)}</td>"
            f"<td><strong>{_cell(p.score_gap, 0, True)}</strong></td>"
            f"<td>{num(p.abs_error_on_n)}</td><td>{num(p.abs_error_off_n)}</td>"
            f"<td><strong>{_cell(p.error_gap_n, 1, True)}</strong></td>"
            f"<td>{num(p.estimate_accuracy_pct, 0)}</td></tr>" for p in points)
        parts.append(
            f'<div class="learning" data-trainee="{esc(trainee)}"><h3>'
            f"{esc(trainee or '(no trainee name)')}</h3>{_charts(trainee, points)}"
            '<div class="note"><span class="swatch" style="border-color:#1f77b4"></span>'
            'feedback on <span class="swatch" style="border-color:#d62728;'
            'border-top-style:dashed"></span>feedback off</div>'
            '<table class="learning"><thead><tr><th class="l">session</th><th class="l">date'
            "</th><th>holds on</th><th>holds off</th><th>score on</th><th>score off</th>"
            "<th>dependency gap (score)</th><th>error on (N)</th><th>error off (N)</th>"
            "<th>dependency gap (error, N)</th><th>self-estimates right (%)</th></tr></thead>"
            f"<tbody>{body}</tbody></table>"
            + "".join(f'<p class="gap">{esc(s)}</p>' for s in gap_sentences(points))
            + "</div>")
    if not parts:
        return ""
    return ('<section class="learning" id="learning"><h2>Learning curves</h2>'
            f'<p class="note">{esc(READING)}</p>' + "".join(parts) + "</section>")


def write_learning(rows: Iterable[Mapping], out: str | Path) -> str:
    """The learning curves of hold-table ``rows`` as the plain-text table (returned), also
    written to ``out``: a .txt file gets the text, .csv or .parquet one row per trainee and
    session (``SessionPoint``'s fields); "-" writes nothing (the caller prints the text).
    ValueError for any other suffix."""
    curves = learning_curves(rows)
    text = "\n".join(learning_text(curves))
    out = Path(out)
    suffix = out.suffix.lower()
    if str(out) == "-":
        return text
    if suffix == ".txt":
        write_text_atomic(out, text + "\n")
    elif suffix in (".csv", ".parquet"):
        write_table([asdict(p) for points in curves.values() for p in points], out)
    else:
        raise ValueError(f"{out}: the learning curves are written as .txt, .csv or .parquet")
    return text
