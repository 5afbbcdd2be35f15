"""Tests for saltvol.salt_bodies on a synthetic volume whose truth mask is the probability cube."""

from __future__ import annotations

import json

import numpy as np
import pytest
import xarray as xr

from saltvol.errors import DataError, InputError
from saltvol.salt_bodies import bodies
from saltvol.synth import make_volume


@pytest.fixture(scope="module")
def truth() -> xr.Dataset:
    ds = make_volume((24, 20, 64), seed=1, period=10.0)
    ds["salt_probability"] = ds["salt"].astype(np.float32)
    return ds


def test_one_dominant_body_matches_the_truth(truth):
    before = dict(truth["salt_probability"].attrs)
    found = bodies(truth)
    json.dumps(found, allow_nan=False)
    assert truth["salt_probability"].attrs == before  # the caller's Dataset is left alone
    mask = truth["salt"].values
    assert len(found) == 1
    body = found[0]
    assert body["id"] == 1 and body["voxels"] == int(mask.sum())
    assert body["mean_probability"] == 1.0
    assert body["volume_m3"] is None  # time data
    idx = np.nonzero(mask)
    for axis, dim in enumerate(("iline", "xline", "sample")):
        coord = truth[dim].values
        assert body["bbox"][dim] == [coord[idx[axis].min()], coord[idx[axis].max()]]
        assert body["centroid"][dim] == pytest.approx(np.mean(coord[idx[axis]]))


def test_lazy_transposed_cube_gives_the_same(truth, monkeypatch):
    from saltvol import salt_bodies as module

    monkeypatch.setattr(module, "_BLOCK_BYTES", 1)  # one inline per block
    lazy = truth.chunk({"iline": 5}).transpose("sample", "iline", "xline")
    assert bodies(lazy) == bodies(truth)


def test_small_bodies_connectivity_and_sorting(truth):
    prob = truth["salt_probability"].copy()
    prob[:] = 0.0
    prob[0:3, 0:3, 0:3] = 0.9  # 27 voxels
    prob[10:12, 10:12, 10:12] = 0.8  # 8 voxels
    prob[12, 12, 12] = 0.7  # touches the 8-voxel cube by a corner only
    prob[20, 15, 40] = 0.5  # not above a threshold of 0.5
    found = bodies(prob, min_voxels=1)
    assert [b["voxels"] for b in found] == [27, 9]
    assert found[0]["mean_probability"] == pytest.approx(0.9)
    assert found[1]["bbox"] == {"iline": [1010, 1012], "xline": [2010, 2012], "sample": [40.0, 48.0]}
    assert [b["voxels"] for b in bodies(prob, min_voxels=1, connectivity=6)] == [27, 8, 1]
    assert [b["voxels"] for b in bodies(prob, min_voxels=10)] == [27]
    assert bodies(prob, threshold=0.95) == []


def test_volume_in_depth_from_cdp_spacing(truth):
    prob = truth["salt_probability"].copy()
    prob["sample"] = prob["sample"].assign_attrs(units="m")
    body = bodies(prob)[0]
    spacing_il = np.hypot(*(np.diff(truth[c].values, axis=0)[0, 0] for c in ("cdp_x", "cdp_y")))
    spacing_xl = np.hypot(*(np.diff(truth[c].values, axis=1)[0, 0] for c in ("cdp_x", "cdp_y")))
    assert spacing_il == pytest.approx(25.0) and spacing_xl == pytest.approx(25.0)
    assert body["volume_m3"] == pytest.approx(body["voxels"] * 25.0 * 25.0 * 4.0)


def test_2d_line(truth):
    line = truth.isel(iline=12).rename(xline="cdp").drop_vars("iline")
    found = bodies(line, min_voxels=1)
    assert found[0]["voxels"] == int(line["salt"].sum())
    assert set(found[0]["bbox"]) == {"cdp", "sample"} and found[0]["volume_m3"] is None


def test_errors(truth):
    with pytest.raises(InputError, match="no variable"):
        bodies(truth, variable="nope")
    with pytest.raises(DataError, match="dims"):
        bodies(truth["salt_probability"].isel(sample=0))
    with pytest.raises(DataError, match="min_voxels"):
        bodies(truth, min_voxels=0)
    with pytest.raises(DataError, match="connectivity"):
        bodies(truth, connectivity=8)
