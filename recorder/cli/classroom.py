"""``palpation class``: the instructor's view of every station, and simulated stations to try
it alone (``--simulate N``)."""

from __future__ import annotations

import argparse
import math
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from recorder.cli.common import CliError, check_screenshot, start_window

STOP_TIMEOUT_S = 30.0  # a station finalising its file after SIGINT


def add_parsers(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("class", help="the instructor's view of every classroom station",
                       description="Show one tile per classroom station (`palpation record "
                                   "--lsl --station NAME`) found on Lab Streaming Layer; "
                                   "nothing is ever sent to a station.")
    p.add_argument("--station", action="append", metavar="NAME",
                   help="show only this station (repeatable; default: every station found)")
    p.add_argument("--simulate", type=int, metavar="N",
                   help="start N simulated stations (separate processes, novice and expert "
                        "profiles alternating, seeds 1..N, each sensor as imperfect as "
                        "hardware: simulate --imperfect), stopped when the view closes")
    p.add_argument("--out-dir", type=Path, metavar="DIR",
                   help="with --simulate: the stations' recordings go here (default: a "
                        "temporary folder, named on exit)")
    p.add_argument("--duration", type=float, help="close the view after this many seconds")
    p.add_argument("--big-screen", action="store_true",
                   help="for a projector: large type, no small text")
    p.add_argument("--screenshot", type=Path, metavar="PNG",
                   help="save the view to this PNG when it closes")
    p.add_argument("--report", type=Path, metavar="HTML",
                   help="save the class summary as a self-contained HTML page")
    p.set_defaults(func=cmd_class)


@dataclass
class _Station:
    name: str
    out: Path
    process: subprocess.Popen


def start_stations(n: int, out_dir: Path, stations: list[_Station]) -> None:
    """Start N simulated stations into ``stations`` (each ``palpation record --simulate
    --headless --lsl``, its log next to its recording); those started are in ``stations``
    even when a later one fails to start, so they can be stopped."""
    for k in range(1, n + 1):
        name, out = f"sim-{k}", out_dir / f"sim-{k}.h5"
        cmd = [sys.executable, "-m", "recorder.cli", "record", "--simulate", "--imperfect",
               "--headless", "--lsl", "--station", name, "--pseudonym", f"Station {k}",
               "--seed", str(k), "--profile", "novice" if k % 2 else "expert", "--out", str(out)]
        with open(out_dir / f"{name}.log", "w") as log:
            proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT,
                                    stdin=subprocess.DEVNULL)
        stations.append(_Station(name, out, proc))


def stop_stations(stations: list[_Station]) -> list[str]:
    """SIGINT every station (so its file is finalised), wait for all; the lines to report
    for those that failed or had to be killed."""
    for s in stations:
        if s.process.poll() is None:
            s.process.send_signal(signal.SIGINT)
    problems = []
    end = time.monotonic() + STOP_TIMEOUT_S
    for s in stations:
        try:
            code = s.process.wait(timeout=max(0.1, end - time.monotonic()))
        except subprocess.TimeoutExpired:
            s.process.kill()
            s.process.wait()
            problems.append(f"{s.name} did not stop within {STOP_TIMEOUT_S:g} s and was killed")
            continue
        if code != 0:
            problems.append(f"{s.name} exited with status {code} (see {s.out.with_suffix('.log')})")
    return problems


def _check(args: argparse.Namespace) -> None:
    check_screenshot(args.screenshot)
    if args.simulate is not None and not 1 <= args.simulate <= 40:
        raise CliError(f"--simulate {args.simulate}: give 1 to 40 stations")
    if args.out_dir is not None and args.simulate is None:
        raise CliError("--out-dir is where --simulate's stations record; add --simulate N")
    if args.out_dir is not None and not args.out_dir.is_dir():
        raise CliError(f"--out-dir {args.out_dir}: folder does not exist")
    if args.report is not None and not args.report.parent.is_dir():
        raise CliError(f"--report {args.report}: folder {args.report.parent} does not exist")
    if args.duration is not None and not (math.isfinite(args.duration) and args.duration > 0):
        raise CliError(f"--duration {args.duration}: give a positive number of seconds")
    try:
        import pylsl  # noqa: F401
    except ImportError:
        raise CliError("palpation class needs pylsl: pip install "
                       "'palpation-recorder[lsl]'") from None


def cmd_class(args: argparse.Namespace) -> int:
    _check(args)
    start_window("with --screenshot, QT_QPA_PLATFORM=offscreen draws it without a screen")
    out_dir = args.out_dir
    if args.simulate and out_dir is None:
        out_dir = Path(tempfile.mkdtemp(prefix="palpation-class-"))
    from recorder.class_inlets import StationInlets
    from recorder.class_model import ClassModel

    names = args.station or ([f"sim-{k}" for k in range(1, args.simulate + 1)]
                             if args.simulate else None)
    model = ClassModel(names)
    inlets = StationInlets(model)
    stations: list[_Station] = []
    try:
        if args.simulate:
            start_stations(args.simulate, out_dir, stations)
        run_class(model, inlets, args)
    finally:
        problems = stop_stations(stations)
        drain(inlets)
    for line in problems:
        print(f"warning: {line}", file=sys.stderr)
    _print_summary(model, args.report)
    if stations:
        print(f"the stations' recordings are in {out_dir}")
    return 0


def drain(inlets, seconds: float = 0.5) -> None:
    """Take what the stations sent as they stopped (their last holds), then close."""
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        inlets.poll()
        time.sleep(0.05)
    inlets.close()


def run_class(model, inlets, args: argparse.Namespace) -> None:
    """Show the view of ``model``, fed by ``inlets``, until it is closed, Ctrl-C or
    ``--duration``."""
    from recorder.class_view import ClassWindow
    from recorder.panels import quiet_offscreen_warnings
    from recorder.qtstart import fit_to_screen, run_window, start_qt

    quiet_offscreen_warnings()
    app = start_qt()
    window = ClassWindow(model, inlets.poll, big_screen=args.big_screen,
                         screenshot=args.screenshot)
    fit_to_screen(window)
    window.show()
    run_window(app, window, args.duration)
    if not window.screenshot_saved:
        raise CliError(f"cannot write the screenshot {args.screenshot}")


def _print_summary(model, report: Path | None) -> None:
    from analysis.class_summary import summary_table, write_class_summary
    from recorder.class_model import summary_rows

    rows = summary_rows(model)
    print(summary_table(rows))
    if report is not None:
        try:
            write_class_summary(rows, report)
        except OSError as exc:
            raise CliError(f"cannot write the report {report}: {exc.strerror}") from None
        print(f"class summary saved to {report}")
