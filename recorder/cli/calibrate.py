"""``palpation calibrate``, ``calibrations`` and ``recalibrate``: a sensor's calibration, what
is saved, and a recording re-derived with another."""

from __future__ import annotations

import argparse
from pathlib import Path

from recorder.cli.common import CliError


def add_parsers(sub: argparse._SubParsersAction) -> None:
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
