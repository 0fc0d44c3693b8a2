"""``palpation probe``: what is on a serial port, and the ``record`` command for it; and the
gauge and sketch options ``record`` and ``calibrate`` share (``add_gauge_options``)."""

from __future__ import annotations

import argparse

from recorder.cli.common import CliError


def add_parsers(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("probe", help="say what is on a serial port and how to record it",
                       description="Try a protocol-v1 device, Mark-10, Imada and Wagner gauges "
                                   "and ASCII sketches at their documented baud rates; print "
                                   "what answered and the `palpation record` command to use.")
    p.add_argument("--port", required=True, help="serial port (e.g. /dev/ttyUSB0)")
    p.add_argument("--baud", type=int, help="try only this baud rate")
    p.set_defaults(func=cmd_probe)


def add_gauge_options(p: argparse.ArgumentParser) -> None:
    """How a gauge or a sketch is read (``--device`` other than palpation)."""
    g = p.add_argument_group("gauges and sketches (--device mark10|imada|wagner|ascii)")
    g.add_argument("--gauge-unit", metavar="UNIT",
                   help="unit of gauge replies that carry none (a Mark-10 set to numeric "
                        "output): N, lbf, kgf, gf, ozf, kN, mN; never guessed")
    g.add_argument("--invert", action="store_true",
                   help="negate every reading (a gauge whose polarity makes compression "
                        "negative)")
    g.add_argument("--wagner-model", choices=["fdix", "fpx"],
                   help="Wagner FDIX (continuous output, default) or FPX (polled with ?)")
    g.add_argument("--ascii-column", type=int, metavar="N",
                   help="CSV/TSV lines: the value is in column N (from 1)")
    g.add_argument("--ascii-time", metavar="N[:ms|us]",
                   help="CSV/TSV lines: the device's clock (millis() or micros()) is in "
                        "column N; it then times the readings")


def gauge_options(args: argparse.Namespace) -> dict:
    """The driver options (``firmware_bridge.gauges``) the command line asks for."""
    from firmware_bridge.asciilines import ColumnFormat, default_force_factor

    given = [name for name in ("gauge_unit", "invert", "wagner_model", "ascii_column",
                               "ascii_time") if getattr(args, name)]
    if args.device == "palpation" and given:
        raise CliError(f"--{given[0].replace('_', '-')} is for a gauge or a sketch "
                       "(--device mark10|imada|wagner|ascii)")
    options: dict = {"invert": True} if args.invert else {}
    try:
        columns = ColumnFormat.from_options(args.ascii_column, args.ascii_time)
        if args.gauge_unit:
            default_force_factor(args.gauge_unit)
    except ValueError as exc:
        raise CliError(str(exc)) from None
    if args.device == "ascii":
        if columns is not None:
            options["columns"] = columns
    elif columns is not None:
        raise CliError("--ascii-column and --ascii-time are for --device ascii")
    elif args.gauge_unit:
        options["unit"] = args.gauge_unit
    if args.wagner_model:
        if args.device != "wagner":
            raise CliError("--wagner-model is for --device wagner")
        options["model"] = args.wagner_model
    return options


def cmd_probe(args: argparse.Namespace) -> int:
    import serial

    from recorder.probe import identify_port

    try:
        result = identify_port(args.port, [args.baud] if args.baud else None)
    except (serial.SerialException, OSError) as exc:
        raise CliError(f"{args.port}: {exc}") from None
    if result is None:
        raise CliError(f"{args.port}: nothing recognised (tried protocol v1, Mark-10, Imada, "
                       "Wagner and ASCII lines at their documented baud rates)")
    found, baud = result
    print(f"{args.port} at {baud} baud: {found.description}")
    print(found.command(args.port, baud))
    return 0
