"""Each hold against a reference recording (analysis/reference_holds.py), on real recordings of
the simulated therapist (rendered without real time and written by the real writer, as in
tests/test_ppt.py): a recording compared with itself is at distance zero, one of another seed
at the distances ``analysis.curves`` gives directly, and a point the reference lacks is empty.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from analysis.curves import dtw_per_second, median_abs_difference, reference_curve
from analysis.metrics import recording_metrics
from analysis.reference_holds import (
    REFERENCE_COLUMNS,
    hold_curve,
    reference_columns,
    reference_holds,
)
from schemas.reader import open_recording
from tests.conftest import TRAPEZIUS_LEFT_RIGHT
from tests.test_ppt import write_simulated

# Two points, short holds (2-3 s) so that a recording takes a few simulated seconds.
STATIC_TOML = """
name = "short holds"
description = "two points, short holds"
kind = "static"
unit = "N"
[dose]
target_low = 25.0
target_high = 35.0
min_hold_s = 2.0
max_hold_s = 3.0
repetitions = {reps}
rest_s = 1.0
""" + TRAPEZIUS_LEFT_RIGHT


@pytest.fixture(scope="module")
def recordings(tmp_path_factory):
    """One hold per point (an expert, seed 1); two per point by a novice (seed 2); and a
    reference with only the left point (one hold, seed 3)."""
    d = tmp_path_factory.mktemp("reference")
    specs = {"one": (STATIC_TOML.format(reps=1), 1, "expert"),
             "two": (STATIC_TOML.format(reps=2), 2, "novice"),
             "left": (STATIC_TOML.format(reps=1).rsplit("[[point]]", 1)[0], 3, "expert")}
    out = {}
    for name, (toml, seed, profile) in specs.items():
        path = d / f"{name}.h5"
        write_simulated(path, toml, seed=seed, profile=profile)
        rec = open_recording(path)
        out[name] = (rec, recording_metrics(rec))
    return out


def test_a_recording_against_itself_is_at_distance_zero(recordings):
    rec, metrics = recordings["one"]
    assert [m.trigger_point for m in metrics] == ["upper trapezius L", "upper trapezius R"]
    assert all(m.complete for m in metrics)
    for cols in reference_columns(rec, metrics, rec):
        assert list(cols) == list(REFERENCE_COLUMNS)
        assert cols["ref_holds"] == 1
        assert [cols[k] for k in list(REFERENCE_COLUMNS)[1:]] == pytest.approx(
            [0.0] * 4, abs=1e-9)  # the same samples, timed from different origins


def test_against_another_seed_the_distances_are_those_of_the_curves(recordings):
    """The novice's two holds per point as the reference of the expert's holds: each
    distance is the one ``analysis.curves`` gives against the mean of the novice's holds at
    the point, the differences are against their mean plateau and duration, and none is 0."""
    rec, metrics = recordings["one"]
    ref_rec, ref_metrics = recordings["two"]
    assert [m.trigger_point for m in ref_metrics].count("upper trapezius L") == 2
    for m, cols in zip(metrics, reference_columns(rec, metrics, ref_rec), strict=True):
        at = [r for r in ref_metrics if r.trigger_point == m.trigger_point and r.complete]
        assert cols["ref_holds"] == len(at) == 2
        mean = reference_curve([hold_curve(ref_rec, r) for r in at])
        a, b = np.searchsorted(rec.timestamps, (m.start_s, m.end_s))
        curve = (rec.timestamps[a:b] - m.start_s, rec.force[a:b])
        assert cols["ref_dtw_n"] == dtw_per_second(curve, mean, dt=0.05)
        assert cols["ref_median_abs_diff_n"] == median_abs_difference(curve, mean)
        assert cols["ref_plateau_diff_n"] == pytest.approx(
            m.plateau_mean_n - np.mean([r.plateau_mean_n for r in at]))
        assert cols["ref_duration_diff_s"] == pytest.approx(
            m.duration_s - np.mean([r.duration_s for r in at]))
        assert all(abs(cols[k]) > 0.01 for k in list(REFERENCE_COLUMNS)[1:])


def test_a_point_the_reference_lacks_is_empty(recordings):
    """The reference has the left point only: the right point's hold gets 0 reference holds
    and NaN distances; a reference built once gives the same columns as the recording."""
    rec, metrics = recordings["two"]
    ref_rec, _ = recordings["left"]
    built = reference_holds(ref_rec)
    assert list(built.points) == ["upper trapezius L"]
    cols = reference_columns(rec, metrics, built)
    assert cols == [pytest.approx(c, nan_ok=True)
                    for c in reference_columns(rec, metrics, ref_rec)]
    for m, c in zip(metrics, cols, strict=True):
        if m.trigger_point == "upper trapezius R":
            assert c["ref_holds"] == 0
            assert all(math.isnan(c[k]) for k in list(REFERENCE_COLUMNS)[1:])
        else:
            assert c["ref_holds"] == 1 and c["ref_dtw_n"] > 0
