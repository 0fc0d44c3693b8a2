"""What every command group shares: the one-line error, starting the window, the summary."""

from __future__ import annotations

import argparse
import os
import signal
import threading
from pathlib import Path

EXIT_FAILURE = 1


class CliError(Exception):
    """A failure to report in one line and exit non-zero."""


class DefaultsHelpFormatter(argparse.HelpFormatter):
    """Help that shows every option's default: appended as "(default: X)" unless the help
    already says what the default is; flags (off by default) and options without a default
    show none."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        default = action.default
        if (action.option_strings and default not in (None, False, argparse.SUPPRESS)
                and "default" not in text):
            text += " (default: %(default)s)"
        return text


def refuse_overwrite(outputs, force: bool) -> None:
    """An output that exists is kept unless --force (``outputs``: paths, None for one not
    asked for): a study's table, export or report is not replaced by a typo in a later
    command. Called before any work."""
    for out in outputs:
        if out is not None and out.exists() and not force:
            raise CliError(f"{out} exists: --force replaces it")


def start_window(hint: str) -> None:
    """Start Qt for a window now, before any port or file is opened: a platform that cannot
    start (recorder.qtstart says why) is a one-line error ending with ``hint``, instead of
    Qt aborting the process later."""
    from recorder.qtstart import QtStartError, start_qt

    try:
        start_qt()
    except QtStartError as exc:
        raise CliError(f"{exc}; {hint}") from None


def check_screenshot(path: Path | None) -> None:
    """``--screenshot``: a .png in a folder that exists and is writable, checked before
    anything is recorded or opened (the window saves it only when the run ends)."""
    if path is None:
        return
    folder = path.parent
    if path.suffix.lower() != ".png":
        raise CliError(f"--screenshot {path}: give a file name ending in .png")
    if not folder.is_dir():
        raise CliError(f"--screenshot {path}: folder {folder} does not exist")
    if not os.access(folder, os.W_OK):
        raise CliError(f"--screenshot {path}: folder {folder} is not writable")


def stop_on_signals(stop: threading.Event) -> None:
    """Ctrl-C and SIGTERM end the run cleanly instead of interrupting it."""
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())


def print_summary(path: Path, summary: dict) -> None:
    print(f"recorded {path}")
    for key, value in summary.items():
        if isinstance(value, float):
            value = f"{value:.3f}"
        print(f"  {key:<18} {value}")


# --- the instrument options ``record`` and ``calibrate`` share --------------------------------

DEVICES = ("palpation", "ascii", "mark10", "imada", "wagner")
GAUGE_ONLY = ("gauge_unit", "invert", "wagner_model", "ascii_column", "ascii_time", "sensor_id")


def add_device_options(p: argparse.ArgumentParser) -> None:
    """What is on the port and how to read it: ``--device``, ``--baud``, ``--flow`` and the
    gauge and sketch options (one definition for ``record`` and ``calibrate``)."""
    from schemas.units import FORCE_UNITS

    units = ", ".join(FORCE_UNITS)
    p.add_argument("--device", choices=DEVICES, default="palpation",
                   help="palpation (binary protocol v1), ascii lines, or a force gauge: "
                        "Mark-10 Series 4/5, Imada DS2/DST/DSV, Wagner FDIX/FPX")
    p.add_argument("--baud", type=int,
                   help="baud rate (default: the gauge's documented rate, 115200 for ascii, "
                        "else 921600)")
    p.add_argument("--flow", choices=["none", "rtscts", "xonxoff"], default="none",
                   help="serial flow control (an Imada on USB: rtscts)")
    g = p.add_argument_group("gauges and sketches (--device mark10|imada|wagner|ascii)")
    g.add_argument("--sensor-id", metavar="NAME",
                   help="a name for this gauge or sketch (e.g. the serial number on its "
                        "label): gauges and sketches do not say who they are, so calibrate "
                        "saves under this name and record uses the newest calibration saved "
                        "under it")
    g.add_argument("--ascii-unit", default="N", metavar="UNIT",
                   help=f"unit of ASCII readings that carry none: {units}")
    g.add_argument("--gauge-unit", metavar="UNIT",
                   help=f"unit of gauge replies that carry none (a Mark-10 set to numeric "
                        f"output): {units}; never guessed")
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
    """The driver options (``firmware_bridge.gauges``) the command line asks for; CliError
    for an option that does not fit ``--device``."""
    from firmware_bridge.asciilines import ColumnFormat, default_force_factor

    given = [name for name in GAUGE_ONLY if getattr(args, name)]
    if args.device == "palpation" and given:
        raise CliError(f"--{given[0].replace('_', '-')} is for a gauge or a sketch "
                       "(--device mark10|imada|wagner|ascii)")
    if args.flow == "xonxoff" and args.device == "palpation":
        raise CliError("--flow xonxoff would swallow bytes of protocol-v1 frames (0x11, 0x13); "
                       "it is for gauges that print text")
    options: dict = {"invert": True} if args.invert else {}
    try:
        columns = ColumnFormat.from_options(args.ascii_column, args.ascii_time)
        for unit in (args.gauge_unit, args.ascii_unit):
            if unit:
                default_force_factor(unit)
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
