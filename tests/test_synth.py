"""Tests for saltvol.synth: determinism, layout, salt, spectrum and amplitudes."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from saltvol import synth
from saltvol.errors import DataError
from saltvol.synth import make_volume


def _dominant_period(ds) -> tuple[float, int]:
    """Dominant vertical period (samples) of the traces that contain no salt.

    The amplitude spectra (mean removed, Hann window, zero-padded) are
    averaged over the traces, and the peak frequency is that of the
    least-squares fit of a Ricker amplitude spectrum ``c f^2 exp(-f^2/fp^2)``.
    A raw argmax is not used: the Ricker peak is so flat (10 % off the peak
    frequency costs only 2 % of amplitude) that the random reflectivity moves
    the argmax by 10-30 %, while the fit uses the whole band.
    """
    amp = ds["amplitude"].values
    ns = amp.shape[-1]
    traces = amp.reshape(-1, ns)[~ds["salt"].values.reshape(-1, ns).any(axis=-1)]
    traces = (traces - traces.mean(axis=-1, keepdims=True)) * np.hanning(ns)
    n = 4096
    freq = np.fft.rfftfreq(n)
    spec = np.abs(np.fft.rfft(traces, n=n, axis=-1)).mean(axis=0)
    peaks = np.geomspace(1.0 / ns, 0.5, 1500)
    model = freq[None] ** 2 * np.exp(-((freq[None] / peaks[:, None]) ** 2))
    gain = (model @ spec) / np.sum(model * model, axis=1)
    misfit = np.sum((spec[None] - gain[:, None] * model) ** 2, axis=1)
    return float(1.0 / peaks[np.argmin(misfit)]), len(traces)


def test_same_seed_same_volume_other_seed_differs():
    a = make_volume((8, 9, 40), seed=3)
    b = make_volume((8, 9, 40), seed=3)
    c = make_volume((8, 9, 40), seed=4)
    np.testing.assert_array_equal(a["amplitude"].values, b["amplitude"].values)
    np.testing.assert_array_equal(a["salt"].values, b["salt"].values)
    assert a.attrs == b.attrs
    assert not np.array_equal(a["amplitude"].values, c["amplitude"].values)


def test_result_does_not_depend_on_block_size(monkeypatch):
    whole = make_volume((7, 11, 33), seed=5)
    monkeypatch.setattr(synth, "_BLOCK_VOXELS", 400)  # one inline per block
    blocked = make_volume((7, 11, 33), seed=5)
    np.testing.assert_array_equal(whole["amplitude"].values, blocked["amplitude"].values)
    np.testing.assert_array_equal(whole["salt"].values, blocked["salt"].values)


def test_layout_dtypes_and_coordinates():
    ds = make_volume((6, 7, 50), seed=1, dt=2.0, period=10.0)
    for name, dtype in (("amplitude", np.float32), ("salt", np.bool_)):
        assert ds[name].dims == ("iline", "xline", "sample")
        assert ds[name].shape == (6, 7, 50)
        assert ds[name].dtype == dtype
    np.testing.assert_array_equal(ds["iline"].values, np.arange(1000, 1006))
    np.testing.assert_array_equal(ds["xline"].values, np.arange(2000, 2007))
    np.testing.assert_allclose(ds["sample"].values, np.arange(50) * 2.0)
    assert ds["sample"].attrs["units"] == "ms"
    assert ds["cdp_x"].dims == ds["cdp_y"].dims == ("iline", "xline")
    x, y = ds["cdp_x"].values, ds["cdp_y"].values
    # a 25 m grid in both directions, rotated (both x and y change along each axis)
    np.testing.assert_allclose(np.hypot(np.diff(x, axis=1), np.diff(y, axis=1)), 25.0)
    np.testing.assert_allclose(np.hypot(np.diff(x, axis=0), np.diff(y, axis=0)), 25.0)
    assert np.all(np.diff(x, axis=0) != 0) and np.all(np.diff(y, axis=1) != 0)
    assert ds.attrs["seed"] == 1 and ds.attrs["period"] == 10.0 and ds.attrs["dt"] == 2.0
    assert np.all(np.isfinite(ds["amplitude"].values))
    assert 0.8 < float(ds["amplitude"].std()) < 1.2  # RMS about 1


@pytest.mark.parametrize("seed", range(6))
def test_salt_fraction_in_range(seed):
    ds = make_volume((24, 24, 64), seed=seed)
    fraction = float(ds["salt"].mean())
    assert 0.10 <= fraction <= 0.40
    assert ds.attrs["salt_fraction"] == pytest.approx(fraction)
    assert ds.attrs["salt_kind"] in ("dome", "diapir", "wall")
    # rising from the bottom: the bottom slice holds salt, the top slice none
    assert ds["salt"].values[:, :, -1].any()
    assert not ds["salt"].values[:, :, 0].any()


def test_without_salt():
    ds = make_volume((10, 12, 40), seed=2, salt=False)
    assert not ds["salt"].values.any()
    assert ds.attrs["salt_kind"] == "none" and ds.attrs["salt_fraction"] == 0.0


@pytest.mark.parametrize("period", [8.0, 12.0, 20.0, 30.0])
@pytest.mark.parametrize("seed", [0, 1])
def test_dominant_vertical_period(period, seed):
    ds = make_volume((40, 40, 256), seed=seed, period=period)
    estimate, n_traces = _dominant_period(ds)
    assert n_traces >= 20
    assert estimate == pytest.approx(period, rel=0.10)


def test_salt_interior_is_quieter_than_sediments():
    period = 10.0
    ds = make_volume((32, 32, 128), seed=3, period=period)
    amp, salt = ds["amplitude"].values, ds["salt"].values
    # keep a wavelet length away from the salt boundary (its reflections)
    reach = np.ones((5, 5, 2 * int(1.5 * period) + 1), dtype=bool)
    interior = ndimage.binary_erosion(salt, structure=reach)
    sediment = ~ndimage.binary_dilation(salt, structure=reach)
    assert interior.sum() > 1000 and sediment.sum() > 1000
    rms_salt = np.sqrt(np.mean(amp[interior] ** 2))
    rms_sed = np.sqrt(np.mean(amp[sediment] ** 2))
    assert rms_salt < 0.5 * rms_sed


def test_top_of_salt_is_bright():
    ds = make_volume((32, 32, 128), seed=0, period=10.0)
    amp, salt = ds["amplitude"].values, ds["salt"].values
    # first salt sample of each trace that has salt: the positive top-salt peak
    has = salt.any(axis=-1)
    top = np.argmax(salt, axis=-1)[has]
    peaks = amp[has, top]
    rms = np.sqrt(np.mean(amp[~salt] ** 2))
    assert np.median(peaks) > 1.5 * rms


def test_noise_is_a_fraction_of_rms():
    clean = make_volume((12, 12, 96), seed=7, noise=0.0)["amplitude"].values
    noisy = make_volume((12, 12, 96), seed=7, noise=0.2)["amplitude"].values
    ratio = np.std(noisy - clean) / np.sqrt(np.mean(clean**2))
    assert ratio == pytest.approx(0.2, rel=0.15)


@pytest.mark.parametrize("shape", [(3, 4, 16), (1, 30, 40), (2, 2, 2), (1, 1, 8)])
def test_tiny_and_2d_like_shapes(shape):
    ds = make_volume(shape, seed=0)
    assert ds["amplitude"].shape == shape == ds["salt"].shape
    assert np.all(np.isfinite(ds["amplitude"].values))


def test_2d_like_line_crosses_salt():
    ds = make_volume((1, 60, 80), seed=1)
    assert 0.05 < float(ds["salt"].mean()) < 0.5


@pytest.mark.parametrize(
    "kwargs",
    [
        {"shape": (0, 3, 8)},
        {"shape": (3, 3, 1)},
        {"shape": (3, 3)},
        {"period": 2.0},
        {"period": float("nan")},
        {"noise": -0.1},
        {"dt": 0.0},
    ],
)
def test_bad_arguments_raise(kwargs):
    with pytest.raises(DataError):
        make_volume(**kwargs)
