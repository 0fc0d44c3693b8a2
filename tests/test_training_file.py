"""Training in files: the ``[training]`` table and the subject-anchored dose keys of a session
protocol (parsed, refused with the line to fix, written back), and the schema 1.4.0 recording
columns and events (written, reopened, validated; older files still read)."""

from __future__ import annotations

import math

import h5py
import numpy as np
import pytest

from schemas.events import Event, Hold
from schemas.reader import open_recording
from schemas.session_protocol import ProtocolError, load_preset, load_protocol
from schemas.training import Training, TrainingBlock
from schemas.validate import validate
from schemas.writer import RecordingWriter

BASE = """\
name = "drill"
kind = "static"
unit = "N"

[dose]
target_low = 30
target_high = 50

[[point]]
name = "upper trapezius"
"""

TRAINING = """
[training]
seed = 7
self_estimate = true
mastery_count = 3
mastery_window = 4
mastery_score = 80

[[training.block]]
name = "pre-test"
holds = 2
feedback = "none"

[[training.block]]
name = "practice"
holds = 10
feedback = "faded"
live_share = 0.5

[[training.block]]
name = "band"
holds = 4
feedback = "bandwidth"
bandwidth_pct = 10

[[training.block]]
name = "kr"
holds = 6
feedback = "summary"
summary_every = 3
"""


def test_the_training_table_is_read_key_by_key_and_written_back_equal():
    protocol = load_protocol(BASE + TRAINING)
    assert protocol.training == Training(
        (TrainingBlock("pre-test", 2, "none"),
         TrainingBlock("practice", 10, "faded", live_share=0.5),
         TrainingBlock("band", 4, "bandwidth", bandwidth_pct=10.0),
         TrainingBlock("kr", 6, "summary", summary_every=3)),
        seed=7, self_estimate=True, mastery_count=3, mastery_window=4, mastery_score=80.0)
    assert load_protocol(protocol.to_toml()) == protocol
    assert load_protocol(BASE).training is None
    assert "[training]" not in load_protocol(BASE).to_toml()


def test_defaults_of_a_minimal_training_table():
    training = load_protocol(BASE + '[[training.block]]\nholds = 3\nfeedback = "none"\n').training
    assert training == Training((TrainingBlock("block 1", 3, "none"),))
    assert (training.seed, training.self_estimate, training.mastery_count,
            training.mastery_window, training.mastery_score) == (0, False, 4, 5, 75.0)


def line_of(text: str, needle: str) -> int:
    return next(i for i, line in enumerate(text.splitlines(), 1) if needle in line)


@pytest.mark.parametrize("old, new, at, message", [
    ('feedback = "faded"', 'feedback = "fadde"', 'feedback = "fadde"',
     "[[training.block]] 2: unknown feedback 'fadde' (use one of concurrent, bandwidth, "
     "faded, terminal, summary, none) (did you mean 'faded'?)"),
    ("holds = 2", "holds = 0", "holds = 0", "holds must be a whole number of at least 1, not 0"),
    ("live_share = 0.5", "live_share = 1.5", "live_share = 1.5",
     "[[training.block]] 2: live_share must be between 0 and 1, not 1.5"),
    ("bandwidth_pct = 10", "bandwidth_pct = 0", "bandwidth_pct = 0",
     "[[training.block]] 3: bandwidth_pct must be above 0, not 0"),
    ("bandwidth_pct = 10", "bandwidth_pct = 80", "bandwidth_pct = 80",
     "[[training.block]] 3: bandwidth_pct 80 % is above 50 %; the bandwidth studied is 15 %"),
    ("summary_every = 3", "summary_every = 0", "summary_every = 0",
     "summary_every must be a whole number of at least 1, not 0"),
    ("mastery_count = 3", "mastery_count = 5", "mastery_count = 5",
     "mastery_count (5) is above mastery_window (4): mastery counts passing holds among the "
     "last mastery_window"),
    ("seed = 7", "sede = 7", "sede = 7",
     "unknown key 'sede' in [training] (did you mean 'seed'?)"),
    ("holds = 10", "holds = 10\nhold_s = 3", "hold_s = 3",
     "unknown key 'hold_s' in [[training.block]] 2 (did you mean 'holds'?)"),
    ("holds = 2", "holds = 2\nlive_share = 0.5", "live_share = 0.5\n",
     "[[training.block]] 1: live_share applies to feedback = \"faded\" only, not 'none'"),
    ("self_estimate = true", "self_estimate = 1", "self_estimate = 1",
     "self_estimate must be true or false, not 1"),
    ("holds = 10", "holds = 501", "holds = 501",
     "[[training.block]] 2: holds 501 is above 500 in one block (over an hour of holds)"),
])
def test_training_mistakes_name_the_line_to_fix(old, new, at, message):
    text = BASE + TRAINING.replace(old, new, 1)
    with pytest.raises(ProtocolError) as caught:
        load_protocol(text, source="drill.toml")
    assert str(caught.value) == f"drill.toml:{line_of(text, at.strip())}: {message}"


def test_a_training_table_without_blocks_is_refused_at_its_header():
    text = BASE + "\n[training]\nseed = 1\n"
    with pytest.raises(ProtocolError) as caught:
        load_protocol(text, source="x.toml")
    assert str(caught.value) == (f"x.toml:{line_of(text, '[training]')}: [training] has no "
                                 "blocks: add at least one [[training.block]] with name, holds "
                                 "and feedback")


# ----------------------------------------------------------------- subject-anchored dose

def test_anchored_dose_keys_default_parse_round_trip_and_give_the_band():
    plain = load_protocol(BASE).points[0].dose
    assert math.isnan(plain.target_pain)
    assert (plain.anchor_band_pct, plain.reaction_time_s) == (15.0, 0.3)
    text = BASE.replace("target_high = 50", "target_high = 50\ntarget_pain = 6\n"
                        "anchor_band_pct = 20\nreaction_time_s = 0.5")
    protocol = load_protocol(text)
    dose = protocol.points[0].dose
    assert (dose.target_pain, dose.anchor_band_pct, dose.reaction_time_s) == (6.0, 20.0, 0.5)
    assert dose.anchored_band_n(40.0) == pytest.approx((32.0, 48.0))
    assert plain.anchored_band_n(40.0) == pytest.approx((34.0, 46.0))
    assert load_protocol(protocol.to_toml()) == protocol
    assert load_protocol(load_protocol(BASE).to_toml()) == load_protocol(BASE)


def test_target_pain_on_one_point_only_round_trips():
    text = BASE + '\n[[point]]\nname = "levator"\ntarget_pain = 7\n'
    protocol = load_protocol(text)
    assert math.isnan(protocol.points[0].dose.target_pain)
    assert protocol.points[1].dose.target_pain == 7.0
    assert load_protocol(protocol.to_toml()) == protocol


@pytest.mark.parametrize("key_value, message", [
    ("target_pain = 11", "target_pain 11 is not a rating from 0 to 10"),
    ("target_pain = 0", "target_pain 0 is not a rating from 0 to 10"),
    ("anchor_band_pct = 0", "anchor_band_pct 0 % must be above 0 and at most 50 %"),
    ("anchor_band_pct = 60", "anchor_band_pct 60 % must be above 0 and at most 50 %"),
    ("reaction_time_s = 3", "reaction_time_s 3 s is above 2 s"),
    ("reaction_time_s = -0.1", "reaction_time_s must not be negative (got -0.1)"),
])
def test_anchored_dose_mistakes_name_the_line(key_value, message):
    text = BASE.replace("target_high = 50", f"target_high = 50\n{key_value}")
    with pytest.raises(ProtocolError) as caught:
        load_protocol(text, source="d.toml")
    assert str(caught.value).startswith(f"d.toml:{line_of(text, key_value)}: ")
    assert message in str(caught.value)


def test_the_nmt_training_preset_is_nmt_static_with_a_schedule():
    training, static = load_preset("nmt-training"), load_preset("nmt-static")
    assert [p.label for p in training.points] == [p.label for p in static.points]
    dose = training.points[0].dose
    assert (dose.target_low, dose.target_high) == (static.points[0].dose.target_low,
                                                   static.points[0].dose.target_high)
    schedule = training.training
    assert [(b.feedback, b.live_share) for b in schedule.blocks] == [
        ("none", 1.0), ("faded", 1.0), ("faded", 0.5), ("faded", 0.2), ("none", 1.0)]
    assert schedule.self_estimate
    # the protocol has exactly the holds the schedule plans
    assert sum(p.dose.repetitions for p in training.points) == schedule.total_holds


# ----------------------------------------------------------------------- the file, 1.4.0

def write_file(path, holds: list[Hold], events: list[Event]) -> None:
    n = 100
    t = np.arange(n) / 100.0
    w = RecordingWriter(path, session={}, device={}, calibration={}, software_version="test")
    w.append_samples(data=np.zeros(n), timestamps=t, raw_counts=np.zeros(n, np.int64),
                     device_tick_us=(t * 1e6).astype(np.int64), sequence=np.arange(n),
                     host_time=t, flags=np.zeros(n, np.uint8))
    w.append_events(events)
    w.append_holds(holds)
    w.close()


def hold(start: float, **kw) -> Hold:
    return Hold("upper trapezius L", 1, start, start + 0.2, 0.2, 40.0, 39.0, 0.2, 30.0, 50.0,
                **{"blind": False, **kw})


def test_feedback_columns_and_training_events_are_written_and_read_back(tmp_path):
    path = tmp_path / "t.h5"
    holds = [hold(0.1, feedback="faded", feedback_live=True),
             hold(0.4, feedback="faded", feedback_live=False),
             hold(0.7, feedback="terminal", feedback_live=False, blind=True),
             hold(0.8)]
    events = [Event(0.0, "training_block", 0, "practice: faded"),
              Event(0.0, "feedback", 1, "faded"), Event(0.3, "feedback", 0, "faded"),
              Event(0.35, "self_estimate", -1, "light", 35),
              Event(0.5, "target_anchor", 41.5, "upper trapezius L", 50)]
    write_file(path, holds, events)
    validate(path)
    rec = open_recording(path)
    assert rec.schema_version == "1.6.0"
    assert rec.holds["feedback"].tolist() == [b"faded", b"faded", b"terminal", b""]
    assert rec.holds["feedback_live"].tolist() == [1, 0, 0, 1]
    assert [Hold.from_row(r) for r in rec.holds] == holds
    got = [(e.kind, e.value, e.text) for e in rec.events]
    assert got == [(e.kind, e.value, e.text) for e in events]
    with h5py.File(path) as f:
        assert f["/holds"].dtype["feedback"] == np.dtype("S12")


def test_a_1_3_file_without_feedback_columns_validates_and_reads_blind_as_not_live(tmp_path):
    path = tmp_path / "old.h5"
    write_file(path, [hold(0.1), hold(0.5, blind=True), hold(0.8, complete=False)], [])
    with h5py.File(path, "r+") as f:
        rows = f["/holds"][()]
        names = [n for n in rows.dtype.names if n not in ("feedback", "feedback_live")]
        del f["/holds"]
        f.create_dataset("/holds", data=rows[names].astype([(n, rows.dtype[n]) for n in names]),
                         maxshape=(None,), chunks=True)
        f.attrs["schema_version"] = "1.3.0"
    validate(path)
    rec = open_recording(path)
    assert rec.schema_version == "1.3.0"
    assert rec.holds["feedback"].tolist() == [b"", b"", b""]
    assert rec.holds["feedback_live"].tolist() == [1, 0, 1]
    assert rec.holds["complete"].tolist() == [1, 1, 0]  # its own column, not all whole
