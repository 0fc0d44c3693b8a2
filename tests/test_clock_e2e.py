"""The fitted device clock end to end, against the simulator's truth.

The simulated sensor runs in its own process (``palpation simulate``) with a device clock
5000 ppm fast (a ceramic resonator) or 50 ppm slow (a crystal), delivering in USB-like bursts
1-16 ms apart with host scheduling hiccups, over a real pseudo-terminal; a RecordingSession
records each for 62 s. Every stored timestamp is compared with the true instant the sample was
taken (``time.monotonic()`` seconds in the truth, minus the session's time zero). Run with
``-s`` to see the figures.
"""

from __future__ import annotations

import json
import time

import numpy as np
import pytest

from firmware_bridge.sim.truth import sample_instants
from recorder.session import RecordingSession, SessionOptions
from schemas.clockfit import lower_envelope_fit
from schemas.reader import open_recording
from schemas.validate import validate
from tests.conftest import Simulator

RECORD_S = 62.0
SETTLE_S = 5.0  # the fit's first seconds are not judged
SPAN_S = 20.0  # a hold's length
SPAN_SETTLE_S = 10.0
PPMS = (5000.0, -50.0)


@pytest.fixture(scope="module")
def recordings(tmp_path_factory):
    """Both clocks recorded at once (one minute of wall time for the two), each recording
    checked with ``validate --deep``: per ppm, the recording, the truth and the session's time
    zero."""
    runs = {}
    try:
        for ppm in PPMS:
            where = tmp_path_factory.mktemp(f"ppm{ppm:+g}")
            sim = Simulator(where, "--clock-ppm", f"{ppm:g}", "--burst-ms", "1,16",
                            "--hiccups", "0.2", "--seed", "3")
            session = RecordingSession(SessionOptions(port=sim.path, out=where / "s.h5"))
            runs[ppm] = (sim, session)
            session.start()
        time.sleep(RECORD_S)
    finally:
        for sim, session in runs.values():
            session.stop()
            sim.stop()
    for _, session in runs.values():
        assert session.error is None
        validate(session.options.out, deep=True)
    return {ppm: (open_recording(session.options.out), json.loads(sim.truth.read_text()),
                  session.start_monotonic)
            for ppm, (sim, session) in runs.items()}


def true_times(rec, truth, t0) -> np.ndarray:
    """The true session time of every sample of the recording."""
    assert len(truth["epochs"]) == 1 and truth["epochs"][0]["clock_ppm"] is not None
    return sample_instants(truth, rec.sequence) - t0


@pytest.mark.parametrize("ppm", PPMS)
def test_timestamps_are_within_2_ms_p99_of_the_true_instants(recordings, ppm):
    rec, truth, t0 = recordings[ppm]
    true = true_times(rec, truth, t0)
    assert true[-1] - true[0] > RECORD_S - 3 and (np.diff(rec.sequence) == 1).all()
    error_ms = (rec.timestamps - true)[true >= true[0] + SETTLE_S] * 1e3
    p50, p99 = np.percentile(np.abs(error_ms), [50, 99])
    anchored_ms = (rec.host_time[0] + (rec.device_tick_us - rec.device_tick_us[0]) / 1e6
                   - true) * 1e3  # the first read's anchor this replaces
    print(f"\n{ppm:+g} ppm: {len(error_ms)} samples after {SETTLE_S:g} s, timestamp error "
          f"p50 {p50:.3f} ms, p99 {p99:.3f} ms, max {np.abs(error_ms).max():.3f} ms "
          f"(anchored: p99 {np.percentile(np.abs(anchored_ms), 99):.1f} ms)")
    assert p99 <= 2.0
    assert (np.diff(rec.timestamps) > 0).all()


@pytest.mark.parametrize("ppm", PPMS)
def test_20_s_spans_from_10_s_on_last_20_s_to_within_1_ms(recordings, ppm):
    """Spans of 20 s true time, one starting every second from 10 s in (the fit's rate is
    still settling before: those from 5 s on are printed too)."""
    rec, truth, t0 = recordings[ppm]
    true = true_times(rec, truth, t0)

    def span_errors_ms(settle_s: float) -> np.ndarray:
        starts = np.searchsorted(true, np.arange(true[0] + settle_s, true[-1] - SPAN_S, 1.0))
        ends = np.searchsorted(true, true[starts] + SPAN_S)
        return ((rec.timestamps[ends] - rec.timestamps[starts])
                - (true[ends] - true[starts])) * 1e3

    judged, early = span_errors_ms(SPAN_SETTLE_S), span_errors_ms(SETTLE_S)
    device_ms = (np.diff(rec.device_tick_us[[0, -1]]) / 1e3 / np.diff(true[[0, -1]])
                 * SPAN_S)[0] - SPAN_S * 1e3  # what the device clock alone makes of 20 s
    print(f"\n{ppm:+g} ppm: {len(judged)} spans of {SPAN_S:g} s from {SPAN_SETTLE_S:g} s on, "
          f"duration error max {np.abs(judged).max():.3f} ms (from {SETTLE_S:g} s on: "
          f"{np.abs(early).max():.3f} ms; the device clock alone: {device_ms:+.1f} ms)")
    assert len(judged) >= 25
    assert np.abs(judged).max() <= 1.0


@pytest.mark.parametrize("ppm", PPMS)
def test_the_stored_clock_pairs_refit_the_device_clock(recordings, ppm):
    """One least-delay observation per second of device time, each after its sample was
    taken and close to it; a fit of them alone gives the device clock's drift."""
    rec, truth, t0 = recordings[ppm]
    pairs = rec.clock_pairs
    seconds = pairs["device_tick_us"] // 1_000_000
    assert len(pairs) >= RECORD_S - 4 and (np.diff(seconds) == 1).all()
    rows = np.searchsorted(rec.device_tick_us, pairs["device_tick_us"])
    assert np.array_equal(rec.device_tick_us[rows], pairs["device_tick_us"])
    delay_ms = (pairs["host_time"] - true_times(rec, truth, t0)[rows]) * 1e3
    assert (delay_ms >= 0).all() and np.median(delay_ms) < 2.0
    refit = lower_envelope_fit(pairs["device_tick_us"] / 1e6, pairs["host_time"])
    print(f"\n{ppm:+g} ppm: {len(pairs)} clock pairs, delay median {np.median(delay_ms):.2f} "
          f"ms; refit drift {refit.drift_ppm:+.1f} ppm")
    assert refit.drift_ppm == pytest.approx(ppm, abs=20.0)
