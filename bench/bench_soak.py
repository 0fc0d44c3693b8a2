"""Benchmark 5: the recorder's resident memory over a long recording (a soak).

Why: memory that grows with session length ends a teaching day in swap. A long session is
imitated by a high rate: 10 M samples at 100 kHz are the same data as 2.8 hours at 1 kHz.
The simulator serves on a fresh pty (own process) and ``palpation record --headless`` records
it for DURATION seconds (own process, as a user would run it, as in bench_e2e.py). The
recorder's resident set size (RSS, psutil) is sampled every second. Reported: RSS over time,
its growth while recording after the first SETTLE seconds (the highest RSS until the recording
ends minus the RSS SETTLE seconds into it; target <= 20 MB) and the samples in the file. The
recording's start is taken from the recorder's first progress line, which says how long it
has been recording. The figures go to bench/results/soak.json.

    python bench/bench_soak.py [--duration 105] [--rate 100000] [--settle 10] [--quick]
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import h5py
import psutil
from bench_e2e import start_sim
from results import save

ROOT = Path(__file__).parents[1]
MB = 1024 * 1024
TARGET_GROWTH_MB = 20.0


PROGRESS = re.compile(r"(\d+\.\d) s +[\d,]+ samples")


class Stderr(threading.Thread):
    """Reads the recorder's stderr: when recording began (from its first progress line, which
    says how long it has been recording) and the text, for an error message."""

    def __init__(self, proc: subprocess.Popen, t0: float) -> None:
        super().__init__(daemon=True)
        self.proc, self.t0 = proc, t0
        self.started_s: float | None = None
        self.lines: list[str] = []

    def run(self) -> None:
        for line in self.proc.stderr:
            self.lines.append(line)
            match = PROGRESS.search(line)
            if match and self.started_s is None:
                self.started_s = time.monotonic() - self.t0 - float(match.group(1))


def sample_rss(proc: subprocess.Popen, t0: float, period_s: float = 1.0) -> list[list[float]]:
    """[seconds since ``t0``, RSS in MB] of ``proc`` every ``period_s`` until it exits."""
    p = psutil.Process(proc.pid)
    series = []
    while proc.poll() is None:
        try:
            rss = p.memory_info().rss
        except psutil.NoSuchProcess:
            break
        series.append([round(time.monotonic() - t0, 2), round(rss / MB, 2)])
        time.sleep(period_s - (time.monotonic() - t0) % period_s)
    return series


def soak(tmp: Path, rate: float, duration: float) -> tuple[list[list[float]], float, int]:
    """Record ``duration`` s of the simulator at ``rate``: (RSS series with seconds since the
    process started, the second recording began, samples in the file)."""
    sim = start_sim(tmp, rate, "palpation")
    out = tmp / "soak.h5"
    try:
        t0 = time.monotonic()
        rec = subprocess.Popen(
            [sys.executable, "-m", "recorder.cli", "record", "--port", str(tmp / "sensor"),
             "--out", str(out), "--duration", str(duration), "--headless"],
            cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        err = Stderr(rec, t0)
        err.start()
        series = sample_rss(rec, t0)
        rec.wait(60)
        err.join(10)
        if rec.returncode != 0 or err.started_s is None:
            raise RuntimeError("".join(err.lines) or f"exit status {rec.returncode}")
    finally:
        sim.terminate()
        sim.wait(10)
    with h5py.File(out, "r") as f:
        samples = len(f["/acquisition/force/data"])
    return series, err.started_s, samples


def figures(series: list[list[float]], started: float, duration: float,
            settle: float) -> dict:
    """RSS at ``settle`` s into the recording, its peak until the recording ends and the
    growth between them (MB)."""
    recording = [rss for t, rss in series if started + settle <= t <= started + duration]
    if not recording:
        raise RuntimeError(f"the recorder recorded less than {settle:g} s")
    return {"rss_at_settle_mb": recording[0], "rss_peak_recording_mb": max(recording),
            "growth_mb": round(max(recording) - recording[0], 2)}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--duration", type=float, default=105.0)
    ap.add_argument("--rate", type=float, default=100_000.0)
    ap.add_argument("--settle", type=float, default=10.0,
                    help="growth is counted from this many seconds into the recording")
    ap.add_argument("--quick", action="store_true", help="20 s: a smoke run")
    args = ap.parse_args()
    duration = 20.0 if args.quick else args.duration
    print(f"soak benchmark: {duration:g} s at {args.rate:,.0f} samples/s, "
          f"{psutil.cpu_count()} cores", flush=True)
    with tempfile.TemporaryDirectory() as d:
        series, started, samples = soak(Path(d), args.rate, duration)
    fig = figures(series, started, duration, args.settle)
    print(f"  RSS {fig['rss_at_settle_mb']:.0f} MB at {args.settle:g} s into the recording, "
          f"peak {fig['rss_peak_recording_mb']:.0f} MB until it ended: growth "
          f"{fig['growth_mb']:.1f} MB (target <= {TARGET_GROWTH_MB:g} MB); {samples:,} samples "
          "recorded")
    save("soak", {"duration_s": duration, "rate_hz": args.rate, "settle_s": args.settle,
                  "target_growth_mb": TARGET_GROWTH_MB},
         {"rss_mb": series, "recording_started_s": round(started, 2), **fig,
          "samples": samples}, quick=args.quick)

if __name__ == "__main__":
    main()
