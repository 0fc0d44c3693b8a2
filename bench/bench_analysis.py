"""Benchmark 4: analysis from file to table.

N distinct 10-minute 1 kHz recordings (the simulated therapist through the ADC model, a
different seed for each and novice/expert profiles in turn, written by the real writer).
The first few are analysed alone (best of 3 each: samples/s). Then the whole batch is analysed
once with a cold page cache (dropped first, which needs root; otherwise the JSON says the run
could not be cold) in one process, then --repeat times with a warm cache with 1 and 2 local
worker processes and on a 2-worker Dask LocalCluster on loopback: wall time, recordings/s and
the speed-up over one process in the same round. Figures go to bench/results/analysis.json.

    python bench/bench_analysis.py [--files 200] [--repeat 2] [--quick]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
from results import save

from analysis.batch import analyse_file, run_batch
from firmware_bridge.sim.adc import AdcModel
from firmware_bridge.sim.therapist import Therapist
from schemas.session_protocol import load_preset
from schemas.writer import RecordingWriter

RATE, MINUTES = 1000.0, 10
PROFILES = ("novice", "expert")
SINGLE = 4  # recordings timed alone
WORKERS = 2
DROP_CACHES = Path("/proc/sys/vm/drop_caches")


def make_recording(path: Path, profile: str, seed: int) -> int:
    """Write one simulated recording; return its sample count."""
    n = int(MINUTES * 60 * RATE)
    t = np.arange(n) / RATE
    therapist, adc = Therapist(profile, seed=seed), AdcModel(seed=seed)
    raw, _ = adc.counts(therapist.force(t), np.arange(n))
    zero = adc.offset_counts
    force = (raw - zero) / adc.counts_per_newton
    protocol = load_preset("nmt-static")
    w = RecordingWriter(path, session={"trainee": f"bench-{profile}", "protocol": protocol.name,
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


def drop_page_cache() -> str:
    """Write dirty pages out and drop the page cache; '' if done, else why not."""
    if os.geteuid() != 0:
        return "not root: the page cache cannot be dropped, so every run is warm"
    subprocess.run(["sync"], check=True)
    try:
        DROP_CACHES.write_text("1\n")
    except OSError as e:
        return f"{DROP_CACHES} refused ({e.strerror}): every run is warm"
    return ""


def _timed(fn: Callable[[], object]) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def warm_round(paths: list[Path]) -> dict[str, float]:
    """Wall seconds of the batch in 1 and WORKERS local processes and on Dask."""
    from dask.distributed import LocalCluster

    out = {"one_process": _timed(lambda: run_batch(paths, jobs=1)),
           "local_processes": _timed(lambda: run_batch(paths, jobs=WORKERS))}
    with LocalCluster(n_workers=WORKERS, threads_per_worker=1, processes=True,
                      host="127.0.0.1", dashboard_address=None) as cluster:
        address = cluster.scheduler_address
        run_batch(paths[:4], scheduler=address)  # workers import the code once
        out["dask"] = _timed(lambda: run_batch(paths, scheduler=address))
    return out


def report(files: int, name: str, wall: float, base: float, n: int) -> None:
    print(f"    {name:<22}: {wall:6.2f} s  {files / wall:6.1f} recordings/s  "
          f"speed-up {base / wall:4.2f}x  ({files * n / wall / 1e6:5.1f} M samples/s)",
          flush=True)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--files", type=int, default=200)
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--quick", action="store_true", help="8 recordings, one warm round")
    args = ap.parse_args()
    files, repeat = (8, 1) if args.quick else (args.files, args.repeat)
    with tempfile.TemporaryDirectory() as d:
        folder = Path(d)
        t = time.perf_counter()
        paths = [folder / f"r{i:04d}.h5" for i in range(files)]
        n = max(make_recording(p, PROFILES[i % len(PROFILES)], seed=i + 1)
                for i, p in enumerate(paths))
        print(f"analysis benchmark: {files} distinct {MINUTES}-minute {RATE:g} Hz recordings "
              f"({n:,} samples each; written in {time.perf_counter() - t:.1f} s)")
        single = [min(_timed(lambda p=p: analyse_file(p)) for _ in range(3))
                  for p in paths[:SINGLE]]
        holds = [len(analyse_file(p)) for p in paths[:SINGLE]]
        for s, h in zip(single, holds, strict=True):
            print(f"  file → table, one process: {s * 1000:7.1f} ms  "
                  f"({n / s / 1e6:5.1f} M samples/s, {h} holds)")
        why_warm = drop_page_cache()
        cold = None if why_warm else _timed(lambda: run_batch(paths, jobs=1))
        if cold is not None:
            print(f"  batch of {files}, page cache dropped first:")
            report(files, "1 local process (cold)", cold, cold, n)
        else:
            print(f"  no cold-cache run: {why_warm}")
        rounds = []
        for _ in range(repeat):
            r = warm_round(paths)
            rounds.append(r)
            print(f"  batch of {files}, page cache warm:")
            for key, name in (("one_process", "1 local process"),
                              ("local_processes", f"{WORKERS} local processes"),
                              ("dask", f"Dask, {WORKERS} workers")):
                report(files, name, r[key], r["one_process"], n)
    save("analysis", {"files": files, "distinct": True, "profiles": list(PROFILES),
                      "minutes": MINUTES, "rate_hz": RATE, "samples_per_file": n,
                      "single_files": SINGLE, "single_repeat": 3, "workers": WORKERS,
                      "repeat": repeat},
         {"single_s": single, "single_holds": holds, "cold_one_process_s": cold,
          "cold_cache": cold is not None, "why_not_cold": why_warm, "warm_rounds_s": rounds},
         quick=args.quick)


if __name__ == "__main__":
    main()
