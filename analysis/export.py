"""The raw trace of a recording as CSV or Parquet, for other tools."""

from __future__ import annotations

import csv
import os
from pathlib import Path

import numpy as np

from schemas.reader import open_recording

TRACE_COLUMNS = {  # column: (unit, source)
    "time_s": ("s", "timestamps: device clock mapped to session time"),
    "host_time_s": ("s", "host clock at the read that delivered the sample"),
    "force_n": ("N", "calibrated, tared force"),
    "raw_counts": ("counts", "the sensor's reading as sent"),
    "device_tick_us": ("µs", "device clock, unwrapped"),
    "sequence": ("", "frame counter, unwrapped"),
    "flags": ("", "bit 0 button, bit 1 saturated, bit 2 fault"),
}


def export_trace(path: Path, out: Path, fmt: str) -> int:
    """Write the samples of ``path`` to ``out``; returns the number of rows."""
    rec = open_recording(path)
    columns = {"time_s": rec.timestamps, "host_time_s": rec.host_time, "force_n": rec.force,
               "raw_counts": rec.raw_counts, "device_tick_us": rec.device_tick_us,
               "sequence": rec.sequence, "flags": rec.flags}
    tmp = out.with_name(out.name + ".tmp")
    if fmt == "parquet":
        try:
            import pyarrow as pa
            import pyarrow.parquet as pq
        except ImportError:
            raise ValueError("writing parquet needs pyarrow: pip install "
                             "'palpation-recorder[parquet]'") from None
        table = pa.table(columns).replace_schema_metadata(
            {f"unit:{k}": v[0] for k, v in TRACE_COLUMNS.items()})
        pq.write_table(table, tmp)
    else:
        with open(tmp, "w", newline="") as f:
            w = csv.writer(f)
            w.writerow([f"{k} [{v[0]}]" if v[0] else k for k, v in TRACE_COLUMNS.items()])
            block = 100_000
            for a in range(0, len(rec.force), block):
                w.writerows(zip(*(np.asarray(c[a:a + block]).tolist()
                                  for c in columns.values()), strict=True))
    os.replace(tmp, out)
    return len(rec.force)
