"""Benchmark 2: simulator → pty → bridge → HDF5, end to end, against the hobby baseline.

For each rate the simulator serves on a fresh pty (own process) and the recorder records
for DURATION seconds (own process, as a user would run it). Reported per run:
delivered/expected frames (expected = the device's sequence span, so frames lost anywhere
count), gaps, and the recorder's CPU as % of one core over the steady part of the run: from
1 s after its output file appears (so start-up imports, the handshake and the file's creation
are not counted) to 1 s before the end.
The baseline (bench/hobby_recorder.py: readline + float() + CSV) records the simulator's
ASCII mode at the same rates; with no sequence numbers its expected count is
rate × its own recording span. Each rate is run --repeat times (the README quotes the range
over the runs); the figures go to bench/results/end_to_end.json.

    python bench/bench_e2e.py [--duration 10] [--rates 1000,10000,50000,100000] [--repeat 3]
                              [--quick]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import psutil
from results import save

ROOT = Path(__file__).parents[1]
SETTLE_S = 1.0


def start_sim(tmp: Path, rate: float, fmt: str) -> subprocess.Popen:
    proc = subprocess.Popen(
        [sys.executable, "-m", "recorder.cli", "simulate", "--rate", str(rate), "--format", fmt,
         "--link", str(tmp / "sensor")], stdout=subprocess.PIPE, text=True, cwd=ROOT)
    proc.stdout.readline()
    return proc


def cpu_percent(proc: subprocess.Popen, out: Path, duration: float) -> float:
    """CPU % of one core of ``proc``, recording ``duration`` s into ``out``, from SETTLE_S
    after ``out`` appears until SETTLE_S before the recording ends."""
    p = psutil.Process(proc.pid)
    deadline = time.monotonic() + 30.0
    while not out.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    time.sleep(SETTLE_S)
    t0, c0 = time.monotonic(), sum(p.cpu_times()[:2])
    time.sleep(max(1.0, duration - 2 * SETTLE_S))
    t1, c1 = time.monotonic(), sum(p.cpu_times()[:2])
    return 100.0 * (c1 - c0) / (t1 - t0)


def run_recorder(tmp: Path, rate: float, duration: float, run: int) -> dict:
    from schemas.reader import open_recording

    sim = start_sim(tmp, rate, "palpation")
    out = tmp / f"r{int(rate)}-{run}.h5"
    try:
        rec_proc = subprocess.Popen(
            [sys.executable, "-m", "recorder.cli", "record", "--port", str(tmp / "sensor"),
             "--out", str(out), "--duration", str(duration), "--headless"],
            cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        cpu = cpu_percent(rec_proc, out, duration)
        _, err = rec_proc.communicate(timeout=duration + 60)
        if rec_proc.returncode != 0:
            raise RuntimeError(err)
    finally:
        sim.terminate()
        sim.wait(10)
    rec = open_recording(out)
    expected = int(rec.sequence[-1] - rec.sequence[0] + 1)
    gaps = [e for e in rec.events if e.kind == "gap"]
    return {"delivered": len(rec.force), "expected": expected, "gaps": len(gaps),
            "crc": int(rec.link_stats[-1]["crc_errors"]), "cpu": cpu}


def run_baseline(tmp: Path, rate: float, duration: float, run: int) -> dict:
    sim = start_sim(tmp, rate, "ascii")
    out = tmp / f"b{int(rate)}-{run}.csv"
    try:
        proc = subprocess.Popen(
            [sys.executable, str(ROOT / "bench" / "hobby_recorder.py"), str(tmp / "sensor"),
             str(out), str(duration)], cwd=ROOT)
        cpu = cpu_percent(proc, out, duration)
        proc.wait(duration + 60)
    finally:
        sim.terminate()
        sim.wait(10)
    rows = np.loadtxt(out, delimiter=",", ndmin=2)
    expected = int(round((rows[-1, 0] - rows[0, 0]) * rate)) + 1 if len(rows) else 0
    return {"delivered": len(rows), "expected": expected, "gaps": None, "crc": None,
            "cpu": cpu}


def line(name: str, rate: float, r: dict) -> str:
    frac = r["delivered"] / r["expected"] if r["expected"] else 0.0
    gaps = "-" if r["gaps"] is None else str(r["gaps"])
    return (f"  {name:<22} {rate:>8,.0f}/s  delivered {r['delivered']:>9,} / "
            f"{r['expected']:>9,} = {frac:7.3%}  gaps {gaps:>5}  CPU {r['cpu']:5.1f} %")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--duration", type=float, default=10.0)
    ap.add_argument("--rates", default="1000,10000,50000,100000")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--quick", action="store_true", help="3 s per run, one run: a smoke run")
    args = ap.parse_args()
    duration, repeat = (3.0, 1) if args.quick else (args.duration, args.repeat)
    rates = [float(r) for r in args.rates.split(",")]
    print(f"end-to-end benchmark: {duration:g} s per run, {repeat} run(s) per rate, "
          f"{psutil.cpu_count()} cores")
    by_rate = []
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        for rate in rates:
            runs = []
            for run in range(repeat):
                rec = run_recorder(tmp, rate, duration, run)
                print(line("palpation record", rate, rec), flush=True)
                base = run_baseline(tmp, rate, duration, run)
                print(line("readline+float+CSV", rate, base), flush=True)
                runs.append({"recorder": rec, "baseline": base})
            by_rate.append({"rate_hz": rate, "runs": runs})
    save("end_to_end", {"duration_s": duration, "repeat": repeat, "rates": rates},
         {"by_rate": by_rate}, quick=args.quick)


if __name__ == "__main__":
    main()
