"""The file sink: typed messages through the writer thread into a real file, read back."""

from __future__ import annotations

import time

import numpy as np
import pytest

from recorder.sinks import ClockPair, FileSink, Samples
from schemas.events import Event, LinkStats
from schemas.events import Hold as HoldRow
from schemas.reader import open_recording
from schemas.writer import RecordingWriter


def writer(path) -> RecordingWriter:
    return RecordingWriter(path, session={}, device={"device_id": "T"},
                           calibration={"source": "none", "model": "polynomial",
                                        "coefficients": [0.0, 1.0], "unit": "N"},
                           software_version="test")


def block(a: int, b: int) -> Samples:
    i = np.arange(a, b)
    return Samples(data=i * 0.5, timestamps=i / 100, raw_counts=i.astype(np.int32),
                   device_tick_us=i * 10_000, sequence=i, host_time=i / 100 + 0.01,
                   flags=np.zeros(len(i), np.uint8))


def offer(sink: FileSink, samples: Samples, host: float) -> bool:
    """What the pipeline does with a block: admit it, and queue it if admitted."""
    admitted = sink.admit(len(samples), host)
    if admitted:
        sink.put_samples(samples)
    return admitted


def test_every_kind_of_message_reaches_the_file(tmp_path):
    sink = FileSink(queue_limit=1000, drain_s=0.05)
    failures: list[str] = []
    w = writer(tmp_path / "s.h5")
    sink.start(w, failures.append)
    offer(sink, block(0, 50), host=0.5)
    sink.put(Event(0.2, "marker"))
    sink.put(ClockPair(0.5, 500_000))
    offer(sink, block(50, 80), host=0.8)
    sink.put(LinkStats(host_time=0.8, samples=80, crc_errors=3))
    sink.put(HoldRow("a", 1, 0.1, 0.6, 0.5, 20.0, 19.0, 0.4, 15.0, 25.0, True))
    sink.close()
    summary = w.close()
    rec = open_recording(tmp_path / "s.h5")
    assert rec.sequence.tolist() == list(range(80)) and rec.force[79] == 39.5
    assert [e.kind for e in rec.events] == ["marker"]
    assert rec.clock_pairs.tolist() == [(0.5, 500_000)]
    assert rec.link_stats["crc_errors"].tolist() == [3]
    assert rec.holds["trigger_point"].tolist() == [b"a"] and rec.holds["blind"][0] == 1
    assert summary.samples == 80 and summary.holds == 1 and summary.crc_errors == 3
    assert failures == []


def test_anything_but_a_record_is_refused():
    sink = FileSink(queue_limit=10, drain_s=0.05)
    for wrong in (("clock", (1.0, 2)), None, {"data": np.zeros(1)}):
        with pytest.raises(TypeError, match="the file sink takes"):
            sink.put(wrong)


def test_a_writer_that_falls_behind_loses_whole_blocks_and_says_so(tmp_path):
    sink = FileSink(queue_limit=60, drain_s=0.3)
    w = writer(tmp_path / "slow.h5")
    sink.start(w, lambda message: None)
    assert offer(sink, block(0, 50), host=0.5)
    assert not offer(sink, block(50, 70), host=0.7)  # 70 would wait: dropped
    time.sleep(0.5)  # the writer drained the queue
    assert offer(sink, block(70, 100), host=1.0)
    sink.close()
    w.close()
    rec = open_recording(tmp_path / "slow.h5")
    assert sink.lost == 20
    assert rec.sequence.tolist() == [*range(50), *range(70, 100)]
    (overrun,) = rec.events  # at the row of the next sample recorded
    assert (overrun.kind, overrun.value, overrun.sample_index) == ("writer_overrun", 20, 50)
    assert rec.sequence[overrun.sample_index] == 70 and sink.rows == 80


def test_a_file_error_ends_the_writer_and_is_reported(tmp_path):
    failures: list[str] = []
    w = writer(tmp_path / "closed.h5")
    w.close()  # closed under the sink: every append now fails as a file error
    sink = FileSink(queue_limit=1000, drain_s=0.05)
    sink.start(w, failures.append)
    offer(sink, block(0, 10), host=0.1)
    sink.close()
    assert len(failures) == 1 and failures[0].startswith("recording stopped:")


def test_pausing_is_an_event_once():
    sink = FileSink(queue_limit=10, drain_s=0.05)
    (paused,) = sink.set_paused(True, 3.0, 12)
    assert (paused.kind, paused.text, paused.sample_index) == ("record_stop", "paused", 12)
    assert sink.paused and sink.set_paused(True, 4.0, 13) == []
    assert [e.text for e in sink.set_paused(False, 5.0, 14)] == ["resumed"]


def test_a_paused_block_is_not_admitted_and_takes_no_rows():
    sink = FileSink(queue_limit=100, drain_s=0.05)
    assert sink.admit(10, 0.1) and sink.rows == 10
    sink.set_paused(True, 0.2, sink.rows)
    assert not sink.admit(10, 0.3) and sink.rows == 10 and sink.lost == 0
    sink.set_paused(False, 0.4, sink.rows)
    assert sink.admit(5, 0.5) and sink.rows == 15
