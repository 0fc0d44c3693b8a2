"""Many recordings into one tidy table: one row per hold, every column with its unit.

Each file is analysed on its own (``analyse_file``), so a batch spreads over local worker
processes (``--jobs``) or a Dask cluster (``--scheduler``) the same way; a file that cannot
be read is reported and skipped, never fatal.
"""

from __future__ import annotations

import csv
import math
import multiprocessing
import os
import sys
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor, as_completed
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

from analysis.definitions import METRICS
from analysis.metrics import HoldMetrics, consistency, recording_metrics
from schemas.hdf5 import RecordingFileError
from schemas.reader import open_recording

# Session columns added before the hold metrics; then every HoldMetrics field, with the unit
# and definition of analysis.definitions.
SESSION_COLUMNS = {
    "file": ("", "recording file name"),
    "trainee": ("", "from the recording's session"),
    "session_start": ("ISO-8601", "time zero of the recording"),
    "protocol": ("", "session protocol name"),
}
COLUMN_UNITS = {name: (m.unit, m.definition) for name, m in METRICS.items()}
COLUMNS = {**SESSION_COLUMNS, **COLUMN_UNITS}


@dataclass
class BatchResult:
    rows: list[dict] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # one line per unreadable file
    files: int = 0


def find_recordings(inputs: Iterable[str | Path]) -> list[Path]:
    """Files given, plus every *.h5 below the folders given, in a stable order."""
    out: list[Path] = []
    for item in map(Path, inputs):
        out.extend(sorted(item.rglob("*.h5")) if item.is_dir() else [item])
    return out


def analyse_file(path: str | Path) -> list[dict]:
    """Rows of one recording; RecordingFileError (one line) if it cannot be read."""
    rec = open_recording(path)
    session = {"file": Path(path).name, "trainee": rec.session.get("trainee", ""),
               "session_start": rec.session_start.isoformat(),
               "protocol": rec.session.get("protocol", "")}
    return [{**session, **asdict(m)} for m in recording_metrics(rec)]


def _guarded(path: str) -> tuple[str, list[dict] | None, str]:
    """analyse_file that returns a file's read error instead of raising (for workers).

    Only what makes a file unreadable is caught: RecordingFileError (every problem inside the
    file) and PermissionError (a folder on the way that may not be searched, which
    ``open_recording`` lets through). Anything else is a bug and stops the batch."""
    try:
        return path, analyse_file(path), ""
    except (RecordingFileError, PermissionError) as exc:
        named = str(exc) if isinstance(exc, RecordingFileError) else f"{path}: {exc}"
        return path, None, named.splitlines()[0]  # a RecordingFileError names the file


def _guarded_all(paths: list[str]) -> list[tuple[str, list[dict] | None, str]]:
    return [_guarded(p) for p in paths]


def run_batch(paths: list[Path], jobs: int = 1, scheduler: str | None = None,
              progress: Callable[[int, int], None] | None = None) -> BatchResult:
    """Analyse ``paths`` in this process (jobs 1), in ``jobs`` worker processes, or on the
    Dask cluster at ``scheduler``; rows come back in the order of ``paths``."""
    result = BatchResult(files=len(paths))
    names = [str(p) for p in paths]
    done: dict[str, tuple[list[dict] | None, str]] = {}

    def collect(path: str, rows, error: str) -> None:
        done[path] = (rows, error)
        if progress:
            progress(len(done), len(names))

    if scheduler:
        from dask.distributed import Client
        from dask.distributed import as_completed as dask_completed

        with Client(scheduler, timeout="10s") as client:
            # a few files per task: each task costs the scheduler about as much as a file
            per_task = max(1, len(names) // (4 * max(1, len(client.nthreads()))))
            chunks = [names[i:i + per_task] for i in range(0, len(names), per_task)]
            for future in dask_completed(client.map(_guarded_all, chunks, pure=False)):
                for item in future.result():
                    collect(*item)
    elif jobs > 1 and len(names) > 1:
        with _one_blas_thread(), ProcessPoolExecutor(
                max_workers=jobs, mp_context=multiprocessing.get_context("spawn")) as pool:
            for future in as_completed([pool.submit(_guarded, n) for n in names]):
                collect(*future.result())
    else:
        for name in names:
            collect(*_guarded(name))
    for name in names:
        rows, error = done[name]
        if rows is None:
            result.skipped.append(error)
        else:
            result.rows.extend(rows)
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


def summary_rows(rows: list[dict]) -> list[dict]:
    """Per session and trigger point (and feedback on/off): consistency and adherence."""
    by_session: dict[tuple, list[HoldMetrics]] = {}
    metric_names = [f.name for f in fields(HoldMetrics)]
    for row in rows:
        key = (row["file"], row["trainee"], row["session_start"])
        by_session.setdefault(key, []).append(HoldMetrics(**{k: row[k] for k in metric_names}))
    out = []
    for (file, trainee, start), holds in by_session.items():
        for c in consistency(holds):
            d = asdict(c)
            d.pop("reps", None)
            out.append({"file": file, "trainee": trainee, "session_start": start, **d})
    return out


def write_table(rows: list[dict], out: Path) -> None:
    """CSV (a header of column names; units in analysis/TABLE.md) or Parquet (needs
    pyarrow: the parquet extra), chosen by the file's suffix; written atomically."""
    tmp = out.with_name(out.name + ".tmp")
    columns = list(rows[0]) if rows else list(COLUMNS)
    if out.suffix.lower() == ".parquet":
        try:
            import pyarrow as pa
            import pyarrow.parquet as pq
        except ImportError:
            raise ValueError("writing parquet needs pyarrow: pip install "
                             "'palpation-recorder[parquet]'") from None
        table = pa.table({c: [r.get(c) for r in rows] for c in columns})
        metadata = {c: COLUMNS.get(c, ("", ""))[0] for c in columns}
        table = table.replace_schema_metadata({f"unit:{k}": v for k, v in metadata.items()})
        pq.write_table(table, tmp)
    elif out.suffix.lower() == ".csv":
        with open(tmp, "w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=columns)
            w.writeheader()
            for r in rows:
                w.writerow({k: _cell(v) for k, v in r.items()})
    else:
        raise ValueError(f"{out}: the table is written as .csv or .parquet")
    os.replace(tmp, out)


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
