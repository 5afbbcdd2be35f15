"""Tests for saltvol.io.segy_write: read back with plain segyio."""

from __future__ import annotations

import dask.array as dsa
import numpy as np
import pytest
import segyio
import xarray as xr

from saltvol.errors import (
    ByteLocationError,
    DataError,
    OutputExistsError,
    OutputPathError,
)
from saltvol.io.segy_write import write_segy
from saltvol.synth import make_volume

TF = segyio.TraceField


@pytest.fixture(scope="module")
def volume() -> xr.Dataset:
    """A 5 x 6 x 30 volume, 2 ms sampling, first sample at 100 ms."""
    ds = make_volume((5, 6, 30), seed=2, dt=2.0, period=6.0)
    return ds.assign_coords(sample=ds["sample"] + 100.0)


def _line(ds: xr.Dataset) -> xr.Dataset:
    """The first inline of ``ds`` as a 2D line with CDP numbers 501...."""
    line = ds.isel(iline=0).drop_vars("iline").rename(xline="cdp")
    return line.assign_coords(cdp=np.arange(501, 501 + line.sizes["cdp"]))


@pytest.mark.parametrize("sample_format", [1, 5])
@pytest.mark.parametrize(("iline", "xline"), [(189, 193), (9, 21)])
def test_round_trip_3d(volume, tmp_path, sample_format, iline, xline):
    path = write_segy(
        volume, tmp_path / "v.sgy", iline=iline, xline=xline, sample_format=sample_format
    )
    assert path == tmp_path / "v.sgy"
    amp = volume["amplitude"].values
    with segyio.open(path, iline=iline, xline=xline) as f:
        np.testing.assert_array_equal(f.ilines, volume["iline"].values)
        np.testing.assert_array_equal(f.xlines, volume["xline"].values)
        np.testing.assert_allclose(f.samples, volume["sample"].values)
        assert f.sorting == segyio.TraceSortingFormat.INLINE_SORTING
        assert int(f.format) == sample_format
        cube = segyio.tools.cube(f)
        if sample_format == 5:
            np.testing.assert_array_equal(cube, amp)
        else:
            np.testing.assert_allclose(cube, amp, rtol=1e-6, atol=1e-6 * np.abs(amp).max())
        assert f.bin[segyio.BinField.Interval] == 2000
        assert f.bin[segyio.BinField.Samples] == 30
        assert f.bin[segyio.BinField.Format] == sample_format
        np.testing.assert_array_equal(f.attributes(TF.TRACE_SAMPLE_COUNT)[:], 30)
        np.testing.assert_array_equal(f.attributes(TF.TRACE_SAMPLE_INTERVAL)[:], 2000)
        np.testing.assert_array_equal(f.attributes(TF.DelayRecordingTime)[:], 100)
        np.testing.assert_array_equal(f.attributes(TF.SourceGroupScalar)[:], -100)
        x = f.attributes(TF.CDP_X)[:] / 100.0
        y = f.attributes(TF.CDP_Y)[:] / 100.0
    np.testing.assert_allclose(x, volume["cdp_x"].values.ravel(), atol=0.006)
    np.testing.assert_allclose(y, volume["cdp_y"].values.ravel(), atol=0.006)


def test_input_is_not_modified(volume, tmp_path):
    # segyio converts IBM and byte order in place; the writer must copy
    before = volume["amplitude"].values.copy()
    write_segy(volume, tmp_path / "v.sgy", sample_format=1)
    np.testing.assert_array_equal(volume["amplitude"].values, before)


def test_int16_with_scaling(volume, tmp_path):
    path = write_segy(volume, tmp_path / "v.sgy", sample_format=3)
    amp = volume["amplitude"].values
    peak = np.abs(amp).max()
    with segyio.open(path) as f:
        assert int(f.format) == 3
        cube = segyio.tools.cube(f)
        text = segyio.tools.wrap(f.text[0].decode("ascii", "replace"))
    assert cube.dtype == np.int16 and np.abs(cube).max() == 32767
    np.testing.assert_allclose(cube * (peak / 32767.0), amp, atol=peak / 32767.0)
    assert "AMPLITUDE = INTEGER SAMPLE /" in text


def test_dask_backed_array_is_streamed_identically(volume, tmp_path):
    lazy = volume.chunk({"iline": 2, "xline": 4})
    assert isinstance(lazy["amplitude"].data, dsa.Array)
    write_segy(volume, tmp_path / "eager.sgy")
    write_segy(lazy, tmp_path / "lazy.sgy")
    assert (tmp_path / "eager.sgy").read_bytes() == (tmp_path / "lazy.sgy").read_bytes()


def test_dataarray_in_any_dim_order(volume, tmp_path):
    write_segy(volume["amplitude"].transpose("xline", "sample", "iline"), tmp_path / "t.sgy")
    with segyio.open(tmp_path / "t.sgy") as f:
        np.testing.assert_array_equal(segyio.tools.cube(f), volume["amplitude"].values)


def test_refuses_existing_file_and_leaves_it_untouched(volume, tmp_path):
    path = tmp_path / "v.sgy"
    path.write_bytes(b"original")
    with pytest.raises(OutputExistsError, match="--overwrite"):
        write_segy(volume, path)
    assert path.read_bytes() == b"original"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["v.sgy"]
    write_segy(volume, path, overwrite=True)
    with segyio.open(path) as f:
        assert f.tracecount == 30


def test_failure_leaves_no_file(volume, tmp_path):
    def explode(block, block_info=None):
        if block_info[0]["chunk-location"][0] == 2:
            raise RuntimeError("disk on fire")
        return block

    lazy = volume["amplitude"].chunk({"iline": 1})
    lazy = lazy.copy(data=lazy.data.map_blocks(explode, dtype=np.float32))
    with pytest.raises(RuntimeError, match="disk on fire"):
        write_segy(lazy, tmp_path / "v.sgy")
    assert list(tmp_path.iterdir()) == []


def test_2d_line(volume, tmp_path):
    line = _line(volume)
    path = write_segy(line, tmp_path / "line.sgy", sample_format=1)
    with segyio.open(path, ignore_geometry=True) as f:
        assert f.tracecount == 6
        np.testing.assert_array_equal(f.attributes(TF.CDP)[:], np.arange(501, 507))
        np.testing.assert_array_equal(f.attributes(TF.INLINE_3D)[:], 0)
        np.testing.assert_array_equal(f.attributes(TF.CROSSLINE_3D)[:], 0)
        np.testing.assert_allclose(f.samples, volume["sample"].values)
        amp = line["amplitude"].values
        np.testing.assert_allclose(f.trace.raw[:], amp, rtol=1e-6, atol=1e-6 * np.abs(amp).max())
        np.testing.assert_allclose(
            f.attributes(TF.CDP_X)[:] / 100.0, line["cdp_x"].values, atol=0.006
        )


@pytest.mark.parametrize(
    ("iline", "xline"),
    [(181, 193), (189, 189), (190, 193), (189, 115)],
)
def test_bad_byte_locations(volume, tmp_path, iline, xline):
    with pytest.raises(ByteLocationError):
        write_segy(volume, tmp_path / "v.sgy", iline=iline, xline=xline)
    assert list(tmp_path.iterdir()) == []


def test_2d_line_rejects_byte_21(volume, tmp_path):
    with pytest.raises(ByteLocationError):
        write_segy(_line(volume), tmp_path / "l.sgy", iline=9, xline=21)


def test_line_numbers_must_fit_a_two_byte_field(volume, tmp_path):
    big = volume.assign_coords(iline=volume["iline"] + 40000)
    with pytest.raises(ByteLocationError, match="4-byte"):
        write_segy(big, tmp_path / "v.sgy", iline=29)  # TraceIdentificationCode: 2 bytes


@pytest.mark.parametrize(
    "change",
    [
        lambda ds: ds.rename(iline="inline"),
        lambda ds: ds.assign_coords(sample=np.r_[0.0, 1.0, np.arange(2, 30) * 4.0]),
        lambda ds: ds.assign_coords(xline=ds["xline"] + 0.5),
        lambda ds: ds.rename(amplitude="data"),
    ],
)
def test_bad_layout_raises(volume, tmp_path, change):
    with pytest.raises(DataError):
        write_segy(change(volume), tmp_path / "v.sgy")


def test_bad_format_and_paths(volume, tmp_path):
    with pytest.raises(DataError):
        write_segy(volume, tmp_path / "v.sgy", sample_format=2)
    with pytest.raises(OutputPathError):
        write_segy(volume, tmp_path / "missing" / "v.sgy")
    with pytest.raises(OutputPathError):
        write_segy(volume, tmp_path)


def test_cdp_coordinates_as_data_variables(volume, tmp_path):
    ds = volume.reset_coords(["cdp_x", "cdp_y"])
    assert "cdp_x" in ds.data_vars
    write_segy(ds, tmp_path / "v.sgy")
    with segyio.open(tmp_path / "v.sgy") as f:
        x = f.attributes(TF.CDP_X)[:] / 100.0
    np.testing.assert_allclose(x, volume["cdp_x"].values.ravel(), atol=0.006)
