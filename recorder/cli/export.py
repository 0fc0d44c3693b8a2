"""``palpation export``: a recording in another tool's format."""

from __future__ import annotations

import argparse
from pathlib import Path

from recorder.cli.common import CliError


def add_parsers(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("export", help="a recording's raw trace as CSV or Parquet")
    p.add_argument("file", type=Path, help="the recording (.h5)")
    p.add_argument("--format", choices=["csv", "parquet"], default="csv",
                   help="file format of the trace")
    p.add_argument("--out", type=Path, help="default: FILE with the format's suffix")
    p.set_defaults(func=cmd_export)


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
