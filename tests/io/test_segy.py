"""Tests for saltvol.io.segy and the ``engine="segy"`` xarray backend."""

from __future__ import annotations

import os
import pickle
import shutil
from pathlib import Path
from typing import TYPE_CHECKING

import dask
import numpy as np
import pytest
import segyio
import xarray as xr

from saltvol.errors import (
    ByteLocationError,
    DuplicateTraceError,
    InputError,
    SegyFormatError,
)
from saltvol.io import segy as segy_mod
from saltvol.io.backend import SegyBackendEntrypoint
from saltvol.io.segy import open_segy, scan_segy

if TYPE_CHECKING:  # fixtures come from conftest.py; import only for annotations
    from .conftest import Synth

from tests.conftest import SEGY_DIR as SHARED
from tests.io.conftest import make_3d

REAL_FILES = sorted(SHARED.glob("*.sgy")) if SHARED.is_dir() else []
UNSTRUCTURED = {"segysak_f3-withdead.sgy", "segysak_volve10r12-full-z-il10117sub.sgy"}
SYNTH_NAMES = [
    "ibm", "ieee", "int16", "xline_sorted", "unsorted",
    "bytes_9_21", "bytes_5_21", "dead", "coords_73_77", "line2d",
]  # fmt: skip


@pytest.fixture(autouse=True)
def _sync_scheduler():
    """Single-threaded Dask: the files are tiny and the machine is shared."""
    with dask.config.set(scheduler="synchronous"):
        yield


def _scaled_coords(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Per-trace CDP x/y as segyio reports them, scalar applied, 73/77 if 181/185 are empty."""
    with segyio.open(path, ignore_geometry=True) as f:
        x, y = f.attributes(181)[:].astype(float), f.attributes(185)[:].astype(float)
        if not x.any() and not y.any():
            x, y = f.attributes(73)[:].astype(float), f.attributes(77)[:].astype(float)
        s = f.attributes(71)[:].astype(float)
    factor = np.where(s < 0, -1.0 / np.where(s == 0, 1, s), np.where(s > 0, s, 1.0))
    return x * factor, y * factor


# --------------------------------------------------------------------------- #
# real files: saltvol must agree with segyio
# --------------------------------------------------------------------------- #


@pytest.mark.skipif(not REAL_FILES, reason="shared SEG-Y data not available")
@pytest.mark.parametrize("path", REAL_FILES, ids=lambda p: p.name)
def test_real_file_matches_segyio(path: Path) -> None:
    ds = open_segy(path)
    amp = ds.amplitude.values
    assert ds.amplitude.dtype == np.float32
    assert ds.attrs["source"] == str(path.resolve())
    assert ds.attrs["source_size"] == path.stat().st_size
    assert ds.attrs["sample_format"] in (1, 3, 5)

    if path.name == "segysak_volve10r12-full-z-il10117sub.sgy":
        assert ds.amplitude.dims == ("cdp", "sample")
        assert ds.sizes["cdp"] == 202 and ds.sizes["sample"] == 1125
        with segyio.open(path, ignore_geometry=True) as f:
            np.testing.assert_array_equal(ds.cdp.values, f.attributes(21)[:])
            np.testing.assert_array_equal(ds.sample.values, f.samples)
            np.testing.assert_array_equal(amp, f.trace.raw[:].astype(np.float32))
        assert ds.attrs["kind"] == "2d" and ds.attrs["sample_unit"] == "m"
        assert bool(ds.live.all())
    elif path.name == "segysak_f3-withdead.sgy":
        with segyio.open(path, ignore_geometry=True) as f:
            il, xl = f.attributes(189)[:], f.attributes(193)[:]
            traces = f.trace.raw[:].astype(np.float32)
            np.testing.assert_array_equal(ds.sample.values, f.samples)
        np.testing.assert_array_equal(ds.iline.values, np.unique(il))
        np.testing.assert_array_equal(ds.xline.values, np.unique(xl))
        i = np.searchsorted(ds.iline.values, il)
        j = np.searchsorted(ds.xline.values, xl)
        np.testing.assert_array_equal(amp[i, j], traces)
        expected_live = np.zeros(ds.live.shape, bool)
        expected_live[i, j] = True
        np.testing.assert_array_equal(ds.live.values, expected_live)
        assert not amp[~expected_live].any()
        assert int((~ds.live).sum()) == 23 * 18 - 239
    else:
        with segyio.open(path) as f:
            np.testing.assert_array_equal(ds.iline.values, f.ilines)
            np.testing.assert_array_equal(ds.xline.values, f.xlines)
            np.testing.assert_array_equal(ds.sample.values, f.samples)
            cube = segyio.tools.cube(f).astype(np.float32)
            if f.sorting == segyio.TraceSortingFormat.CROSSLINE_SORTING:
                cube = cube.transpose(1, 0, 2)
        np.testing.assert_array_equal(amp, cube)
        assert bool(ds.live.all())


@pytest.mark.skipif(not REAL_FILES, reason="shared SEG-Y data not available")
@pytest.mark.parametrize("path", REAL_FILES, ids=lambda p: p.name)
def test_real_file_coordinates_and_pickle(path: Path) -> None:
    g = scan_segy(path)
    x, y = _scaled_coords(path)
    live = g.live
    np.testing.assert_allclose(g.cdp_x[live], x[g.trace_index[live]])
    np.testing.assert_allclose(g.cdp_y[live], y[g.trace_index[live]])
    assert np.isnan(g.cdp_x[~live]).all()
    ds = open_segy(path)
    assert len(pickle.dumps(ds.amplitude.data)) < 1_000_000
    again = pickle.loads(pickle.dumps(ds.amplitude.data))
    np.testing.assert_array_equal(again.compute(), ds.amplitude.values)


@pytest.mark.skipif(not REAL_FILES, reason="shared SEG-Y data not available")
def test_real_depth_and_time_units() -> None:
    assert scan_segy(SHARED / "segyio_f3.sgy").sample_unit == "ms"
    assert scan_segy(SHARED / "segysak_test-geometry.sgy").sample_unit == "m"
    assert scan_segy(SHARED / "segysak_volve10-migvel-depth-sub3d.sgy").sample_unit == "m"


# --------------------------------------------------------------------------- #
# synthetic files: known truth
# --------------------------------------------------------------------------- #


@pytest.mark.parametrize("name", SYNTH_NAMES)
def test_synthetic_roundtrip(synth: dict[str, Synth], name: str) -> None:
    s = synth[name]
    ds = open_segy(s.path, chunks={"iline": 5, "xline": 4, "cdp": 7})
    np.testing.assert_array_equal(ds.amplitude.values, s.data)
    np.testing.assert_array_equal(ds.live.values, s.live)
    np.testing.assert_allclose(ds.cdp_x.values, s.cdp_x)
    np.testing.assert_allclose(ds.cdp_y.values, s.cdp_y)
    np.testing.assert_allclose(ds.sample.values, 8.0 + 4.0 * np.arange(50))
    assert ds.attrs["sample_format"] == s.sample_format
    assert ds.attrs["sorting"] == s.sorting
    assert ds.attrs["kind"] == s.kind
    assert ds.attrs["byte_locations_autodetected"] is True
    assert (ds.attrs["iline_byte"], ds.attrs["xline_byte"]) == (s.iline, s.xline)
    if s.kind == "3d":
        assert ds.amplitude.dims == ("iline", "xline", "sample")
        np.testing.assert_array_equal(ds.iline.values, s.ilines)
        np.testing.assert_array_equal(ds.xline.values, s.xlines)
    else:
        assert ds.amplitude.dims == ("cdp", "sample")
        np.testing.assert_array_equal(ds.cdp.values, s.ilines)


@pytest.mark.parametrize("name", ["bytes_9_21", "bytes_5_21"])
def test_explicit_bytes(synth: dict[str, Synth], name: str) -> None:
    s = synth[name]
    g = scan_segy(s.path, iline=s.iline, xline=s.xline)
    assert not g.byte_locations_autodetected
    assert (g.iline_byte, g.xline_byte) == (s.iline, s.xline)
    np.testing.assert_array_equal(g.ilines, s.ilines)


def test_wrong_explicit_bytes_suggest_working_pair(synth: dict[str, Synth]) -> None:
    path = synth["bytes_9_21"].path
    with pytest.raises(ByteLocationError, match=r"iline=9, xline=21"):
        scan_segy(path, iline=9, xline=17)  # 17 is empty: every inline "duplicated"
    with pytest.raises(ByteLocationError, match=r"same values in every trace.*iline=9, xline=21"):
        scan_segy(path, iline=189, xline=193)


def test_byte_that_is_not_a_header_word(synth: dict[str, Synth]) -> None:
    with pytest.raises(ByteLocationError, match="iline=190"):
        scan_segy(synth["ibm"].path, iline=190, xline=193)


def test_one_byte_given_autodetects_the_other(synth: dict[str, Synth]) -> None:
    g = scan_segy(synth["bytes_5_21"].path, iline=5)
    assert (g.iline_byte, g.xline_byte) == (5, 21) and g.byte_locations_autodetected


def test_duplicate_trace(duplicate_file: Path) -> None:
    with pytest.raises(DuplicateTraceError, match=r"\(104, 302\)"):
        scan_segy(duplicate_file)
    with pytest.raises(DuplicateTraceError, match="1 .*pairs"):
        scan_segy(duplicate_file, iline=189, xline=193)


def test_geometry_is_small_and_picklable(synth: dict[str, Synth]) -> None:
    g = scan_segy(synth["dead"].path)
    g2 = pickle.loads(pickle.dumps(g))
    np.testing.assert_array_equal(g2.trace_index, g.trace_index)
    assert g.n_dead == 3 and g.shape == (12, 10) and g.n_traces == 117


def test_chunks(synth: dict[str, Synth]) -> None:
    s = synth["dead"]
    ds = open_segy(s.path, chunks={"iline": 5, "xline": -1, "sample": 7})
    assert ds.amplitude.chunks == ((5, 5, 2), (10,), (7,) * 7 + (1,))
    np.testing.assert_array_equal(ds.amplitude.values, s.data)
    assert open_segy(s.path).amplitude.chunks == ((12,), (10,), (50,))
    # a strided, partial selection reads the right traces
    sub = ds.amplitude.isel(iline=slice(1, None, 3), xline=4, sample=slice(3, 40, 5)).values
    np.testing.assert_array_equal(sub, s.data[1::3, 4, 3:40:5])
    with pytest.raises(InputError, match="unknown dimension"):
        open_segy(s.path, chunks={"time": 4})
    with pytest.raises(InputError, match="positive int"):
        open_segy(s.path, chunks={"iline": 0})


def test_graph_is_small_and_reads_nothing(synth: dict[str, Synth], monkeypatch: pytest.MonkeyPatch) -> None:
    s = synth["ieee"]
    calls = []
    real = segy_mod._read_block
    monkeypatch.setattr(segy_mod, "_read_block", lambda *a: calls.append(1) or real(*a))
    ds = open_segy(s.path, chunks={"iline": 3, "xline": 3})
    assert not calls  # building the graph reads no samples
    blob = pickle.dumps(ds.amplitude.data)
    assert len(blob) < 1_000_000
    np.testing.assert_array_equal(pickle.loads(blob).compute(), s.data)


def test_file_changed_after_scan(synth: dict[str, Synth], tmp_path: Path) -> None:
    path = tmp_path / "changing.sgy"
    shutil.copy(synth["ibm"].path, path)
    ds = open_segy(path)
    with path.open("ab") as fh:
        fh.write(b"\0" * 10)
    with pytest.raises(SegyFormatError, match="open it again"):
        ds.amplitude.values


def test_segyio_errors_are_wrapped(synth: dict[str, Synth], monkeypatch: pytest.MonkeyPatch) -> None:
    def broken_open(*args, **kwargs):
        raise RuntimeError("internal segyio failure")

    monkeypatch.setattr(segyio, "open", broken_open)
    with pytest.raises(SegyFormatError, match="re-export") as info:
        scan_segy(synth["ibm"].path)
    assert isinstance(info.value.__cause__, RuntimeError)


# --------------------------------------------------------------------------- #
# bad files
# --------------------------------------------------------------------------- #


def _patch(src: Path, dst: Path, offset: int, value: bytes) -> Path:
    data = bytearray(src.read_bytes())
    data[offset : offset + len(value)] = value
    dst.write_bytes(bytes(data))
    return dst


def _bad_file(kind: str, good: Path, d: Path) -> Path:
    size = good.stat().st_size
    if kind == "missing":
        return d / "nope.sgy"
    if kind == "directory":
        return d
    if kind == "empty":
        (d / "empty.sgy").write_bytes(b"")
        return d / "empty.sgy"
    if kind == "small":
        (d / "small.sgy").write_bytes(good.read_bytes()[:2000])
        return d / "small.sgy"
    if kind == "random":
        data = bytearray(np.random.default_rng(3).integers(0, 256, 20000, dtype=np.uint8).tobytes())
        data[3224:3226] = b"\x7f\x3a"  # make sure the format code is garbage
        (d / "random.sgy").write_bytes(bytes(data))
        return d / "random.sgy"
    if kind == "png":
        png = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(5000)
        (d / "image.sgy").write_bytes(png)
        return d / "image.sgy"
    if kind == "headers_only":
        (d / "headers_only.sgy").write_bytes(good.read_bytes()[:3600])
        return d / "headers_only.sgy"
    if kind == "truncated":
        (d / "truncated.sgy").write_bytes(good.read_bytes()[: size - 100])
        return d / "truncated.sgy"
    if kind == "huge_ns":
        return _patch(good, d / "huge_ns.sgy", 3220, (60000).to_bytes(2, "big"))
    if kind == "zero_ns":
        return _patch(good, d / "zero_ns.sgy", 3220, (0).to_bytes(2, "big"))
    if kind == "three_byte":
        return _patch(good, d / "three_byte.sgy", 3224, (15).to_bytes(2, "big"))
    if kind == "little_endian":
        return _patch(good, d / "little.sgy", 3224, (5).to_bytes(2, "little"))
    if kind == "ext_headers":
        return _patch(good, d / "ext.sgy", 3504, (30000).to_bytes(2, "big"))
    raise AssertionError(kind)


BAD_CASES = [
    ("missing", InputError, "does not exist; check the path"),
    ("directory", InputError, "is a directory.*give the path"),
    ("empty", SegyFormatError, "empty.*re-copy"),
    ("small", SegyFormatError, "fewer than the 3600 bytes.*re-copy"),
    ("random", SegyFormatError, "not a SEG-Y file.*check that the file is SEG-Y"),
    ("png", SegyFormatError, "not a SEG-Y file.*check that the file is SEG-Y"),
    ("headers_only", SegyFormatError, "no traces; re-export"),
    ("truncated", SegyFormatError, "truncated.*re-copy"),
    ("huge_ns", SegyFormatError, "60000 samples.*more than.*fix bytes 3221-3222"),
    ("zero_ns", SegyFormatError, "0 samples.*fix the header"),
    ("three_byte", SegyFormatError, "3-byte unsigned.*convert"),
    ("little_endian", SegyFormatError, "little-endian.*convert"),
    ("ext_headers", SegyFormatError, "30000 extended textual headers.*not SEG-Y"),
]


@pytest.mark.parametrize(("kind", "error", "message"), BAD_CASES, ids=[c[0] for c in BAD_CASES])
def test_bad_files(synth: dict[str, Synth], tmp_path: Path, kind: str, error: type, message: str) -> None:
    path = _bad_file(kind, synth["ibm"].path, tmp_path)
    with pytest.raises(error, match=message) as info:
        open_segy(path)
    assert "\n" not in str(info.value)
    assert isinstance(info.value, ValueError)


# --------------------------------------------------------------------------- #
# xarray backend
# --------------------------------------------------------------------------- #


def test_xarray_engine(synth: dict[str, Synth]) -> None:
    s = synth["bytes_9_21"]
    ds = xr.open_dataset(s.path, engine="segy")
    assert ds.attrs["iline_byte"] == 9
    np.testing.assert_array_equal(ds.amplitude[2, 3:7].values, s.data[2, 3:7])
    np.testing.assert_array_equal(ds.amplitude.values, s.data)
    ds = xr.open_dataset(s.path, engine="segy", iline=9, xline=21, chunks={}, drop_variables=["live"])
    assert "live" not in ds and ds.amplitude.chunks is not None
    np.testing.assert_array_equal(ds.amplitude.values, s.data)
    assert ds.attrs["byte_locations_autodetected"] is False


def test_xarray_engine_2d(synth: dict[str, Synth]) -> None:
    ds = xr.open_dataset(synth["line2d"].path, engine="segy", chunks={})
    assert ds.amplitude.dims == ("cdp", "sample") and ds.amplitude.chunks == ((30,), (50,))
    np.testing.assert_array_equal(ds.amplitude.values, synth["line2d"].data)


def test_guess_can_open(tmp_path: Path) -> None:
    entry = SegyBackendEntrypoint()
    assert entry.guess_can_open("a/b/survey.SGY")
    assert entry.guess_can_open(Path("x.segy"))
    assert not entry.guess_can_open("x.zarr")
    assert not entry.guess_can_open(object())
    assert entry.description


def test_backend_errors_are_typed(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="does not exist"):
        xr.open_dataset(os.fspath(tmp_path / "missing.sgy"), engine="segy")


def test_scan_is_cached_per_file_version(tmp_path: Path) -> None:
    # A segment run opens its input once per orientation: the headers are read once,
    # but a file rewritten in place (new size/mtime/inode) is scanned again.
    path = tmp_path / "v.sgy"
    first = make_3d(path, iline=189, xline=193)
    assert scan_segy(path) is scan_segy(path)
    path.unlink()
    second = make_3d(path, iline=9, xline=21)
    geometry = scan_segy(path)
    assert (geometry.iline_byte, geometry.xline_byte) == (second.iline, second.xline) != (first.iline, first.xline)
    np.testing.assert_array_equal(open_segy(path).amplitude.values, second.data)


@pytest.mark.skipif(not (SHARED / "segysak_f3-withdead.sgy").is_file(), reason="shared SEG-Y data not available")
def test_headers_read_through_many_short_maps_give_the_same_geometry(monkeypatch) -> None:
    # The scan maps the file a few thousand traces at a time so that RSS stays bounded on large files;
    # 7 traces per map here cuts this real file (with missing traces) into dozens of maps.
    path = SHARED / "segysak_f3-withdead.sgy"
    whole = scan_segy(path)
    segy_mod._scan_once.cache_clear()
    monkeypatch.setattr(segy_mod, "_SCAN_TRACES", 7)
    pieces = scan_segy(path)
    segy_mod._scan_once.cache_clear()
    np.testing.assert_array_equal(pieces.trace_index, whole.trace_index)
    np.testing.assert_array_equal(pieces.ilines, whole.ilines)
    np.testing.assert_array_equal(pieces.cdp_x, whole.cdp_x)
    with segyio.open(path, ignore_geometry=True) as f:
        np.testing.assert_array_equal(segy_mod._header_words(path, 193, f.tracecount), f.attributes(193)[:])
