"""``palpation analyze``, ``report``, ``protocols`` and ``review``: what is done with
recordings once made, and the session protocols they follow."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from recorder.cli.common import CliError, check_screenshot, start_window
from schemas.session_protocol import ProtocolError, list_presets, load_preset

INPUTS_EPILOG = ("Exit status: a file or folder named that does not exist stops the command "
                 "at once (1). A recording that exists but cannot be read is skipped and "
                 "named on stderr, and the others are processed (0): one damaged file does "
                 "not hold up a batch, and the output says what is missing. When none can "
                 "be read, nothing is written (1).")


def _check_inputs(inputs) -> None:
    """A path named on the command line that does not exist is a typo: stop before any work."""
    missing = [str(p) for p in inputs if not Path(p).exists()]
    if missing:
        more = f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""
        raise CliError(f"{missing[0]}: no such file or folder{more}")


def add_parsers(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("analyze", help="one row per hold, from many recordings",
                       description="Segment every recording's holds and compute their "
                                   "metrics into one table (columns and units: "
                                   "analysis/TABLE.md).", epilog=INPUTS_EPILOG)
    p.add_argument("inputs", nargs="+", metavar="FILES_OR_DIRS",
                   help="recordings (.h5), or folders searched for them")
    p.add_argument("--out", type=Path, required=True, help="holds.csv or holds.parquet")
    p.add_argument("--summary", type=Path, metavar="FILE",
                   help="also write per session and trigger point consistency (csv/parquet)")
    p.add_argument("--learning", metavar="FILE",
                   help="also the learning curves per trainee (score and error per session, "
                        "feedback on/off, dependency gap): .txt, .csv or .parquet; - prints")
    p.add_argument("--jobs", type=int, default=1, help="local worker processes")
    p.add_argument("--scheduler", metavar="ADDRESS",
                   help="run on a Dask distributed cluster (tcp://host:port)")
    p.set_defaults(func=cmd_analyze)

    p = sub.add_parser("report", help="an HTML report for an instructor",
                       description="A self-contained HTML page: per trigger point the holds "
                                   "over the target band, their metrics and flags, the "
                                   "distance to a reference (instructor) recording, and a "
                                   "trainee's progress across sessions.",
                       epilog=INPUTS_EPILOG + " An unreadable --reference is an error too: "
                       "the comparison asked for cannot be made.")
    p.add_argument("files", nargs="+", type=Path, metavar="FILES",
                   help="a trainee's recordings (.h5)")
    p.add_argument("--out", type=Path, required=True, help="report.html")
    p.add_argument("--reference", type=Path,
                   help="an instructor's recording: at each trigger point the mean of their "
                        "holds is the reference")
    p.set_defaults(func=cmd_report)

    p = sub.add_parser("protocols", help="list the session protocol presets",
                       description="List the shipped session protocols, or show one as TOML "
                                   "to copy and edit.")
    p.add_argument("show", nargs="?", metavar="PRESET", help="print this preset's TOML")
    p.set_defaults(func=cmd_protocols)

    p = sub.add_parser("review", help="open a recording in the coaching panels",
                       description="Open a recording: step through trigger points and holds, "
                                   "with an instructor's recording as reference.")
    p.add_argument("file", type=Path, help="the recording to review (.h5)")
    p.add_argument("--reference", type=Path, help="an instructor's recording to overlay")
    p.add_argument("--screenshot", type=Path, metavar="PNG",
                   help="save the window (at --point and --hold) to this PNG and exit")
    p.add_argument("--point", metavar="N_OR_NAME",
                   help="trigger point to show first: its number in the protocol (from 1) "
                        "or its name, e.g. 'levator scapulae L' (default: the first with "
                        "holds)")
    p.add_argument("--hold", type=int, metavar="N",
                   help="hold to select at that point, from 1 (default: the first)")
    p.set_defaults(func=cmd_review)


def cmd_analyze(args: argparse.Namespace) -> int:
    from analysis.batch import find_recordings, progress_bar, run_batch, summary_rows, write_table

    _check_inputs(args.inputs)
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
    if len(result.skipped) == result.files:
        raise CliError(_none_readable(result.skipped))
    for line in result.skipped:
        print(f"skipped {line}", file=sys.stderr)
    try:
        write_table(result.rows, args.out)
        if args.summary:
            write_table(summary_rows(result.rows), args.summary)
        if args.learning:
            from analysis.learning import write_learning

            text = write_learning(result.rows, args.learning)
            if args.learning == "-":
                print(text)
    except (ValueError, OSError) as exc:
        raise CliError(str(exc)) from None
    print(f"{len(result.rows)} holds from {result.files - len(result.skipped)} recordings "
          f"-> {args.out}" + (f" ({len(result.skipped)} unreadable, skipped: named above)"
                              if result.skipped else ""))
    return 0


def _none_readable(reasons: list[str]) -> str:
    """One line for "no input could be read": the file and reason, or the first of many."""
    if len(reasons) == 1:
        return reasons[0]
    return f"none of the {len(reasons)} recordings could be read ({reasons[0]}; ...)"


def cmd_report(args: argparse.Namespace) -> int:
    from analysis.report import ReportError, write_report

    _check_inputs([*args.files, *([args.reference] if args.reference else [])])
    try:
        warnings = write_report(args.files, args.out, reference=args.reference)
    except ReportError as exc:
        raise CliError(str(exc)) from None
    except OSError as exc:
        raise CliError(f"cannot write {args.out}: {exc.strerror or exc}") from None
    for w in warnings:
        print(w, file=sys.stderr)
    print(f"report -> {args.out}")
    return 0


def cmd_protocols(args: argparse.Namespace) -> int:
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

    check_screenshot(args.screenshot)
    start_window("with --screenshot, QT_QPA_PLATFORM=offscreen draws it without a "
                 "screen")
    try:
        rec = open_recording(args.file)
        ref = open_recording(args.reference) if args.reference else None
    except RecordingFileError as exc:
        raise CliError(str(exc)) from None
    from recorder.review import run_review

    def warn(text: str) -> None:
        print(f"palpation: warning: {text}", file=sys.stderr)

    try:
        run_review(rec, ref, screenshot=args.screenshot, point=args.point, hold=args.hold,
                   warn=warn)
    except (ValueError, OSError) as exc:
        raise CliError(str(exc)) from None
    return 0
