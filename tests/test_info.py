"""Tests for saltvol.volume_info: counts against segyio, plain JSON types, Zarr stores and provenance."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import segyio
import xarray as xr

from saltvol.errors import GeometryError, InputError
from saltvol.io.segy_write import write_segy
from saltvol.synth import make_volume
from saltvol.volume_info import format_info, info
from tests.conftest import SEGY_DIR as SHARED

REAL = sorted(SHARED.glob("*.sgy")) if SHARED.is_dir() else []
#: Files segyio cannot open with its default strict geometry: the irregular one and the 2D line.
IRREGULAR = "segysak_f3-withdead.sgy"
LINE2D = "segysak_volve10r12-full-z-il10117sub.sgy"


def check_plain_json(value) -> None:
    """Only dict/list/str/int/float/bool/None, no numpy types, no NaN."""
    if isinstance(value, dict):
        for k, v in value.items():
            assert type(k) is str
            check_plain_json(v)
    elif isinstance(value, list):
        for v in value:
            check_plain_json(v)
    else:
        assert value is None or type(value) in (str, int, float, bool), (value, type(value))
    json.dumps(value, allow_nan=False)


@pytest.mark.skipif(not REAL, reason="shared SEG-Y data not available")
@pytest.mark.parametrize("path", REAL, ids=[p.name for p in REAL])
def test_shared_files_agree_with_segyio(path: Path):
    d = info(path)
    check_plain_json(d)
    assert d["format"] == "segy" and d["file_size"] == path.stat().st_size
    assert d["duplicate_traces"] == 0
    with segyio.open(path, ignore_geometry=True) as f:
        n_traces, samples, fmt = f.tracecount, f.samples, int(f.bin[segyio.BinField.Format])
        il, xl, cdp = f.attributes(189)[:], f.attributes(193)[:], f.attributes(21)[:]
    assert d["samples"]["count"] == len(samples)
    assert d["samples"]["first"] == float(samples[0]) and d["samples"]["interval"] == float(samples[1] - samples[0])
    assert d["sample_format"]["code"] == fmt and type(d["sample_format"]["code"]) is int
    assert d["live_traces"] == n_traces == d["n_traces_in_file"]
    if path.name == LINE2D:
        assert d["kind"] == "2d"
        assert d["cdp"]["count"] == len(np.unique(cdp)) and d["cdp"]["min"] == cdp.min()
        assert d["byte_locations"] == {"iline": 189, "xline": 21, "autodetected": True}
        return
    assert d["kind"] == "3d"
    if path.name == IRREGULAR:
        ilines, xlines = np.unique(il), np.unique(xl)
    else:
        with segyio.open(path) as f:  # structured: segyio's own geometry
            ilines, xlines = f.ilines, f.xlines
            assert d["sorting"] == ("iline" if f.sorting == segyio.TraceSortingFormat.INLINE_SORTING else "xline")
    for key, lines in (("iline", ilines), ("xline", xlines)):
        r = d[key]
        assert (r["min"], r["max"], r["count"]) == (int(lines.min()), int(lines.max()), len(lines))
        assert r["step"] == int(np.gcd.reduce(np.diff(lines))) and r["missing"] == 0
    assert d["dead_traces"] == len(ilines) * len(xlines) - n_traces
    assert d["chunks"]["sample"] == len(samples)
    assert d["chunks"]["iline"] == min(64, len(ilines)) and d["chunks"]["xline"] == min(64, len(xlines))
    text = format_info(d)
    assert f"{len(ilines)} lines" in text and f"{n_traces} live" in text


@pytest.mark.skipif(not REAL, reason="shared SEG-Y data not available")
def test_irregular_file_reports_dead_traces_and_coordinates():
    d = info(SHARED / IRREGULAR)
    assert (d["traces"], d["live_traces"], d["dead_traces"]) == (414, 239, 175)
    c = d["coordinates"]
    assert 620000 < c["cdp_x"]["min"] < c["cdp_x"]["max"] < 621000
    assert "175 dead" in format_info(d)


@pytest.fixture(scope="module")
def synth(tmp_path_factory) -> tuple[xr.Dataset, Path]:
    ds = make_volume((10, 8, 32), seed=2, period=8.0)
    ds = ds.sel(iline=ds.iline[ds.iline != 1004])  # a missing inline: step 1, 1 missing
    return ds, write_segy(ds, tmp_path_factory.mktemp("info") / "synth_depth.sgy", iline=9, xline=21)


def test_given_byte_locations_gaps_and_depth_unit(synth):
    ds, path = synth
    d = info(path, iline=9, xline=21)
    check_plain_json(d)
    assert d["byte_locations"] == {"iline": 9, "xline": 21, "autodetected": False}
    assert d["iline"] == {"min": 1000, "max": 1009, "count": 9, "step": 1, "missing": 1}
    assert d["samples"]["unit"] == "m"  # the file name says depth
    assert info(path)["byte_locations"]["autodetected"] is True
    assert "1 missing" in format_info(d)


def test_zarr_cube_with_provenance(tmp_path, synth):
    ds, _ = synth
    live = np.ones((ds.sizes["iline"], ds.sizes["xline"]), bool)
    live[0, :3] = False
    cube = xr.Dataset(
        {
            "salt_probability": (ds.amplitude.dims, ds.salt.values.astype(np.float32)),
            "live": (("iline", "xline"), live),
        },
        coords={k: v.variable for k, v in ds.coords.items()},
        attrs={"model_name": "tiny", "tile_size": np.int64(64), "model_val_score": float("nan"), "orientations": ["iline", "xline"]},
    )
    store = tmp_path / "salt.zarr"
    cube.chunk({"iline": 4, "xline": 8}).to_zarr(store, consolidated=False)
    d = info(store)
    check_plain_json(d)
    assert d["format"] == "zarr" and d["content"] == "salt_probability" and d["kind"] == "3d"
    assert d["dead_traces"] == 3 and d["live_traces"] == live.size - 3
    assert d["store_chunks"] == {"iline": 4, "xline": 8, "sample": 32}
    assert d["samples"] == {"count": 32, "interval": 4.0, "first": 0.0, "last": 124.0, "unit": "ms"}
    assert d["provenance"] == {"model_name": "tiny", "tile_size": 64, "model_val_score": None, "orientations": ["iline", "xline"]}
    assert d["file_size"] > 0
    text = format_info(d)
    assert "salt-probability cube" in text and "model_name" in text and "tiny" in text


def test_errors(tmp_path, synth):
    with pytest.raises(InputError, match="does not exist"):
        info(tmp_path / "nope.sgy")
    with pytest.raises(InputError, match="not a Zarr store"):
        info(tmp_path)
    store = tmp_path / "other.zarr"
    xr.Dataset({"x": ("a", np.arange(3))}).to_zarr(store, consolidated=False)
    with pytest.raises(InputError, match="neither"):
        info(store)


def test_duplicates_raise(tmp_path):
    ds = make_volume((3, 4, 16), seed=0, period=6.0)
    path = write_segy(ds, tmp_path / "dup.sgy")
    with segyio.open(path, "r+", ignore_geometry=True) as f:
        f.header[1] = {segyio.TraceField.INLINE_3D: int(f.header[0][segyio.TraceField.INLINE_3D]),
                       segyio.TraceField.CROSSLINE_3D: int(f.header[0][segyio.TraceField.CROSSLINE_3D])}  # fmt: skip
    with pytest.raises(GeometryError, match="more than one trace"):  # DuplicateTraceError or ByteLocationError
        info(path, iline=189, xline=193)
