"""Many recordings into one tidy table: one row per hold, every column with its unit.

Each file is analysed on its own (``analyse_file``), so a batch spreads over local worker
processes (``--jobs``) or a Dask cluster (``--scheduler``) the same way; a file that cannot
be read is reported and skipped, never fatal here (the command decides what a skip means).
Every row says which file it came from (its path below the analysed root, so two folders
with the same file names stay apart), whose session it was (trainee, subject, session label)
and how it was computed (``analysis.provenance``); the settings themselves go with the
table as a whole (``write_table``'s sidecar or Parquet metadata).
"""

from __future__ import annotations

import csv
import functools
import json
import math
import multiprocessing
import os
import sys
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import ProcessPoolExecutor, as_completed
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

from analysis.definitions import METRICS
from analysis.metrics import ConsistencyRow, HoldMetrics, consistency, recording_metrics
from analysis.ppt import PPT_COLUMNS, ppt_columns
from analysis.provenance import PROVENANCE_COLUMNS, analysed_with, provenance
from analysis.reference_holds import (
    REFERENCE_COLUMNS,
    ReferenceHolds,
    reference_columns,
    reference_holds,
)
from analysis.settings import DEFAULT_SETTINGS, AnalysisSettings
from schemas.hdf5 import RecordingFileError
from schemas.reader import open_recording

# Session columns added before the hold metrics; then every HoldMetrics field, with the unit
# and definition of analysis.definitions; then the extra columns and the provenance.
SESSION_COLUMNS = {
    "file": ("", "recording path below the analysed root, folders separated by '/' (the "
                 "deepest folder holding every input; a file named alone: its name)"),
    "trainee": ("", "the rater: who pressed, from the recording's session"),
    "subject": ("", "the person pressed on, a pseudonym or code (empty: not recorded)"),
    "session": ("", "the session's number or label, e.g. 1, retest (empty: not recorded)"),
    "session_start": ("ISO-8601", "time zero of the recording"),
    "protocol": ("", "session protocol name"),
}
COLUMN_UNITS = {name: (m.unit, m.definition) for name, m in METRICS.items()}
#: Every column the table can have, in order (the reference columns only with a reference).
COLUMNS = {**SESSION_COLUMNS, **COLUMN_UNITS, **REFERENCE_COLUMNS, **PPT_COLUMNS,
           **PROVENANCE_COLUMNS}


@dataclass(frozen=True)
class BatchJob:
    """One file to analyse: where it is, its name in the table, and how to analyse it."""

    path: str
    name: str
    settings: AnalysisSettings = DEFAULT_SETTINGS
    reference: str | None = None  # a reference recording's path (``reference_columns``)


@dataclass
class BatchResult:
    """A batch's rows (in the order of its files), what it skipped and how it was made."""

    rows: list[dict] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # one line per unreadable file
    files: int = 0
    still_recording: list[str] = field(default_factory=list)  # names being written to
    provenance: dict[str, dict] = field(default_factory=dict)  # name -> provenance(rec)


def find_recordings(inputs: Iterable[str | Path]) -> dict[Path, str]:
    """Files given, plus every *.h5 below the folders given, in a stable order, each with its
    name in the table: its path below the root, the deepest folder holding every input (a
    folder given is its own root, a file's folder is its root)."""
    items = list(map(Path, inputs))
    found: dict[Path, str] = {}
    if not items:
        return found
    root = Path(os.path.commonpath([(p if p.is_dir() else p.parent).resolve()
                                    for p in items]))
    names: set[str] = set()
    for item in items:
        for path in sorted(item.rglob("*.h5")) if item.is_dir() else [item]:
            name = path.resolve().relative_to(root).as_posix()
            if name not in names:  # a file reached twice (named, and in a folder named)
                names.add(name)
                found[path] = name
    return found


@functools.lru_cache(maxsize=1)
def reference_for(path: str, settings: AnalysisSettings = DEFAULT_SETTINGS) -> ReferenceHolds:
    """The reference recording at ``path`` reduced to its holds, analysed with the batch's
    ``settings``; built once per process (every file is compared with it).
    RecordingFileError if it cannot be read."""
    ref = open_recording(path)
    return reference_holds(ref, recording_metrics(ref, settings))


def analyse_file(path: str | Path, name: str | None = None,
                 settings: AnalysisSettings = DEFAULT_SETTINGS,
                 reference: str | Path | None = None) -> list[dict]:
    """Rows of one recording (``name`` in the ``file`` column, default its file name);
    RecordingFileError (one line) if it or the reference cannot be read."""
    return _analyse(BatchJob(str(path), name or Path(path).name, settings,
                             None if reference is None else str(reference)))[0]


def _analyse(job: BatchJob) -> tuple[list[dict], dict]:
    """(rows, provenance) of one file."""
    rec = open_recording(job.path)
    metrics = recording_metrics(rec, job.settings)
    prov = provenance(rec, job.settings)
    session = {"file": job.name, "trainee": rec.session.get("trainee", ""),
               "subject": rec.session.get("subject", ""),
               "session": rec.session.get("session_label", ""),
               "session_start": rec.session_start.isoformat(),
               "protocol": rec.session.get("protocol", "")}
    per_file = {k: prov[k] for k in PROVENANCE_COLUMNS}
    extra = [ppt_columns(rec, metrics)]
    if job.reference is not None:
        extra.insert(0, reference_columns(rec, metrics,
                                                reference_for(job.reference, job.settings)))
    rows = [{**session, **asdict(m), **{k: v for cols in extra for k, v in cols[i].items()},
             **per_file} for i, m in enumerate(metrics)]
    return rows, prov


def _guarded(job: BatchJob) -> tuple[BatchJob, tuple[list[dict], dict] | None, str]:
    """_analyse that returns a file's read error instead of raising (for workers).

    Only what makes a file unreadable is caught: RecordingFileError (every problem inside the
    file) and PermissionError (a folder on the way that may not be searched, which
    ``open_recording`` lets through). Anything else is a bug and stops the batch."""
    try:
        return job, _analyse(job), ""
    except (RecordingFileError, PermissionError) as exc:
        named = str(exc) if isinstance(exc, RecordingFileError) else f"{job.path}: {exc}"
        return job, None, named.splitlines()[0]  # a RecordingFileError names the file


def _guarded_all(jobs: list[BatchJob]) -> list[tuple[BatchJob, tuple | None, str]]:
    return [_guarded(j) for j in jobs]


def run_batch(paths: Iterable[Path] | Mapping[Path, str], jobs: int = 1,
              scheduler: str | None = None,
              progress: Callable[[int, int], None] | None = None, *,
              settings: AnalysisSettings = DEFAULT_SETTINGS,
              reference: Path | None = None) -> BatchResult:
    """Analyse ``paths`` (a mapping: each with its name in the table, ``find_recordings``;
    else named by file name) in this process (jobs 1), in ``jobs`` worker processes, or on
    the Dask cluster at ``scheduler``; rows come back in the order of ``paths``."""
    names = paths if isinstance(paths, Mapping) else {p: Path(p).name for p in paths}
    ref = None if reference is None else str(reference)
    todo = [BatchJob(str(p), n, settings, ref) for p, n in names.items()]
    result = BatchResult(files=len(todo))
    done: dict[BatchJob, tuple[tuple | None, str]] = {}

    def collect(job: BatchJob, got, error: str) -> None:
        done[job] = (got, error)
        if progress:
            progress(len(done), len(todo))

    if scheduler:
        from dask.distributed import Client
        from dask.distributed import as_completed as dask_completed

        with Client(scheduler, timeout="10s") as client:
            # a few files per task: each task costs the scheduler about as much as a file
            per_task = max(1, len(todo) // (4 * max(1, len(client.nthreads()))))
            chunks = [todo[i:i + per_task] for i in range(0, len(todo), per_task)]
            for future in dask_completed(client.map(_guarded_all, chunks, pure=False)):
                for item in future.result():
                    collect(*item)
    elif jobs > 1 and len(todo) > 1:
        with _one_blas_thread(), ProcessPoolExecutor(
                max_workers=jobs, mp_context=multiprocessing.get_context("spawn")) as pool:
            for future in as_completed([pool.submit(_guarded, j) for j in todo]):
                collect(*future.result())
    else:
        for job in todo:
            collect(*_guarded(job))
    for job in todo:
        got, error = done[job]
        if got is None:
            result.skipped.append(error)
            continue
        rows, prov = got
        result.rows.extend(rows)
        result.provenance[job.name] = prov
        if prov["still_recording"]:
            result.still_recording.append(job.name)
    return result


BLAS_THREAD_VARS = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")


@contextmanager
def _one_blas_thread() -> Iterator[None]:
    """Workers started meanwhile (spawned: a fresh interpreter that reads its environment
    when numpy loads) use one BLAS thread each. Otherwise every worker's OpenBLAS starts a
    thread per core and they spin against each other: measured here, 2 workers were slower
    than 1. Dask's workers do the same by default."""
    saved = {k: os.environ.get(k) for k in BLAS_THREAD_VARS}
    os.environ.update(dict.fromkeys(BLAS_THREAD_VARS, "1"))
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


_SUMMARY_HEAD = ("file", "trainee", "subject", "session", "session_start")
_SUMMARY_STATS = [f.name for f in fields(ConsistencyRow)][2:-1]  # n .. estimate_accuracy_pct
#: The ``--summary`` table's columns: name -> (unit, definition).
SUMMARY_COLUMNS = {
    **{k: SESSION_COLUMNS[k] for k in _SUMMARY_HEAD},
    "trigger_point": COLUMN_UNITS["trigger_point"],
    "blind": COLUMN_UNITS["blind"],
    "n": ("", "complete holds"),
    "plateau_mean_n": ("N", "mean of their plateau means"),
    "plateau_sd_n": ("N", "SD of their plateau means"),
    "plateau_cv": ("", "plateau SD / mean"),
    "duration_mean_s": ("s", "mean duration"),
    "duration_sd_s": ("s", "SD of the durations"),
    "duration_cv": ("", "duration SD / mean"),
    "variable_error_n": ("N", "SD of the constant errors"),
    "adherence_pct": ("%", "holds that met the dose"),
    "mean_score": ("0-100", "mean score of the scored holds"),
    "estimates": ("", "holds with a self-estimate and a plateau"),
    "estimate_accuracy_pct": ("%", "of those, the estimates that were right"),
    "incomplete_left_out": ("", "incomplete holds of this point and feedback state left out"),
}


def summary_rows(rows: list[dict]) -> list[dict]:
    """Per session and trigger point (and feedback on/off): consistency and adherence of the
    complete holds (``SUMMARY_COLUMNS``), with how many incomplete ones were left out. A
    point whose holds were all incomplete gets a row with n 0."""
    by_session: dict[tuple, list[HoldMetrics]] = {}
    metric_names = [f.name for f in fields(HoldMetrics)]
    for row in rows:
        key = tuple(row[k] for k in _SUMMARY_HEAD)
        by_session.setdefault(key, []).append(HoldMetrics(**{k: row[k] for k in metric_names}))
    out = []
    for key, holds in by_session.items():
        left_out: dict[tuple[str, bool], int] = {}
        for m in holds:
            group = (m.trigger_point, bool(m.blind))
            left_out[group] = left_out.get(group, 0) + (not m.complete)
        stats = {(c.trigger_point, c.blind): asdict(c)
                 for c in consistency([m for m in holds if m.complete])}
        for (point, blind), missing in left_out.items():
            d = stats.get((point, blind)) or {**dict.fromkeys(_SUMMARY_STATS, math.nan),
                                              "n": 0, "estimates": 0}
            out.append({**dict(zip(_SUMMARY_HEAD, key, strict=True)), "trigger_point": point,
                        "blind": blind, **{k: d[k] for k in _SUMMARY_STATS},
                        "incomplete_left_out": missing})
    return out


def table_columns(reference: bool = False) -> dict[str, tuple[str, str]]:
    """The hold table's columns (name -> (unit, definition)): the reference's only when
    the table was made with one."""
    return {k: v for k, v in COLUMNS.items() if reference or k not in REFERENCE_COLUMNS}


def write_table(rows: list[dict], out: Path, *, columns: Mapping[str, tuple[str, str]] = COLUMNS,
                meta: dict | None = None) -> None:
    """CSV (a header of column names) or Parquet (needs pyarrow: the parquet extra), chosen by
    the file's suffix; written atomically. ``columns`` names the columns of an empty table and
    gives every column's unit; ``meta`` (JSON-able: the provenance) goes with the table, in a
    CSV's sidecar ``OUT.json`` (with each column's unit and definition) or the Parquet
    schema's metadata (``palpation``, beside ``unit:<column>``)."""
    names = list(rows[0]) if rows else list(columns)
    described = {c: dict(zip(("unit", "definition"), columns.get(c, ("", "")), strict=True))
                 for c in names}
    sidecar = None if meta is None else {**meta, "columns": described}
    tmp = out.with_name(out.name + ".tmp")
    if out.suffix.lower() == ".parquet":
        try:
            import pyarrow as pa
            import pyarrow.parquet as pq
        except ImportError:
            raise ValueError("writing parquet needs pyarrow: pip install "
                             "'palpation-recorder[parquet]'") from None
        table = pa.table({c: [r.get(c) for r in rows] for c in names})
        metadata = {f"unit:{c}": d["unit"] for c, d in described.items()}
        if meta is not None:
            metadata["palpation"] = json.dumps(meta)
        pq.write_table(table.replace_schema_metadata(metadata), tmp)
    elif out.suffix.lower() == ".csv":
        with open(tmp, "w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=names)
            w.writeheader()
            for r in rows:
                w.writerow({k: _cell(v) for k, v in r.items()})
        if sidecar is not None:
            side = sidecar_path(out)
            side_tmp = side.with_name(side.name + ".tmp")
            side_tmp.write_text(json.dumps(sidecar, indent=1, allow_nan=False) + "\n")
            os.replace(side_tmp, side)
    else:
        raise ValueError(f"{out}: the table is written as .csv or .parquet")
    os.replace(tmp, out)


def sidecar_path(out: Path) -> Path:
    """Where a CSV table's provenance goes: ``OUT.json`` beside it (holds.csv.json)."""
    return out.with_name(out.name + ".json")


def table_meta(result: BatchResult, settings: AnalysisSettings = DEFAULT_SETTINGS,
               reference: Path | None = None) -> dict:
    """The hold table's provenance as a whole: the settings, the reference, each file's
    provenance (``analysis.provenance``, without the settings every file shares) and the
    files skipped."""
    return {"table": "palpation analyze: one row per hold (analysis/TABLE.md)",
            "analysed_with": analysed_with(), "settings": settings.as_dict(),
            "reference": None if reference is None else str(reference),
            "files": {name: {k: v for k, v in prov.items() if k != "settings"}
                      for name, prov in result.provenance.items()},
            "skipped": list(result.skipped)}


def _cell(value):
    if isinstance(value, float) and math.isnan(value):
        return ""
    return value


def progress_bar(done: int, total: int) -> None:
    """A one-line progress bar on stderr."""
    width = 30
    filled = int(width * done / max(total, 1))
    end = "\n" if done == total else ""
    print(f"\r[{'#' * filled}{'.' * (width - filled)}] {done}/{total} recordings", end=end,
          file=sys.stderr, flush=True)
