"""Tests for saltvol.plotting: PNG size, not blank, section choice, inputs and errors."""

from __future__ import annotations

from pathlib import Path

import dask
import numpy as np
import pytest
import xarray as xr
from matplotlib.image import imread

from saltvol.errors import DataError, InputError, OutputExistsError
from saltvol.io.segy_write import write_segy
from saltvol.plotting import preview
from saltvol.synth import make_volume


@pytest.fixture(autouse=True)
def _sync_scheduler():
    with dask.config.set(scheduler="synchronous"):
        yield


@pytest.fixture(scope="module")
def volume() -> xr.Dataset:
    ds = make_volume((20, 16, 48), seed=1, period=8.0)
    ds["salt_probability"] = ds["salt"].astype(np.float32)
    return ds


def colours(path: Path) -> int:
    img = imread(path)
    return len(np.unique((img[..., :3] * 255).astype(np.uint8).reshape(-1, 3), axis=0))


def size(path: Path) -> tuple[int, int]:
    h, w = imread(path).shape[:2]
    return w, h


@pytest.mark.parametrize(
    "section",
    [{}, {"iline": 1003}, {"xline": 2010}, {"sample": 101.0}, {"xline": 2010, "threshold": 0.5}],
    ids=["default", "iline", "xline", "time-slice", "threshold"],
)
def test_sections_give_a_png_of_the_expected_size_that_is_not_blank(volume, tmp_path, section):
    out = preview(volume, tmp_path / "p.png", dpi=40, **section)
    assert out == (tmp_path / "p.png").absolute()
    assert size(out) == (400, 240)
    assert colours(out) > 50


def test_default_size_and_cube_alone(volume, tmp_path):
    out = preview(volume[["salt_probability"]], tmp_path / "p.png")
    assert size(out) == (1100, 660)  # 10 x 6 inches at 110 dpi
    assert colours(out) > 5


def test_paths_cube_plus_seismic_and_2d_line(volume, tmp_path):
    seismic = write_segy(volume, tmp_path / "v.sgy")
    store = tmp_path / "salt.zarr"
    volume[["salt_probability"]].to_zarr(store, consolidated=False)
    assert colours(preview(store, tmp_path / "a.png", seismic=seismic, xline=2003, dpi=40)) > 50
    assert colours(preview(seismic, tmp_path / "b.png", dpi=40)) > 50  # a volume alone
    line = volume.isel(iline=4).rename(xline="cdp").drop_vars("iline")
    assert size(preview(line, tmp_path / "c.png", dpi=40)) == (400, 240)


def test_errors(volume, tmp_path):
    with pytest.raises(DataError, match="at most one"):
        preview(volume, tmp_path / "x.png", iline=1003, xline=2003)
    with pytest.raises(DataError, match="not in the data"):
        preview(volume, tmp_path / "x.png", iline=5)
    with pytest.raises(DataError, match="outside"):
        preview(volume, tmp_path / "x.png", sample=5000.0)
    with pytest.raises(InputError, match="nothing to draw"):
        preview(volume[["salt"]], tmp_path / "x.png")
    line = volume.isel(iline=4).rename(xline="cdp").drop_vars("iline")
    with pytest.raises(DataError, match="2D line"):
        preview(line, tmp_path / "x.png", sample=20.0)
    with pytest.raises(DataError, match="seismic"):
        preview(volume[["salt_probability"]], tmp_path / "x.png", seismic=volume.isel(iline=slice(0, 3)))
    (tmp_path / "x.png").write_bytes(b"keep")
    with pytest.raises(OutputExistsError, match="--overwrite"):
        preview(volume, tmp_path / "x.png")
    assert (tmp_path / "x.png").read_bytes() == b"keep"
    preview(volume, tmp_path / "x.png", overwrite=True, dpi=20)
    assert not list(tmp_path.glob(".*partial"))
