from __future__ import annotations

import logging

import numpy as np
import pytest
import xarray as xr

from saltvol.errors import InputError, OutputExistsError, OutputPathError
from saltvol.inference import segment
from saltvol.pipeline import segment_to_zarr
from saltvol.synth import make_volume


@pytest.fixture(scope="module")
def volume() -> xr.Dataset:
    ds = make_volume((16, 18, 64), seed=11)
    live = np.ones((16, 18), bool)
    live[3, 4] = False
    ds["live"] = xr.DataArray(live, dims=("iline", "xline"))
    return ds


@pytest.fixture(scope="module")
def reference(volume, tiny_model_path, tmp_path_factory) -> xr.Dataset:
    out = tmp_path_factory.mktemp("ref") / "salt.zarr"
    segment_to_zarr(volume, out, model=tiny_model_path, tile_size=64, device="cpu")
    return xr.open_zarr(out).load()


def test_cube_reopens_with_coords_attrs_and_values_in_range(reference, volume, tiny_model_path):
    prob = reference.salt_probability
    assert prob.dims == ("iline", "xline", "sample")
    for name in ("iline", "xline", "sample"):
        np.testing.assert_array_equal(reference[name].values, volume[name].values)
    np.testing.assert_allclose(reference.cdp_x.values, volume.cdp_x.values)
    assert 0 <= float(prob.min()) and float(prob.max()) <= 1
    assert float(np.abs(prob.values[3, 4]).max()) == 0.0  # a dead trace carries no salt
    attrs = reference.attrs
    assert attrs["tile_size"] == 64 and attrs["stride"] == 32
    assert attrs["batch_size"] == 4 and attrs["device"] == "cpu"  # no batch size given: the CPU default
    assert attrs["scale"] > 0 and "volume_period_px" in attrs and "model_period_px" in attrs
    assert attrs["model_input_scale"] == 1.0  # a model trained on unzoomed tiles
    assert attrs["orientations"] == ["iline", "xline"]
    assert attrs["tiles_inferred"] > 0 and len(attrs["model_sha256"]) == 64
    assert "saltvol_run" not in attrs
    assert not any(name.startswith("_p_") for name in reference.variables)


def test_cube_equals_the_lazy_api(reference, volume, tiny_model_path):
    lazy = segment(volume, model=tiny_model_path, tile_size=64).values
    lazy[3, 4] = 0
    assert np.abs(reference.salt_probability.values - lazy).max() <= 1e-6


def test_existing_output_is_refused_and_left_untouched(tmp_path, volume, tiny_model_path):
    out = tmp_path / "salt.zarr"
    out.mkdir()
    (out / "zarr.json").write_text("{}")
    with pytest.raises(OutputExistsError, match="--overwrite"):
        segment_to_zarr(volume, out, model=tiny_model_path, tile_size=64)
    assert (out / "zarr.json").read_text() == "{}"


def test_output_that_is_a_regular_file_is_refused(tmp_path, volume, tiny_model_path):
    out = tmp_path / "salt.zarr"
    out.write_text("keep me")
    with pytest.raises(OutputPathError, match="regular file"):
        segment_to_zarr(volume, out, model=tiny_model_path, tile_size=64, overwrite=True)
    assert out.read_text() == "keep me"


def test_overwrite_replaces_only_when_complete(tmp_path, volume, tiny_model_path, reference):
    out = tmp_path / "salt.zarr"
    segment_to_zarr(volume.isel(sample=slice(0, 32)), out, model=tiny_model_path, tile_size=64)
    segment_to_zarr(volume, out, model=tiny_model_path, tile_size=64, overwrite=True)
    again = xr.open_zarr(out).salt_probability.values
    assert np.abs(again - reference.salt_probability.values).max() <= 1e-6
    assert not list(tmp_path.glob(".*"))


class Stop(Exception):
    pass


def test_interrupted_run_resumes_to_the_same_cube(tmp_path, volume, tiny_model_path, reference, caplog):
    out = tmp_path / "salt.zarr"

    def stop_after_three(done, total, stage):
        if done >= 3:
            raise Stop

    with pytest.raises(Stop):
        segment_to_zarr(volume, out, model=tiny_model_path, tile_size=64, progress=stop_after_three)
    assert not out.exists() and (tmp_path / ".salt.zarr.partial").is_dir()
    with pytest.raises(OutputExistsError, match="--resume"):
        segment_to_zarr(volume, out, model=tiny_model_path, tile_size=64)
    with pytest.raises(InputError, match="other settings"):
        segment_to_zarr(volume, out, model=tiny_model_path, tile_size=128, resume=True)
    seen = []
    with caplog.at_level(logging.INFO, logger="saltvol.pipeline"):
        segment_to_zarr(volume, out, model=tiny_model_path, tile_size=64, resume=True, progress=lambda d, t, s: seen.append(d))
    assert "already written are skipped" in caplog.text
    assert seen and seen[0] > 1  # counting starts after the skipped blocks
    cube = xr.open_zarr(out).salt_probability.values
    assert np.abs(cube - reference.salt_probability.values).max() <= 1e-6
    assert not (tmp_path / ".salt.zarr.partial").exists()


def test_uncertainty_writes_orientation_disagreement(tmp_path, volume, tiny_model_path):
    out = tmp_path / "salt.zarr"
    segment_to_zarr(volume, out, model=tiny_model_path, tile_size=64, uncertainty=True)
    ds = xr.open_zarr(out)
    d = ds.orientation_disagreement.values
    assert d.shape == volume.amplitude.shape and 0 <= d.min() and d.max() <= 1
    assert d.max() > 0 and float(np.abs(d[3, 4]).max()) == 0.0  # the passes disagree somewhere; a dead trace is 0


def test_missing_output_folder_is_refused(tmp_path, volume, tiny_model_path):
    with pytest.raises(OutputPathError, match="does not exist"):
        segment_to_zarr(volume, tmp_path / "nope" / "salt.zarr", model=tiny_model_path)


def test_a_two_inline_volume_runs_the_inline_pass_only(tmp_path, tiny_model_path):
    ds = make_volume((2, 24, 64), seed=12)
    out = segment_to_zarr(ds, tmp_path / "two.zarr", model=tiny_model_path, tile_size=64)
    cube = xr.open_zarr(out)
    assert cube.attrs["orientations"] == ["iline"]
    lazy = segment(ds, model=tiny_model_path, tile_size=64)
    np.testing.assert_allclose(cube.salt_probability.values, lazy.values, atol=1e-6)


def test_damaged_input_chunk_midway_fails_as_bad_input_and_leaves_nothing(tmp_path, tiny_model_path):
    """A Zarr input chunk that cannot be decoded, read only after the work store exists: InputError, no .partial."""
    from saltvol.inference import volume_stats
    from saltvol.io.zarr import open_volume

    store = tmp_path / "survey.zarr"
    make_volume((64, 24, 32), seed=3).to_zarr(store, zarr_format=3, consolidated=False, encoding={"amplitude": {"chunks": (4, 24, 32)}})
    # The statistics read windows of 16 inlines at 0, 24 and 48: inlines 16-19 (chunk 4) only a block reads.
    chunk = store / "amplitude" / "c" / "4" / "0" / "0"
    chunk.write_bytes(np.random.default_rng(0).bytes(chunk.stat().st_size))
    volume_stats(open_volume(store))
    out = tmp_path / "salt.zarr"
    with pytest.raises(InputError, match="damaged"):
        segment_to_zarr(store, out, model=tiny_model_path, tile_size=64, device="cpu")
    assert not out.exists() and not (tmp_path / ".salt.zarr.partial").exists()
