"""Benchmark 3: the live window under load.

10 trigger points × 5 earlier holds × 60 s at 1 kHz already on screen (3 M samples, drawn as
the window draws them: each finished hold decimated once), plus the live 1 kHz stream from
the simulator (its own process, over a pty, its clock CLOCK_PPM fast) through the real
session, reading as ``record`` does with a window open (no read batching). Qt's offscreen
platform (raster painting, as on a desktop without OpenGL). Reports frames per second and
the latency of every sample from the instant the device took it (its timestamp: the
recorder's fitted device clock) to the end of the first frame that paints it (p50, p99);
the same from the simulator's ground truth of that instant (and the fitted clock's p99
error against it); the latency from a sample's arrival at the host (the read that delivers
it) to the paint, as before the device clock was fitted; and the CPU of the recorder process
(window + serial reader + writer) as % of one core. The run is repeated --repeat times (the
README quotes the range), at the window's frame rate and, as the baseline in the same run, at
60 fps (the frame period bounds the wait for the next frame); the figures go to
bench/results/window.json.

    QT_QPA_PLATFORM=offscreen python bench/bench_window.py [--seconds 15] [--repeat 2] [--quick]
"""

from __future__ import annotations

import argparse
import json
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

from firmware_bridge.link import BATCH_S  # noqa: E402
from firmware_bridge.sim.truth import sample_instants  # noqa: E402
from recorder.panels import hold_curve, quiet_offscreen_warnings  # noqa: E402
from recorder.session import RecordingSession, SessionOptions  # noqa: E402
from recorder.window import FRAME_RATE_HZ, LiveWindow  # noqa: E402
from schemas.reader import open_recording  # noqa: E402
from schemas.session_protocol import load_preset  # noqa: E402

ROOT = Path(__file__).parents[1]
POINTS, HOLDS, HOLD_S, RATE = 10, 5, 60.0, 1000.0
CLOCK_PPM = 40.0  # the simulated device's clock error (a crystal's order)
PERCENTILES = (50, 99)
WARM_S = 2.0
READ_BATCH_S = 0.0  # as `record` reads with a window open
BASELINE_FPS = 60.0


def earlier_holds(rng: np.random.Generator, band: tuple[float, float]) -> list:
    t = np.arange(int(HOLD_S * RATE)) / RATE
    target = sum(band) / 2
    curves = []
    for _ in range(HOLDS):
        shape = np.clip(t / 2.0, 0, 1) * np.clip((HOLD_S - t) / 1.5, 0, 1)
        force = target * shape * (1 + 0.03 * rng.standard_normal(len(t)))
        curves.append(hold_curve(t, force, 0.0))
    return curves


def percentiles(values: np.ndarray) -> list[float]:
    """``values`` (seconds) at PERCENTILES, in ms."""
    if not len(values):
        return [float("nan")] * len(PERCENTILES)
    return [float(np.percentile(values, q)) * 1000 for q in PERCENTILES]


def start_simulator(tmp: Path, truth: Path) -> subprocess.Popen:
    sim = subprocess.Popen([sys.executable, "-m", "recorder.cli", "simulate", "--rate",
                            str(RATE), "--clock-ppm", str(CLOCK_PPM), "--truth", str(truth),
                            "--link", str(tmp / "sensor")],
                           stdout=subprocess.PIPE, text=True, cwd=ROOT)
    sim.stdout.readline()
    return sim


def loaded_window(session: RecordingSession, fps: float) -> LiveWindow:
    """The window on ``session``, drawing ``fps`` frames/s, with every point's earlier holds
    on screen."""
    window = LiveWindow(session, fps=fps)
    rng = np.random.default_rng(0)
    for i in range(POINTS):
        window.history[i] = earlier_holds(rng, session.band_n(i))
        window.multiples.plots[i].set_history(window.history[i])
    window._point_shown = -1
    return window


def run_once(app, tmp: Path, seconds: float, fps: float) -> dict:
    """One run: the loaded window at ``fps`` on a live simulated stream for ``seconds`` after
    WARM_S;
    frames/s, latency percentiles (ms) and the process CPU (% of one core)."""
    truth_path = tmp / f"truth-{time.monotonic_ns()}.json"
    sim = start_simulator(tmp, truth_path)
    preset = load_preset("nmt-static")
    protocol = replace(preset, points=preset.points[:POINTS])
    out = tmp / f"bench-{time.monotonic_ns()}.h5"
    session = RecordingSession(SessionOptions(port=str(tmp / "sensor"), out=out,
                                              protocol=protocol, read_batch_s=READ_BATCH_S))
    session.start()
    window = loaded_window(session, fps)
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
    rec = open_recording(out)
    zero = session.start_monotonic
    truth = json.loads(truth_path.read_text())
    samples = {"fitted": zero + rec.timestamps, "arrival": zero + rec.host_time,
               "true": sample_instants(truth, rec.sequence)}
    return measure(list(window.clock.frames), samples, marks)


def measure(all_frames: list, samples: dict[str, np.ndarray], marks: dict) -> dict:
    """Frames/s, latency percentiles and CPU between the marks. ``samples``: the host
    monotonic instants of the recording's samples, in order (the ring's count), as the
    fitted device clock places them, as they arrived, and as the simulator took them.
    A sample is painted by the first frame that drew at least as many samples; those in the
    last 0.5 s (their frame may fall after the end) are left out."""
    frames = [f for f in all_frames if marks["t0"] <= f[0] <= marks["t1"]]
    fps = (len(frames) - 1) / (frames[-1][0] - frames[0][0])
    paint_t = np.array([f[0] for f in frames])
    drawn = np.array([f[1] for f in frames])
    arrival = samples["arrival"]
    index = np.flatnonzero((arrival >= marks["t0"]) & (arrival <= marks["t1"] - 0.5))
    frame = np.searchsorted(drawn, index + 1)
    keep = frame < len(frames)
    index, painted = index[keep], paint_t[frame[keep]]
    # the arrival figure counts each read once: its newest sample, the last the frame needs
    newest = index[np.append(arrival[index[1:]] != arrival[index[:-1]], True)]
    read_paint = paint_t[np.searchsorted(drawn, newest + 1)]
    cpu = 100 * (marks["c1"] - marks["c0"]) / (marks["t1"] - marks["t0"])
    return {"fps": fps,
            "latency_ms": percentiles(painted - samples["fitted"][index]),
            "true_latency_ms": percentiles(painted - samples["true"][index]),
            "clock_error_p99_ms": float(np.percentile(
                np.abs(samples["fitted"][index] - samples["true"][index]), 99)) * 1000,
            "arrival_latency_ms": percentiles(read_paint - arrival[newest]),
            "samples": len(index), "reads": len(newest), "cpu_percent": cpu}


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
    runs: dict[float, list[dict]] = {FRAME_RATE_HZ: [], BASELINE_FPS: []}
    with tempfile.TemporaryDirectory() as d:
        for fps in [f for _ in range(repeat) for f in runs]:  # alternate, so load hits both
            r = run_once(app, Path(d), seconds, fps)
            runs[fps].append(r)
            print("  {:3.0f} fps: frames per second {:6.1f}   sample instant → painted p50 / p99 "
                  "{:5.1f} / {:5.1f} ms (truth {:5.1f} / {:5.1f}; clock error p99 {:4.2f} ms; "
                  "{} samples)   arrival → painted {:5.1f} / {:5.1f} ms ({} reads)   recorder "
                  "process CPU (window + reader + writer) {:5.1f} % of one core".format(
                      fps, r["fps"], *r["latency_ms"], *r["true_latency_ms"],
                      r["clock_error_p99_ms"], r["samples"], *r["arrival_latency_ms"],
                      r["reads"], r["cpu_percent"]), flush=True)
    save("window", {"points": POINTS, "earlier_holds": HOLDS, "hold_s": HOLD_S,
                    "rate_hz": RATE, "clock_ppm": CLOCK_PPM, "seconds": seconds,
                    "repeat": repeat, "percentiles": list(PERCENTILES),
                    "link_batch_ms": READ_BATCH_S * 1000, "headless_batch_ms": BATCH_S * 1000,
                    "frame_rate_hz": FRAME_RATE_HZ, "baseline_frame_rate_hz": BASELINE_FPS},
         {"runs": runs[FRAME_RATE_HZ], "baseline_runs": runs[BASELINE_FPS]}, quick=args.quick)


if __name__ == "__main__":
    main()
