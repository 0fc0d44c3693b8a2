"""``palpation export``: recordings in another tool's format (CSV or Parquet samples with
their metadata, or the whole session as NWB), one output per recording, in worker processes
with ``--jobs``. An existing output is never replaced without ``--force``."""

from __future__ import annotations

import argparse
import multiprocessing
import sys
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path

from recorder.cli.common import CliError, refuse_overwrite


def add_parsers(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("export", help="recordings as CSV or Parquet (samples with a metadata "
                                      "document) or NWB (the whole session)")
    p.add_argument("files", nargs="+", type=Path, metavar="FILE",
                   help="recordings (.h5), or folders: every .h5 below them")
    p.add_argument("--format", choices=["csv", "parquet", "nwb"], default="csv",
                   help="csv (with OUT.csv.json beside it), parquet, or nwb (the nwb extra)")
    p.add_argument("--out", type=Path, metavar="FILE_OR_DIR",
                   help="one recording: the output file; several or a folder: the output "
                        "folder (the layout below each folder given is kept) (default: "
                        "beside each recording, with the format's suffix)")
    p.add_argument("--jobs", type=int, default=1, help="worker processes")
    p.add_argument("--force", action="store_true", help="replace outputs that exist")
    p.add_argument("--skip-bad", action="store_true",
                   help="exit 0 although unreadable recordings were skipped")
    p.set_defaults(func=cmd_export)


@dataclass(frozen=True)
class Job:
    """One recording and the file it is exported to."""

    source: Path
    out: Path


def cmd_export(args: argparse.Namespace) -> int:
    from analysis.export import require_format

    if args.jobs < 1:
        raise CliError(f"--jobs {args.jobs}: give 1 or more worker processes")
    try:
        require_format(args.format)
    except ValueError as exc:
        raise CliError(str(exc)) from None
    jobs = plan_outputs(args.files, args.out, args.format, force=args.force)
    failed: list[str] = []  # one line each: a recording that could not be read
    for job, exported, error in _run(jobs, args.format, args.jobs):
        if error:
            failed.append(error)
            if len(jobs) > 1:
                print(f"skipped: {error}", file=sys.stderr)
            continue
        print(f"{job.source} -> {job.out}: {exported.samples:,} samples, "
              f"{exported.holds} holds")
        if exported.still_recording:
            print(f"warning: {job.source} is still being recorded (not finalised): exported "
                  f"what was written so far, marked still_recording in {job.out.name}'s "
                  f"metadata", file=sys.stderr)
    if failed and len(jobs) == 1 and not args.skip_bad:
        raise CliError(failed[0])
    if failed and not args.skip_bad:
        raise CliError(f"{len(failed)} of {len(jobs)} recordings skipped (unreadable); "
                       f"--skip-bad exits 0 after skipping")
    return 0


def plan_outputs(inputs: list[Path], out: Path | None, fmt: str, *, force: bool) -> list[Job]:
    """The output of each recording found in ``inputs``; CliError (one line) when an output
    exists and ``force`` is not given, two recordings would share an output, or ``out`` does
    not fit (a file for several recordings, a folder that cannot be made)."""
    from analysis.export import FORMATS

    suffix = FORMATS[fmt]
    found: list[tuple[Path, Path]] = []  # (recording, its name relative to what was given)
    for item in inputs:
        if item.is_dir():
            below = sorted(item.rglob("*.h5"))
            if not below:
                raise CliError(f"{item}: no recordings (.h5) in this folder")
            found.extend((p, p.relative_to(item)) for p in below)
        else:
            found.append((item, Path(item.name)))
    if out is not None and len(found) == 1 and not inputs[0].is_dir() and not out.is_dir():
        if not out.parent.is_dir():
            raise CliError(f"--out {out}: folder {out.parent} does not exist")
        jobs = [Job(found[0][0], out)]
    elif out is None:
        jobs = [Job(src, src.with_suffix(suffix)) for src, _ in found]
    else:
        if out.exists() and not out.is_dir():
            raise CliError(f"--out {out}: give a folder for several recordings")
        jobs = [Job(src, out / rel.with_suffix(suffix)) for src, rel in found]
    _check_outputs(jobs, fmt, force)
    for job in jobs:
        job.out.parent.mkdir(parents=True, exist_ok=True)
    return jobs


def _check_outputs(jobs: list[Job], fmt: str, force: bool) -> None:
    from analysis.export import sidecar_path

    seen: dict[Path, Path] = {}
    for job in jobs:
        target = job.out.resolve()
        if target == job.source.resolve():
            raise CliError(f"{job.source}: the output would replace the recording itself")
        if target in seen:
            raise CliError(f"{seen[target]} and {job.source} would both be exported to "
                           f"{job.out}: give them in separate folders or runs")
        seen[target] = job.source
        refuse_overwrite([job.out, sidecar_path(job.out)] if fmt == "csv" else [job.out], force)


def _export_one(job: Job, fmt: str):
    """(job, Exported, "") or (job, None, one line) for a recording that cannot be read."""
    from analysis.export import export_recording
    from schemas.hdf5 import RecordingFileError

    try:
        return job, export_recording(job.source, job.out, fmt), ""
    except RecordingFileError as exc:
        return job, None, str(exc).splitlines()[0]
    except (OSError, ValueError) as exc:  # writing the output failed: not the recording's fault
        raise CliError(f"{job.out}: {exc}") from None


def _run(jobs: list[Job], fmt: str, workers: int):
    """Each job's result, in this process or in ``workers`` processes, as they finish.
    Workers are forked where the platform can (no threads nor open files here yet): they
    start with the format's libraries loaded (pynwb takes seconds to import), else spawned."""
    if workers == 1 or len(jobs) == 1:
        for job in jobs:
            yield _export_one(job, fmt)
        return
    methods = multiprocessing.get_all_start_methods()
    context = multiprocessing.get_context("fork" if "fork" in methods else "spawn")
    with ProcessPoolExecutor(max_workers=min(workers, len(jobs)), mp_context=context) as pool:
        for future in as_completed([pool.submit(_export_one, j, fmt) for j in jobs]):
            yield future.result()
