from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import numpy as np
import pytest
import xarray as xr

from saltvol.errors import DataError
from saltvol.inference import (
    resolve_scale,
    segment,
    segment_sections,
    usable_orientations,
    volume_stats,
)
from saltvol.model import ModelMeta
from saltvol.normalize import AmplitudeStats, to_image_units
from saltvol.synth import make_volume


@dataclass
class IdentityModel:
    """A predictor that returns its input: blending must then reproduce the image exactly."""

    meta: ModelMeta = field(default_factory=ModelMeta)
    calls: int = 0

    def predict_tiles(self, x: np.ndarray, *, batch_size: int = 16) -> np.ndarray:
        self.calls += len(x)
        return x.copy()


STATS = AmplitudeStats(center=0.0, spread=1.0)


@pytest.mark.parametrize("shape", [(3, 40, 30), (2, 300, 200), (1, 7, 300)])
def test_sections_through_an_identity_model_come_back_in_image_units(shape):
    rng = np.random.default_rng(1)
    sections = rng.normal(size=shape).astype(np.float32)
    sections[..., 0] = 1.0  # no quiet top (that rule has its own test)
    model = IdentityModel()
    out = segment_sections(sections, model=model, stats=STATS, tile_size=64, overlap=0.5)
    expected = to_image_units(sections, STATS, target_center=model.meta.image_center, target_spread=model.meta.image_spread)
    np.testing.assert_allclose(out, expected, atol=1e-5)


def test_resampling_up_and_down_returns_the_native_grid():
    rng = np.random.default_rng(2)
    sections = np.repeat(np.sin(np.linspace(0, 12, 120))[None, None, :], 50, axis=1).astype(np.float32)
    sections = sections + 0.01 * rng.normal(size=sections.shape).astype(np.float32)
    model = IdentityModel()
    out = segment_sections(sections, model=model, stats=STATS, tile_size=64, scale=2.0)
    assert out.shape == sections.shape
    expected = to_image_units(sections, STATS, target_center=model.meta.image_center, target_spread=model.meta.image_spread)
    # bilinear up then antialiased down: a smooth signal survives to within a few per cent of its range
    assert np.abs(out - expected)[:, 2:-2, 2:-2].max() < 0.03


def test_segment_keeps_dims_coords_and_range(tiny_model_path):
    ds = make_volume((12, 14, 64), seed=3)
    prob = segment(ds, model=tiny_model_path, tile_size=64)
    assert prob.name == "salt_probability"
    assert prob.dims == ("iline", "xline", "sample")
    for name in ("iline", "xline", "sample"):
        np.testing.assert_array_equal(prob[name].values, ds[name].values)
    values = prob.values
    assert np.isfinite(values).all() and values.min() >= 0 and values.max() <= 1
    assert prob.attrs["orientations"] == ["iline", "xline"]


def test_result_does_not_depend_on_chunking(tiny_model_path):
    ds = make_volume((18, 21, 72), seed=4)
    a = segment(ds.chunk({"iline": 18, "xline": 21}), model=tiny_model_path, tile_size=64).values
    b = segment(ds.chunk({"iline": 5, "xline": 4}), model=tiny_model_path, tile_size=64).values
    assert np.abs(a - b).max() <= 1e-6


def test_a_2d_line_is_one_section(tiny_model_path):
    ds = make_volume((1, 40, 64), seed=5).isel(iline=0).rename(xline="cdp")
    prob = segment(ds, model=tiny_model_path, tile_size=64)
    assert prob.dims == ("cdp", "sample")
    assert prob.shape == (40, 64)
    assert prob.attrs["orientations"] == ["line"]


def test_volume_smaller_than_a_tile_and_a_single_trace(tiny_model_path):
    ds = make_volume((1, 1, 40), seed=6)
    values = segment(ds, model=tiny_model_path, tile_size=128).values
    assert values.shape == (1, 1, 40) and np.isfinite(values).all()


def test_bad_options_are_refused(tiny_model_path):
    ds = make_volume((4, 4, 32), seed=0)
    with pytest.raises(DataError, match="overlap"):
        segment(ds, model=tiny_model_path, overlap=1.0)
    with pytest.raises(DataError, match="orientations"):
        segment(ds, model=tiny_model_path, orientations=("depth",))
    with pytest.raises(DataError, match="amplitude"):
        segment(xr.Dataset({"x": ds.amplitude}), model=tiny_model_path)


def test_volume_stats_do_not_depend_on_chunking():
    ds = make_volume((30, 30, 64), seed=7)
    a = volume_stats(ds.chunk({"iline": 30, "xline": 30}))
    b = volume_stats(ds.chunk({"iline": 7, "xline": 9}))
    assert a == b


def test_period_estimate_follows_the_wavelet():
    for period in (12.0, 25.0):
        stats = volume_stats(make_volume((24, 24, 256), seed=1, period=period))
        assert stats.period_px == pytest.approx(period, rel=0.2)


def test_a_zoomed_model_gets_sections_at_its_network_scale(tiny_model):
    zoomed = tiny_model.with_meta(input_scale=2.0)  # trained on tiles upsampled 2x
    near = volume_stats(make_volume((16, 16, 128), seed=2, period=tiny_model.period_px))
    far = volume_stats(make_volume((16, 16, 128), seed=2, period=tiny_model.period_px / 4))
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)  # the tiles' own scale is in distribution
        factor = resolve_scale("auto", near, zoomed)
    assert factor == pytest.approx(2 * tiny_model.period_px / near.period_px, rel=1e-3)
    with pytest.warns(UserWarning, match="--scale"):
        assert resolve_scale("auto", far, zoomed) > 4
    attrs = segment(make_volume((4, 6, 64), seed=2, period=tiny_model.period_px), model=zoomed, tile_size=64).attrs
    assert attrs["model_input_scale"] == 2.0 and attrs["scale"] > 1.5  # provenance says why sections were upsampled


def test_out_of_distribution_scale_warns_once(tiny_model):
    far = make_volume((16, 16, 128), seed=2, period=tiny_model.period_px / 4)
    near = make_volume((16, 16, 128), seed=2, period=tiny_model.period_px)
    with pytest.warns(UserWarning, match="--scale"):
        segment(far, model=tiny_model, tile_size=64)
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        segment(near, model=tiny_model, tile_size=64)


def test_chunk_invariance_holds_with_resampling(tiny_model_path):
    ds = make_volume((12, 14, 64), seed=8)
    a = segment(ds.chunk({"iline": 12, "xline": 14}), model=tiny_model_path, tile_size=64, scale=1.7)
    b = segment(ds.chunk({"iline": 5, "xline": 3}), model=tiny_model_path, tile_size=64, scale=1.7)
    assert a.attrs["scale"] == 1.7
    assert np.abs(a.values - b.values).max() <= 1e-6


def test_a_muted_top_gets_no_salt(tiny_model_path):
    # Real F3 crops start with 12 samples of exact zeros (water column, muted): featureless,
    # so the network calls them salt. Salt never sits above a trace's first reflection.
    ds = make_volume((6, 20, 96), seed=5)
    muted_top = ds["amplitude"].values.copy()
    muted_top[:, :, :20] = 0.0
    muted_top[:, :10, :30] = 0.0  # deeper on some traces
    ds["amplitude"].values = muted_top
    prob = segment(ds, model=tiny_model_path, tile_size=64).values
    assert np.all(prob[:, :, :20] == 0) and np.all(prob[:, :10, :30] == 0)
    assert np.all(prob[:, 10:, 20:].max(axis=-1) > 0) and np.all(prob[:, :10, 30:].max(axis=-1) > 0)


@pytest.mark.parametrize(
    ("shape", "expected"),
    [((1, 40, 8), ("iline",)), ((40, 2, 8), ("xline",)), ((5, 5, 8), ("iline", "xline")), ((16, 20, 8), ("iline", "xline"))],
)
def test_sections_too_narrow_for_context_are_skipped(shape, expected):
    assert usable_orientations(shape, ("iline", "xline")) == expected
    assert usable_orientations(shape, ("xline",)) == ("xline",)  # an explicit single choice is kept


def test_a_volume_of_one_inline_is_segmented_along_it_only(tiny_model_path):
    ds = make_volume((2, 40, 64), seed=6)
    prob = segment(ds, model=tiny_model_path, tile_size=64)
    assert prob.attrs["orientations"] == ["iline"]
    alone = segment(ds, model=tiny_model_path, tile_size=64, orientations=("iline",))
    np.testing.assert_array_equal(prob.values, alone.values)


def test_large_tiles_go_fewer_per_batch():
    # --batch-size counts 256 x 256 tiles, so 512 x 512 tiles go 4 at a time instead of 16.
    sizes = []

    class Recorder(IdentityModel):
        def predict_tiles(self, x, *, batch_size=16):
            sizes.append((len(x), batch_size))
            return super().predict_tiles(x, batch_size=batch_size)

    sections = np.random.default_rng(3).normal(size=(10, 512, 512)).astype(np.float32)
    segment_sections(sections, model=Recorder(), stats=STATS, tile_size=512, batch_size=16)
    assert sizes == [(4, 4), (4, 4), (2, 4)]
    sizes.clear()
    segment_sections(sections[:, :128, :128], model=Recorder(), stats=STATS, tile_size=64, batch_size=16)
    assert max(n for n, _ in sizes) == 16
