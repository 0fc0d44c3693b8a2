"""A tare under load is refused live, and forcing it is on record."""

from conftest import fast_session, wait_until

from schemas.reader import open_recording


def test_tare_during_a_hold_is_refused_then_forced_by_a_second_press(tmp_path):
    out = tmp_path / "tare.h5"
    session, end = fast_session(out)
    try:
        assert wait_until(lambda: session.live_hold is not None
                          and session.live_hold.peak_n > 20, timeout=15)
        refused = session.tare()
        assert refused.startswith("tare refused: a hold is in progress")
        assert "again within 2 s" in refused
        zero = session.tare_counts
        assert session.tare() == ""  # the second press forces it
        assert wait_until(lambda: session.tare_counts != zero, timeout=5)
    finally:
        end()
    notes = [e.text for e in open_recording(out).events if e.kind == "note"]
    assert "tare refused: a hold is in progress" in notes
    assert "tare forced: a hold is in progress" in notes
    tares = [e for e in open_recording(out).events if e.kind == "tare"]
    assert len(tares) == 2  # the start-up tare and the forced one


def test_tare_at_rest_is_taken_at_once(tmp_path):
    out = tmp_path / "rest.h5"
    session, end = fast_session(out)
    try:
        assert wait_until(lambda: session.live_hold is not None, timeout=15)
        assert wait_until(lambda: session.live_hold is None, timeout=15)
        assert wait_until(lambda: abs(float(session.ring.latest(200).force.mean())) < 1.0
                          and float(session.ring.latest(1000).force.max()) < 1.0, timeout=15)
        assert session.tare() == ""
    finally:
        end()
    notes = [e.text for e in open_recording(out).events if e.kind == "note"]
    assert not [n for n in notes if n.startswith("tare ")]
