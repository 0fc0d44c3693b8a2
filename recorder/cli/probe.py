"""``palpation probe``: what is on a serial port, and the ``record`` command for it."""

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
