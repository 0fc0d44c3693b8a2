"""The class summary: per station, its holds, mean score, time in band and flags.

``palpation class`` prints it as a table when it stops (``summary_table``) and saves it with
``--report`` as one self-contained HTML page (``build_class_summary``, ``write_class_summary``)
in the instructor's report's style (``analysis.report``'s stylesheet and flag colours) with
an ``analysis.svg`` chart of every station's scores hold by hold.

Pure: the rows (``StationSummary``) are built by the caller from what the stations reported
(their ``hold`` messages); this module only adds them up and lays them out. Time in band is
the sum over the station's complete holds; its share is of those holds' total duration.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import numpy as np

from analysis.definitions import FLAGS
from analysis.report import COLOURS, CSS
from analysis.svg import DASH, Series, esc, num, svg_plot
from schemas.atomic import write_text_atomic

__all__ = ["HoldRow", "StationSummary", "build_class_summary", "summary_table",
           "write_class_summary"]

_FLAG_KEYS = {f.name: f.key for f in FLAGS}  # the name a station sends -> the badge's class


@dataclass(frozen=True)
class HoldRow:
    """One hold as the station reported it."""

    score: float  # NaN: not scored
    duration_s: float
    time_in_band_s: float
    flags: tuple[str, ...]
    complete: bool = True


@dataclass
class StationSummary:
    """A station's line of the summary."""

    station: str
    trainee: str
    holds: list[HoldRow] = field(default_factory=list)

    def done(self) -> list[HoldRow]:
        return [h for h in self.holds if h.complete]

    def mean_score(self) -> float:
        scores = [h.score for h in self.done() if math.isfinite(h.score)]
        return float(np.mean(scores)) if scores else math.nan

    def time_in_band_s(self) -> float:
        return float(sum(h.time_in_band_s for h in self.done() if math.isfinite(h.time_in_band_s)))

    def in_band_pct(self) -> float:
        total = sum(h.duration_s for h in self.done() if math.isfinite(h.duration_s))
        return 100.0 * self.time_in_band_s() / total if total > 0 else math.nan

    def flag_counts(self) -> dict[str, int]:
        """Holds raising each flag (by name), in the order of ``analysis.definitions.FLAGS``."""
        counts = {f.name: sum(f.name in h.flags for h in self.done()) for f in FLAGS}
        return {k: n for k, n in counts.items() if n}

    def flags_text(self) -> str:
        counts = self.flag_counts()
        return ", ".join(f"{k} {n}" for k, n in counts.items()) or "none"


def summary_table(rows: Sequence[StationSummary]) -> str:
    """The summary as a plain-text table, one line per station."""
    head = f"{'station':<14} {'trainee':<16} {'holds':>5} {'mean score':>10} " \
           f"{'in band (s)':>11} {'in band %':>9}  flags"
    lines = [head, "-" * len(head)]
    for r in rows:
        lines.append(f"{r.station[:14]:<14} {r.trainee[:16]:<16} {len(r.done()):>5} "
                     f"{num(r.mean_score(), 1):>10} {num(r.time_in_band_s(), 1):>11} "
                     f"{num(r.in_band_pct(), 0):>9}  {r.flags_text()}")
    return "\n".join(lines)


def _scores_chart(rows: Sequence[StationSummary]) -> str:
    series = []
    for i, r in enumerate(rows):
        scores = np.array([h.score for h in r.done()], dtype=float)
        series.append(Series(np.arange(1, len(scores) + 1, dtype=float), scores,
                             COLOURS[i % len(COLOURS)], label=r.trainee or r.station,
                             markers=True))
    legend = "".join(f'<span class="swatch" style="border-color:{s.colour}"></span>'
                     f"{esc(s.label)} &nbsp; " for s in series)
    return (svg_plot(series, xlabel="hold", ylabel="score", title="Scores, hold by hold",
                     yrange=(0.0, 100.0)) + f'<p class="note">{legend}</p>')


def build_class_summary(rows: Sequence[StationSummary], *, title: str = "Class summary",
                        when: datetime | None = None) -> str:
    """The summary of ``rows`` as one self-contained HTML page."""
    when = when or datetime.now()
    body = "".join(
        f'<tr><td class="l">{esc(r.station)}</td><td class="l">{esc(r.trainee or DASH)}</td>'
        f"<td>{len(r.done())}</td><td>{num(r.mean_score(), 1)}</td>"
        f"<td>{num(r.time_in_band_s(), 1)}</td><td>{num(r.in_band_pct(), 0)}</td>"
        f'<td class="l">' + ("".join(
            f'<span class="badge b-{_FLAG_KEYS[k]}">{esc(k)} {n}</span>'
            for k, n in r.flag_counts().items()) or "none") + "</td></tr>" for r in rows)
    defs = "".join(f"<dt>{esc(f.name)}</dt><dd>{esc(f.definition)}</dd>" for f in FLAGS)
    return "\n".join([
        "<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{esc(title)}</title><style>{CSS}</style></head><body>",
        f"<header><h1>{esc(title)}</h1><p>{len(rows)} stations, "
        f"{when:%Y-%m-%d %H:%M}. Holds: complete holds the stations reported; time in band "
        "summed over them, and its share of their duration; flags: holds raising each."
        "</p></header>",
        '<table class="class"><thead><tr><th class="l">station</th><th class="l">trainee'
        "</th><th>holds</th><th>mean score</th><th>time in band (s)</th><th>in band (%)"
        f'</th><th class="l">flags</th></tr></thead><tbody>{body}</tbody></table>',
        _scores_chart(rows) if any(r.done() for r in rows) else "<p>No holds yet.</p>",
        f'<h2>Flags</h2><dl class="defs">{defs}</dl>', "</body></html>\n"])


def write_class_summary(rows: Sequence[StationSummary], out: str | Path) -> None:
    """Write the page atomically (OSError when it cannot be written)."""
    write_text_atomic(Path(out), build_class_summary(rows))
