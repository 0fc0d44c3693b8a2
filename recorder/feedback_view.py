"""What the trainee is shown, hold by hold, under a feedback schedule: the pure decision.

Why pure: the schedule (``schemas.training.Training.condition``) says what each hold's
feedback condition is; this module turns a condition, the blind key and the force into what
the window shows, so the rules can be read and tested without Qt, and the window
(``recorder.training_view``) only applies them to its widgets.

The rules, per mode (issue 13):

- ``concurrent``: today's window, live feedback throughout.
- ``bandwidth``: the live trace and readout stay, but the cue's words and colours, and the
  band's colour, appear only while the force is more than ``bandwidth_pct`` % of the target
  away from the target (the band's midpoint); inside that zone they are neutral.
- ``faded``: live on the holds the schedule marks live, else nothing live (as blind).
- ``terminal``: nothing live; after each hold a knowledge-of-results view of that hold.
- ``summary``: nothing live; after every Nth hold a summary of the last N.
- ``none``: nothing live and no results: a retention or transfer test.

The B key's blind trial overrides all of them to no live feedback. A self-estimate, when the
schedule asks for one, comes after the hold and before any result of it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from schemas.training import HoldCondition, Training

#: What the cue says while nothing live is shown, by the reason.
BLIND_MESSAGE = "BLIND TRIAL — feedback off"
NO_FEEDBACK_MESSAGE = "NO FEEDBACK — press by feel"
NEUTRAL_MESSAGE = "·"  # bandwidth: inside the zone, a neutral cue (no words, no colour)
ESTIMATE_PROMPT = "How was it?   J too light · K right · L too firm"
#: The self-estimate keys and the value each records (``RecordingSession.set_self_estimate``).
ESTIMATE_KEYS = {"J": -1, "K": 0, "L": 1}


@dataclass(frozen=True)
class LiveView:
    """What is shown live now: ``live`` the trace, readout, hold clock and hold plots;
    ``cues`` the cue's words and colour and the band's colour (False: neutral); ``message``
    what the cue says when nothing live is shown ("" when live)."""

    live: bool
    cues: bool
    message: str


@dataclass(frozen=True)
class AfterHold:
    """What follows a finished hold: ``estimate`` the self-estimate prompt (first);
    ``verdict`` the per-hold verdict panel (a hold that had live feedback); ``results`` the
    knowledge-of-results view; ``summary`` the summary of the last holds."""

    estimate: bool
    verdict: bool
    results: bool
    summary: bool


@dataclass(frozen=True)
class FeedbackState:
    """What the window shows, read from its widgets (``LiveWindow.feedback_state``): for
    tests, which must be able to see the window show the wrong thing. ``live_visible``: every
    live widget is shown, ``live_any``: at least one is; ``cues_visible``: the cue's words
    and the band's colour; ``verdict_visible``: a hold's verdict. ``hold_number`` is the
    hold in progress (``in_hold``) or the next one, as the window's last frame saw it.
    ``point`` is the point shown, ``cue_text`` what the cue says, ``band_shown`` the band
    drawn on the live trace (display units; None: none drawn), ``note_text`` the point's
    note (a subject-anchored point's target follows it, ``recorder.anchor``)."""

    live_visible: bool
    live_any: bool
    cues_visible: bool
    verdict_visible: bool
    results_visible: bool
    summary_visible: bool
    estimate_prompt: bool
    block_text: str
    mastery_text: str
    hold_number: int
    in_hold: bool
    point: int = -1
    cue_text: str = ""
    band_shown: tuple[float, float] | None = None
    note_text: str = ""


def band_target(band_n: tuple[float, float]) -> float:
    """The target of a band: its midpoint (NaN if either side is not finite)."""
    low, high = band_n
    return (low + high) / 2 if math.isfinite(low) and math.isfinite(high) else math.nan


def in_neutral_zone(force_n: float, band_n: tuple[float, float], pct: float) -> bool:
    """Bandwidth: the force is within ``pct`` % of the target (the band's midpoint), where
    no cue is given. False when the force or the target is unknown."""
    target = band_target(band_n)
    if not (math.isfinite(force_n) and math.isfinite(target) and math.isfinite(pct)):
        return False
    return abs(force_n - target) <= pct / 100.0 * target


def live_view(condition: HoldCondition | None, blind: bool, force_n: float,
              band_n: tuple[float, float]) -> LiveView:
    """What is shown live for the hold under ``condition`` (None: no training, today's
    window), with the blind key ``blind``, the force now and the band (newtons)."""
    if blind:
        return LiveView(False, False, BLIND_MESSAGE)
    if condition is None:
        return LiveView(True, True, "")
    if not condition.live:
        return LiveView(False, False, NO_FEEDBACK_MESSAGE)
    if condition.feedback == "bandwidth":
        return LiveView(True, not in_neutral_zone(force_n, band_n, condition.bandwidth_pct), "")
    return LiveView(True, True, "")


def after_hold(condition: HoldCondition | None, had_live: bool) -> AfterHold:
    """What follows a hold finished under ``condition``; ``had_live`` says it was shown live
    (the condition's live and no blind trial when it ended)."""
    if condition is None:
        return AfterHold(False, had_live, False, False)
    return AfterHold(condition.self_estimate, had_live, condition.results_after,
                     condition.summary_after)


def mode_text(training: Training, block_index: int) -> str:
    """A block and its feedback in words: "faded practice (faded feedback)"."""
    block = training.blocks[block_index]
    words = {"concurrent": "live feedback", "bandwidth": "bandwidth feedback",
             "faded": "faded feedback", "terminal": "results after each hold",
             "summary": f"a summary every {block.summary_every} holds",
             "none": "no feedback"}[block.feedback]
    return f"{block.name} ({words})"


def block_start(training: Training, block_index: int) -> int:
    """The session's hold number of a block's first hold."""
    return sum(b.holds for b in training.blocks[:block_index])


def block_text(training: Training, condition: HoldCondition) -> str:
    """Where the trainee is and what comes next: "Block 2/5 · faded practice (faded
    feedback) · hold 3 of 10 · next: post-test (no feedback)"; past the last block's holds
    it says so (the last block continues)."""
    b = condition.block
    holds = training.blocks[b].holds
    position = condition.hold_number - block_start(training, b) + 1
    where = (f"hold {position} of {holds}" if position <= holds
             else f"hold {position} (past the plan's {holds})")
    after = (f"next: {mode_text(training, b + 1)}" if b + 1 < len(training.blocks)
             else "next: end of training")
    return f"Block {b + 1}/{len(training.blocks)} · {mode_text(training, b)} · {where} · {after}"
