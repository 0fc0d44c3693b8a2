"""The feedback schedule alone (``schemas.training``): which hold gets which feedback.

Pure: every expectation is counted by hand from the block list, not read back from the code
under test."""

from __future__ import annotations

import math

import pytest

from schemas.training import FEEDBACK_MODES, Training, TrainingBlock


def block(feedback: str, holds: int, **kw) -> TrainingBlock:
    return TrainingBlock(name=f"{feedback} x{holds}", holds=holds, feedback=feedback, **kw)


FADED = Training((block("none", 3), block("faded", 10, live_share=1.0),
                  block("faded", 10, live_share=0.5), block("faded", 10, live_share=0.2),
                  block("none", 3)), seed=7)


def live_in(training: Training, first: int, count: int) -> list[int]:
    """The hold numbers among ``first .. first + count - 1`` with live feedback."""
    return [n for n in range(first, first + count) if training.condition(n).live]


def test_blocks_follow_each_other_and_total_holds_adds_them_up():
    assert FADED.total_holds == 36
    blocks = [FADED.condition(n).block for n in range(36)]
    assert blocks == [0] * 3 + [1] * 10 + [2] * 10 + [3] * 10 + [4] * 3
    assert FADED.condition(3).block_name == "faded x10"
    assert FADED.condition(3).hold_number == 3


def test_faded_gives_exactly_the_share_of_live_holds_per_block():
    """100 % -> 10 of 10, 50 % -> 5, 20 % -> 2; the no-feedback tests none."""
    assert live_in(FADED, 0, 3) == []
    assert len(live_in(FADED, 3, 10)) == 10
    assert len(live_in(FADED, 13, 10)) == 5
    assert len(live_in(FADED, 23, 10)) == 2
    assert live_in(FADED, 33, 3) == []


def test_faded_share_rounds_half_to_even_like_round():
    """round(0.5 * 5) is 2 in Python (half to even), round(0.3 * 5) is 2, round(0.7 * 5) 4."""
    for share, live in ((0.5, 2), (0.3, 2), (0.7, 4), (0.0, 0)):
        training = Training((block("faded", 5, live_share=share),))
        assert len(live_in(training, 0, 5)) == live, share


def test_faded_choice_is_seeded_reproducible_and_differs_by_seed_and_block():
    again = Training(FADED.blocks, seed=7)
    assert live_in(again, 13, 23) == live_in(FADED, 13, 23)
    chosen = {seed: tuple(live_in(Training(FADED.blocks, seed=seed), 13, 10))
              for seed in range(8)}
    assert len(set(chosen.values())) > 1  # the seed changes which holds are live
    # two identical 50 % blocks in one schedule get different choices (seed, block index)
    twin = Training((block("faded", 10, live_share=0.5), block("faded", 10, live_share=0.5)),
                    seed=7)
    first = live_in(twin, 0, 10)
    second = [n - 10 for n in live_in(twin, 10, 10)]
    assert len(first) == len(second) == 5 and first != second


def test_past_the_end_the_last_block_continues_with_its_pattern():
    training = Training((block("concurrent", 2), block("faded", 4, live_share=0.5)), seed=1)
    pattern = [training.condition(n).live for n in range(2, 6)]
    assert sum(pattern) == 2
    for n in range(6, 20):
        c = training.condition(n)
        assert c.block == 1 and c.feedback == "faded" and c.hold_number == n
        assert c.live == pattern[(n - 2) % 4]


def test_summary_after_every_nth_hold_of_its_block_and_beyond():
    training = Training((block("concurrent", 2), block("summary", 6, summary_every=3)))
    after = [n for n in range(14) if training.condition(n).summary_after]
    # the summary block starts at hold 2: its 3rd and 6th holds (2, 5), then 11 and 14 ...
    assert after == [4, 7, 10, 13]
    assert not any(training.condition(n).live for n in range(2, 14))


MODES = [
    ("concurrent", True, False),
    ("bandwidth", True, False),
    ("terminal", False, True),
    ("summary", False, False),
    ("none", False, False),
]  # and "faded", above


@pytest.mark.parametrize("mode, live, results_after", MODES)
def test_each_mode_sets_live_and_results_after(mode, live, results_after):
    c = Training((block(mode, 4, summary_every=2),)).condition(0)
    assert (c.feedback, c.live, c.results_after) == (mode, live, results_after)
    assert c.summary_after is False  # the first hold of 2: not yet a summary
    assert (c.bandwidth_pct == 15.0) if mode == "bandwidth" else math.isnan(c.bandwidth_pct)


def test_the_modes_above_and_faded_are_all_the_modes():
    assert {mode for mode, _, _ in MODES} | {"faded"} == set(FEEDBACK_MODES)


def test_self_estimate_is_asked_only_after_holds_without_live_feedback():
    training = Training(FADED.blocks, seed=7, self_estimate=True)
    for n in range(40):
        c = training.condition(n)
        assert c.self_estimate == (not c.live)
    assert not any(FADED.condition(n).self_estimate for n in range(40))  # off by default


def test_bandwidth_pct_is_the_blocks():
    training = Training((block("bandwidth", 3, bandwidth_pct=10.0),))
    assert training.condition(2).bandwidth_pct == 10.0


def test_bad_hold_numbers_and_empty_schedules_are_refused():
    with pytest.raises(ValueError, match="hold_number must be >= 0"):
        FADED.condition(-1)
    with pytest.raises(ValueError, match="at least one block"):
        Training(())
