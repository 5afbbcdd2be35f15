"""Tests for saltvol.io.segy_export: headers byte-identical to the source, samples from the cube."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import dask
import numpy as np
import pytest
import segyio
import xarray as xr

from saltvol.errors import DataError, InputError, OutputExistsError, OutputPathError
from saltvol.io.segy import open_segy
from saltvol.io.segy_export import export_segy
from saltvol.io.segy_write import write_segy
from saltvol.synth import make_volume

if TYPE_CHECKING:
    from .conftest import Synth

from tests.conftest import SEGY_DIR as SHARED

WITHDEAD = SHARED / "segysak_f3-withdead.sgy"
INT16 = SHARED / "segyio_f3.sgy"
LINE2D = SHARED / "segysak_volve10r12-full-z-il10117sub.sgy"
needs_shared = pytest.mark.skipif(
    not all(p.is_file() for p in (WITHDEAD, INT16, LINE2D)), reason="shared SEG-Y data not available"
)


@pytest.fixture(autouse=True)
def _sync_scheduler():
    with dask.config.set(scheduler="synchronous"):
        yield


@pytest.fixture(scope="module")
def synth_segy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """make_volume written as IBM floats (format 1): the export must switch the format to 5."""
    ds = make_volume((9, 7, 40), seed=3, period=8.0)
    return write_segy(ds, tmp_path_factory.mktemp("export") / "synth.sgy", sample_format=1)


def random_cube(source: Path, *, seed: int = 0, chunks: dict | None = None) -> xr.Dataset:
    """A cube with the source's coords and random probabilities (0 at dead cells)."""
    ds = open_segy(source)
    rng = np.random.default_rng(seed)
    values = rng.random(ds.amplitude.shape, dtype=np.float32)
    values[~ds.live.values] = 0
    attrs = {"iline_byte": ds.attrs["iline_byte"], "xline_byte": ds.attrs["xline_byte"]}
    cube = xr.Dataset(
        {"salt_probability": (ds.amplitude.dims, values, attrs)},
        coords={k: v.variable for k, v in ds.coords.items()},
        attrs=attrs,
    )
    return cube.chunk(chunks) if chunks else cube


def trace_layout(path: Path) -> tuple[int, int, int]:
    """(first trace offset, trace size, trace count) from the binary header and the file size."""
    raw = path.read_bytes()[:3600]
    ns = int.from_bytes(raw[3220:3222], "big")
    fmt = int.from_bytes(raw[3224:3226], "big")
    n_ext = int.from_bytes(raw[3504:3506], "big", signed=True)
    first = 3600 + 3200 * n_ext
    size = 240 + ns * {1: 4, 2: 4, 3: 2, 5: 4, 8: 1}[fmt]
    n, rest = divmod(path.stat().st_size - first, size)
    assert rest == 0
    return first, size, n


def raw_trace_headers(path: Path) -> np.ndarray:
    first, size, n = trace_layout(path)
    data = np.fromfile(path, dtype=np.uint8)[first:].reshape(n, size)
    return data[:, :240]


def check_export(source: Path, out: Path, cube: xr.DataArray, *, threshold: float | None = None) -> None:
    """Headers identical to the source (bar the format code), samples equal to the cube at each trace."""
    src_raw, out_raw = source.read_bytes(), out.read_bytes()
    first, _, _ = trace_layout(source)
    head_diff = np.flatnonzero(np.frombuffer(src_raw[:first], np.uint8) != np.frombuffer(out_raw[:first], np.uint8))
    assert set(head_diff) <= {3224, 3225}
    assert int.from_bytes(out_raw[3224:3226], "big") == 5
    np.testing.assert_array_equal(raw_trace_headers(source), raw_trace_headers(out))

    with segyio.open(source, ignore_geometry=True) as a, segyio.open(out, ignore_geometry=True) as b:
        assert b.tracecount == a.tracecount
        assert bytes(b.text[0]) == bytes(a.text[0])
        bin_a, bin_b = dict(a.bin), dict(b.bin)
        assert bin_b.pop(segyio.BinField.Format) == 5
        bin_a.pop(segyio.BinField.Format)
        assert bin_a == bin_b
        for i in range(a.tracecount):
            assert a.header[i] == b.header[i]
        np.testing.assert_array_equal(b.samples, a.samples)
        samples = b.trace.raw[:]
        assert samples.dtype == np.float32
        iline_byte = int(cube.attrs.get("iline_byte", 189))
        xline_byte = int(cube.attrs.get("xline_byte", 193))
        if "cdp" in cube.dims:
            keys = {"cdp": a.attributes(xline_byte)[:]}
        else:
            keys = {"iline": a.attributes(iline_byte)[:], "xline": a.attributes(xline_byte)[:]}
    expected = cube.sel({k: xr.DataArray(v, dims="trace") for k, v in keys.items()}).transpose("trace", "sample").values
    if threshold is not None:
        expected = (expected > threshold).astype(np.float32)
        assert set(np.unique(samples)) <= {0.0, 1.0}
    np.testing.assert_array_equal(samples, expected)


def test_synthetic_round_trip_ibm_source(synth_segy, tmp_path):
    cube = random_cube(synth_segy, chunks={"iline": 4})
    seen = []
    out = export_segy(cube, synth_segy, tmp_path / "salt.sgy", progress=lambda d, t: seen.append((d, t)))
    assert out == (tmp_path / "salt.sgy").absolute() and out.stat().st_size == synth_segy.stat().st_size
    check_export(synth_segy, out, cube.salt_probability)
    assert seen[-1] == (63, 63)
    assert not list(tmp_path.glob(".*partial"))


def test_threshold_writes_zeros_and_ones(synth_segy, tmp_path):
    cube = random_cube(synth_segy)
    out = export_segy(cube.salt_probability, synth_segy, tmp_path / "mask.sgy", threshold=0.5)
    check_export(synth_segy, out, cube.salt_probability, threshold=0.5)


def test_transposed_cube_and_small_blocks(synth_segy, tmp_path, monkeypatch):
    from saltvol.io import segy_export

    monkeypatch.setattr(segy_export, "_BLOCK_BYTES", 1)
    cube = random_cube(synth_segy, seed=4)
    out = export_segy(cube.transpose("sample", "xline", "iline"), synth_segy, tmp_path / "t.sgy")
    check_export(synth_segy, out, cube.salt_probability)


@pytest.mark.parametrize("name", ["xline_sorted", "unsorted", "dead", "bytes_9_21", "line2d"])
def test_any_sorting_byte_locations_and_2d(synth: dict[str, Synth], name, tmp_path):
    source = synth[name].path
    cube = random_cube(source, seed=1)
    check_export(source, export_segy(cube, source, tmp_path / "x.sgy"), cube.salt_probability)


def test_existing_output_is_refused_and_untouched(synth_segy, tmp_path):
    out = tmp_path / "salt.sgy"
    out.write_bytes(b"keep")
    cube = random_cube(synth_segy)
    with pytest.raises(OutputExistsError, match="--overwrite"):
        export_segy(cube, synth_segy, out)
    assert out.read_bytes() == b"keep"
    export_segy(cube, synth_segy, out, overwrite=True)
    check_export(synth_segy, out, cube.salt_probability)


def test_bad_targets_and_mismatched_cubes(synth_segy, tmp_path):
    cube = random_cube(synth_segy)
    with pytest.raises(OutputPathError, match="source"):
        export_segy(cube, synth_segy, synth_segy, overwrite=True)
    with pytest.raises(OutputPathError, match="does not exist"):
        export_segy(cube, synth_segy, tmp_path / "missing" / "x.sgy")
    with pytest.raises(DataError, match="iline numbers"):
        export_segy(cube.assign_coords(iline=cube.iline + 1), synth_segy, tmp_path / "a.sgy")
    with pytest.raises(DataError, match="samples per trace"):
        export_segy(cube.isel(sample=slice(0, 10)), synth_segy, tmp_path / "b.sgy")
    with pytest.raises(DataError, match="samples"):
        export_segy(cube.assign_coords(sample=cube.sample + 4), synth_segy, tmp_path / "c.sgy")
    with pytest.raises(InputError, match="no variable"):
        export_segy(cube, synth_segy, tmp_path / "d.sgy", variable="nope")
    with pytest.raises(DataError, match="2D"):
        export_segy(cube.isel(iline=0).rename(xline="cdp").drop_vars("iline"), synth_segy, tmp_path / "e.sgy")
    with pytest.raises(DataError, match="threshold"):
        export_segy(cube, synth_segy, tmp_path / "f.sgy", threshold=float("nan"))
    assert not list(tmp_path.iterdir())


@needs_shared
@pytest.mark.parametrize("source", [WITHDEAD, INT16, LINE2D], ids=["irregular", "int16", "line2d"])
def test_shared_files_round_trip(source, tmp_path):
    cube = random_cube(source, seed=2)
    out = export_segy(cube, source, tmp_path / "salt.sgy")
    check_export(source, out, cube.salt_probability)
    first, size, n = trace_layout(out)
    assert size == 240 + 4 * cube.sizes["sample"]
    with segyio.open(source, ignore_geometry=True) as f:
        assert n == f.tracecount  # the irregular file: only its live traces, none added


@needs_shared
def test_segment_to_zarr_cube_exports(tmp_path, tiny_model_path):
    from saltvol.pipeline import segment_to_zarr

    store = segment_to_zarr(INT16, tmp_path / "salt.zarr", model=tiny_model_path, tile_size=64, scale=1.0)
    out = export_segy(store, INT16, tmp_path / "salt.sgy")
    cube = xr.open_zarr(store)
    check_export(INT16, out, cube.salt_probability.load())
