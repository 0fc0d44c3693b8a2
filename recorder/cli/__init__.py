"""The ``palpation`` command: one entry point, a subcommand per job, a module per group.

Every failure a user can cause (a missing port, a full disk, a foreign file) ends in a
one-line message on stderr and a non-zero exit status, never a traceback.

The groups are :mod:`~recorder.cli.record` (record), :mod:`~recorder.cli.calibrate`
(calibrate, calibrations, recalibrate), :mod:`~recorder.cli.analyse` (analyze, report, protocols,
review), :mod:`~recorder.cli.export` (export), :mod:`~recorder.cli.devices` (simulate, devices),
:mod:`~recorder.cli.files` (validate, info, recover, refit), :mod:`~recorder.cli.probe` (probe),
:mod:`~recorder.cli.plan` (plan, catalog), :mod:`~recorder.cli.classroom` (class),
:mod:`~recorder.cli.reliability` (reliability) and :mod:`~recorder.cli.study`
(simulate-study).
Their modules import what loads numpy, h5py, pyserial or Qt inside the command that needs it,
so that the parser (and ``--help``) loads none of them and each command loads only its own.
"""

from __future__ import annotations

import argparse
import sys

from recorder import __version__
from recorder.cli import (
    analyse,
    calibrate,
    classroom,
    devices,
    export,
    files,
    plan,
    probe,
    record,
    reliability,
    study,
)
from recorder.cli.common import EXIT_FAILURE, CliError, DefaultsHelpFormatter

__all__ = ["CliError", "build_parser", "main"]


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
    for group in (record, calibrate, analyse, export, devices, files, probe, plan, classroom,
                  reliability, study):
        group.add_parsers(sub)
    for subparser in sub.choices.values():
        subparser.formatter_class = DefaultsHelpFormatter
    return parser
