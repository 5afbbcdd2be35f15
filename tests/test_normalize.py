from __future__ import annotations

import numpy as np
import pytest

from saltvol.errors import DataError
from saltvol.normalize import amplitude_stats, estimate_period, to_image_units


def _ricker(period: float, n: int = 201) -> np.ndarray:
    t = np.arange(n) - n // 2
    a = (np.pi * t / period) ** 2
    return (1 - 2 * a) * np.exp(-a)


@pytest.mark.parametrize("period", [8.0, 12.0, 20.0, 30.0])
def test_period_of_ricker_traces_is_found_within_ten_percent(period):
    rng = np.random.default_rng(int(period))
    reflectivity = rng.normal(size=(150, 300)) * (rng.random((150, 300)) < 0.3)
    traces = np.array([np.convolve(r, _ricker(period), mode="same") for r in reflectivity])
    traces += 0.05 * traces.std() * rng.normal(size=traces.shape)
    assert estimate_period(traces) == pytest.approx(period, rel=0.10)


def test_period_needs_signal():
    with pytest.raises(DataError):
        estimate_period(np.zeros((4, 64)))
    with pytest.raises(DataError):
        estimate_period(np.ones((4, 4)))


def test_image_units_match_the_target_centre_and_spread():
    rng = np.random.default_rng(0)
    amplitude = 1000 * rng.normal(size=100_000) + 50
    stats = amplitude_stats(amplitude)
    image = to_image_units(amplitude, stats, target_center=0.47, target_spread=0.15)
    p16, p50, p84 = np.percentile(image, [16, 50, 84])
    assert p50 == pytest.approx(0.47, abs=0.01)
    assert 0.5 * (p84 - p16) == pytest.approx(0.15, rel=0.05)
    assert image.min() >= 0 and image.max() <= 1


def test_constant_and_nonfinite_data_map_to_mid_grey():
    stats = amplitude_stats(np.zeros(100))
    assert stats.spread == 1.0
    image = to_image_units(np.array([np.nan, np.inf, -np.inf, 0.0]), stats, target_center=0.47, target_spread=0.15)
    assert np.isfinite(image).all() and image[0] == pytest.approx(0.47)


def test_period_estimate_does_not_depend_on_the_fft_batch(monkeypatch):
    # The mean spectrum is summed over batches of traces to bound memory; the batching must not show.
    import saltvol.normalize as normalize

    rng = np.random.default_rng(5)
    traces = np.convolve(rng.standard_normal(40_000), np.hanning(12), mode="same").reshape(100, 400)
    whole = normalize.estimate_period(traces)
    monkeypatch.setattr(normalize, "_SPECTRUM_BATCH", 7)
    assert normalize.estimate_period(traces) == pytest.approx(whole, rel=1e-12)
