"""Benchmark 4: analysis from file to table.

One 10-minute 1 kHz recording (the simulated novice therapist through the ADC model, written
by the real writer) analysed alone (best of 3: samples/s), then a batch of N such
recordings (hard links to that file, so the batch measures analysis, not the disk) with 1
and 2 local worker processes and on a 2-worker Dask LocalCluster on loopback: wall time,
recordings/s and the speed-up over one process.

    python bench/bench_analysis.py [--files 200]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from analysis.batch import analyse_file, find_recordings, run_batch
from firmware_bridge.sim.adc import AdcModel
from firmware_bridge.sim.therapist import Therapist
from schemas.session_protocol import load_preset
from schemas.writer import RecordingWriter

RATE, MINUTES = 1000.0, 10


def make_recording(path: Path) -> int:
    n = int(MINUTES * 60 * RATE)
    t = np.arange(n) / RATE
    therapist, adc = Therapist("novice", seed=5), AdcModel(seed=5)
    raw, _ = adc.counts(therapist.force(t), np.arange(n))
    zero = adc.offset_counts
    force = (raw - zero) / adc.counts_per_newton
    protocol = load_preset("nmt-static")
    w = RecordingWriter(path, session={"trainee": "bench", "protocol": protocol.name,
                                       "protocol_toml": protocol.to_toml()},
                        device={"device_id": "SIM-0001", "nominal_rate_hz": RATE},
                        calibration={"source": "factory", "coefficients": np.array(
                            [-zero / adc.counts_per_newton, 1 / adc.counts_per_newton])},
                        session_start=datetime.now(UTC), software_version="bench")
    block = 100_000
    for a in range(0, n, block):
        sl = slice(a, a + block)
        w.append_samples(data=force[sl], timestamps=t[sl], raw_counts=raw[sl],
                         device_tick_us=np.round(t[sl] * 1e6).astype(np.int64),
                         sequence=np.arange(a, min(a + block, n)), host_time=t[sl],
                         flags=np.zeros(len(t[sl]), np.uint8))
    w.close()
    return n


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--files", type=int, default=200)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as d:
        folder = Path(d)
        one = folder / "one.h5"
        n = make_recording(one)
        best = min(_timed(lambda: analyse_file(one)) for _ in range(3))
        holds = len(analyse_file(one))
        print(f"analysis benchmark: one {MINUTES}-minute {RATE:g} Hz recording "
              f"({n:,} samples, {holds} holds)")
        print(f"  file → table, one process      : {best * 1000:7.1f} ms  "
              f"({n / best / 1e6:5.1f} M samples/s)")
        batch = folder / "batch"
        batch.mkdir()
        for i in range(args.files):
            os.link(one, batch / f"r{i:04d}.h5")
        paths = find_recordings([batch])
        base = _timed(lambda: run_batch(paths, jobs=1))
        two = _timed(lambda: run_batch(paths, jobs=2))
        from dask.distributed import LocalCluster

        with LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                          host="127.0.0.1", dashboard_address=None) as cluster:
            address = cluster.scheduler_address
            run_batch(paths[:4], scheduler=address)  # workers import the code once
            dask = _timed(lambda: run_batch(paths, scheduler=address))
        print(f"  batch of {args.files} (hard links to that file, page cache warm):")
        for name, wall in (("1 local process", base), ("2 local processes", two),
                           ("Dask, 2 workers", dask)):
            print(f"    {name:<18}: {wall:6.2f} s  {args.files / wall:6.1f} recordings/s  "
                  f"speed-up {base / wall:4.2f}x  ({args.files * n / wall / 1e6:5.1f} M "
                  "samples/s)")


def _timed(fn) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


if __name__ == "__main__":
    main()
