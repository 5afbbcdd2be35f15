"""Tests for saltvol.salt_surfaces: top/base of salt against the synthetic truth, horizon files."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

from saltvol.errors import DataError, InputError, OutputExistsError
from saltvol.salt_surfaces import surfaces, write_horizons
from saltvol.synth import make_volume


@pytest.fixture(scope="module")
def truth() -> xr.Dataset:
    ds = make_volume((24, 20, 64), seed=1, period=10.0)
    ds["salt_probability"] = ds["salt"].astype(np.float32)
    return ds


def first_last(mask: np.ndarray, samples: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-trace first/last True sample by a plain loop, NaN where none."""
    top = np.full(mask.shape[:-1], np.nan)
    base = np.full(mask.shape[:-1], np.nan)
    for idx in np.ndindex(*mask.shape[:-1]):
        hits = np.flatnonzero(mask[idx])
        if hits.size:
            top[idx], base[idx] = samples[hits[0]], samples[hits[-1]]
    return top, base


def test_top_and_base_equal_the_truth(truth):
    s = surfaces(truth)
    top, base = first_last(truth["salt"].values, truth["sample"].values)
    assert s["top_of_salt"].dims == ("iline", "xline") and s["top_of_salt"].dtype == np.float64
    np.testing.assert_array_equal(s["top_of_salt"].values, top)
    np.testing.assert_array_equal(s["base_of_salt"].values, base)
    assert np.isnan(top).any() and np.isfinite(top).any()  # the test covers both cases
    assert s["top_of_salt"].attrs["units"] == "ms" and s.attrs["threshold"] == 0.5
    np.testing.assert_array_equal(s["cdp_x"].values, truth["cdp_x"].values)


def test_lazy_and_transposed_cube_gives_the_same(truth):
    lazy = truth.chunk({"iline": 7, "sample": 16}).transpose("sample", "xline", "iline")
    s = surfaces(lazy)
    assert s["top_of_salt"].chunks is not None
    xr.testing.assert_identical(s.compute(), surfaces(truth))


def test_threshold_and_2d_line(truth):
    prob = truth["salt_probability"] * 0.6
    assert np.isnan(surfaces(prob, threshold=0.6)["top_of_salt"].values).all()
    line = truth.isel(iline=12).rename(xline="cdp").drop_vars("iline")
    s = surfaces(line)
    top, _ = first_last(line["salt"].values, line["sample"].values)
    assert s["top_of_salt"].dims == ("cdp",)
    np.testing.assert_array_equal(s["top_of_salt"].values, top)


def test_horizon_files_parse_back_and_zarr(truth, tmp_path):
    s = surfaces(truth)
    paths = write_horizons(s, tmp_path / "hz")
    assert [p.name for p in paths] == ["top_of_salt.txt", "base_of_salt.txt"]
    for path, name in zip(paths, ("top_of_salt", "base_of_salt")):
        lines = path.read_text().splitlines()
        assert lines[0].startswith("#") and "iline xline" in lines[0]
        rows = np.loadtxt(path, comments="#", ndmin=2)
        values = s[name].values
        assert len(rows) == np.isfinite(values).sum()
        got = s[name].sel(iline=xr.DataArray(rows[:, 0].astype(int)), xline=xr.DataArray(rows[:, 1].astype(int)))
        np.testing.assert_allclose(rows[:, 2], got.values)
        assert all(len(line.split()) == 3 for line in lines[1:])
    with pytest.raises(OutputExistsError, match="--overwrite"):
        write_horizons(s, tmp_path / "hz")
    write_horizons(s, tmp_path / "hz", overwrite=True)
    s.to_zarr(tmp_path / "surfaces.zarr", consolidated=False)
    xr.testing.assert_identical(xr.open_zarr(tmp_path / "surfaces.zarr", consolidated=False).load(), s)


def test_2d_horizon_file(truth, tmp_path):
    line = truth.isel(iline=12).rename(xline="cdp").drop_vars("iline")
    (path, _) = write_horizons(surfaces(line), tmp_path)
    rows = np.loadtxt(path, comments="#", ndmin=2)
    assert rows.shape[1] == 2


def test_errors(truth, tmp_path):
    with pytest.raises(InputError, match="no variable"):
        surfaces(truth, variable="nope")
    with pytest.raises(DataError, match="threshold"):
        surfaces(truth, threshold=float("inf"))
    with pytest.raises(DataError, match="dims"):
        surfaces(truth["salt_probability"].isel(xline=0))
    with pytest.raises(InputError, match="dims"):
        write_horizons(truth[["salt"]], tmp_path)
