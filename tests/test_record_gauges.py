"""Recording commercial gauges end to end: the real session (its poll loop, watchdog and
reconnect) on each gauge's emulator over a pty, values compared exactly (the emulators log
each value as printed; raw counts are millinewtons)."""

from __future__ import annotations

import math
import time

import numpy as np
import pytest

from firmware_bridge.frames import FLAG_SATURATED
from firmware_bridge.sim.gauges import ImadaEmulator, Mark10Emulator, WagnerEmulator
from firmware_bridge.sim.server import PtyServer
from recorder.session import RecordingSession, SessionOptions
from recorder.source import NoReadings
from schemas.reader import open_recording


def wave(t: float) -> float:
    return 20.0 + 10.0 * math.sin(t)


def counts(sent) -> list[int]:
    """What the gauge printed, as the recorder's millinewton counts."""
    return np.round(np.array([n for _, n, _ in sent]) * 1000).astype(np.int64).tolist()


def run(tmp_path, emulator, device: str, seconds: float, during=None, **options):
    """Record ``seconds`` of ``emulator``; ``during(server, session)`` runs meanwhile."""
    out = tmp_path / f"{device}.h5"
    with PtyServer(emulator, link=tmp_path / "gauge") as server:
        s = RecordingSession(SessionOptions(port=str(tmp_path / "gauge"), out=out,
                                            device=device, **options))
        s.start()
        if during is not None:
            during(server, s)
        time.sleep(seconds)
        s.stop()
        sent = list(emulator.sent)
    return open_recording(out), sent, s


def assert_contiguous_run(got: list[int], sent):
    """Recorded counts are a run of what the gauge printed, in order, value for value."""
    printed = counts(sent)
    starts = [k for k in range(len(printed) - len(got) + 1) if printed[k:k + len(got)] == got]
    assert starts, "the recorded readings are not a run of the printed ones"


@pytest.mark.parametrize("device, emulator", [
    ("mark10", lambda: Mark10Emulator(wave, unit="lbF")),
    ("imada", lambda: ImadaEmulator(wave, unit="kgf")),
    ("wagner", lambda: WagnerEmulator(wave, model="fdix")),
])
def test_gauge_is_recorded_in_newtons(tmp_path, device, emulator):
    rec, sent, _ = run(tmp_path, emulator(), device, 1.5)
    assert rec.device["link"] == device
    assert len(rec.force) >= 10
    assert_contiguous_run(rec.raw_counts.tolist(), sent)
    np.testing.assert_allclose(rec.force, rec.raw_counts / 1000.0, rtol=1e-12, atol=0)


def test_wagner_power_cycle_is_rearmed_after_reconnect(tmp_path):
    with PtyServer(WagnerEmulator(wave, model="fdix"), link=tmp_path / "gauge") as server:
        out = tmp_path / "wagner.h5"
        s = RecordingSession(SessionOptions(port=str(tmp_path / "gauge"), out=out,
                                            device="wagner"))
        s.start()
        time.sleep(1.0)
        before = s.status().samples
        server.power_cycle(replug=True)  # a USB gauge: new port name, streaming lost
        deadline = time.monotonic() + 10
        while s.status().reconnects < 1 and time.monotonic() < deadline:
            time.sleep(0.1)
        time.sleep(1.0)
        after = s.status().samples
        s.stop()
    assert s.status().reconnects == 1
    assert after > before + 20  # streaming was re-armed by the driver's start()
    kinds = [e.kind for e in open_recording(out).events]
    assert "disconnect" in kinds and "reconnect" in kinds


def test_wagner_power_cycle_behind_an_adapter_is_rearmed_by_the_silence_watchdog(tmp_path):
    """The RS-232 adapter keeps the port open: no reconnect, only silence; after 2 s the
    source sends CA, the rate and CB again."""
    emulator = WagnerEmulator(wave, model="fdix")

    def power_cycle(server, session):
        time.sleep(0.8)
        server.power_cycle()  # same port
        session.cycled_at = session.status().samples

    rec, sent, s = run(tmp_path, emulator, "wagner", 3.5, during=power_cycle)
    assert s.status().reconnects == 0
    assert len(rec.force) > s.cycled_at + 30  # streaming again after the watchdog
    assert emulator.commands.count("CB") == 2
    assert_contiguous_run(rec.raw_counts[:s.cycled_at].tolist(), sent)
    assert_contiguous_run(rec.raw_counts[-20:].tolist(), sent)


def test_wagner_readings_are_timed_by_the_gauge_rate(tmp_path):
    """Readings that arrive together are spaced by the gauge's period, not stamped with one
    host time."""
    rec, sent, _ = run(tmp_path, WagnerEmulator(wave, model="fdix"), "wagner", 2.0,
                       gauge={"rate_hz": 50})
    assert set(np.diff(rec.device_tick_us).tolist()) <= {20_000, 20_001}
    steps = np.diff(rec.timestamps)
    assert steps.min() > 0 and (np.abs(steps - 0.020) < 1e-5).mean() >= 0.8
    assert_contiguous_run(rec.raw_counts.tolist(), sent)


@pytest.mark.parametrize("device, emulator", [
    ("mark10", lambda: Mark10Emulator(wave, unit="N")),
    ("imada", lambda: ImadaEmulator(wave, unit="N")),
])
def test_polled_gauge_is_asked_by_the_session_one_query_at_a_time(tmp_path, device, emulator):
    """The session's own poller drives a polled gauge: every answer the gauge sent is one
    recorded reading, in order, at about the driver's poll interval."""
    seconds = 1.5
    rec, sent, s = run(tmp_path, emulator(), device, seconds)
    poll_s = s.source.driver.poll_interval_s
    # about one reading per poll interval: the poller neither stalls nor floods the gauge
    assert 0.5 * seconds / poll_s <= len(rec.force) <= (seconds + 0.5) / poll_s
    # each answer recorded once and in order; only the last may have been in flight at stop
    assert len(sent) - 1 <= len(rec.force) <= len(sent)
    assert rec.raw_counts.tolist() == counts(sent)[:len(rec.force)]
    assert (np.diff(rec.sequence) == 1).all()


def test_imada_in_peak_mode_is_switched_to_real_time_and_no_peak_is_stored(tmp_path):
    emulator = ImadaEmulator(wave, unit="N", mode="P")
    rec, sent, _ = run(tmp_path, emulator, "imada", 1.0)
    assert emulator.mode == "T" and "T" in emulator.commands
    live = [entry for entry in sent if entry[2][-3:-2] == b"T"]  # "+020.00NTO\r": mode T
    assert rec.raw_counts.tolist() == counts(live)[:len(rec.force)]
    assert len(rec.force) >= len(live) - 1


def test_imada_overload_is_flagged_in_the_file(tmp_path):
    rec, _, _ = run(tmp_path, ImadaEmulator(lambda t: 600.0, unit="N", capacity=500.0),
                    "imada", 0.8)
    assert len(rec.flags) and (rec.flags & FLAG_SATURATED).all()
    assert any(e.kind == "note" and e.text.startswith("gauge: Imada judgement E")
               for e in rec.events)


def test_numeric_only_mark10_without_a_unit_stops_with_a_message_and_no_file(tmp_path):
    emulator = Mark10Emulator(wave, unit="lbF", numeric_only=True)
    out = tmp_path / "none.h5"
    with PtyServer(emulator, link=tmp_path / "gauge"):
        s = RecordingSession(SessionOptions(port=str(tmp_path / "gauge"), out=out,
                                            device="mark10"))
        with pytest.raises(NoReadings, match="carry no unit .* --gauge-unit"):
            s.start()
    assert not out.exists()


def test_numeric_only_mark10_with_its_unit_and_inverted_polarity(tmp_path):
    emulator = Mark10Emulator(wave, unit="lbF", numeric_only=True, compression_sign=-1)
    rec, sent, _ = run(tmp_path, emulator, "mark10", 1.0,
                       gauge={"unit": "lbf", "invert": True})
    assert rec.raw_counts.tolist() == [-c for c in counts(sent)][:len(rec.force)]
    assert rec.force.min() > 0  # compression positive


class ImadaMissingFirstT(ImadaEmulator):
    """An Imada left in peak mode that misses the ``T`` of the recorder's set-up (it was
    still starting up), so the first reading the recorder sees, before recording starts, is a
    peak."""

    def command(self, text: str, t: float) -> bytes:
        if text == "T" and "T" not in self.commands[:-1]:
            return b""
        return super().command(text, t)


def test_a_notice_from_before_recording_starts_reaches_the_file(tmp_path):
    emulator = ImadaMissingFirstT(wave, unit="N", mode="P")
    rec, sent, _ = run(tmp_path, emulator, "imada", 1.0)
    peaks = [entry for entry in sent if entry[2][-3:-2] == b"P"]
    assert peaks and sent.index(peaks[0]) == 0  # the gauge's first answer was a peak
    assert emulator.commands.count("T") == 2  # the driver asked for real time again
    notes = [e.text for e in rec.events if e.kind == "note"]
    assert "gauge: Imada in peak mode: peak readings dropped, real-time mode (T) asked" in notes
    live = [entry for entry in sent if entry[2][-3:-2] == b"T"]
    assert rec.raw_counts.tolist() == counts(live)[:len(rec.force)]  # no peak stored


def test_a_gauge_sending_only_peaks_stops_with_that_reason_and_no_file(tmp_path):
    out = tmp_path / "none.h5"
    with PtyServer(WagnerEmulator(wave, model="fdix", peak=True), link=tmp_path / "gauge"):
        s = RecordingSession(SessionOptions(port=str(tmp_path / "gauge"), out=out,
                                            device="wagner"))
        with pytest.raises(NoReadings, match="no live reading .* Wagner sends peak readings"):
            s.start()
    assert not out.exists()
