"""The simulated sensor as imperfect as hardware, each imperfection against its ground truth.

The models (creep, hysteresis, the zero) are checked pure; the device clock and the bursty
delivery over a real pseudo-terminal read with pyserial, arrivals on time.monotonic() (the
clock the truth's instants are on).
"""

from __future__ import annotations

import json
import time

import h5py
import numpy as np
import pytest
import serial

from firmware_bridge.frames import CMD_SET_RATE, CMD_START, CMD_TARE, FrameDecoder, encode_command
from firmware_bridge.sim.device import SimulatedSensor
from firmware_bridge.sim.imperfect import (
    FSR_HALF_N,
    LOADCELL_CREEP_FRAC,
    Imperfections,
    SensorModel,
)
from firmware_bridge.sim.simulator import build_simulator
from firmware_bridge.sim.therapist import Therapist
from firmware_bridge.sim.truth import (
    device_times,
    sample_instants,
    therapist_times,
    zero_counts_at,
)
from schemas.session_protocol import load_preset
from schemas.validate import validate
from tests.conftest import run_palpation


def _chunked(model: SensorModel, force: np.ndarray, seed: int = 0) -> np.ndarray:
    """``model.reading`` over ``force`` in random consecutive chunks (1 to 3000 samples)."""
    rng, out, i = np.random.default_rng(seed), [], 0
    while i < force.size:
        j = min(force.size, i + int(rng.integers(1, 3000)))
        out.append(model.reading(force[i:j]))
        i = j
    return np.concatenate(out)


# ---------------------------------------------------------------- the sensing element (pure)


def test_an_ideal_element_reads_the_applied_force() -> None:
    f = np.linspace(0.0, 50.0, 1000)
    assert np.array_equal(SensorModel("loadcell", creep=False).reading(f), f)


def test_a_load_cell_creeps_0_03_percent_in_30_min_continuously_across_blocks() -> None:
    rate = 10.0
    load = np.full(int(30 * 60 * rate), 40.0)
    whole = SensorModel("loadcell", creep=True, rate_hz=rate).reading(load)
    assert whole[-1] / 40.0 - 1.0 == pytest.approx(0.0003, rel=0.01)
    assert whole[int(60 * rate)] / 40.0 - 1.0 < 0.0003 * 0.15  # slow: little after 1 min
    assert np.all(np.diff(whole) >= 0)  # it creeps one way under a constant load
    chunked = _chunked(SensorModel("loadcell", creep=True, rate_hz=rate), load)
    assert np.array_equal(chunked, whole)
    # unloaded, it relaxes back toward the true zero (creep recovery)
    model = SensorModel("loadcell", creep=True, rate_hz=rate)
    model.reading(load)
    after = model.reading(np.zeros(int(600 * rate)))
    assert after[0] == pytest.approx(LOADCELL_CREEP_FRAC * 40.0 * 0.95, rel=0.1)
    assert 0 < after[-1] < 0.4 * after[0]


def test_an_fsr_creeps_several_percent_within_30_s() -> None:
    rate = 1000.0
    load = np.full(int(30 * rate), 20.0)
    read = SensorModel("fsr", rate_hz=rate).reading(load)
    creep = read[-1] / read[int(0.1 * rate)] - 1.0
    assert 0.03 < creep < 0.08
    assert read[int(10 * rate)] / read[int(0.1 * rate)] - 1.0 > 0.02  # most within 10 s
    # nonlinear: the first readings follow F / (1 + F / F_half) times the loading branch
    assert read[0] == pytest.approx(20.0 / (1 + 20.0 / FSR_HALF_N) * 0.96, rel=0.01)
    assert np.array_equal(_chunked(SensorModel("fsr", rate_hz=rate), load), read)


def test_an_fsr_unloading_curve_lies_above_its_loading_curve() -> None:
    rate = 1000.0
    up = np.linspace(0.0, 40.0, int(2 * rate))
    down = up[::-1]
    model = SensorModel("fsr", rate_hz=rate)
    loading, unloading = model.reading(up), model.reading(down)[::-1]
    at = np.searchsorted(up, [10.0, 20.0, 30.0])
    gap = unloading[at] / loading[at] - 1.0
    assert np.all(gap > 0.06)  # hysteresis (about 2 x 4 %) plus 2 s of creep
    assert loading[0] == 0.0 and unloading[0] == 0.0  # an FSR reads 0 at no load
    # a second cycle retraces the first: the loop is rate independent, not a drift
    again = model.reading(up)
    assert np.allclose(again[at], loading[at], rtol=0.02)


# ---------------------------------------------------------------- the zero (pure device)


def _stream(sensor: SimulatedSensor, t_end: float, start_at: float = 0.0,
            step: float = 0.01) -> tuple[FrameDecoder, list]:
    """Power the sensor on at ``start_at``, start it, read its frames every ``step`` server
    seconds until ``t_end``: (decoder, [(server time, SampleBlock)])."""
    decoder = FrameDecoder()
    decoder.feed(sensor.power_on(start_at))
    sensor.receive(encode_command(CMD_START), start_at)
    blocks = []
    for now in np.arange(start_at + step, t_end, step):
        samples = decoder.feed(sensor.output(float(now), 1 << 30)).samples
        if len(samples):
            blocks.append((float(now), samples))
    return decoder, blocks


def test_the_zero_shifts_between_power_ups_and_drifts_within_one() -> None:
    imp = Imperfections(zero_shift_n=0.5, thermal_drift_n_per_min=3.0)
    sensor = SimulatedSensor(rate_hz=100.0, seed=4, imperfections=imp)
    therapist, cpn, noise = Therapist(seed=4), sensor.adc.counts_per_newton, 25.0
    zeros = []
    for epoch, at in enumerate([0.0, 10.0, 20.0, 30.0]):
        _, blocks = _stream(sensor, at + 3.0, start_at=at)
        seq = np.concatenate([b.seq for _, b in blocks]).astype(np.int64)
        raw = np.concatenate([b.raw for _, b in blocks])
        truth = sensor.truth()
        zero = zero_counts_at(truth, seq, epoch)
        applied = therapist.force(therapist_times(truth, seq, epoch))
        residual = raw - zero - cpn * applied
        assert abs(residual.mean()) < 5 * noise / np.sqrt(seq.size) and residual.std() < 1.2 * noise
        assert zero[-1] - zero[0] == pytest.approx(3.0 / 60 * cpn * (seq.size - 1) / 100.0,
                                                   rel=1e-9)
        zeros.append(truth["epochs"][epoch]["zero_counts"])
    shifts = (np.array(zeros) - sensor.adc.offset_counts) / cpn
    assert np.all(np.abs(np.diff(shifts)) > 0.01) and np.all(np.abs(shifts) < 2.5)
    again = SimulatedSensor(rate_hz=100.0, seed=4, imperfections=imp)
    _stream(again, 1.5)  # at rest: the therapist waits 2 s
    ack = FrameDecoder().feed(again.receive(encode_command(CMD_TARE), 1.5)).messages[0][1]
    assert again.devices[0].zero_counts == zeros[0]  # seeded
    assert abs(ack.value - (zeros[0] + 3.0 / 60 * cpn * 1.5)) < 3 * noise  # the moved zero


def test_without_imperfections_the_zero_never_moves() -> None:
    sensor = SimulatedSensor(rate_hz=100.0, seed=4)
    for at in (0.0, 10.0):
        _stream(sensor, at + 1.0, start_at=at)
    assert [e["zero_counts"] for e in sensor.truth()["epochs"]] == [sensor.adc.offset_counts] * 2


# ---------------------------------------------------------------- the clock (pure device)


def test_truth_gives_each_sample_its_instant_and_its_device_tick() -> None:
    sensor = SimulatedSensor(rate_hz=500.0, seed=2, imperfections=Imperfections(clock_ppm=5000))
    decoder, blocks = _stream(sensor, 3.0, start_at=0.25)
    sensor.receive(encode_command(CMD_SET_RATE, 200.0), 3.0)  # a new grid
    blocks += [(now, decoder.feed(sensor.output(now, 1 << 30)).samples)
               for now in np.arange(3.01, 6.0, 0.01).tolist()]
    truth = sensor.truth(server_t0=100.0)
    assert len(truth["epochs"][0]["grids"]) == 2
    seq = np.concatenate([b.seq for _, b in blocks]).astype(np.int64)  # < 2**16 here
    tick = np.concatenate([b.tick for _, b in blocks]).astype(np.int64)
    assert np.array_equal(np.round(device_times(truth, seq) * 1e6), tick)
    instants = sample_instants(truth, seq)
    # the device clock runs 5000 ppm fast: 1.005 device seconds per true second
    slope = np.polyfit(instants, tick / 1e6, 1)[0]
    assert slope == pytest.approx(1.005, abs=1e-6)
    # each sample was sent at or after its instant, within one read step
    sent = np.concatenate([np.full(len(b), 100.0 + now) for now, b in blocks])
    assert np.all(sent >= instants - 1e-9) and np.all(sent - instants < 0.0101)
    # the applied force of each sample is the therapist's at its therapist time
    th = Therapist(seed=2)
    force = th.force(therapist_times(truth, seq))
    raw = np.concatenate([b.raw for _, b in blocks])
    adc = sensor.adc
    measured = (raw - adc.offset_counts) / adc.counts_per_newton
    assert force.max() > 10  # a hold is under way by 6 s
    assert np.abs(measured - force).max() < 6 * adc.noise_counts / adc.counts_per_newton


# ---------------------------------------------------------------- over a real pty


def _read_frames(port: str, seconds: float) -> tuple[list, list]:
    """Start the device on ``port`` and read for ``seconds``: [(arrival, SampleBlock)] and
    the arrival of every read that brought bytes."""
    decoder, blocks, reads = FrameDecoder(), [], []
    with serial.Serial(port, timeout=0.002) as s:
        s.write(encode_command(CMD_START))
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            data = s.read(65536)
            arrival = time.monotonic()
            if data:
                reads.append(arrival)
                samples = decoder.feed(data).samples
                if len(samples):
                    blocks.append((arrival, samples))
    return blocks, reads


def _unwrapped(blocks: list) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    arrival = np.concatenate([np.full(len(b), t) for t, b in blocks])
    seq = np.unwrap(np.concatenate([b.seq for _, b in blocks]).astype(np.int64), period=1 << 16)
    tick = np.concatenate([b.tick for _, b in blocks]).astype(np.int64)
    return arrival, seq, tick


def test_a_resonator_clock_5000_ppm_fast_seen_over_a_pty() -> None:
    sim = build_simulator(rate_hz=200.0, seed=3, profile="expert",
                          imperfections=Imperfections(clock_ppm=5000.0))
    with sim.server:
        blocks, _ = _read_frames(sim.server.path, 10.5)
    arrival, seq, tick = _unwrapped(blocks)
    assert arrival[-1] - arrival[0] > 10.0 and np.array_equal(np.diff(seq), np.ones(seq.size - 1))
    # device ticks against host arrival, on the lower envelope of the delay (per 0.5 s)
    delay = arrival - tick / 1e6
    bins = ((arrival - arrival[0]) // 0.5).astype(int)
    low = [np.argmin(np.where(bins == b, delay, np.inf)) for b in np.unique(bins)]
    rate = np.polyfit(arrival[low], tick[low] / 1e6, 1)[0]
    assert (rate - 1.0) * 1e6 == pytest.approx(5000.0, abs=300.0)
    instants = sample_instants(sim.truth(), seq)
    assert np.all(arrival >= instants)  # nothing arrives before it was taken
    assert np.median(arrival - instants) < 0.05


def test_bursty_delivery_with_hiccups_over_a_pty() -> None:
    imp = Imperfections(burst_ms=(1.0, 16.0), hiccups_per_s=2.0)
    sim = build_simulator(rate_hz=1000.0, seed=5, profile="expert", imperfections=imp)
    with sim.server:
        t0 = time.monotonic()
        blocks, reads = _read_frames(sim.server.path, 5.0)
        served = time.monotonic() - t0
    report = sim.report()
    assert 62 <= report["bursts"] / served <= 250  # one every 1-16 ms, plus the hiccups
    assert report["hiccups"] >= 3
    gaps = np.diff(reads)
    assert np.median(gaps) > 0.005  # bytes come in bursts (median 8.5 ms), not as made (2 ms)
    assert gaps.max() > 0.02 + 0.001  # a hiccup: a delivery at least 20 ms late
    arrival, seq, _ = _unwrapped(blocks)
    assert len(seq) / len(blocks) > 3  # several frames per burst at 1 kHz
    late = arrival - sample_instants(sim.truth(), seq)
    assert np.all(late >= 0) and np.percentile(late, 99) > 0.01


# ---------------------------------------------------------------- the command line


def test_simulate_follows_a_session_protocol_by_default_nmt_static(tmp_path) -> None:
    truth = tmp_path / "truth.json"
    done = run_palpation("simulate", "--duration", "0.3", "--truth", str(truth), "--seed", "2")
    assert done.returncode == 0, done.stderr
    data = json.loads(truth.read_text())
    labels = [p.label for p in load_preset("nmt-static").points]
    assert [h["trigger_point"] for h in data["holds"]][::data["dose"]["repetitions"]] == labels
    assert data["imperfections"] == Imperfections().as_dict()
    bad = run_palpation("simulate", "--duration", "0.3", "--burst-ms", "16")
    assert bad.returncode != 0 and "--burst-ms 16" in bad.stderr


def test_record_simulate_keeps_its_settings_and_writes_the_truth(tmp_path) -> None:
    out, truth = tmp_path / "s.h5", tmp_path / "truth.json"
    done = run_palpation("record", "--simulate", "--headless", "--duration", "3", "--out",
                         str(out), "--truth", str(truth), "--seed", "7", "--imperfect",
                         "--clock-ppm", "-3000", "--sim-rate", "200")
    assert done.returncode == 0, done.stderr
    validate(out)
    with h5py.File(out, "r") as f:
        settings = json.loads(f["/session"].attrs["simulator"])
        seq = f["/acquisition/force/sequence"][:].astype(np.int64)
        tick = f["/acquisition/force/device_tick_us"][:]
    assert settings == {**Imperfections.realistic().as_dict(), "clock_ppm": -3000.0,
                        "seed": 7, "profile": "expert", "rate_hz": 200.0}
    data = json.loads(truth.read_text())
    assert data["seed"] == 7 and data["epochs"][0]["clock_ppm"] == -3000.0
    assert len(seq) > 300
    # the recording's device ticks are the truth's, sample for sample
    assert np.array_equal(np.round(device_times(data, seq) * 1e6), tick)
