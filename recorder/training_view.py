"""The live window's side of a feedback schedule (issue 13): after each hold, the
self-estimate prompt, then the knowledge-of-results or summary view; the block line ("Block
2/5 · faded practice (faded feedback) · hold 3 of 10 · next: …") and the mastery line.

Why apart from ``recorder.window``: the window draws frames and takes keys; this holds the
state a schedule adds between holds (which hold's results are pending, the scores so far) and
applies ``recorder.feedback_view``'s decisions to the widgets ``recorder.window_layout`` made
(``block_label``, ``mastery_label``, ``estimate_label``, ``kr_view``, ``summary_view``).
The schedule itself is only ever asked of ``Training.condition``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from analysis.score import mastery, score_hold
from recorder.feedback_view import AfterHold, after_hold, block_text
from recorder.hold_tracker import PointHold
from recorder.kr_view import ScoredHold
from schemas.training import HoldCondition, Training

if TYPE_CHECKING:
    from recorder.window import LiveWindow


class TrainingView:
    """The window's training state: every scored hold, and what follows the last one."""

    def __init__(self, window: LiveWindow, training: Training) -> None:
        self.window = window
        self.training = training
        self.scored: list[ScoredHold] = []
        self.after: AfterHold | None = None  # of the last finished hold, until the next starts
        self.estimate_pending = False
        self._last: PointHold | None = None  # the last finished hold
        self._last_number = -1
        window.block_label.show()
        window.mastery_label.show()

    @property
    def verdict_allowed(self) -> bool:
        """The last hold's verdict panel may show: it had live feedback, and any
        self-estimate asked for it was given."""
        return self.after is not None and self.after.verdict and not self.estimate_pending

    def hold_finished(self, number: int, rec: PointHold, curve: tuple[np.ndarray, np.ndarray],
                      t: np.ndarray, force_n: np.ndarray) -> None:
        """Hold ``number`` (0-based, the session's complete holds) ended: score it, then ask
        for the self-estimate or show its results, as its condition says."""
        w = self.window
        dose = w.dose_of(rec.point_index)
        if dose is not None and not dose.is_threshold_ramp and len(t):
            score = score_hold(t, force_n, rec.hold.start_s, rec.hold.end_s, dose,
                               w.session.contact_area_cm2,
                               band_n=rec.band_n)
            self.scored.append(ScoredHold(number, curve, score))
        self._last, self._last_number = rec, number
        condition = self.training.condition(number)
        self.after = after_hold(condition, condition.live and not w.session.blind)
        self.estimate_pending = self.after.estimate
        if not self.estimate_pending:
            self._reveal()

    def answer(self, value: int) -> bool:
        """The trainee's self-estimate of the last hold (-1 too light, 0 right, +1 too firm):
        recorded, then that hold's results are shown. False when none was asked for."""
        if not self.estimate_pending:
            return False
        self.window.session.set_self_estimate(value)
        self.estimate_pending = False
        self._reveal()
        return True

    def hold_started(self) -> None:
        """A new hold began: the last one's prompt and results go away."""
        self.after = None
        self.estimate_pending = False
        self.window.kr_view.hide()
        self.window.summary_view.hide()

    def frame(self, condition: HoldCondition | None) -> None:
        """Per frame: the block line for the hold in progress or next, the prompt, and the
        mastery line while any feedback is on screen."""
        w = self.window
        w.set_text("block", w.block_label,
                   "" if condition is None else block_text(self.training, condition))
        w.estimate_label.setVisible(self.estimate_pending)
        shown = (w.readout.isVisible() or w.kr_view.isVisible() or w.summary_view.isVisible())
        w.set_text("mastery", w.mastery_label, self.mastery_text() if shown else "")

    def mastery_text(self) -> str:
        """"mastery: 3 of last 5 >= 75 (need 4)" over this session's scored holds."""
        t = self.training
        scores = [h.score.score for h in self.scored]
        return mastery(scores, t.mastery_count, t.mastery_window, t.mastery_score).text()

    def _reveal(self) -> None:
        """The last hold's results view or summary, if its condition gives one."""
        after, w = self.after, self.window
        if after is None or self._last is None or not self.scored:
            return
        if self.scored[-1].number != self._last_number:  # the last hold was not scored
            return
        point = self._last.point_index
        dose, band = w.dose_of(point), self._last.band_n
        threshold = self.training.mastery_score
        if after.results:
            w.kr_view.show_hold(self.scored[-1], dose, band, threshold)
        if after.summary:
            every = self.training.blocks[self.training.condition(self._last_number).block] \
                .summary_every
            first = self._last_number - every + 1
            holds = [h for h in self.scored if h.number >= first]
            w.summary_view.show_summary(holds, dose, band, threshold)
