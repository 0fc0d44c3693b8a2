"""Peak decimation keeps extremes, order and the newest sample."""

import numpy as np
import pytest

from analysis.decimate import peak_decimate


@pytest.mark.parametrize("n", [5000, 9999, 10_000, 10_001, 60_000, 123_457])
def test_extremes_order_and_last_sample_are_kept(n):
    rng = np.random.default_rng(n)
    x = np.arange(n) / 1000.0
    y = rng.standard_normal(n).cumsum()
    dx, dy = peak_decimate(x, y, 1500)
    assert len(dx) <= 1500
    assert (np.diff(dx) >= 0).all()
    assert dx[-1] == x[-1] and dy[-1] == y[-1]
    assert dy.max() == y.max() and dy.min() == y.min()
    # no long straight stretch: consecutive drawn points are at most two buckets apart
    assert np.diff(dx).max() <= 2 * (-(-n // 750)) / 1000.0


def test_short_traces_are_untouched():
    x = np.arange(10.0)
    assert peak_decimate(x, x, 100)[0] is x
