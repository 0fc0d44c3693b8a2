"""Benchmark 6: the classroom. N stations at 1 kHz and the instructor's class view, one machine.

Each station is its own process, as a class runs them: ``palpation record --simulate
--imperfect --hiccups 0 --headless --lsl --station bench-K --seed K`` (the simulated sensor on
a pty, delivering in USB-like bursts of 1-16 ms as hardware does, the recorder
writing its own file and publishing its force and marker streams on Lab Streaming Layer over
loopback). The class view runs in this process: the real ``recorder.class_view`` window on
Qt's offscreen platform (raster painting), fed by the real LSL inlets of
``recorder.class_inlets``. Measured over ``--seconds`` from WARM_S after every station's file
exists and every tile has received samples (in the first seconds after that, a sample can take
1-2 s to its tile while the stations and the view settle: a start-up transient, left out):

- every station file lossless: delivered = the device's sequence span, no gap events (counted
  as bench_e2e counts them), over the whole file;
- the class view's frames per second: each tile's paints while it shows a hold in progress
  (the slowest tile). A tile draws pressure against hold duration, so between holds it has
  nothing new to draw and does not repaint; the holds are found in the samples the tile took
  in by the view's own detector (``class_model.config_detector``), as the tile found them;
- from a sample's LSL timestamp (the station's fitted device clock mapped to
  ``pylsl.local_clock``, which is this machine's monotonic clock) to the end of the first
  frame of its tile that paints it (p50, p99 over every sample a tile draws: those inside a
  hold), as bench_window measures the single window: the tile's ``FrameClock`` says how many
  of the station's samples each paint had taken in;
- CPU as % of one core: the class-view process, each station process, and the whole machine
  (% of all cores) over the window, with the machine's load for BACKGROUND_S just before the
  stations start (this machine is shared).

The main run is repeated with the host hiccups of ``--imperfect`` (a delivery 20-200 ms late,
every 5 s on average): they delay a station's samples before its recorder sees them, so they
set a floor under the tail that no view can lower; the two runs tell the view's latency from
the station's.

The same-run baselines, first: one station alone, and the same recording without LSL (an
ordinary headless recording, whose link batches its reads), each's CPU measured as bench_e2e
measures the recorder's. Then the same class run at other ``--counts`` (shorter runs): above
``--stations`` until a file loses a sample when it was lossless, below it until one does not
when it was not: the largest lossless count, and what limits it (the stations' CPU against
the cores). Stations stop on SIGTERM (the Ctrl-C path, which finalises the file) after the
window; their ``--duration`` is only a safety bound. The figures go to
bench/results/class.json.

    QT_QPA_PLATFORM=offscreen python bench/bench_class.py [--stations 8] [--seconds 25]
        [--counts 4,6,12,16,20] [--count-seconds 15] [--quick]
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import numpy as np  # noqa: E402
import psutil  # noqa: E402
import pyqtgraph as pg  # noqa: E402
from bench_window import PERCENTILES, percentiles  # noqa: E402
from pyqtgraph.Qt import QtCore  # noqa: E402
from results import save  # noqa: E402

from recorder.class_model import RING_S, config_detector  # noqa: E402
from recorder.panels import quiet_offscreen_warnings  # noqa: E402
from schemas.reader import open_recording  # noqa: E402

ROOT = Path(__file__).parents[1]
RATE = 1000.0
WARM_S = 3.0  # after every tile has data, before the window opens (latencies settle)
BACKGROUND_S = 2.0  # the machine's load measured before the stations start
START_TIMEOUT_S = 90.0  # every station's file must exist by then
TAIL_S = 0.5  # samples this close to the window's end may be painted after it: left out
FRAME_SETTLE_S = 0.5  # a hold's first half second is left out of the frame rate (its start
#                       is known only once the force crosses the detector's on-threshold)
STOP_TIMEOUT_S = 60.0
FPS_TARGET = 30  # the targets for the class view
LATENCY_TARGET_MS = 100


def start_station(tmp: Path, k: int, bound_s: float, station: bool = True,
                  hiccups: bool = False) -> tuple[subprocess.Popen, Path]:
    """Station ``k`` (its own process, seed ``k``) recording to ``tmp/K.h5`` for at most
    ``bound_s`` s; its catalog is in ``tmp``, not the user's. ``station=False``: the same
    recording without LSL (an ordinary headless recording, whose link batches its reads).
    ``hiccups``: with ``--imperfect``'s host hiccups too (deliveries 20-200 ms late, every 5 s
    on average), which delay a station's samples by that much before the recorder sees them."""
    out = tmp / f"{k}.h5"
    publish = ["--lsl", "--station", f"bench-{k}"] if station else []
    calm = [] if hiccups else ["--hiccups", "0"]
    proc = subprocess.Popen(
        [sys.executable, "-m", "recorder.cli", "record", "--simulate", "--imperfect", *calm,
         "--headless", *publish, "--seed", str(k), "--out", str(out), "--duration", str(bound_s),
         "--catalog", str(tmp / "catalog.sqlite")],
        cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    return proc, out


def station_alone(tmp: Path, seconds: float) -> dict:
    """The baseline: CPU (% of one core, as bench_e2e measures it) of one station recording
    alone, then of the same recording without LSL, each for ``seconds``."""
    from bench_e2e import cpu_percent

    figures = {}
    for key, station in (("station_cpu_percent", True), ("plain_cpu_percent", False)):
        proc, out = start_station(tmp, len(figures), seconds, station)
        figures[key] = cpu_percent(proc, out, seconds)
        if stop_stations([proc]) or not file_counts(out)["lossless"]:
            raise RuntimeError(f"the station alone ({key}) failed or lost samples")
    return {"seconds": seconds, **figures}


def stop_stations(procs: list[subprocess.Popen]) -> list[str]:
    """SIGTERM every station (it finalises its file, as on Ctrl-C); the stderr of each one
    that did not exit cleanly."""
    for p in procs:
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
    failures = []
    for k, p in enumerate(procs):
        try:
            _, err = p.communicate(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            p.kill()
            _, err = p.communicate()
        if p.returncode != 0:
            failures.append(f"station {k} exit {p.returncode}: {err.strip()[-300:]}")
    return failures


def file_counts(path: Path) -> dict:
    """A station's file as bench_e2e counts it: samples delivered against the device's
    sequence span, gap events, CRC errors, and its effective rate."""
    rec = open_recording(path)
    expected = int(rec.sequence[-1] - rec.sequence[0] + 1)
    gaps = sum(e.kind == "gap" for e in rec.events)
    span_s = float(rec.timestamps[-1] - rec.timestamps[0])
    return {"delivered": len(rec.force), "expected": expected, "gaps": int(gaps),
            "crc": int(rec.link_stats[-1]["crc_errors"]),
            "rate_hz": (len(rec.force) - 1) / span_s if span_s > 0 else 0.0,
            "lossless": len(rec.force) == expected and gaps == 0}


def _cpu_s(proc: psutil.Process) -> float:
    """User + system CPU seconds of ``proc``; NaN once it has exited (a station that died
    is then reported by ``stop_stations``)."""
    try:
        return sum(proc.cpu_times()[:2])
    except psutil.NoSuchProcess:
        return float("nan")


class CpuMarks:
    """CPU seconds of this process, of each station and of the whole machine at two marks."""

    def __init__(self, pids: list[int]) -> None:
        self.me = psutil.Process()
        self.stations = [psutil.Process(pid) for pid in pids]
        self.marks: list[tuple] = []

    def mark(self) -> None:
        machine = psutil.cpu_times()
        self.marks.append((time.monotonic(), _cpu_s(self.me),
                           [_cpu_s(p) for p in self.stations],
                           sum(machine) - machine.idle - getattr(machine, "iowait", 0.0),
                           sum(machine)))

    def figures(self) -> dict:
        """% of one core between the two marks (the machine: % of all its cores)."""
        (t0, v0, s0, b0, a0), (t1, v1, s1, b1, a1) = self.marks
        station = [100 * (b - a) / (t1 - t0) for a, b in zip(s0, s1, strict=True)]
        return {"view_cpu_percent": 100 * (v1 - v0) / (t1 - t0),
                "station_cpu_percent": station,
                "machine_busy_percent": 100 * (b1 - b0) / (a1 - a0)}


def background_busy(seconds: float) -> float:
    """% of all cores busy over ``seconds`` with none of this benchmark's stations running."""
    return psutil.cpu_percent(interval=seconds)


def wait_until(app, ready, timeout_s: float) -> bool:
    """Run the Qt event loop (the view keeps drawing) until ``ready()`` or the timeout."""
    deadline = time.monotonic() + timeout_s
    while not ready() and time.monotonic() < deadline:
        app.processEvents(QtCore.QEventLoop.ProcessEventsFlag.AllEvents, 50)
    return ready()


def run_for(seconds: float) -> None:
    """Run a Qt event loop for ``seconds`` (its own: the application's ``quit`` would close
    the view too)."""
    loop = QtCore.QEventLoop()
    QtCore.QTimer.singleShot(int(seconds * 1000), loop.quit)
    loop.exec()


def drawn_holds(times: np.ndarray, force: np.ndarray,
                band: tuple[float, float] | None) -> list[tuple[float, float]]:
    """(start, end) of each hold in a tile's samples, found as the tile's own detector found
    them (a hold still in progress ends at the last sample)."""
    detector = config_detector(band)
    events = detector.feed(times, force) + detector.finish()
    return [(e.hold.start_s, e.hold.end_s) for e in events if e.kind == "end"]


def tile_figures(frames: list[tuple[float, int]], times: np.ndarray, total: int,
                 holds: list[tuple[float, float]], t0: float,
                 t1: float) -> tuple[float, np.ndarray]:
    """(frames/s painted in [t0, t1] while a hold was in progress, the latency in s of each
    sample drawn) of one tile. ``frames``: (monotonic end of a paint, samples the tile had
    taken in by then); ``times``: the LSL timestamps of the station's newest samples the view
    holds, the last of them sample ``total`` - 1; ``holds``: what the tile drew. A sample is
    painted by the first frame that had taken it in; those inside a hold and stamped in
    [t0, t1 - TAIL_S] count (a later one's frame may fall after the end)."""
    paint_t = np.array([f[0] for f in frames])
    drawn = np.array([f[1] for f in frames])
    live = np.zeros(len(times), dtype=bool)
    painted, live_s = 0, 0.0
    for start, end in holds:
        live |= (times >= start) & (times <= end)
        a, b = max(start + FRAME_SETTLE_S, t0), min(end, t1)
        if b > a:
            painted += int(np.count_nonzero((paint_t >= a) & (paint_t <= b)))
            live_s += b - a
    index = np.flatnonzero(live & (times >= t0) & (times <= t1 - TAIL_S))
    frame = np.searchsorted(drawn, total - len(times) + index + 1)
    keep = frame < len(frames)
    return painted / live_s if live_s else 0.0, paint_t[frame[keep]] - times[index[keep]]


def view_figures(view, model, names: list[str], t0: float, t1: float) -> dict:
    """The class view's frames/s (each tile), sample-to-paint latency percentiles (ms; all
    tiles, and each tile's p99) and the samples each tile took in over the whole run."""
    fps, latencies = [], []
    for name in names:
        st = model.stations[name]
        held = st.ring.latest()
        holds = drawn_holds(held.time, held.force, st.band_n)
        tile_fps, late = tile_figures(list(view.tiles[name].clock.frames), held.time,
                                      held.total, holds, t0, t1)
        fps.append(tile_fps)
        latencies.append(late)
    every = np.concatenate(latencies)
    return {"fps": fps, "latency_ms": percentiles(every),
            "tile_p99_ms": [percentiles(late)[-1] for late in latencies],
            "samples": len(every),
            "view_received": [model.stations[name].ring.total for name in names]}


def start_view(names: list[str]):
    """The class view on ``names`` (its model, its LSL inlets, its window), shown."""
    from recorder.class_inlets import StationInlets
    from recorder.class_model import ClassModel
    from recorder.class_view import ClassWindow

    model = ClassModel(only=names)
    inlets = StationInlets(model)
    view = ClassWindow(model, inlets.poll)
    view.show()
    return model, inlets, view


def start_all(app, tmp: Path, count: int, bound_s: float,
              hiccups: bool = False) -> tuple[list, list[Path]]:
    """``count`` stations, returned once every one's file exists (RuntimeError naming those
    that died or did not start within START_TIMEOUT_S)."""
    started = [start_station(tmp, k, bound_s, hiccups=hiccups) for k in range(count)]
    procs, outs = [p for p, _ in started], [o for _, o in started]

    def up() -> bool:
        return all(o.exists() for o in outs) or any(p.poll() is not None for p in procs)

    if not wait_until(app, up, START_TIMEOUT_S) or any(p.poll() is not None for p in procs):
        late = [k for k, o in enumerate(outs) if not o.exists()]
        failures = stop_stations(procs)
        raise RuntimeError(f"{count} stations: not started {late}; {'; '.join(failures)}")
    return procs, outs


def run_once(app, tmp: Path, count: int, seconds: float, hiccups: bool = False) -> dict:
    """The class view and ``count`` stations for ``seconds`` after WARM_S: the figures of
    the module docstring."""
    tmp.mkdir()
    background = background_busy(BACKGROUND_S)
    names = [f"bench-{k}" for k in range(count)]
    model, inlets, view = start_view(names)
    procs, outs = start_all(app, tmp, count, 2 * START_TIMEOUT_S + WARM_S + seconds, hiccups)
    rings = [model.stations[name].ring for name in names]
    try:
        if not wait_until(app, lambda: all(r.total for r in rings), START_TIMEOUT_S):
            silent = [k for k, r in enumerate(rings) if not r.total]
            raise RuntimeError(f"no sample reached the view from stations {silent}")
        run_for(WARM_S)
        cpu = CpuMarks([p.pid for p in procs])
        cpu.mark()
        run_for(seconds)
        cpu.mark()
        t0, t1 = cpu.marks[0][0], cpu.marks[1][0]
        shown = view_figures(view, model, names, t0, t1)
    finally:
        view.close()
        inlets.close()
        failures = stop_stations(procs)
    if failures:
        raise RuntimeError("; ".join(failures))
    files = [file_counts(o) for o in outs]
    return {"stations": count, "seconds": t1 - t0, "files": files,
            "lossless": all(f["lossless"] for f in files), **shown, **cpu.figures(),
            "background_busy_percent": background}


def report(r: dict) -> str:
    lost = [k for k, f in enumerate(r["files"]) if not f["lossless"]]
    delivered = sum(f["delivered"] for f in r["files"])
    expected = sum(f["expected"] for f in r["files"])
    return ("  {:2d} stations: files {} ({:,} / {:,} samples, gaps {})   view {:5.1f} fps "
            "(slowest tile)   sample -> tile p50 / p99 {:5.1f} / {:5.1f} ms (worst tile p99 "
            "{:5.1f}; {:,} samples)   CPU: view {:5.1f} %, station {:4.1f}-{:4.1f} %, machine "
            "{:4.1f} % of all cores (before: {:4.1f} %)").format(
        r["stations"], "lossless" if not lost else f"NOT lossless: stations {lost}", delivered,
        expected, sum(f["gaps"] for f in r["files"]), min(r["fps"]), *r["latency_ms"],
        max(r["tile_p99_ms"]), r["samples"], r["view_cpu_percent"],
        min(r["station_cpu_percent"]), max(r["station_cpu_percent"]),
        r["machine_busy_percent"], r["background_busy_percent"])


def other_counts(app, tmp: Path, main_run: dict, counts: list[int],
                 seconds: float) -> tuple[list, list]:
    """Runs at ``counts`` towards the edge: above the main run's count, up to the first that
    loses a sample, when the main run was lossless; below it, down to the first lossless
    one, when it was not. Also the count whose run failed (a station did not start or
    exited with an error; it ends the search), with why."""
    n, lossless = main_run["stations"], main_run["lossless"]
    tried = (sorted(c for c in counts if c > n) if lossless
             else sorted((c for c in counts if c < n), reverse=True))
    runs, failed = [], []
    for count in tried:
        try:
            runs.append(run_once(app, tmp / f"n{count}", count, seconds))
        except RuntimeError as exc:
            print(f"  {count:2d} stations: the run failed: {exc}", flush=True)
            failed.append({"stations": count, "error": str(exc)})
            break
        print(report(runs[-1]), flush=True)
        if runs[-1]["lossless"] != lossless:
            break
    return runs, failed


def meets_view_targets(r: dict) -> bool:
    """The class view kept up: every tile at >= FPS_TARGET frames/s and p99 <= LATENCY_TARGET_MS."""
    return min(r["fps"]) >= FPS_TARGET and r["latency_ms"][1] <= LATENCY_TARGET_MS


def view_edge(app, tmp: Path, main_run: dict, counts: list[int], seconds: float) -> list:
    """When the main run's view missed its targets: runs at ``counts`` below its station
    count, down to the first whose view met them (the largest count the view keeps up with
    on this machine, the stations sharing its cores)."""
    if meets_view_targets(main_run):
        return []
    runs = []
    for count in sorted((c for c in counts if c < main_run["stations"]), reverse=True):
        runs.append(run_once(app, tmp / f"v{count}", count, seconds))
        print(report(runs[-1]), flush=True)
        if meets_view_targets(runs[-1]):
            break
    return runs


def main() -> None:
    from recorder.class_view import FRAME_MS

    ap = argparse.ArgumentParser()
    ap.add_argument("--stations", type=int, default=8)
    ap.add_argument("--seconds", type=float, default=25.0)
    ap.add_argument("--counts", default="4,6,12,16,20",
                    help="station counts tried next: above --stations until one loses a "
                         "sample, or below it until one does not")
    ap.add_argument("--view-counts", default="6,4,2",
                    help="when the view misses its targets: station counts tried below "
                         "--stations until it meets them")
    ap.add_argument("--count-seconds", type=float, default=15.0)
    ap.add_argument("--quick", action="store_true",
                    help="2 stations for 5 s, then 1 or 3 for 3 s: a smoke run")
    args = ap.parse_args()
    if max(args.seconds, args.count_seconds) > RING_S - 2 * WARM_S:
        ap.error(f"at most {RING_S - 2 * WARM_S:g} s: the view keeps {RING_S:g} s per station")
    stations, seconds, counts, view_counts, count_seconds = (
        (2, 5.0, [1, 3], [1], 3.0) if args.quick else
        (args.stations, args.seconds, [int(c) for c in args.counts.split(",") if c],
         [int(c) for c in args.view_counts.split(",") if c], args.count_seconds))
    quiet_offscreen_warnings()
    app = pg.mkQApp("bench")
    print(f"class benchmark: {stations} stations at {RATE:g} Hz for {seconds:g} s, then "
          f"towards the edge among {', '.join(map(str, counts))} for {count_seconds:g} s each, "
          f"{psutil.cpu_count()} cores", flush=True)
    with tempfile.TemporaryDirectory() as d:
        alone = station_alone(Path(d), count_seconds)
        print("  one station alone: {station_cpu_percent:4.1f} % of one core (without LSL "
              "{plain_cpu_percent:4.1f} %)".format(**alone), flush=True)
        main_run = run_once(app, Path(d) / "main", stations, seconds)
        print(report(main_run), flush=True)
        with_hiccups = run_once(app, Path(d) / "hiccups", stations, seconds, hiccups=True)
        print("  with host hiccups:" + report(with_hiccups), flush=True)
        by_count, failed = other_counts(app, Path(d), main_run, counts, count_seconds)
        by_view = view_edge(app, Path(d), main_run, view_counts, count_seconds)
    save("class", {"stations": stations, "rate_hz": RATE, "seconds": seconds, "warm_s": WARM_S,
                   "counts": counts, "view_counts": view_counts,
                   "count_seconds": count_seconds, "percentiles": list(PERCENTILES),
                   "frame_ms": FRAME_MS, "fps_target": FPS_TARGET,
                   "latency_target_ms": LATENCY_TARGET_MS},
         {"alone": alone, "run": main_run, "with_hiccups": with_hiccups,
          "by_count": by_count, "failed": failed,
          "by_view": by_view},
         quick=args.quick)


if __name__ == "__main__":
    main()
