"""``palpation analyze``, ``report``, ``export``, ``protocols`` and ``review``: what is done
with recordings once made, and the session protocols they follow."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from recorder.cli.common import CliError, check_display
from schemas.session_protocol import ProtocolError, list_presets, load_preset


def add_parsers(sub: argparse._SubParsersAction) -> None:
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

    check_display()
    try:
        rec = open_recording(args.file)
        ref = open_recording(args.reference) if args.reference else None
    except RecordingFileError as exc:
        raise CliError(str(exc)) from None
    from recorder.review import run_review

    run_review(rec, ref, screenshot=args.screenshot)
    return 0
