"""The HDF5 writer's resident memory does not grow with the samples it has written.

It used to: HDF5 2.0 gives every dataset an 8 MiB chunk cache, which fills with chunks already
written, about 56 MB over the first million samples (17 minutes at 1 kHz). The screen's ring
buffer, the other part that grew, is checked in tests/test_ring.py; the whole recorder in
bench/bench_soak.py (`make bench-soak`).
"""

from __future__ import annotations

import h5py
import numpy as np
import psutil

from schemas.writer import RecordingWriter

BLOCK = 50_000  # half a second at 100 kHz, what the file sink appends per drain


def append(writer: RecordingWriter, start: int) -> None:
    seq = np.arange(start, start + BLOCK, dtype=np.int64)
    writer.append_samples(data=seq * 0.001, timestamps=seq * 1e-5,
                          raw_counts=(seq % 100_000).astype(np.int32),
                          device_tick_us=seq * 10, sequence=seq, host_time=seq * 1e-5,
                          flags=(seq % 8).astype(np.uint8))
    writer.flush()


def test_writer_memory_stays_flat_over_a_million_samples(tmp_path):
    me = psutil.Process()
    writer = RecordingWriter(tmp_path / "long.h5", session={}, device={}, calibration={},
                             software_version="test")
    append(writer, 0)
    before = me.memory_info().rss
    total = 1_500_000
    for start in range(BLOCK, total, BLOCK):
        append(writer, start)
    growth_mb = (me.memory_info().rss - before) / 2**20
    writer.close()
    assert growth_mb < 8.0
    with h5py.File(tmp_path / "long.h5", "r") as f:
        seq = f["/acquisition/force/sequence"][:]
        data = f["/acquisition/force/data"][:]
    assert len(seq) == total and (seq == np.arange(total)).all()
    assert np.array_equal(data, np.arange(total) * 0.001)
