"""``palpation refit``: the device clock refitted after the fact from the stored clock pairs,
against the simulator's truth over a real pseudo-terminal, per device epoch on a written file,
and refused with one line (the file untouched) when it cannot be done."""

from __future__ import annotations

import json
import re
import time

import h5py
import numpy as np
import pytest

from firmware_bridge.sim.truth import sample_instants
from recorder.session import RecordingSession, SessionOptions
from schemas.events import Event
from schemas.reader import open_recording
from tests.conftest import Simulator, run_palpation
from tests.test_writer import new_writer

RECORD_S = 20.0
SETTLE_S = 5.0
TIMES = "/acquisition/force/timestamps"


def error_ms(timestamps: np.ndarray, true: np.ndarray) -> tuple[float, float]:
    """p50 and p99 of |timestamp - true instant|, ms."""
    p50, p99 = np.percentile(np.abs(timestamps - true) * 1e3, [50, 99])
    return float(p50), float(p99)


def test_a_refit_recording_is_no_further_from_the_truth_than_the_live_one(tmp_path):
    sim = Simulator(tmp_path, "--clock-ppm", "5000", "--burst-ms", "1,16", "--hiccups", "0.2",
                    "--seed", "5")
    out = tmp_path / "s.h5"
    session = RecordingSession(SessionOptions(port=sim.path, out=out))
    try:
        session.start()
        time.sleep(RECORD_S)
    finally:
        session.stop()
        sim.stop()
    assert session.error is None
    live = open_recording(out)
    truth = json.loads(sim.truth.read_text())
    true = sample_instants(truth, live.sequence) - session.start_monotonic
    # the last second's pair was written at stop: the pairs reach the last second of samples
    last_pair = live.clock_pairs["device_tick_us"][-1]
    assert last_pair // 1_000_000 == live.device_tick_us[-1] // 1_000_000

    done = run_palpation("refit", str(out))
    assert done.returncode == 0, done.stderr
    drift = float(re.search(r"drift ([-+][0-9.]+) ppm", done.stdout).group(1))
    # 20 s of pairs: a scheduling delay of 1 ms left at either end of them moves the rate by
    # 50 ppm (a loaded CI machine once read 5055.8); an unfitted clock would read 0
    assert drift == pytest.approx(5000.0, abs=100.0)
    refitted = open_recording(out)
    late = true >= true[0] + SETTLE_S
    before, after = error_ms(live.timestamps, true), error_ms(refitted.timestamps, true)
    before_late = error_ms(live.timestamps[late], true[late])
    after_late = error_ms(refitted.timestamps[late], true[late])
    print(f"\n+5000 ppm, {len(true)} samples: timestamp error p50/p99 live {before[0]:.3f}/"
          f"{before[1]:.3f} ms, refitted {after[0]:.3f}/{after[1]:.3f} ms (after {SETTLE_S:g} s:"
          f" live {before_late[0]:.3f}/{before_late[1]:.3f}, refitted {after_late[0]:.3f}/"
          f"{after_late[1]:.3f} ms)")
    assert after[1] <= before[1] and after_late[1] <= before_late[1]
    assert after[1] <= 2.0  # the first seconds too: the whole epoch's pairs are known
    assert (np.diff(refitted.timestamps) > 0).all()
    notes = [e.text for e in refitted.events if e.kind == "note"]
    assert notes[-1].startswith("refitted from ")
    assert refitted.summary["duration_s"] == pytest.approx(
        refitted.timestamps[-1] - refitted.timestamps[0], abs=1e-12)
    for name in ("force", "raw_counts", "device_tick_us", "sequence", "host_time", "flags"):
        assert np.array_equal(getattr(refitted, name), getattr(live, name)), name


def two_epoch_file(path, lines, restart_at=600, n=1000):
    """A finalised file of ``n`` samples at 100 Hz, the device restarting at sample
    ``restart_at``; epoch e's true host time is offset + rate * device s for ``lines[e]``,
    and its clock pairs lie on or above that line (delays of 0-5 ms, two of them 0)."""
    tick = np.arange(n, dtype=np.int64) * 10_000 + 3_000_000
    epoch = (np.arange(n) >= restart_at).astype(int)
    offsets, rates = np.array(lines).T
    true = offsets[epoch] + rates[epoch] * tick / 1e6
    w = new_writer(path)
    w.append_samples(data=np.zeros(n), timestamps=true + 0.004, raw_counts=np.zeros(n, np.int32),
                     device_tick_us=tick, sequence=np.arange(n), host_time=true + 0.01,
                     flags=np.zeros(n, np.uint8))
    rng = np.random.default_rng(2)
    for rows in (np.arange(0, restart_at, 100), np.arange(restart_at, n, 100)):
        delays = rng.uniform(0.0005, 0.005, len(rows))
        delays[[0, -1]] = 0.0
        w.append_clock_pairs([(float(true[i] + d), int(tick[i]))
                              for i, d in zip(rows, delays, strict=True)])
    w.append_events([Event(float(true[restart_at] + 0.004), "device_restart",
                           value=float(tick[restart_at]), sample_index=restart_at)])
    w.close()
    return true


def test_each_device_epoch_gets_the_fit_of_its_own_pairs(tmp_path):
    path = tmp_path / "epochs.h5"
    true = two_epoch_file(path, [(1.0, 0.995), (-2.0, 1.00005)])
    done = run_palpation("refit", str(path))
    assert done.returncode == 0, done.stderr
    assert "epoch from sample 0: 6 clock pairs" in done.stdout
    assert "epoch from sample 600: 4 clock pairs" in done.stdout
    assert "largest change 4.000 ms" in done.stdout
    assert open_recording(path).timestamps == pytest.approx(true, abs=1e-9)


def test_a_file_without_clock_pairs_is_refused_in_one_line_and_left_untouched(tmp_path):
    path = tmp_path / "gauge.h5"
    w = new_writer(path, device={"link": "ascii"})
    w.append_samples(data=np.zeros(3), timestamps=np.arange(3.0), raw_counts=np.zeros(3, np.int32),
                     device_tick_us=np.arange(3) * 1_000_000, sequence=np.arange(3),
                     host_time=np.arange(3.0), flags=np.zeros(3, np.uint8))
    w.close()
    before = path.read_bytes()
    done = run_palpation("refit", str(path))
    assert done.returncode != 0 and "Traceback" not in done.stderr
    assert done.stderr.strip().splitlines() == [
        f"palpation: error: {path}: /acquisition/clock_pairs: no clock pairs (a gauge has no "
        "device clock to refit)"]
    assert path.read_bytes() == before


def test_an_interrupted_file_is_refused_with_a_pointer_to_recover(tmp_path):
    path = tmp_path / "killed.h5"
    two_epoch_file(path, [(1.0, 1.0), (2.0, 1.0)])
    with h5py.File(path, "r+") as f:
        f.attrs["finalised"] = np.int8(0)
    before = path.read_bytes()
    done = run_palpation("refit", str(path))
    assert done.returncode != 0 and "palpation recover" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1 and path.read_bytes() == before
