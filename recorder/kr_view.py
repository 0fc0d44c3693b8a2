"""Knowledge of results: the view a trainee sees after a hold, or after every few holds, when
the feedback schedule gives nothing live (``terminal`` and ``summary`` modes, issue 13).

Why a view of its own: under a terminal schedule the trainee presses by feel and only then
learns how it went, which is what transfers to a real patient (live feedback taken away
decays fast). So the view shows what is needed to correct the next hold and no more: the
hold's trace over the target band and the hold window, its score out of 100
(``analysis.score``) and the largest deduction, e.g. "overshoot 18 %: −12"; the summary shows
the last N holds over the band, each one's score and their mean (the window's mastery line,
e.g. "mastery: 3 of last 5 >= 75 (need 4)", is shown with them). Qt only through
``pyqtgraph.Qt``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from pyqtgraph.Qt import QtWidgets

from analysis.score import HoldScore
from recorder.panels import COLORS, HoldPlot, big_label
from recorder.verdict_panel import VERDICT_COLORS
from schemas.session_protocol import Dose

PASS_COLOR = COLORS["in_band"]
FAIL_COLOR = VERDICT_COLORS["flagged"]  # amber: a score under the mastery threshold


@dataclass(frozen=True)
class ScoredHold:
    """A finished hold as the results show it: its number in the session (0-based), its
    curve (seconds since it began, display units) and its score."""

    number: int
    curve: tuple[np.ndarray, np.ndarray]
    score: HoldScore


def score_text(score: float) -> str:
    """A score as shown: "score 84", or "not scored" (a hold without a band to judge it by)."""
    return f"score {score:.0f}" if math.isfinite(score) else "not scored"


def mean_score(holds: Sequence[ScoredHold]) -> float:
    """The mean of the holds' scores that were scored (NaN if none was)."""
    scores = [h.score.score for h in holds if math.isfinite(h.score.score)]
    return math.fsum(scores) / len(scores) if scores else math.nan


def hold_lines(hold: ScoredHold) -> tuple[str, str]:
    """The headline and the detail of one hold's results: ("Hold 3: score 84",
    "overshoot 18 %: −12"), or "no deductions" for a perfect hold."""
    largest = hold.score.largest
    return (f"Hold {hold.number + 1}: {score_text(hold.score.score)}",
            largest.text() if largest is not None else "no deductions")


def summary_lines(holds: Sequence[ScoredHold]) -> tuple[str, str]:
    """The headline and the detail of a summary: ("Holds 4–5: mean score 74",
    "hold 4: score 82 · hold 5: score 67")."""
    first, last = holds[0].number + 1, holds[-1].number + 1
    span = f"Holds {first}–{last}" if last > first else f"Hold {first}"
    each = " · ".join(f"hold {h.number + 1}: {score_text(h.score.score)}" for h in holds)
    return f"{span}: mean {score_text(mean_score(holds))}", each


class ResultsView(QtWidgets.QWidget):
    """A headline (the score, coloured by the mastery threshold), a detail line and the
    hold(s) over the band; hidden until ``show_hold`` or ``show_summary``."""

    def __init__(self, unit: str, per_unit: float, area_cm2: float) -> None:
        super().__init__()
        self.per_unit, self.area_cm2 = per_unit, area_cm2
        layout = QtWidgets.QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        self.headline = big_label(28)
        self.detail = big_label(18, bold=False)
        self.plot = HoldPlot(unit=unit)
        for w in (self.headline, self.detail):
            layout.addWidget(w)
        layout.addWidget(self.plot, 1)
        self.hide()

    def show_hold(self, hold: ScoredHold, dose: Dose | None, band_n: tuple[float, float],
                  threshold: float) -> None:
        """One hold's results: its trace over the band it was judged by (newtons)."""
        self._draw([hold], dose, band_n, hold_lines(hold), hold.score.score >= threshold)

    def show_summary(self, holds: Sequence[ScoredHold], dose: Dose | None,
                     band_n: tuple[float, float], threshold: float) -> None:
        """The last holds' results: every trace over the band, each score and their mean."""
        self._draw(list(holds), dose, band_n, summary_lines(holds),
                   mean_score(holds) >= threshold)

    def _draw(self, holds: list[ScoredHold], dose: Dose | None, band_n: tuple[float, float],
              lines: tuple[str, str], passed: bool) -> None:
        self.plot.set_dose(dose, self.area_cm2, self.per_unit, band_n)
        self.plot.set_history([h.curve for h in holds[:-1]])
        self.plot.set_current(*holds[-1].curve)
        ends = [float(h.curve[0][-1]) for h in holds if len(h.curve[0])]
        tops = [float(np.nanmax(h.curve[1])) for h in holds if len(h.curve[1])]
        window = dose.max_hold_s if dose is not None else 0.0
        self.plot.set_range(max([window, *ends]) * 1.1, max([band_n[1] * self.per_unit, *tops])
                            * 1.15)
        self.headline.setText(lines[0])
        self.headline.setStyleSheet(f"color: {PASS_COLOR if passed else FAIL_COLOR};")
        self.detail.setText(lines[1])
        self.show()
