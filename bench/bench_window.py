"""Benchmark 3: the live window under load.

10 trigger points × 5 earlier holds × 60 s at 1 kHz already on screen (3 M samples, drawn as
the window draws them: each finished hold decimated once), plus the live 1 kHz stream from
the simulator (its own process, over a pty) through the real session. Qt's offscreen platform
(raster painting, as on a desktop without OpenGL). Reports frames per second, latency from a
sample's arrival at the host (the read that delivers it) to the end of the first frame that
paints it (p50, p99), and the CPU of the recorder process (window + serial reader + writer)
as % of one core. Before arrival, the link batches reads: at 1 kHz a sample waits up to the
link's batch_s (25 ms) in the kernel's buffer; that is the price of a 2 % reader.

    QT_QPA_PLATFORM=offscreen python bench/bench_window.py [--seconds 15]
"""

from __future__ import annotations

import argparse
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

from recorder.panels import hold_curve, quiet_offscreen_warnings  # noqa: E402
from recorder.session import RecordingSession, SessionOptions  # noqa: E402
from recorder.window import LiveWindow  # noqa: E402
from schemas.session_protocol import load_preset  # noqa: E402

ROOT = Path(__file__).parents[1]
POINTS, HOLDS, HOLD_S, RATE = 10, 5, 60.0, 1000.0


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


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=15.0)
    args = ap.parse_args()
    quiet_offscreen_warnings()
    app = pg.mkQApp("bench")
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        sim = subprocess.Popen([sys.executable, "-m", "recorder.cli", "simulate", "--rate",
                                str(RATE), "--link", str(tmp / "sensor")],
                               stdout=subprocess.PIPE, text=True, cwd=ROOT)
        sim.stdout.readline()
        preset = load_preset("nmt-static")
        protocol = replace(preset, points=preset.points[:POINTS])
        session = RecordingSession(SessionOptions(port=str(tmp / "sensor"),
                                                  out=tmp / "bench.h5", protocol=protocol))
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
        warm = 2.0
        marks = {}
        QtCore.QTimer.singleShot(int(warm * 1000), lambda: marks.update(
            t0=time.monotonic(), c0=sum(proc.cpu_times()[:2]), f0=len(window.clock.frames)))
        QtCore.QTimer.singleShot(int((warm + args.seconds) * 1000), lambda: (marks.update(
            t1=time.monotonic(), c1=sum(proc.cpu_times()[:2])), app.quit()))
        app.exec()
        window.close()
        session.stop()
        sim.terminate()
        sim.wait(10)
    frames = [f for f in window.clock.frames if marks["t0"] <= f[0] <= marks["t1"]]
    fps = (len(frames) - 1) / (frames[-1][0] - frames[0][0])
    paint_t = np.array([f[0] for f in frames])
    drawn = np.array([f[1] for f in frames])
    arrival_lat = []
    for host_t, total in arrivals:
        if not marks["t0"] <= host_t <= marks["t1"] - 0.5:
            continue
        ok = np.flatnonzero((drawn >= total) & (paint_t >= host_t))
        if len(ok):
            arrival_lat.append(paint_t[ok[0]] - host_t)
    cpu = 100 * (marks["c1"] - marks["c0"]) / (marks["t1"] - marks["t0"])
    print(f"window benchmark: {POINTS} points × {HOLDS} earlier holds × {HOLD_S:g} s at "
          f"{RATE:g} Hz on screen, live {RATE:g} Hz stream, {args.seconds:g} s")
    print(f"  frames per second                      : {fps:6.1f}")
    print(f"  latency arrival → painted, p50 / p99   : {percentile(arrival_lat, 50):5.1f} / "
          f"{percentile(arrival_lat, 99):5.1f} ms  ({len(arrival_lat)} reads)")
    print(f"  recorder process CPU (window + reader + writer): {cpu:5.1f} % of one core")


if __name__ == "__main__":
    main()
