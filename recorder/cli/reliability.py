"""``palpation reliability``: test–retest, inter-rater and intra-rater reliability of one
measure of a hold table (from ``palpation analyze``)."""

from __future__ import annotations

import argparse
from pathlib import Path

from recorder.cli.common import CliError, refuse_overwrite

DESIGN_CHOICES = ("test-retest", "inter-rater", "intra-rater", "all")


def add_parsers(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "reliability", help="ICCs, SEM, MDC, Bland-Altman and Lin's CCC from a hold table",
        description="Reliability of one measure of a hold table written by 'palpation "
                    "analyze': test-retest (one rater, sessions as columns), inter-rater "
                    "(raters as columns, per session) and intra-rater (repetitions within a "
                    "session as columns). A target is a (subject, trigger point), or the "
                    "trigger point when the table names no subjects; a cell is the mean of "
                    "its holds. Each result states its ICC model in words.",
        epilog="Incomplete holds (complete = False) are left out and counted. A design too "
               "small for a statistic (an ICC with fewer than 5 targets, Bland-Altman or CCC "
               "with fewer than 10 pairs) is refused with the reason. Exit status 1: the "
               "table cannot be read, a column is missing, no design is possible, or no "
               "statistic could be computed.")
    p.add_argument("table", type=Path, metavar="TABLE", help="holds.csv or holds.parquet")
    p.add_argument("--design", choices=DESIGN_CHOICES, default="all",
                   help="which design(s) to compute")
    p.add_argument("--measure", metavar="COLUMN",
                   help="the hold-table column to assess (default: plateau_mean_n, or "
                        "threshold_n for a table of ppt-ramp sessions)")
    p.add_argument("--out", type=Path, metavar="FILE",
                   help="also write every statistic: .csv (one row each) or .json")
    p.add_argument("--report", type=Path, metavar="FILE.html",
                   help="also write an HTML page with Bland-Altman plots")
    p.add_argument("--include-incomplete", action="store_true",
                   help="keep holds cut off by the end, a disconnect or a gap")
    p.add_argument("--force", action="store_true", help="overwrite --out and --report")
    p.set_defaults(func=cmd_reliability)


def _check_outputs(args: argparse.Namespace) -> None:
    """Outputs named well and not overwritten without --force, checked before any work."""
    for out, suffixes in ((args.out, (".csv", ".json")), (args.report, (".html", ".htm"))):
        if out is None:
            continue
        if out.suffix.lower() not in suffixes:
            raise CliError(f"{out}: give a file name ending in {' or '.join(suffixes)}")
        refuse_overwrite([out], args.force)
        if not out.parent.is_dir():
            raise CliError(f"{out}: folder {out.parent} does not exist")


def cmd_reliability(args: argparse.Namespace) -> int:
    from analysis.reliability_design import (
        DESIGNS,
        TableError,
        analyse_reliability,
        default_measure,
        read_hold_table,
        select_holds,
    )
    from analysis.reliability_report import build_html, summary_text, write_results
    from schemas.atomic import write_text_atomic

    if not args.table.is_file():
        raise CliError(f"{args.table}: no such file")
    _check_outputs(args)
    designs = DESIGNS if args.design == "all" else (args.design,)
    source = str(args.table)
    try:
        rows = read_hold_table(args.table)
        measure = args.measure or default_measure(rows)
        sel = select_holds(rows, measure, include_incomplete=args.include_incomplete,
                           source=source)
        results, impossible = analyse_reliability(sel, designs)
    except TableError as exc:
        raise CliError(str(exc)) from None
    try:
        if args.out:
            write_results(args.out, source, sel, results, impossible)
        if args.report:
            write_text_atomic(args.report, build_html(source, sel, results, impossible))
    except OSError as exc:
        raise CliError(f"cannot write {exc.filename or ''}: {exc.strerror or exc}") from None
    print(summary_text(source, sel, results, impossible))
    if not any(d.computed for d in results):
        refused = next((r for d in results for r in d.refused), "every statistic was refused")
        raise CliError(f"no statistic could be computed: {refused}")
    return 0
