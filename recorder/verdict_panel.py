"""The verdict panel of the live window: how the hold just finished went, on its colour.

The words are ``analysis.verdict``'s, made from the hold's row of ``analysis.metrics`` (the
report's definitions); this widget only lays them out, large enough to read from a metre, on
green (the dose met cleanly), amber (met, with a flag) or red (not met). The window keeps it
until the next hold starts.
"""

from __future__ import annotations

import html
import math

import numpy as np
from pyqtgraph.Qt import QtCore, QtWidgets

from analysis.holds import Hold
from analysis.metrics import hold_metrics
from analysis.verdict import HoldVerdict, judge, verdict_lines
from recorder.panels import COLORS
from schemas.session_protocol import Dose

#: The verdict's colour: the dose met cleanly, met with a flag (e.g. overshoot), not met.
VERDICT_COLORS = {"met": COLORS["in_band"], "flagged": "#d29922", "not met": COLORS["above"]}
HEIGHT_PX = 84  # fixed: the plots below do not move when a verdict comes or goes


def verdict_color(verdict: HoldVerdict) -> str:
    """Green when the dose was met cleanly, amber when met with a flag, red when not met."""
    if not verdict.dose_met:
        return VERDICT_COLORS["not met"]
    return VERDICT_COLORS["met" if verdict.clean else "flagged"]


class VerdictPanel(QtWidgets.QLabel):
    """A headline and a line of details, or nothing; ``verdict`` and ``hold_end_s`` say what
    is shown (None, and infinity, when nothing is)."""

    def __init__(self, unit: str, per_unit: float) -> None:
        super().__init__("")
        self.unit, self.per_unit = unit, per_unit
        self.verdict: HoldVerdict | None = None
        self.hold_end_s = math.inf
        self.setTextFormat(QtCore.Qt.TextFormat.RichText)
        self.setFixedHeight(HEIGHT_PX)

    def judge_hold(self, hold: Hold, t: np.ndarray, force_n: np.ndarray, dose: Dose,
                   area_cm2: float, trigger_point: str, repetition: int,
                   band_n: tuple[float, float]) -> None:
        """Show the verdict on ``hold`` (its samples ``t``, ``force_n``) against ``dose`` and
        the band ``band_n`` (N) it was detected by (``recorder.hold_tracker.PointHold``)."""
        m = hold_metrics(t, force_n, hold, dose, area_cm2=area_cm2,
                         trigger_point=trigger_point, repetition=repetition, band_n=band_n)
        self.set_verdict(judge(m))
        self.hold_end_s = hold.end_s

    def set_verdict(self, verdict: HoldVerdict | None) -> None:
        """Show ``verdict``, or clear the panel."""
        self.verdict = verdict
        if verdict is None:
            self.hold_end_s = math.inf
            self.setText("")
            self.setStyleSheet("background: transparent;")
            return
        head, *details = (html.escape(line) for line in
                          verdict_lines(verdict, self.unit, self.per_unit))
        sep = "&nbsp;&nbsp;│&nbsp;&nbsp;"
        self.setText(f'<span style="font-size: 20pt; font-weight: bold;">{head}</span><br>'
                     f'<span style="font-size: 14pt;">{sep.join(details)}</span>')
        self.setStyleSheet(f"background-color: {verdict_color(verdict)}; "
                           f"color: {COLORS['background']}; padding: 4px 12px; "
                           "border-radius: 6px;")
