"""A pause over a real pty: the file leaves the paused samples out, and every event's
sample_index is still its row in the file's sample datasets."""

from __future__ import annotations

import json
import time

from schemas.reader import open_recording
from schemas.validate import validate
from tests.conftest import fast_session, wait_until


def test_events_after_a_pause_point_at_their_rows_in_the_file(tmp_path):
    out = tmp_path / "paused.h5"
    session, end = fast_session(out)
    try:
        assert wait_until(lambda: session.status().samples > 800)
        session.set_recording(False)
        paused_at = session.status().samples
        assert wait_until(lambda: session.status().samples > paused_at + 700)
        session.set_recording(True)
        resumed_at = session.status().samples
        assert wait_until(lambda: session.status().samples > resumed_at + 1500)
        session.add_event("marker", text="after the pause")
        time.sleep(0.3)
    finally:
        end()
    validate(out)
    rec = open_recording(out)
    paused = next(e for e in rec.events if e.kind == "record_stop" and e.text == "paused")
    resumed = next(e for e in rec.events if e.kind == "record_start" and e.text == "resumed")
    row = resumed.sample_index
    # the pause left no row: the device's own numbering jumps by what it sent meanwhile (the
    # pause began at the row of the command, or a read later if one was being processed)
    assert row - 100 <= paused.sample_index <= row
    assert rec.sequence[row] - rec.sequence[row - 1] > 600
    assert not [e for e in rec.events if e.kind == "gap"]
    # a clock_fit event is at the first sample stamped with the fit (the fit changes as the
    # device clock's quarter seconds complete, so some do after the pause); those of paused
    # samples have no row of theirs and point at the row recording resumed with
    fits = [e for e in rec.events if e.kind == "clock_fit" and e.sample_index != row]
    assert any(fit.sample_index > row for fit in fits)
    for fit in fits:
        assert rec.timestamps[fit.sample_index] == fit.time
        assert json.loads(fit.text)["from_sample"] == fit.sample_index
    (marker,) = [e for e in rec.events if e.kind == "marker"]
    # a marker points at the first row recorded after it was given: the row before holds a
    # sample taken before it, that row a sample still on its way (read batches are 50 ms)
    assert rec.timestamps[marker.sample_index - 1] <= marker.time + 0.003
    assert rec.timestamps[marker.sample_index] > marker.time - 0.2
