"""One recording in another tool's format: its samples as CSV or Parquet, or the whole
session as NWB (``analysis.nwb_export``).

Why a document beside the samples: a trace alone does not say what it is. The CSV gets a JSON
sidecar (``OUT.csv.json``) and the Parquet file the same document in its schema metadata: the
column units, the session, device and calibration, the provenance (``analysis.provenance``:
software, calibration, analysis settings, whether the file was still being recorded), the
events and the holds as the hold table measures them. CSV and Parquet columns have the same
ASCII names; units live in the document and in each Parquet field's metadata.
"""

from __future__ import annotations

import csv
import importlib.util
import json
import math
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from analysis.definitions import METRICS
from analysis.metrics import HoldMetrics, recording_metrics
from analysis.provenance import provenance
from analysis.settings import DEFAULT_SETTINGS, AnalysisSettings
from schemas.reader import Recording, open_recording

__all__ = ["FORMATS", "TRACE_COLUMNS", "Exported", "export_recording", "plain",
           "recording_document", "require_format", "sidecar_path"]

PARQUET_MISSING = "writing parquet needs pyarrow: pip install 'palpation-recorder[parquet]'"
FORMATS = {"csv": ".csv", "parquet": ".parquet", "nwb": ".nwb"}  # format: file suffix

TRACE_COLUMNS = {  # column: (unit, definition); the same names in CSV and Parquet
    "time_s": ("s", "device clock fitted to the host's, in session seconds: the time axis"),
    "host_time_s": ("s", "host clock at the read that delivered the sample (bursty)"),
    "force_n": ("N", "calibrated, tared force, compression positive"),
    "raw_counts": ("counts", "the sensor's reading as sent, before calibration"),
    "device_tick_us": ("us", "device clock in microseconds, unwrapped"),
    "sequence": ("", "frame counter, unwrapped"),
    "flags": ("", "bit 0 subject's button held, bit 1 sensor saturated, bit 2 sensor fault"),
}


@dataclass
class Exported:
    """What one export wrote: the output, its rows and holds, and whether the source was
    still being recorded (then the output says so: ``still_recording`` in its provenance)."""

    source: Path
    out: Path
    samples: int
    holds: int
    still_recording: bool


def require_format(fmt: str) -> None:
    """ValueError (one line) when ``fmt`` is unknown or the library it needs is missing, so
    that a batch stops before its first file rather than failing on each."""
    if fmt not in FORMATS:
        raise ValueError(f"unknown export format {fmt!r} (one of {', '.join(FORMATS)})")
    if fmt == "parquet" and importlib.util.find_spec("pyarrow") is None:
        raise ValueError(PARQUET_MISSING)
    if fmt == "nwb":
        from analysis.nwb_export import require_pynwb

        require_pynwb()


def sidecar_path(out: Path) -> Path:
    """The JSON document written beside a CSV export (``OUT.csv.json``)."""
    return out.with_name(out.name + ".json")


def export_recording(path: Path, out: Path, fmt: str,
                     settings: AnalysisSettings = DEFAULT_SETTINGS) -> Exported:
    """Export recording ``path`` to ``out`` as ``fmt`` (a key of ``FORMATS``), replacing
    ``out`` atomically (the caller decides whether it may). RecordingFileError (one line) when
    the recording cannot be read; ValueError when the format's library is missing."""
    require_format(fmt)
    rec = open_recording(path)
    metrics = recording_metrics(rec, settings)
    doc = recording_document(rec, metrics, settings)
    tmp = out.with_name(f"{out.stem}.tmp{out.suffix}")  # pynwb wants the .nwb suffix
    side = sidecar_path(out)
    side_tmp = side.with_name(side.name + ".tmp")
    try:
        if fmt == "nwb":
            from analysis.nwb_export import write_nwb

            write_nwb(rec, tmp, doc, metrics)
        elif fmt == "parquet":
            _write_parquet(rec, tmp, doc)
        else:
            _write_csv(rec, tmp)
            side_tmp.write_text(json.dumps(doc, indent=1, allow_nan=False) + "\n")
            os.replace(side_tmp, side)
        os.replace(tmp, out)
    finally:
        tmp.unlink(missing_ok=True)
        side_tmp.unlink(missing_ok=True)
    return Exported(source=Path(path), out=out, samples=len(rec.force), holds=len(metrics),
                    still_recording=bool(doc["provenance"]["still_recording"]))


def recording_document(rec: Recording, metrics: list[HoldMetrics],
                       settings: AnalysisSettings = DEFAULT_SETTINGS) -> dict[str, Any]:
    """Everything about ``rec`` except its samples, as plain JSON values (NaN as null): the
    CSV sidecar, the Parquet schema metadata and the NWB file's notes on data collection."""
    session = {k: v for k, v in rec.session.items() if k != "protocol_toml"}
    return plain({
        "source_file": rec.path.name,
        "session_start": rec.session_start.isoformat(),
        "columns": {k: {"unit": u, "definition": d} for k, (u, d) in TRACE_COLUMNS.items()},
        "provenance": provenance(rec, settings),
        "session": session,
        "protocol_toml": rec.session.get("protocol_toml", ""),
        "device": rec.device,
        "calibration": rec.calibration,
        "summary": rec.summary,
        "events": [asdict(e) for e in rec.events],
        "hold_columns": {k: {"unit": m.unit, "definition": m.definition}
                         for k, m in METRICS.items()},
        "holds": [asdict(m) for m in metrics],
    })


def plain(value: Any) -> Any:
    """``value`` with numpy arrays and scalars as lists and numbers, and NaN or infinite
    floats as None, so that it is strict JSON."""
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple | np.ndarray):
        return [plain(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _columns(rec: Recording) -> dict[str, np.ndarray]:
    return {"time_s": rec.timestamps, "host_time_s": rec.host_time, "force_n": rec.force,
            "raw_counts": rec.raw_counts, "device_tick_us": rec.device_tick_us,
            "sequence": rec.sequence, "flags": rec.flags}


def _write_csv(rec: Recording, out: Path) -> None:
    columns = _columns(rec)
    with open(out, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(TRACE_COLUMNS)
        block = 100_000
        for a in range(0, len(rec.force), block):
            w.writerows(zip(*(np.asarray(c[a:a + block]).tolist() for c in columns.values()),
                            strict=True))


def _write_parquet(rec: Recording, out: Path, doc: dict[str, Any]) -> None:
    """Every field carries ``unit`` and ``definition`` metadata; the schema carries ``doc``
    as JSON under the key ``palpation``."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    arrays = [pa.array(np.asarray(c)) for c in _columns(rec).values()]
    schema = pa.schema(
        [pa.field(name, a.type, metadata={"unit": unit, "definition": definition})
         for (name, (unit, definition)), a in zip(TRACE_COLUMNS.items(), arrays, strict=True)],
        metadata={"palpation": json.dumps(doc, allow_nan=False)})
    pq.write_table(pa.Table.from_arrays(arrays, schema=schema), out)
