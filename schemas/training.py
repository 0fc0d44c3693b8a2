"""Feedback schedules: which holds of a training session get which feedback.

A session protocol may carry a ``[training]`` table of blocks, each a number of holds under
one feedback mode (motor-learning practice: live feedback that is then removed decays fast,
less or faded feedback retains better, and no-feedback tests are how training is judged)::

    [training]
    seed = 7                   # faded: which holds get live feedback, reproducibly
    self_estimate = true       # "too light / right / too firm?" after holds without feedback

    [[training.block]]
    name = "pre-test"
    holds = 3
    feedback = "none"

    [[training.block]]
    name = "faded practice"
    holds = 10
    feedback = "faded"
    live_share = 0.5

``Training.condition(hold_number)`` is the one home of the schedule: the recorder, the window,
the simulated learner and the analysis all ask it what a hold's feedback was. Holds are
counted from 0 over the whole session, complete holds only; past the last block the last
block goes on (its faded pattern and its summaries repeat).

Pure: no I/O. ``parse_training`` checks the TOML table through the protocol parser's checks
(``TableChecks``: ``session_protocol._Builder``), so a mistake reads ``FILE:LINE: what is
wrong`` like any other in a protocol; every key is documented in schemas/PROTOCOL.md.
"""

from __future__ import annotations

import bisect
import itertools
import math
from dataclasses import dataclass, fields
from functools import cached_property
from typing import Any, Protocol

from schemas.protocol_errors import ProtocolError, show, suggest
from schemas.protocol_limits import block_problem

__all__ = ["ESTIMATES", "FEEDBACK_MODES", "HoldCondition", "TableChecks", "Training",
           "TrainingBlock", "parse_training"]

FEEDBACK_MODES = ("concurrent", "bandwidth", "faded", "terminal", "summary", "none")
"""concurrent: the live trace, band and cues on every hold (the window as it always was);
bandwidth: cues and colour only while the force is outside ±bandwidth_pct % of the target;
faded: live feedback on a share (live_share) of the block's holds, chosen by a seeded
schedule; terminal: nothing live, a knowledge-of-results view after each hold; summary:
nothing live, a summary view after every summary_every holds; none: nothing at all (a
retention or transfer test)."""

_LIVE_MODES = ("concurrent", "bandwidth")

ESTIMATES = {-1: "light", 0: "right", 1: "firm"}
"""A trainee's self-estimate of a hold (the ``self_estimate`` event's value -> its text): too
light, right, too firm."""


@dataclass(frozen=True)
class TrainingBlock:
    """A run of holds under one feedback mode (see ``FEEDBACK_MODES``)."""

    name: str
    holds: int                  # holds in the block (complete holds count)
    feedback: str               # one of FEEDBACK_MODES
    live_share: float = 1.0     # faded: share of this block's holds with live feedback
    bandwidth_pct: float = 15.0  # bandwidth: cues only while |force - target| > pct % of target
    summary_every: int = 5      # summary: a summary view after every N holds of the block


@dataclass(frozen=True)
class HoldCondition:
    """What the trainee gets around one hold, as the schedule says (the B key's blind trial
    is the recorder's, on top of this)."""

    hold_number: int       # 0-based index of the hold in the session (complete holds counted)
    block: int             # index into Training.blocks (past the end: the last block continues)
    block_name: str
    feedback: str          # the block's mode
    live: bool             # live trace/band/cues during the hold: concurrent, bandwidth, faded-on
    results_after: bool    # knowledge-of-results view after this hold (terminal)
    summary_after: bool    # summary view after this hold (summary, every Nth hold of the block)
    self_estimate: bool    # ask the trainee for a self-estimate after this hold, before results
    bandwidth_pct: float   # NaN unless feedback == "bandwidth"


@dataclass(frozen=True)
class Training:
    """The blocks of a training session, in order, and how the session is judged."""

    blocks: tuple[TrainingBlock, ...]
    seed: int = 0               # faded: which holds get live feedback (seeded, reproducible)
    self_estimate: bool = False
    mastery_count: int = 4      # mastery: mastery_count of the last mastery_window holds
    mastery_window: int = 5     #          scoring >= mastery_score
    mastery_score: float = 75.0

    def __post_init__(self) -> None:
        if not self.blocks:
            raise ValueError("a training needs at least one block")

    @property
    def total_holds(self) -> int:
        """Holds in all blocks together: the session's planned length."""
        return sum(b.holds for b in self.blocks)

    def block_of(self, hold_number: int) -> tuple[int, int]:
        """(block index, position of the hold within that block), both 0-based; past the
        last block the last block continues (position keeps counting)."""
        if hold_number < 0:
            raise ValueError(f"hold_number must be >= 0, not {hold_number}")
        index = bisect.bisect_right(self._starts, hold_number) - 1
        return index, hold_number - self._starts[index]

    def condition(self, hold_number: int) -> HoldCondition:
        """The feedback condition of hold ``hold_number`` (0-based, complete holds counted).

        A self-estimate is asked (with ``self_estimate`` on) only after a hold without live
        feedback: with the trace on screen there is no error left to detect."""
        index, position = self.block_of(hold_number)
        block = self.blocks[index]
        mode = block.feedback
        if mode == "faded":
            live = position % block.holds in self._faded_live[index]
        else:
            live = mode in _LIVE_MODES
        return HoldCondition(
            hold_number=hold_number, block=index, block_name=block.name, feedback=mode,
            live=live, results_after=mode == "terminal",
            summary_after=mode == "summary" and (position + 1) % block.summary_every == 0,
            self_estimate=self.self_estimate and not live,
            bandwidth_pct=block.bandwidth_pct if mode == "bandwidth" else math.nan)

    @cached_property
    def _starts(self) -> tuple[int, ...]:
        """The hold number each block starts at."""
        return (0, *itertools.accumulate(b.holds for b in self.blocks[:-1]))

    @cached_property
    def _faded_live(self) -> dict[int, frozenset[int]]:
        """Per faded block: the positions with live feedback, exactly round(share * holds) of
        them, chosen by a permutation seeded by (seed, block index)."""
        import numpy as np  # here: the command-line parser loads protocols without numpy

        out = {}
        for index, block in enumerate(self.blocks):
            if block.feedback == "faded":
                order = np.random.default_rng([self.seed, index]).permutation(block.holds)
                out[index] = frozenset(int(p) for p in order[:round(block.live_share
                                                                     * block.holds)])
        return out

    def to_table(self) -> dict[str, Any]:
        """The ``[training]`` table as ``parse_training`` reads it back to an equal Training:
        every key written, each block's mode-specific keys only where they apply."""
        table: dict[str, Any] = {key: getattr(self, key) for key in _TRAINING_KEYS
                                 if key != "block"}
        table["block"] = [_block_table(b) for b in self.blocks]
        return table


_TRAINING_KEYS = ("seed", "self_estimate", "mastery_count", "mastery_window", "mastery_score",
                  "block")
_BLOCK_KEYS = tuple(f.name for f in fields(TrainingBlock))
_MODE_KEYS = {"faded": "live_share", "bandwidth": "bandwidth_pct", "summary": "summary_every"}


def _block_table(block: TrainingBlock) -> dict[str, Any]:
    table: dict[str, Any] = {"name": block.name, "holds": block.holds,
                             "feedback": block.feedback}
    if key := _MODE_KEYS.get(block.feedback):
        table[key] = getattr(block, key)
    return table


# ---------------------------------------------------------------------------------- parsing

class TableChecks(Protocol):
    """What ``parse_training`` needs of the protocol parser (``session_protocol._Builder``):
    errors that name their line, and its typed getters."""

    def fail(self, table: tuple, key: str | None, message: str) -> ProtocolError: ...
    def string(self, table: tuple, values: dict, key: str, default: str | None = None
               ) -> str: ...
    def number(self, table: tuple, key: str, value: Any) -> float: ...
    def check_keys(self, table: tuple, values: dict, known: tuple[str, ...]) -> None: ...


def parse_training(checks: TableChecks, raw: Any) -> Training:
    """Check a ``[training]`` table (as tomllib parsed it) and build the Training; raises
    ``ProtocolError`` naming the line of the first mistake."""
    top = ("training",)
    if not isinstance(raw, dict):
        raise checks.fail((), "training", "training must be a table: write [training] and "
                          "[[training.block]] tables below it")
    checks.check_keys(top, raw, _TRAINING_KEYS)
    blocks = raw.get("block")
    if blocks is None or blocks == []:
        raise checks.fail(top, None, "[training] has no blocks: add at least one "
                          "[[training.block]] with name, holds and feedback")
    if not isinstance(blocks, list) or not all(isinstance(b, dict) for b in blocks):
        raise checks.fail(top, "block", "block must be written as [[training.block]] tables")
    values: dict[str, Any] = {}
    for key in ("seed", "mastery_count", "mastery_window"):
        if key in raw:
            values[key] = _whole(checks, top, key, raw[key], 0 if key == "seed" else 1)
    if "mastery_score" in raw:
        values["mastery_score"] = checks.number(top, "mastery_score", raw["mastery_score"])
    if "self_estimate" in raw:
        if not isinstance(raw["self_estimate"], bool):
            raise checks.fail(top, "self_estimate", "self_estimate must be true or false, "
                              f"not {show(raw['self_estimate'])}")
        values["self_estimate"] = raw["self_estimate"]
    training = Training(tuple(_block(checks, i, b) for i, b in enumerate(blocks, 1)), **values)
    if training.mastery_count > training.mastery_window:
        raise checks.fail(top, "mastery_count", f"mastery_count ({training.mastery_count}) "
                          f"is above mastery_window ({training.mastery_window}): mastery "
                          "counts passing holds among the last mastery_window")
    if training.mastery_score > 100:
        raise checks.fail(top, "mastery_score", "mastery_score is a hold score, 0 to 100, not "
                          f"{training.mastery_score:g}")
    return training


def _block(checks: TableChecks, index: int, raw: dict) -> TrainingBlock:
    table = ("training", "block", index)
    where = f"[[training.block]] {index}"
    checks.check_keys(table, raw, _BLOCK_KEYS)
    name = checks.string(table, raw, "name", "") or f"block {index}"
    mode = checks.string(table, raw, "feedback")
    if mode not in FEEDBACK_MODES:
        raise checks.fail(table, "feedback", f"{where}: unknown feedback {mode!r} (use one "
                          f"of {', '.join(FEEDBACK_MODES)}){suggest(mode, FEEDBACK_MODES)}")
    if "holds" not in raw:
        raise checks.fail(table, None, f"{where} has no holds: say how many holds it has")
    values: dict[str, Any] = {"holds": _whole(checks, table, "holds", raw["holds"], 1)}
    if "summary_every" in raw:
        values["summary_every"] = _whole(checks, table, "summary_every", raw["summary_every"], 1)
    for key in ("live_share", "bandwidth_pct"):
        if key in raw:
            values[key] = checks.number(table, key, raw[key])
    for key in ("live_share", "bandwidth_pct", "summary_every"):
        if key in raw and _MODE_KEYS.get(mode) != key:
            raise checks.fail(table, key, f"{where}: {key} applies to feedback = "
                              f"\"{_owner(key)}\" only, not {mode!r}")
    block = TrainingBlock(name=name, feedback=mode, **values)
    if problem := _block_problem(block):
        key, message = problem
        raise checks.fail(table, key, f"{where}: {message}")
    return block


def _owner(key: str) -> str:
    return next(mode for mode, owned in _MODE_KEYS.items() if owned == key)


def _block_problem(block: TrainingBlock) -> tuple[str, str] | None:
    """The first impossible value of a block as (key, what is wrong), or None; the
    plausible ranges are ``protocol_limits``'."""
    if not 0 <= block.live_share <= 1:
        return "live_share", f"live_share must be between 0 and 1, not {block.live_share:g}"
    if block.bandwidth_pct <= 0:
        return "bandwidth_pct", f"bandwidth_pct must be above 0, not {block.bandwidth_pct:g}"
    return block_problem(block.holds, block.bandwidth_pct)


def _whole(checks: TableChecks, table: tuple, key: str, value: Any, least: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < least:
        raise checks.fail(table, key, f"{key} must be a whole number of at least {least}, "
                          f"not {show(value)}")
    return value
