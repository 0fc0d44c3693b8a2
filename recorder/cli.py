"""The ``palpation`` command: one entry point, a subcommand per job.

Every failure a user can cause (a missing port, a full disk, a foreign file) ends in a
one-line message on stderr and a non-zero exit status, never a traceback.
"""

from __future__ import annotations

import argparse
import json
import math
import signal
import sys
import threading
import time
from pathlib import Path

from recorder import __version__

EXIT_FAILURE = 1


class CliError(Exception):
    """A failure to report in one line and exit non-zero."""


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args) or 0
    except KeyboardInterrupt:
        return 130
    except CliError as exc:
        print(f"palpation: error: {exc}", file=sys.stderr)
        return EXIT_FAILURE


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="palpation",
        description="Record, coach and analyse manual-therapy pressure from a hand-held "
                    "force sensor.")
    parser.add_argument("--version", action="version", version=f"palpation {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("record", help="record a sensor to an HDF5 file",
                       description="Record a sensor (or the simulated sensor) to an HDF5 file.")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--port", help="serial port of the sensor (e.g. /dev/ttyACM0)")
    src.add_argument("--simulate", action="store_true", help="record the simulated sensor")
    p.add_argument("--out", required=True, type=Path, help="recording file to create (.h5)")
    p.add_argument("--duration", type=float, help="stop after this many seconds")
    p.add_argument("--headless", action="store_true", help="no window, a progress line only")
    p.add_argument("--device", choices=["palpation", "ascii", "mark10", "imada", "wagner"],
                   default="palpation",
                   help="palpation (binary protocol v1), ascii lines, or a force gauge: "
                        "Mark-10 Series 4/5, Imada DS2/DST/ZTA, Wagner FDIX")
    p.add_argument("--baud", type=int,
                   help="baud rate (default: the gauge's documented rate, else 921600)")
    p.add_argument("--ascii-unit", default="N", help="unit of ASCII readings with none given")
    p.add_argument("--rate", type=float, help="ask the device for this sample rate (Hz)")
    for name in ("trainee", "instructor", "site", "notes"):
        p.add_argument(f"--{name}", default="", help=f"session {name}")
    p.add_argument("--contact-area", type=float, default=math.nan, metavar="CM2",
                   help="contact area in cm² (for pressure; default: the protocol's)")
    p.add_argument("--protocol", default="nmt-static",
                   help="session protocol: a preset (see `palpation protocols`) or a TOML file")
    p.add_argument("--screenshot", type=Path, metavar="PNG",
                   help="save the window to this PNG when the run ends")
    p.add_argument("--calibration", type=Path,
                   help="calibration file (default: the newest saved for this device)")
    p.add_argument("--lsl", action="store_true",
                   help="also publish the force as a Lab Streaming Layer outlet (lsl extra)")
    p.add_argument("--unit", help="display unit: N, kgf, lbf, kPa, N/cm2, kgf/cm2 "
                                  "(default: the protocol's)")
    _add_sim_options(p, standalone=False)
    p.set_defaults(func=cmd_record)

    p = sub.add_parser("calibrate", help="calibrate a sensor with known loads",
                       description="Tare, then known loads (masses or forces), loading and "
                                   "unloading; fit, report residuals, nonlinearity, hysteresis "
                                   "and repeatability, and save the calibration for this "
                                   "device. Interactive unless --points is given.")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--port", help="serial port of the sensor")
    src.add_argument("--simulate", action="store_true",
                     help="the simulated sensor, loaded with exactly the given masses")
    p.add_argument("--points", help="loads, e.g. 0,0.5,1,2 (in --unit)")
    p.add_argument("--unit", default="kg", help="unit of the loads: g, kg, lb, N, kgf, lbf")
    p.add_argument("--unload", action="store_true", help="also read the loads coming down")
    p.add_argument("--repeat", type=int, default=1, help="repeat the series (repeatability)")
    p.add_argument("--model", choices=["linear", "poly2", "poly3"], default="linear",
                   help="linear (load cells) or a low-order polynomial (FSR)")
    p.add_argument("--seconds", type=float, default=1.0, help="averaging time per load")
    p.add_argument("--note", default="", help="a note on the sensor (e.g. 'FSR 402')")
    p.add_argument("--check", metavar="LOAD",
                   help="verify the calibration with one known load instead of calibrating")
    p.add_argument("--calibration", type=Path, help="the calibration to --check")
    p.add_argument("--out-dir", type=Path, help="save here instead of the user data folder")
    p.add_argument("--baud", type=int, default=921600, help=argparse.SUPPRESS)
    p.add_argument("--sim-rate", type=float, default=80.0, help=argparse.SUPPRESS)
    p.add_argument("--seed", type=int, default=1, help=argparse.SUPPRESS)
    p.set_defaults(func=cmd_calibrate)

    p = sub.add_parser("calibrations", help="list the saved calibrations")
    p.set_defaults(func=cmd_calibrations)

    p = sub.add_parser("recalibrate", help="re-derive a recording's force with a calibration",
                       description="Recompute force from the recorded raw counts with another "
                                   "calibration; the raw data stay untouched and the file "
                                   "records that it was recalibrated.")
    p.add_argument("file", type=Path)
    p.add_argument("--calibration", type=Path, required=True, help="calibration file (JSON)")
    p.set_defaults(func=cmd_recalibrate)

    p = sub.add_parser("analyze", help="one row per hold, from many recordings",
                       description="Segment every recording's holds and compute their "
                                   "metrics into one table (columns and units: "
                                   "analysis/TABLE.md).")
    p.add_argument("inputs", nargs="+", metavar="FILES_OR_DIRS")
    p.add_argument("--out", type=Path, required=True, help="holds.csv or holds.parquet")
    p.add_argument("--summary", type=Path, metavar="FILE",
                   help="also write per session and trigger point consistency (csv/parquet)")
    p.add_argument("--jobs", type=int, default=1, help="local worker processes")
    p.add_argument("--scheduler", metavar="ADDRESS",
                   help="run on a Dask distributed cluster (tcp://host:port)")
    p.set_defaults(func=cmd_analyze)

    p = sub.add_parser("report", help="an HTML report for an instructor",
                       description="A self-contained HTML page: per trigger point the holds "
                                   "over the target band, their metrics and flags, the "
                                   "distance to a reference (instructor) recording, and a "
                                   "trainee's progress across sessions.")
    p.add_argument("files", nargs="+", type=Path, metavar="FILES")
    p.add_argument("--out", type=Path, required=True, help="report.html")
    p.add_argument("--reference", type=Path, help="an instructor's recording")
    p.set_defaults(func=cmd_report)

    p = sub.add_parser("export", help="a recording's raw trace as CSV or Parquet")
    p.add_argument("file", type=Path)
    p.add_argument("--format", choices=["csv", "parquet"], default="csv")
    p.add_argument("--out", type=Path, help="default: FILE with the format's suffix")
    p.set_defaults(func=cmd_export)

    p = sub.add_parser("protocols", help="list the session protocol presets",
                       description="List the shipped session protocols, or show one as TOML "
                                   "to copy and edit.")
    p.add_argument("show", nargs="?", metavar="PRESET", help="print this preset's TOML")
    p.set_defaults(func=cmd_protocols)

    p = sub.add_parser("review", help="open a recording in the coaching panels",
                       description="Open a recording: step through trigger points and holds, "
                                   "with an instructor's recording as reference.")
    p.add_argument("file", type=Path)
    p.add_argument("--reference", type=Path, help="an instructor's recording to overlay")
    p.add_argument("--screenshot", type=Path, metavar="PNG",
                   help="save the window to this PNG and exit")
    p.set_defaults(func=cmd_review)

    p = sub.add_parser("simulate", help="serve the simulated sensor on a pseudo-terminal",
                       description="Serve a simulated sensor on a new pseudo-terminal. The "
                                   "device path is the first line of standard output.")
    _add_sim_options(p, standalone=True)
    p.set_defaults(func=cmd_simulate)

    p = sub.add_parser("devices", help="list serial ports with their USB identity")
    p.set_defaults(func=cmd_devices)

    p = sub.add_parser("validate", help="check a recording against its schema")
    p.add_argument("file", type=Path)
    p.set_defaults(func=cmd_validate)

    p = sub.add_parser("info", help="summarise a recording")
    p.add_argument("file", type=Path)
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=cmd_info)

    p = sub.add_parser("recover", help="make an interrupted recording whole and finalised",
                       description="Rewrite a recording left by a killed recorder into a "
                                   "finalised file; the original is kept as NAME.orig.h5.")
    p.add_argument("file", type=Path)
    p.set_defaults(func=cmd_recover)
    return parser


def _add_sim_options(p: argparse.ArgumentParser, standalone: bool) -> None:
    g = p.add_argument_group("simulated sensor")
    g.add_argument("--sim-rate" if not standalone else "--rate", dest="sim_rate", type=float,
                   default=1000.0, help="sample rate in Hz (10 to 100000; default 1000)")
    g.add_argument("--seed", type=int, default=1, help="random seed (default 1)")
    g.add_argument("--profile", choices=["novice", "expert"], default="expert",
                   help="simulated therapist")
    if not standalone:
        return
    g.add_argument("--format", choices=["palpation", "ascii"], default="palpation",
                   help="speak protocol v1 (default) or print '<value> N' lines like a sketch")
    g.add_argument("--link", type=Path, help="keep a symlink here to the current device path")
    g.add_argument("--duration", type=float, help="stop after this many seconds")
    g.add_argument("--corrupt", type=float, default=0.0, metavar="P",
                   help="probability that a byte is damaged")
    g.add_argument("--drop", type=float, default=0.0, metavar="P",
                   help="probability that a frame is dropped")
    g.add_argument("--disconnect-after", type=float, metavar="S",
                   help="unplug after S seconds")
    g.add_argument("--reappear-after", type=float, metavar="T",
                   help="plug back in T seconds after the unplug (same --link)")
    g.add_argument("--tx-buffer", type=int, default=65536, metavar="BYTES",
                   help="unsent bytes held before frames are dropped (default 65536)")
    g.add_argument("--truth", type=Path, help="write the ground truth (JSON) here")
    g.add_argument("--report", type=Path, help="write what the simulator did (JSON) at exit")


def _stop_on_signals(stop: threading.Event) -> None:
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())


def cmd_simulate(args: argparse.Namespace) -> int:
    from firmware_bridge.sim.server import write_json

    server, sensor = _make_sim_server(args, on_path=lambda p: print(p, flush=True))
    stop = threading.Event()
    _stop_on_signals(stop)
    try:
        server.run(stop, duration=args.duration)
    except OSError as exc:
        raise CliError(f"simulator: {exc.strerror or exc}") from None
    finally:
        if args.truth:
            write_json(args.truth, sensor.truth())
        if args.report:
            write_json(args.report, server.report())
    return 0


def _simulated_dose(protocol):
    """The dose the simulated therapist aims at: the protocol's first point's band and
    hold window, over the protocol's trigger points."""
    from firmware_bridge.sim.therapist import Dose

    dose = protocol.points[0].dose
    low, high = dose.band_n(protocol.contact_area_cm2)
    if low <= 0:  # a threshold ramp: press to a plausible threshold at the coached rate
        low, high = 0.3 * high, 0.5 * high
    ramp = protocol.ramp_n_per_s(0)
    return Dose(target_n=(low + high) / 2, band_low_n=low, band_high_n=high,
                hold_s=max(2.0, (dose.min_hold_s + dose.max_hold_s) / 2),
                repetitions=dose.repetitions, rest_s=max(dose.rest_s, 4.0),
                ramp_n_per_s=sum(ramp) / 2 if ramp and math.isfinite(ramp[1]) else None,
                trigger_points=[p.label for p in protocol.points])


def _make_sim_server(args: argparse.Namespace, on_path, protocol=None) -> tuple:
    from firmware_bridge.sim.device import SimulatedSensor
    from firmware_bridge.sim.server import Faults, PtyServer

    if not 1 <= args.sim_rate <= 200_000:
        raise CliError(f"--rate {args.sim_rate:g}: the simulator runs at 1 to 200000 Hz")
    faults = Faults(corrupt=getattr(args, "corrupt", 0.0),
                    disconnect_after=getattr(args, "disconnect_after", None),
                    reappear_after=getattr(args, "reappear_after", None))
    sensor = SimulatedSensor(profile=args.profile, rate_hz=args.sim_rate, seed=args.seed,
                             dose=_simulated_dose(protocol) if protocol else None,
                             drop=getattr(args, "drop", 0.0),
                             ascii=getattr(args, "format", "palpation") == "ascii")
    server = PtyServer(sensor.make_device, on_path=on_path, link=getattr(args, "link", None),
                       faults=faults, tx_buffer=getattr(args, "tx_buffer", 65536),
                       seed=args.seed)
    return server, sensor


def cmd_record(args: argparse.Namespace) -> int:
    from firmware_bridge.link import LinkError
    from recorder.lsl import LslError
    from recorder.session import RecordingSession, SessionError, SessionOptions
    from schemas.calibration import CalibrationError, load_calibration
    from schemas.hdf5 import RecordingFileError
    from schemas.session_protocol import ProtocolError, resolve_protocol
    from schemas.units import newtons_per_unit

    try:
        protocol = resolve_protocol(args.protocol)
    except ProtocolError as exc:
        raise CliError(str(exc)) from None
    if args.out.exists():
        raise CliError(f"{args.out} exists; choose another --out (recordings are never "
                       "overwritten)")
    if not args.headless:
        _check_display()
    stop = threading.Event()
    sim_thread = None
    port = args.port
    if args.simulate:
        paths: list[str] = []
        ready = threading.Event()
        server, _ = _make_sim_server(args, lambda p: (paths.append(p), ready.set()), protocol)
        sim_thread = threading.Thread(target=server.run, args=(stop,), name="simulator",
                                      daemon=True)
        sim_thread.start()
        if not ready.wait(5):
            raise CliError("the simulated sensor did not start")
        port = paths[0]
    metadata = {name: getattr(args, name) for name in ("trainee", "instructor", "site", "notes")}
    metadata.update(protocol=protocol.name, protocol_toml=protocol.to_toml(),
                    contact_area_cm2=args.contact_area if args.contact_area > 0
                    else protocol.contact_area_cm2)
    try:
        calibration = load_calibration(args.calibration) if args.calibration else None
        if args.unit:
            newtons_per_unit(args.unit, metadata["contact_area_cm2"])
    except (CalibrationError, ValueError) as exc:
        raise CliError(str(exc)) from None
    options = SessionOptions(port=port, out=args.out, device=args.device, baudrate=args.baud,
                             ascii_unit=args.ascii_unit, rate_hz=args.rate, metadata=metadata,
                             protocol=protocol, contact_area_cm2=args.contact_area,
                             display_unit=args.unit, calibration=calibration, lsl=args.lsl)
    session = RecordingSession(options)
    try:
        session.start()
    except (LinkError, SessionError, RecordingFileError, LslError, ValueError) as exc:
        stop.set()
        raise CliError(str(exc)) from None
    for warning in session.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    try:
        if args.headless:
            _run_headless(session, stop, args.duration, args.out)
        else:
            from recorder.window import run_live

            run_live(session, duration=args.duration, screenshot=args.screenshot)
    finally:
        session.stop()
        stop.set()
        if sim_thread is not None:
            sim_thread.join(5)
    if session.error:
        raise CliError(f"{session.error}; what was written before is kept in {args.out} "
                       f"(if it does not open, run: palpation recover {args.out})")
    from schemas.reader import open_recording, summarize

    _print_summary(args.out, summarize(open_recording(args.out)))
    return 0


def _run_headless(session, stop: threading.Event, duration: float | None, out: Path) -> None:
    _stop_on_signals(stop)
    deadline = time.monotonic() + duration if duration else math.inf
    progress = _Progress(out)
    while not stop.is_set() and not session.stopped.is_set() and time.monotonic() < deadline:
        stop.wait(min(0.5, max(0.0, deadline - time.monotonic())))
        progress.show(session.status())
    progress.done()


def _check_display() -> None:
    """The window needs Qt and a screen (or QT_QPA_PLATFORM=offscreen); say so plainly."""
    import os

    try:
        import pyqtgraph  # noqa: F401
    except ImportError:
        raise CliError("the window needs the gui extra: pip install 'palpation-recorder[gui]' "
                       "(or use --headless)") from None
    if not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")
            or os.environ.get("QT_QPA_PLATFORM")):
        raise CliError("no display for the window: use --headless, or set "
                       "QT_QPA_PLATFORM=offscreen to run without a screen")


def cmd_calibrate(args: argparse.Namespace) -> int:
    from recorder.calibrate_cmd import CalibrateError, run_calibrate
    from schemas.calibration import CalibrationError

    try:
        return run_calibrate(args)
    except (CalibrateError, CalibrationError) as exc:
        raise CliError(str(exc)) from None


def cmd_calibrations(args: argparse.Namespace) -> int:
    from schemas.calibration import calibration_dir, list_calibrations

    problems: list[str] = []
    found = list_calibrations(problems=problems)
    print(f"calibrations in {calibration_dir()}:" if found else
          f"no calibrations in {calibration_dir()}")
    for path, cal in found:
        r = cal.range
        print(f"  {cal.created[:10]}  {cal.device.get('device_id') or '-':<16} {cal.model:<7}"
              f" {r['min_n']:.1f}..{r['max_n']:.1f} N  {path.name}")
    for problem in problems:
        print(f"  unreadable: {problem}")
    return 0


def cmd_recalibrate(args: argparse.Namespace) -> int:
    from schemas.calibration import CalibrationError, load_calibration
    from schemas.hdf5 import RecordingFileError
    from schemas.recalibrate import recalibrate

    try:
        summary = recalibrate(args.file, load_calibration(args.calibration))
    except (CalibrationError, RecordingFileError) as exc:
        raise CliError(str(exc)) from None
    print(f"recalibrated {args.file} ({summary['samples']:,} samples; raw counts unchanged)")
    print(f"  max change of force  {summary['max_abs_delta_n']:.3f} N")
    if summary["above_range"]:
        print(f"  warning: {summary['above_range']:,} samples above the calibrated range")
    if summary["holds_not_updated"]:
        print(f"  note: the {summary['holds_not_updated']} holds keep the figures of the "
              "old calibration")
    return 0


def cmd_analyze(args: argparse.Namespace) -> int:
    from analysis.batch import find_recordings, progress_bar, run_batch, summary_rows, write_table

    paths = find_recordings(args.inputs)
    if not paths:
        raise CliError("no recordings (*.h5) in " + " ".join(args.inputs))
    for out in filter(None, (args.out, args.summary)):
        if out.suffix.lower() not in (".csv", ".parquet"):
            raise CliError(f"{out}: the table is written as .csv or .parquet")
    try:
        result = run_batch(paths, jobs=args.jobs, scheduler=args.scheduler,
                           progress=progress_bar if sys.stderr.isatty() else None)
    except OSError as exc:
        raise CliError(f"cannot reach the Dask scheduler {args.scheduler}: {exc}") from None
    for line in result.skipped:
        print(f"skipped {line}", file=sys.stderr)
    try:
        write_table(result.rows, args.out)
        if args.summary:
            write_table(summary_rows(result.rows), args.summary)
    except (ValueError, OSError) as exc:
        raise CliError(str(exc)) from None
    print(f"{len(result.rows)} holds from {result.files - len(result.skipped)} recordings "
          f"-> {args.out}" + (f" ({len(result.skipped)} skipped)" if result.skipped else ""))
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from analysis.report import write_report

    try:
        warnings = write_report(args.files, args.out, reference=args.reference)
    except OSError as exc:
        raise CliError(f"cannot write {args.out}: {exc.strerror or exc}") from None
    for w in warnings:
        print(w, file=sys.stderr)
    print(f"report -> {args.out}")
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from analysis.export import export_trace
    from schemas.hdf5 import RecordingFileError

    out = args.out or args.file.with_suffix(f".{args.format}")
    try:
        rows = export_trace(args.file, out, args.format)
    except (RecordingFileError, ValueError, OSError) as exc:
        raise CliError(str(exc)) from None
    print(f"{rows:,} samples -> {out}")
    return 0


def cmd_protocols(args: argparse.Namespace) -> int:
    from schemas.session_protocol import ProtocolError, list_presets, load_preset

    if args.show:
        try:
            print(load_preset(args.show).to_toml(), end="")
        except (ProtocolError, KeyError, ValueError) as exc:
            raise CliError(str(exc).strip("'\"")) from None
        return 0
    for preset_id, description in list_presets():
        print(f"{preset_id:<12} {description}")
    return 0


def cmd_review(args: argparse.Namespace) -> int:
    from schemas.hdf5 import RecordingFileError
    from schemas.reader import open_recording

    _check_display()
    try:
        rec = open_recording(args.file)
        ref = open_recording(args.reference) if args.reference else None
    except RecordingFileError as exc:
        raise CliError(str(exc)) from None
    from recorder.review import run_review

    run_review(rec, ref, screenshot=args.screenshot)
    return 0


class _Progress:
    """One updating line on a terminal; a line every 10 s otherwise."""

    def __init__(self, out: Path) -> None:
        self.out = out
        self.tty = sys.stderr.isatty()
        self._last = 0.0

    def show(self, s) -> None:
        now = time.monotonic()
        if not self.tty and now - self._last < 10:
            return
        self._last = now
        state = "" if s.connected else "  RECONNECTING"
        line = (f"{self.out.name}  {s.elapsed_s:7.1f} s  {s.samples:>10,} samples  "
                f"{s.rate_hz:8.0f} Hz  gaps {s.gaps}  crc {s.crc_errors}  "
                f"reconnects {s.reconnects}{state}")
        print(("\r" + line) if self.tty else line, end="" if self.tty else "\n",
              file=sys.stderr, flush=True)

    def done(self) -> None:
        if self.tty:
            print(file=sys.stderr)


def _print_summary(path: Path, summary: dict) -> None:
    print(f"recorded {path}")
    for key, value in summary.items():
        if isinstance(value, float):
            value = f"{value:.3f}"
        print(f"  {key:<18} {value}")


def cmd_devices(args: argparse.Namespace) -> int:
    from firmware_bridge.ports import list_serial_ports

    ports = list_serial_ports()
    if not ports:
        print("no serial ports found")
    for p in ports:
        print(f"{p.device:<20} {p.usb_identity or '-':<24} {p.description}")
    return 0


def cmd_validate(args: argparse.Namespace) -> int:
    from schemas.hdf5 import RecordingFileError
    from schemas.validate import validate

    try:
        validate(args.file)
    except RecordingFileError as exc:
        raise CliError(str(exc)) from None
    print(f"{args.file}: valid")
    return 0


def cmd_info(args: argparse.Namespace) -> int:
    from schemas.hdf5 import RecordingFileError
    from schemas.reader import open_recording, summarize

    try:
        info = summarize(open_recording(args.file))
    except RecordingFileError as exc:
        raise CliError(str(exc)) from None
    if args.json:
        print(json.dumps(info, indent=1, default=str))
    else:
        _print_summary(args.file, info)
    return 0


def cmd_recover(args: argparse.Namespace) -> int:
    from schemas.hdf5 import RecordingFileError
    from schemas.recover import recover

    try:
        out = recover(args.file)
    except RecordingFileError as exc:
        raise CliError(str(exc)) from None
    print(f"recovered {out} (original kept as {args.file.with_suffix('.orig.h5')})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
