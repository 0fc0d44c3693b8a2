"""``palpation validate``, ``info``, ``recover`` and ``refit``: one recording file checked,
summarised, made whole or given the best fit of its device clock."""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict
from pathlib import Path

from recorder.cli.common import CliError, print_summary


def add_parsers(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("validate", help="check a recording against its schema")
    p.add_argument("file", type=Path, help="the recording (.h5)")
    p.add_argument("--deep", action="store_true",
                   help="also re-derive the force from the raw counts, the calibration and "
                        "the tare events, and check that the file agrees with itself")
    p.set_defaults(func=cmd_validate)

    p = sub.add_parser("info", help="summarise a recording")
    p.add_argument("file", type=Path, help="the recording (.h5)")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=cmd_info)

    p = sub.add_parser("recover", help="make an interrupted recording whole and finalised",
                       description="Rewrite a recording left by a killed recorder into a "
                                   "finalised file; the original is kept as NAME.orig.h5.")
    p.add_argument("file", type=Path, help="the recording (.h5)")
    p.set_defaults(func=cmd_recover)

    p = sub.add_parser("refit", help="refit the device clock from the stored clock pairs",
                       description="Rewrite the timestamps of a finalised recording in place "
                                   "with each device epoch's fit of all its clock pairs (the "
                                   "live fit knew only the seconds before each sample).")
    p.add_argument("file", type=Path, help="the recording (.h5)")
    p.set_defaults(func=cmd_refit)


def cmd_validate(args: argparse.Namespace) -> int:
    from schemas.hdf5 import RecordingFileError
    from schemas.validate import validate

    try:
        validate(args.file, deep=args.deep)
    except RecordingFileError as exc:
        raise CliError(str(exc)) from None
    print(f"{args.file}: valid" + (" (force agrees with raw counts, calibration and tares)"
                                   if args.deep else ""))
    return 0


def cmd_info(args: argparse.Namespace) -> int:
    """The file's transport figures, then how the session went (``analysis.summary``); with
    --json one object: the transport figures, under "session" the session summary and under
    "provenance" what recorded it and how it would be analysed (``analysis.provenance``). An
    unfinished file has no session end, and says whether it is still being recorded."""
    from analysis.provenance import provenance
    from analysis.summary import session_summary
    from schemas.hdf5 import RecordingFileError
    from schemas.reader import open_recording, summarize

    try:
        rec = open_recording(args.file)
    except RecordingFileError as exc:
        raise CliError(str(exc)) from None
    info, session = summarize(rec), session_summary(rec)
    if args.json:
        print(json.dumps({**info, "session": asdict(session), "provenance": provenance(rec)},
                         indent=1, default=str))
        return 0
    print_summary(args.file, info)
    if not rec.finalised:
        print("  still being recorded: the figures are those written so far"
              if info["still_recording"] else
              f"  interrupted (not finalised): run `palpation recover {args.file}`")
    _print_session(session, live=info["still_recording"])
    return 0


def print_session_summary(path: Path) -> None:
    """How the session recorded in ``path`` went (``analysis.summary``), read back from the
    file: what ``record`` prints when it ends, after the writer's transport figures."""
    from analysis.summary import session_summary
    from schemas.hdf5 import RecordingFileError
    from schemas.reader import open_recording

    try:
        _print_session(session_summary(open_recording(path)))
    except RecordingFileError as exc:
        raise CliError(str(exc)) from None


def _print_session(session, live: bool = False) -> None:
    from analysis.summary import summary_lines

    print("session")
    for line in summary_lines(session, live):
        print(f"  {line}")


def cmd_recover(args: argparse.Namespace) -> int:
    from schemas.hdf5 import RecordingFileError
    from schemas.recover import recover

    try:
        out = recover(args.file)
    except RecordingFileError as exc:
        raise CliError(str(exc)) from None
    print(f"recovered {out} (original kept as {args.file.with_suffix('.orig.h5')})")
    return 0


def cmd_refit(args: argparse.Namespace) -> int:
    from schemas.hdf5 import RecordingFileError
    from schemas.refit import refit

    try:
        result = refit(args.file)
    except RecordingFileError as exc:
        raise CliError(str(exc)) from None
    for e in result["epochs"]:
        print(f"epoch from sample {e['first_sample']}: {e['pairs']} clock pairs, drift "
              f"{e['drift_ppm']:+.1f} ppm")
    print(f"refitted {args.file}: {result['samples']} timestamps, largest change "
          f"{result['max_abs_change_s'] * 1e3:.3f} ms")
    return 0
