"""A classroom station (issue 14): a real ``palpation record --lsl --station`` process on the
simulated sensor, heard by a real LSL inlet on loopback. Its markers carry the state at least
once a second, each hold as the file stores it with the score the offline analysis gives it,
never the trainee's name under a pseudonym, and a ``bye``; its streams are named after the
station; the file keeps the station. Malformed messages are refused in one line."""

from __future__ import annotations

import math
import subprocess
import time

import pylsl
import pytest

from analysis.definitions import hold_flags
from analysis.metrics import recording_metrics
from analysis.score import score_metrics
from recorder.session import RecordingSession, SessionOptions
from recorder.station import StationPublisher
from recorder.station_messages import decode, encode, message
from schemas.reader import open_recording
from tests.conftest import ROOT, palpation_cmd, run_palpation, wait_until

# one point, two short holds: the simulated therapist makes each in about 10 s
TWO_HOLDS = """
name = "two holds"
description = "one trigger point, two 1-2 s holds"
kind = "static"
unit = "N"

[dose]
target_low = 30.0
target_high = 40.0
min_hold_s = 1.0
max_hold_s = 2.0
repetitions = 2
rest_s = 1.0

[[point]]
name = "upper trapezius"
muscle = "trapezius (upper fibres)"
side = "left"
note = "mid-belly of the upper fibres"
"""

SOURCE = "palpation-station:S1:{}"


def _resolve(source_id: str, timeout: float = 20.0) -> pylsl.StreamInfo:
    """The stream with ``source_id``, waiting for the station to publish it."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        found = pylsl.resolve_byprop("source_id", source_id, timeout=1.0)
        if found:
            return found[0]
    raise AssertionError(f"no stream {source_id} within {timeout:g} s")


def _listen(inlet: pylsl.StreamInlet, timeout: float) -> list[str]:
    """Messages until ``bye`` or ``timeout``."""
    texts, end = [], time.monotonic() + timeout
    while time.monotonic() < end:
        sample, _ = inlet.pull_sample(timeout=0.5)
        if sample:
            texts.append(sample[0])
            if decode(sample[0])["kind"] == "bye":
                break
    return texts


def _desc_station(info: pylsl.StreamInfo) -> str:
    return info.desc().child_value("station")


def test_station_publishes_state_holds_and_bye_as_the_file_has_them(tmp_path):
    (tmp_path / "two.toml").write_text(TWO_HOLDS)
    out = tmp_path / "s1.h5"
    proc = subprocess.Popen(
        palpation_cmd("record", "--simulate", "--headless", "--lsl", "--station", "S1",
                      "--pseudonym", "Bench 1", "--trainee", "Ana Real", "--seed", "2",
                      "--protocol", str(tmp_path / "two.toml"), "--until-complete",
                      "--duration", "30", "--out", str(out)),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT)
    try:
        info = _resolve(SOURCE.format("markers"))
        inlet = pylsl.StreamInlet(info)
        inlet.open_stream(timeout=5)
        force = _resolve(SOURCE.format("force"))
        # the description comes with the full info, from an inlet
        stations = (_desc_station(inlet.info(timeout=5)),
                    _desc_station(pylsl.StreamInlet(force).info(timeout=5)))
        texts = _listen(inlet, timeout=40)
        _, err = proc.communicate(timeout=20)
    finally:
        proc.kill()
    assert proc.returncode == 0, err
    assert (info.name(), info.type(), info.channel_count()) == ("palpation S1 markers",
                                                                 "Markers", 1)
    assert info.channel_format() == pylsl.cf_string and info.nominal_srate() == 0
    assert (force.name(), force.type()) == ("palpation S1", "Force")
    assert stations == ("S1", "S1")

    assert not any("Ana Real" in t for t in texts)
    messages = [decode(t) for t in texts]
    assert messages[-1]["kind"] == "bye" and {m["station"] for m in messages} == {"S1"}
    assert not [m for m in messages if m["kind"] == "link"]  # the stop is no link loss
    states = [m for m in messages if m["kind"] == "state"]
    assert {m["trainee"] for m in states} == {"Bench 1"}
    times = [m["session_s"] for m in states]
    assert len(states) >= 10 and max(b - a for a, b in zip(times, times[1:], strict=False)) <= 1
    assert states[-1]["holds_done"] == 2 and states[-1]["complete"] is True
    assert states[0]["band_n"] == [30.0, 40.0] and states[0]["point"] == "upper trapezius L"

    rec = open_recording(out)
    assert rec.session["station"] == "S1" and rec.session["trainee"] == "Ana Real"
    holds = [m for m in messages if m["kind"] == "hold"]
    rows = [r for r in rec.holds if r["complete"]]
    assert len(holds) == len(rows) == 2
    offline = recording_metrics(rec)
    for sent, row in zip(holds, rows, strict=True):
        assert sent["start_s"] == pytest.approx(row["start"], abs=1e-3)
        assert sent["end_s"] == pytest.approx(row["end"], abs=1e-3)
        assert sent["repetition"] == row["repetition"]
        assert sent["peak_n"] == pytest.approx(row["peak_n"], abs=1e-3)
        (m,) = [m for m in offline if abs(m.start_s - row["start"]) < 1e-3]
        assert sent["score"] == pytest.approx(score_metrics(m).score, abs=1.0)
        assert sent["flags"] == [f.name for f in hold_flags(m)]


def test_station_publishes_a_pain_rating_and_the_link_lost_and_back(tmp_path, simulator):
    sim = simulator("--rate", "1000", "--disconnect-after", "1.5", "--reappear-after", "1.0")
    assert wait_until(sim.link.exists, 10)
    session = RecordingSession(SessionOptions(port=str(sim.link), out=tmp_path / "t2.h5",
                                              lsl=True, station="T2"))
    session.start()
    publisher = StationPublisher(session, "T2")
    publisher.start()
    try:
        inlet = pylsl.StreamInlet(_resolve("palpation-station:T2:markers", timeout=10))
        inlet.open_stream(timeout=5)
        session.add_event("pain", 6.0)
        texts, end = [], time.monotonic() + 8
        while time.monotonic() < end and not any('"reconnected"' in t for t in texts):
            sample, _ = inlet.pull_sample(timeout=0.5)
            texts += sample or []
    finally:
        publisher.halt()
        session.stop()
        publisher.close()
    kinds = [(m["kind"], m.get("state"), m.get("value")) for m in map(decode, texts)]
    assert ("pain", None, 6.0) in kinds
    links = [k for k in kinds if k[0] == "link"]
    assert links == [("link", "lost", None), ("link", "reconnected", None)]
    lost = [m for m in map(decode, texts) if m["kind"] == "state" and m["link"] == "lost"]
    assert lost  # the state says so too while the link is down


def test_station_options_are_refused_alone_in_one_line(tmp_path):
    out = str(tmp_path / "x.h5")
    r = run_palpation("record", "--simulate", "--headless", "--station", "S1", "--out", out)
    assert r.returncode == 1 and r.stderr.strip().splitlines() == [
        "palpation: error: --station publishes on Lab Streaming Layer; add --lsl"]
    r = run_palpation("record", "--simulate", "--headless", "--lsl", "--pseudonym", "B",
                      "--out", out)
    assert r.returncode == 1 and r.stderr.strip().splitlines() == [
        "palpation: error: --pseudonym is what a station publishes; add --station NAME"]
    r = run_palpation("record", "--simulate", "--headless", "--lsl", "--station", "a:b",
                      "--out", out)
    assert r.returncode == 1 and len(r.stderr.strip().splitlines()) == 1
    assert "--station 'a:b': a name without ':'" in r.stderr
    assert not (tmp_path / "x.h5").exists()


@pytest.mark.parametrize("text, says", [
    ("{not json", "not JSON"),
    ("[1, 2]", "not a JSON object"),
    ('{"v": 2, "station": "S1", "kind": "state"}', "version 2"),
    ('{"v": 1, "kind": "state"}', "'station'"),
    ('{"v": 1, "station": "S1"}', "'kind'"),
])
def test_decode_refuses_a_malformed_message_in_one_line(text, says):
    with pytest.raises(ValueError) as exc:
        decode(text)
    assert says in str(exc.value) and "\n" not in str(exc.value)


def test_encode_sends_nan_as_null_and_decodes_back():
    sent = message("S1", "state", 1.5, band_n=[math.nan, 40.0], score=math.inf)
    got = decode(encode(sent))
    assert got == {"v": 1, "station": "S1", "kind": "state", "session_s": 1.5,
                   "band_n": [None, 40.0], "score": None}
