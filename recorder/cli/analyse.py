"""``palpation analyze``, ``report``, ``protocols`` and ``review``: what is done with
recordings once made, and the session protocols they follow."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from analysis.settings import DEFAULT_SETTINGS, SETTINGS_HELP
from recorder.cli.common import CliError, check_screenshot, refuse_overwrite, start_window
from schemas.session_protocol import ProtocolError, list_presets, load_preset

REPORT_EPILOG = ("Exit status: a file named that does not exist, or a page that exists "
                 "(without --force), stops the command before any work (1). A recording that "
                 "cannot be read is named on stderr; then nothing is written and the exit "
                 "status is 1, unless --skip-bad accepts a page without it (0, the page names "
                 "it too). An unreadable --reference is an error: the comparison asked for "
                 "cannot be made.")
ANALYZE_EPILOG = ("Exit status: a file or folder named that does not exist, or an output that "
                  "exists (without --force), stops the command before any work (1). A "
                  "recording that cannot be read is named on stderr; then nothing is written "
                  "and the exit status is 1, unless --skip-bad accepts a table without it "
                  "(0). A recording still being recorded is analysed as far as it is written, "
                  "with a warning, and its rows say still_recording True. Incomplete holds "
                  "(cut off by the end, a disconnect or a gap) stay in the table with complete "
                  "False; the summary and learning curves leave them out and say how many.")


def _check_inputs(inputs) -> None:
    """A path named on the command line that does not exist is a typo: stop before any work."""
    missing = [str(p) for p in inputs if not Path(p).exists()]
    if missing:
        more = f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""
        raise CliError(f"{missing[0]}: no such file or folder{more}")


def _add_analyze(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("analyze", help="one row per hold, from many recordings",
                       description="Segment every recording's holds and compute their "
                                   "metrics into one table (columns, units and settings: "
                                   "analysis/TABLE.md).", epilog=ANALYZE_EPILOG)
    p.add_argument("inputs", nargs="+", metavar="FILES_OR_DIRS",
                   help="recordings (.h5), or folders searched for them")
    p.add_argument("--out", type=Path, required=True,
                   help="holds.csv (its provenance in holds.csv.json) or holds.parquet")
    p.add_argument("--summary", type=Path, metavar="FILE",
                   help="also write per session and trigger point consistency (csv/parquet); "
                        "threshold-ramp sessions also get a per-site threshold summary in "
                        "FILE's name with -ppt")
    p.add_argument("--learning", metavar="FILE",
                   help="also the learning curves per trainee (score and error per session, "
                        "feedback on/off, dependency gap): .txt, .csv or .parquet; - prints")
    p.add_argument("--reference", type=Path, metavar="REF.h5",
                   help="add each hold's distance to this recording's holds at its point "
                        "(the ref_ columns)")
    p.add_argument("--first-trial", choices=("keep", "drop"), default="keep",
                   help="threshold summary: keep or drop each site's first ramp of a session")
    p.add_argument("--mdc", type=float, metavar="N",
                   help="threshold summary: the minimal detectable change in N (default: "
                        "from the data's own SEM)")
    g = p.add_argument_group("hold detection and plateau (analysis/TABLE.md, 'Settings')")
    for name, text in SETTINGS_HELP.items():
        g.add_argument("--" + name.replace("_", "-"), type=float, dest=name,
                       default=getattr(DEFAULT_SETTINGS, name), metavar="X",
                       help=text + " (default: %(default)s)")
    p.add_argument("--skip-bad", action="store_true",
                   help="write the table without the recordings that cannot be read (exit 0)")
    p.add_argument("--force", action="store_true", help="overwrite outputs that exist")
    p.add_argument("--jobs", type=int, default=1, help="local worker processes")
    p.add_argument("--scheduler", metavar="ADDRESS",
                   help="run on a Dask distributed cluster (tcp://host:port)")
    p.set_defaults(func=cmd_analyze)


def add_parsers(sub: argparse._SubParsersAction) -> None:
    _add_analyze(sub)
    p = sub.add_parser("report", help="an HTML report for an instructor",
                       description="A self-contained HTML page: per trigger point the holds "
                                   "over the target band, their metrics and flags, the "
                                   "distance to a reference (instructor) recording, and a "
                                   "trainee's progress across sessions.",
                       epilog=REPORT_EPILOG)
    p.add_argument("files", nargs="+", type=Path, metavar="FILES",
                   help="a trainee's recordings (.h5)")
    p.add_argument("--out", type=Path, required=True, help="report.html")
    p.add_argument("--reference", type=Path,
                   help="an instructor's recording: at each trigger point the mean of their "
                        "holds is the reference")
    p.add_argument("--skip-bad", action="store_true",
                   help="write the page without the recordings that cannot be read (exit 0)")
    p.add_argument("--force", action="store_true", help="replace the page if it exists")
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
    from analysis.batch import find_recordings, progress_bar, run_batch

    _check_inputs([*args.inputs, *([args.reference] if args.reference else [])])
    paths = find_recordings(args.inputs)
    if not paths:
        raise CliError("no recordings (*.h5) in " + " ".join(args.inputs))
    for out in filter(None, (args.out, args.summary)):
        if out.suffix.lower() not in (".csv", ".parquet"):
            raise CliError(f"{out}: the table is written as .csv or .parquet")
    if args.learning not in (None, "-") and Path(args.learning).suffix.lower() not in (
            ".txt", ".csv", ".parquet"):
        raise CliError(f"{args.learning}: the learning curves are written as .txt, .csv or "
                       ".parquet")
    if args.mdc is not None and not args.mdc >= 0:
        raise CliError(f"--mdc must be a number >= 0, not {args.mdc}")
    refuse_overwrite(_outputs(args), args.force)
    settings = _settings(args)
    _check_reference(args.reference, settings)
    try:
        result = run_batch(paths, jobs=args.jobs, scheduler=args.scheduler,
                           progress=progress_bar if sys.stderr.isatty() else None,
                           settings=settings, reference=args.reference)
    except OSError as exc:
        raise CliError(f"cannot reach the Dask scheduler {args.scheduler}: {exc}") from None
    if len(result.skipped) == result.files:
        raise CliError(_none_readable(result.skipped))
    for line in result.skipped:
        print(f"skipped {line}", file=sys.stderr)
    if result.skipped and not args.skip_bad:
        raise CliError(f"{len(result.skipped)} of {result.files} recordings could not be read "
                       "(named above): nothing written; --skip-bad writes the table without "
                       "them")
    for name in result.still_recording:
        print(f"palpation: warning: {name} is still being recorded: analysed as far as it is "
              "written, its rows marked still_recording", file=sys.stderr)
    try:
        _write_outputs(args, result, settings)
    except (ValueError, OSError) as exc:
        raise CliError(str(exc)) from None
    return 0


def _outputs(args: argparse.Namespace) -> list[Path]:
    """The files ``analyze`` would write (a CSV table's sidecar too; not the -ppt summary,
    which only threshold-ramp sessions get)."""
    from analysis.batch import sidecar_path

    outs = [args.out]
    if args.out.suffix.lower() == ".csv":
        outs.append(sidecar_path(args.out))
    if args.summary:
        outs.append(args.summary)
    if args.learning and args.learning != "-":
        outs.append(Path(args.learning))
    return outs


def _settings(args: argparse.Namespace):
    """The analysis settings the options give; a one-line error for impossible ones."""
    from analysis.settings import AnalysisSettings

    try:
        return AnalysisSettings(**{name: getattr(args, name) for name in SETTINGS_HELP})
    except ValueError as exc:
        raise CliError(f"analysis settings: {exc}") from None


def _check_reference(reference: Path | None, settings) -> None:
    """Read the reference once before the batch: an unreadable one stops the command (the
    comparison asked for cannot be made) instead of failing every file."""
    if reference is None:
        return
    from analysis.batch import reference_for
    from schemas.hdf5 import RecordingFileError

    try:
        reference_for(str(reference), settings)
    except RecordingFileError as exc:
        raise CliError(f"--reference: {exc}") from None


def _write_outputs(args: argparse.Namespace, result, settings) -> None:
    """The hold table (with its provenance), then the summaries asked for, each saying how
    many incomplete holds it left out. Threshold-ramp sessions' per-site summary goes beside
    --summary as NAME-ppt.SUFFIX; it is worked out first, so nothing is written when it
    cannot be."""
    from analysis.batch import SUMMARY_COLUMNS, summary_rows, table_columns, table_meta, write_table
    from analysis.ppt import PPT_SUMMARY_COLUMNS, ppt_summary_rows

    rows = result.rows
    ppt = []
    if args.summary:  # threshold ramps: no hold window (max_hold_s 0)
        ppt = ppt_summary_rows([r for r in rows if r["max_hold_s"] == 0],
                               first_trial=args.first_trial, mdc_n=args.mdc)
    ppt_out = args.summary.with_name(f"{args.summary.stem}-ppt{args.summary.suffix}") if ppt \
        else None
    refuse_overwrite([ppt_out], args.force)
    write_table(rows, args.out, columns=table_columns(args.reference is not None),
                meta=table_meta(result, settings, args.reference))
    incomplete = sum(not r["complete"] for r in rows)
    print(f"{len(rows)} holds ({incomplete} incomplete) from "
          f"{result.files - len(result.skipped)} recordings -> {args.out}"
          + (f" ({len(result.skipped)} unreadable, skipped: named above)"
             if result.skipped else ""))
    left_out = f"{incomplete} incomplete holds left out"
    if args.summary:
        write_table(summary_rows(rows), args.summary, columns=SUMMARY_COLUMNS)
        print(f"summary -> {args.summary} ({left_out})")
    if ppt_out:
        write_table(ppt, ppt_out, columns=PPT_SUMMARY_COLUMNS)
        print(f"threshold summary -> {ppt_out} "
              f"({sum(r['n_incomplete'] for r in ppt)} incomplete ramps left out)")
    if args.learning:
        from analysis.learning import write_learning

        text = write_learning(rows, args.learning)
        if args.learning == "-":
            print(text)
        print(f"learning curves{'' if args.learning == '-' else ' -> ' + args.learning} "
              f"({left_out})")


def _none_readable(reasons: list[str]) -> str:
    """One line for "no input could be read": the file and reason, or the first of many."""
    if len(reasons) == 1:
        return reasons[0]
    return f"none of the {len(reasons)} recordings could be read ({reasons[0]}; ...)"


def cmd_report(args: argparse.Namespace) -> int:
    from analysis.report import ReportError, write_report

    _check_inputs([*args.files, *([args.reference] if args.reference else [])])
    refuse_overwrite([args.out], args.force)
    try:
        warnings = write_report(args.files, args.out, reference=args.reference,
                                skip_bad=args.skip_bad)
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
