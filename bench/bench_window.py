"""Benchmark 3: the live window under load.

10 trigger points × 5 earlier holds × 60 s at 1 kHz already on screen (3 M samples, drawn as
the window draws them: each finished hold decimated once), plus the live 1 kHz stream from
the simulator (its own process, over a pty) through the real session. Qt's offscreen platform
(raster painting, as on a desktop without OpenGL). Reports frames per second, latency from a
sample's arrival at the host (the read that delivers it) to the end of the first frame that
paints it (p50, p99), and the CPU of the recorder process (window + serial reader + writer)
as % of one core. Before arrival, the link batches reads: at 1 kHz a sample waits up to the
link's batch_s (25 ms) in the kernel's buffer; that is the price of a 2 % reader.
The run is repeated --repeat times (the README quotes the range); the figures go to
bench/results/window.json.

    QT_QPA_PLATFORM=offscreen python bench/bench_window.py [--seconds 15] [--repeat 2] [--quick]
"""

from __future__ import annotations

import argparse
import inspect
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import numpy as np  # noqa: E402
import psutil  # noqa: E402
import pyqtgraph as pg  # noqa: E402
from pyqtgraph.Qt import QtCore  # noqa: E402
from results import save  # noqa: E402

from firmware_bridge.link import SerialLink  # noqa: E402
from recorder.panels import hold_curve, quiet_offscreen_warnings  # noqa: E402
from recorder.session import RecordingSession, SessionOptions  # noqa: E402
from recorder.window import LiveWindow  # noqa: E402
from schemas.session_protocol import load_preset  # noqa: E402

ROOT = Path(__file__).parents[1]
POINTS, HOLDS, HOLD_S, RATE = 10, 5, 60.0, 1000.0
PERCENTILES = (50, 99)
WARM_S = 2.0


def earlier_holds(rng: np.random.Generator, band: tuple[float, float]) -> list:
    t = np.arange(int(HOLD_S * RATE)) / RATE
    target = sum(band) / 2
    curves = []
    for _ in range(HOLDS):
        shape = np.clip(t / 2.0, 0, 1) * np.clip((HOLD_S - t) / 1.5, 0, 1)
        force = target * shape * (1 + 0.03 * rng.standard_normal(len(t)))
        curves.append(hold_curve(t, force, 0.0))
    return curves


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) * 1000 if values else float("nan")


def run_once(app, tmp: Path, seconds: float) -> dict:
    """One run: the loaded window on a live simulated stream for ``seconds`` after WARM_S;
    frames/s, latency percentiles (ms) and the process CPU (% of one core)."""
    sim = subprocess.Popen([sys.executable, "-m", "recorder.cli", "simulate", "--rate",
                            str(RATE), "--link", str(tmp / "sensor")],
                           stdout=subprocess.PIPE, text=True, cwd=ROOT)
    sim.stdout.readline()
    preset = load_preset("nmt-static")
    protocol = replace(preset, points=preset.points[:POINTS])
    out = tmp / f"bench-{time.monotonic_ns()}.h5"
    session = RecordingSession(SessionOptions(port=str(tmp / "sensor"), out=out,
                                              protocol=protocol))
    arrivals: list[tuple[float, int]] = []
    deliver = session.data_received

    def timed(data: bytes, host_time: float) -> None:
        deliver(data, host_time)
        if session.ring is not None:
            arrivals.append((host_time, session.ring.total))

    session.data_received = timed
    session.start()
    window = LiveWindow(session)
    rng = np.random.default_rng(0)
    for i in range(POINTS):
        window.history[i] = earlier_holds(rng, session.band_n(i))
        window.multiples.plots[i].set_history(window.history[i])
    window._point_shown = -1
    window.show()
    proc = psutil.Process()
    marks = {}
    QtCore.QTimer.singleShot(int(WARM_S * 1000), lambda: marks.update(
        t0=time.monotonic(), c0=sum(proc.cpu_times()[:2])))
    QtCore.QTimer.singleShot(int((WARM_S + seconds) * 1000), lambda: (marks.update(
        t1=time.monotonic(), c1=sum(proc.cpu_times()[:2])), app.quit()))
    app.exec()
    window.close()
    session.stop()
    sim.terminate()
    sim.wait(10)
    return measure(window.clock.frames, arrivals, marks)


def measure(all_frames: list, arrivals: list[tuple[float, int]], marks: dict) -> dict:
    """Frames/s, arrival → painted latency at PERCENTILES and CPU between the marks."""
    frames = [f for f in all_frames if marks["t0"] <= f[0] <= marks["t1"]]
    fps = (len(frames) - 1) / (frames[-1][0] - frames[0][0])
    paint_t = np.array([f[0] for f in frames])
    drawn = np.array([f[1] for f in frames])
    latency = []
    for host_t, total in arrivals:
        if not marks["t0"] <= host_t <= marks["t1"] - 0.5:
            continue
        ok = np.flatnonzero((drawn >= total) & (paint_t >= host_t))
        if len(ok):
            latency.append(paint_t[ok[0]] - host_t)
    cpu = 100 * (marks["c1"] - marks["c0"]) / (marks["t1"] - marks["t0"])
    return {"fps": fps, "latency_ms": [percentile(latency, q) for q in PERCENTILES],
            "reads": len(latency), "cpu_percent": cpu}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=15.0)
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--quick", action="store_true", help="one 4 s run: a smoke run")
    args = ap.parse_args()
    seconds, repeat = (4.0, 1) if args.quick else (args.seconds, args.repeat)
    quiet_offscreen_warnings()
    app = pg.mkQApp("bench")
    print(f"window benchmark: {POINTS} points × {HOLDS} earlier holds × {HOLD_S:g} s at "
          f"{RATE:g} Hz on screen, live {RATE:g} Hz stream, {seconds:g} s × {repeat}")
    runs = []
    with tempfile.TemporaryDirectory() as d:
        for _ in range(repeat):
            r = run_once(app, Path(d), seconds)
            runs.append(r)
            p50, p99 = r["latency_ms"]
            print(f"  frames per second {r['fps']:6.1f}   latency arrival → painted p50 / p99 "
                  f"{p50:5.1f} / {p99:5.1f} ms ({r['reads']} reads)   recorder process CPU "
                  f"(window + reader + writer) {r['cpu_percent']:5.1f} % of one core",
                  flush=True)
    batch_s = inspect.signature(SerialLink).parameters["batch_s"].default
    save("window", {"points": POINTS, "earlier_holds": HOLDS, "hold_s": HOLD_S,
                    "rate_hz": RATE, "seconds": seconds, "repeat": repeat,
                    "percentiles": list(PERCENTILES), "link_batch_ms": batch_s * 1000},
         {"runs": runs}, quick=args.quick)


if __name__ == "__main__":
    main()
