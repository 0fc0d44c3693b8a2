"""``palpation calibrate``, ``calibrations`` and ``recalibrate``: a sensor's calibration, what
is saved, and a recording re-derived with another."""

from __future__ import annotations

import argparse
from pathlib import Path

from recorder.cli.common import CliError, add_device_options, gauge_options
from schemas.units import LOAD_UNITS


def add_parsers(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("calibrate", help="calibrate a sensor with known loads",
                       description="Tare, then known loads (masses or forces), loading and "
                                   "unloading; fit, report residuals, nonlinearity, hysteresis "
                                   "and repeatability, warn where the protocol's target bands "
                                   "lie outside the calibrated range, and save the calibration "
                                   "for this device (a gauge or sketch: under --sensor-id). "
                                   "Interactive unless --points is given.")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--port", help="serial port of the sensor, gauge or sketch")
    src.add_argument("--simulate", action="store_true",
                     help="the simulated protocol-v1 sensor, loaded with exactly the given "
                          "masses")
    p.add_argument("--points", metavar="LOADS",
                   help="the loads, e.g. 0,2,5,8,11 (in --unit); without it, asks for each")
    p.add_argument("--unit", default="kg",
                   help=f"unit of the loads: {', '.join(LOAD_UNITS)}")
    p.add_argument("--unload", action="store_true", help="also read the loads coming down")
    p.add_argument("--repeat", type=int, default=1, help="repeat the series (repeatability)")
    p.add_argument("--model", choices=["linear", "poly2", "poly3"], default="linear",
                   help="linear (load cells) or a low-order polynomial (FSR)")
    p.add_argument("--seconds", type=float, default=1.0, help="averaging time per load (s)")
    p.add_argument("--note", default="", help="a note on the sensor (e.g. 'FSR 402')")
    p.add_argument("--protocol", default="nmt-static",
                   help="session protocol whose target bands the calibrated range should "
                        "cover: a preset (see `palpation protocols`) or a TOML file")
    p.add_argument("--check", metavar="LOAD",
                   help="verify the calibration with one known load instead of calibrating")
    p.add_argument("--tolerance", type=float, default=2.0, metavar="PCT",
                   help="--check passes when the reading is within this many %% of the load")
    p.add_argument("--calibration", type=Path,
                   help="the calibration to --check (default: the newest saved for this "
                        "device)")
    p.add_argument("--out-dir", type=Path,
                   help="save here (default: the user data folder, see `palpation "
                        "calibrations`)")
    add_device_options(p)
    p.add_argument("--sim-rate", type=float, default=80.0, help=argparse.SUPPRESS)
    p.add_argument("--seed", type=int, default=1, help=argparse.SUPPRESS)
    p.set_defaults(func=cmd_calibrate)

    p = sub.add_parser("calibrations", help="list the saved calibrations")
    p.set_defaults(func=cmd_calibrations)

    p = sub.add_parser("recalibrate", help="re-derive a recording's force with a calibration",
                       description="Recompute force from the recorded raw counts with another "
                                   "calibration; the raw data stay untouched and the file "
                                   "records that it was recalibrated.")
    p.add_argument("file", type=Path, help="the recording to recalibrate (.h5)")
    p.add_argument("--calibration", type=Path, required=True, help="calibration file (JSON)")
    p.set_defaults(func=cmd_recalibrate)


def cmd_calibrate(args: argparse.Namespace) -> int:
    from recorder.calibrate_cmd import CalibrateError, run_calibrate
    from schemas.calibration import CalibrationError, load_to_newtons
    from schemas.session_protocol import ProtocolError, resolve_protocol

    gauge = gauge_options(args)
    try:
        load_to_newtons(1.0, args.unit)
    except ValueError as exc:
        raise CliError(f"--unit: {exc}") from None
    if args.device != "palpation":
        if args.simulate:
            raise CliError("--simulate is the simulated protocol-v1 sensor: give --port for "
                           f"--device {args.device}")
        if not args.sensor_id:
            raise CliError(f"--device {args.device}: give --sensor-id NAME (e.g. the serial "
                           "number on its label): a gauge or sketch does not say who it is, "
                           "and record finds the calibration by this name")
    if args.tolerance <= 0:
        raise CliError(f"--tolerance {args.tolerance:g}: give a percentage above 0")
    try:
        protocol = resolve_protocol(args.protocol)
        return run_calibrate(args, gauge, protocol)
    except (CalibrateError, CalibrationError, ProtocolError) as exc:
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
