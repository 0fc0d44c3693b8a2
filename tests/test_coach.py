"""Tests of the live coaching cues (recorder.coach), driven through the real hold detector."""

from __future__ import annotations

import math

import numpy as np
import pytest

from analysis.holds import HoldDetector, LiveHold, config_for_band
from recorder.coach import (
    MESSAGES,
    RAMP_MESSAGES,
    Cue,
    coach,
    coach_ramp,
    ramp_cue,
    ramp_slope,
)
from schemas.session_protocol import Dose

FS = 1000.0
DOSE = Dose(unit="N", target_low=25.5, target_high=34.5, min_hold_s=8.0, max_hold_s=20.0)
CFG = config_for_band(*DOSE.band_n())


def cues_over(t: np.ndarray, f: np.ndarray, dose: Dose = DOSE, chunk: int = 20
              ) -> list[tuple[float, Cue, float]]:
    """Run the detector in 20 ms chunks (a 50 Hz UI refresh) and coach after each chunk."""
    det = HoldDetector(CFG)
    out = []
    for a in range(0, t.size, chunk):
        det.feed(t[a:a + chunk], f[a:a + chunk])
        st = coach(det.current, float(f[min(a + chunk, t.size) - 1]), dose)
        out.append((float(t[min(a + chunk, t.size) - 1]), st.cue, st.band_clock_s))
    return out


def distinct(seq: list[Cue]) -> list[Cue]:
    """Consecutive duplicates removed."""
    return [c for i, c in enumerate(seq) if i == 0 or c != seq[i - 1]]


def test_cue_sequence_over_a_hold() -> None:
    t = np.arange(0, 32_000) / FS
    # 1 s rest, ramp to 20 N (under the band), 3 s there, up to 30 N, held 25 s, released
    f = np.interp(t, [0, 1, 2, 5, 5.5, 29.5, 30.5, 32], [0, 0, 20, 20, 30, 30, 0, 0])
    f = f + np.random.default_rng(0).normal(0, 0.2, t.size) * (f > 0)
    seen = cues_over(t, f)
    assert distinct([c for _, c, _ in seen]) == [
        Cue.IDLE, Cue.BELOW, Cue.IN_BAND, Cue.COMPLETE, Cue.OVERTIME, Cue.IDLE]
    # complete 8 s after entering the band (25.5 N at 5.275 s); overtime 20 s after the 5 %
    # crossing (1.5 N at 1.075 s)
    first = {c: tt for tt, c, _ in reversed(seen)}
    assert first[Cue.COMPLETE] == pytest.approx(5.275 + 8.0, abs=0.05)
    assert first[Cue.OVERTIME] == pytest.approx(1.075 + 20.0, abs=0.05)
    clocks = [clk for _, c, clk in seen if c == Cue.IN_BAND]
    assert clocks == sorted(clocks) and clocks[-1] < DOSE.min_hold_s


def test_above_band_says_ease_off_even_after_completion() -> None:
    t = np.arange(0, 18_000) / FS
    # in band 1.425-4.225 s (2.8 s), over it until 8.275 s (clock paused), in band again:
    # complete at 8.275 + 5.2 s; released at 16 s
    f = np.interp(t, [0, 1, 1.5, 4, 4.5, 8, 8.5, 16, 16.3, 18],
                  [0, 0, 30, 30, 40, 40, 30, 30, 0, 0])
    seen = cues_over(t, f)
    assert distinct([c for _, c, _ in seen]) == [
        Cue.IDLE, Cue.BELOW, Cue.IN_BAND, Cue.ABOVE, Cue.IN_BAND, Cue.COMPLETE, Cue.IDLE]
    first = {c: tt for tt, c, _ in reversed(seen)}
    assert first[Cue.COMPLETE] == pytest.approx(8.275 + 5.2, abs=0.05)
    # pushing over the band after a complete dose: ABOVE pre-empts COMPLETE
    g = np.interp(t, [0, 1, 1.5, 12, 12.3, 18], [0, 0, 30, 30, 40, 40])
    assert distinct([c for _, c, _ in cues_over(t, g)])[-3:] == [
        Cue.IN_BAND, Cue.COMPLETE, Cue.ABOVE]


def test_release_after_completion_stays_complete_not_press_harder() -> None:
    t = np.arange(0, 14_000) / FS
    f = np.interp(t, [0, 1, 1.5, 11, 12.5, 14], [0, 0, 30, 30, 0, 0])  # slow 1.5 s release
    seen = distinct([c for _, c, _ in cues_over(t, f)])
    assert Cue.BELOW not in seen[seen.index(Cue.COMPLETE):]


def test_coach_state_fields() -> None:
    live = LiveHold(index=0, start_s=1.0, elapsed_s=6.0, time_in_band_s=3.0, time_above_s=0.0,
                    time_to_band_s=2.0, peak_n=31.0, last_n=30.0, confirmed=True,
                    releasing=False)
    st = coach(live, 30.0, DOSE)
    assert (st.cue, st.band_clock_s, st.remaining_s, st.message) == (
        Cue.IN_BAND, 3.0, 5.0, "HOLD")
    idle = coach(None, 0.0, DOSE)
    assert (idle.cue, idle.band_clock_s, idle.remaining_s) == (Cue.IDLE, 0.0, 0.0)
    assert coach(live, 20.0, DOSE).message == "PRESS HARDER"
    assert coach(live, 40.0, DOSE).message == "EASE OFF"


def test_messages_are_short_and_upper_case() -> None:
    assert set(MESSAGES) == set(Cue)
    for msg in MESSAGES.values():
        assert 0 < len(msg) <= 24 and msg == msg.upper()


def test_a_pressure_dose_is_coached_in_newtons_through_the_contact_area() -> None:
    live = LiveHold(index=0, start_s=1.0, elapsed_s=6.0, time_in_band_s=3.0, time_above_s=0.0,
                    time_to_band_s=2.0, peak_n=31.0, last_n=30.0, confirmed=True,
                    releasing=False)
    # 127.5-172.5 kPa on 2 cm² is 25.5-34.5 N: the same cues as DOSE at the same forces
    kpa = Dose(unit="kPa", target_low=127.5, target_high=172.5, min_hold_s=8.0,
               max_hold_s=20.0)
    for force_n in (20.0, 25.0, 26.0, 34.0, 35.0):
        assert coach(live, force_n, kpa, 2.0).cue == coach(live, force_n, DOSE).cue
    assert coach(live, 26.0, kpa, 2.0).cue == Cue.IN_BAND
    assert coach(live, 26.0, kpa, 4.0).cue == Cue.BELOW  # 51-69 N on 4 cm²
    with pytest.raises(ValueError):
        coach(live, 26.0, kpa)  # a pressure without a contact area has no band in N


@pytest.mark.parametrize("seed", range(5))
def test_ramp_slope_recovers_5_n_per_s_through_noise(seed: int) -> None:
    rng = np.random.default_rng(seed)
    t = 1000.0 + np.arange(0, 3000) / FS  # large stream times: centring matters
    f = np.where(t < 1001.0, 0.5, 0.5 + 5.0 * (t - 1001.0))  # flat, then the 5 N/s ramp
    f = f + rng.normal(0.0, 0.2, t.size)
    assert ramp_slope(t, f) == pytest.approx(5.0, rel=0.05)
    assert ramp_slope(t, f, window_s=1.0) == pytest.approx(5.0, rel=0.05)
    assert abs(ramp_slope(t[:900], f[:900])) < 0.5  # window covers only the flat start


def test_ramp_slope_degenerate_inputs() -> None:
    assert math.isnan(ramp_slope(np.array([1.0]), np.array([2.0])))
    assert math.isnan(ramp_slope(np.array([1.0, 1.0]), np.array([2.0, 3.0])))
    t = np.arange(100) / FS
    f = 2.0 * t
    f[50] = np.nan
    assert ramp_slope(t, f) == pytest.approx(2.0)


def test_ramp_cue() -> None:
    assert ramp_cue(3.0, 4.0, 6.0) == "too slow"
    assert ramp_cue(5.0, 4.0, 6.0) == "on pace"
    assert ramp_cue(7.5, 4.0, 6.0) == "too fast"
    assert ramp_cue(100.0, 4.0, math.inf) == "on pace"
    assert ramp_cue(math.nan, 4.0, 6.0) is None
    with pytest.raises(ValueError):
        ramp_cue(5.0, 6.0, 4.0)


CORRIDOR = (4.0, 6.0)  # the ppt-ramp preset's 40-60 kPa/s on 1 cm², in N/s


@pytest.mark.parametrize(("slope", "cue", "message", "pace"), [
    (math.nan, Cue.IDLE, "RAMP", None),
    (3.0, Cue.BELOW, "FASTER", "too slow"),
    (5.0, Cue.IN_BAND, "STEADY", "on pace"),
    (7.5, Cue.ABOVE, "SLOWER", "too fast"),
])
def test_a_threshold_ramp_is_coached_by_its_pace(slope, cue, message, pace) -> None:
    state = coach_ramp(True, False, 20.0, slope, CORRIDOR, 100.0)
    assert (state.cue, state.message, state.pace) == (cue, message, pace)


def test_ramp_cue_precedence_rest_button_cutoff() -> None:
    """At rest nothing is coached (no "too slow" at rest); the button ends the ramp whatever
    the pace; the cut-off lifts the probe without a threshold."""
    rest = coach_ramp(False, False, 0.0, 0.0, CORRIDOR, 100.0)
    assert (rest.cue, rest.message, rest.pace) == (Cue.IDLE, "READY", None)
    pressed = coach_ramp(True, True, 120.0, 9.0, CORRIDOR, 100.0)
    assert (pressed.cue, pressed.message, pressed.pace) == (Cue.COMPLETE, "THRESHOLD — LIFT", None)
    cut = coach_ramp(True, False, 100.0, 5.0, CORRIDOR, 100.0)
    assert (cut.cue, cut.message, cut.pace) == (Cue.ABOVE, "CUT-OFF — LIFT", None)
    assert all(len(m) <= 24 and m == m.upper() for _, m in RAMP_MESSAGES.values())
