"""Tests of saltvol.io.zarr: SEG-Y -> Zarr v3 conversion and open_volume."""

from __future__ import annotations

import hashlib
import json
import os
import warnings
from pathlib import Path
from typing import TYPE_CHECKING

import dask
import numpy as np
import pytest
import xarray as xr
import zarr

import saltvol
from saltvol.errors import (
    InputError,
    OutputExistsError,
    OutputPathError,
    SegyFormatError,
)
from saltvol.geometry import Geometry, build_grid
from saltvol.io import zarr as zarr_mod
from saltvol.io.segy import open_segy
from saltvol.io.segy_write import write_segy
from saltvol.io.zarr import convert, open_volume
from saltvol.synth import make_volume

if TYPE_CHECKING:
    from .conftest import Synth

from tests.conftest import SEGY_DIR as SHARED

F3 = SHARED / "segyio_f3.sgy"
F3_DEAD = SHARED / "segysak_f3-withdead.sgy"
LINE_2D = SHARED / "segysak_volve10r12-full-z-il10117sub.sgy"
REAL = [F3, F3_DEAD, LINE_2D]
needs_real = pytest.mark.skipif(not all(p.is_file() for p in REAL), reason="shared SEG-Y data not available")

#: Small chunks so that the small files span several blocks, edge chunks and both grid axes.
SMALL_CHUNKS = {"iline": 5, "xline": 4}


@pytest.fixture(autouse=True)
def _sync_scheduler():
    """Single-threaded Dask for reads in the tests: the files are tiny and the machine is shared."""
    with dask.config.set(scheduler="synchronous"):
        yield


@pytest.fixture(scope="module")
def synth_volume(tmp_path_factory: pytest.TempPathFactory) -> tuple[xr.Dataset, dict[int, Path]]:
    """A make_volume cube written as IEEE and IBM SEG-Y (sizes not multiples of the chunks)."""
    ds = make_volume((13, 11, 40), seed=3)
    d = tmp_path_factory.mktemp("synth")
    paths = {fmt: write_segy(ds, d / f"synth_{fmt}.sgy", sample_format=fmt) for fmt in (5, 1)}
    return ds, paths


def _assert_same_as_segy(store: Path, source: Path, *, chunks: dict[str, int] | None = None) -> xr.Dataset:
    """xr.open_zarr(store) must be identical to open_segy(source), saltvol_version aside."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        got = xr.open_zarr(store)
    expected = open_segy(source)
    assert got.attrs["saltvol_version"] == saltvol.__version__
    assert set(got.attrs) == set(expected.attrs) | {"saltvol_version"}
    xr.testing.assert_identical(got.drop_attrs(deep=False), expected.drop_attrs(deep=False))
    assert {k: got.attrs[k] for k in expected.attrs} == expected.attrs
    assert got["amplitude"].dtype == np.float32 and got["live"].dtype == bool
    for name in got.variables:
        assert got[name].attrs == expected[name].attrs, name
    return got


def _tree_digest(path: Path) -> dict[str, tuple[str, int]]:
    """Content hash and mtime of every file under ``path`` (or of the file itself)."""
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
    return {
        str(p.relative_to(path.parent)): (hashlib.sha256(p.read_bytes()).hexdigest(), p.stat().st_mtime_ns)
        for p in files
    }


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


# --------------------------------------------------------------------------- #
# round trips
# --------------------------------------------------------------------------- #


@pytest.mark.parametrize("fmt", [5, 1])
def test_synthetic_roundtrip(synth_volume: tuple[xr.Dataset, dict[int, Path]], tmp_path: Path, fmt: int) -> None:
    ds, paths = synth_volume
    out = convert(paths[fmt], tmp_path / "synth.zarr", chunks=SMALL_CHUNKS)
    assert out == (tmp_path / "synth.zarr").absolute()
    got = _assert_same_as_segy(out, paths[fmt])
    if fmt == 5:  # IEEE is bit-exact against the volume that was written
        np.testing.assert_array_equal(got["amplitude"].values, ds["amplitude"].values)
    else:
        np.testing.assert_allclose(got["amplitude"].values, ds["amplitude"].values, rtol=1e-6, atol=1e-6)
    assert got["amplitude"].chunks == ((5, 5, 3), (4, 4, 3), (40,))
    assert _leftovers(tmp_path) == []


def test_store_is_zarr_v3_consolidated(synth_volume: tuple[xr.Dataset, dict[int, Path]], tmp_path: Path) -> None:
    _, paths = synth_volume
    out = convert(paths[5], tmp_path / "v3.zarr")
    root = json.loads((out / "zarr.json").read_text())
    assert root["zarr_format"] == 3 and root["node_type"] == "group"
    assert "amplitude" in root["consolidated_metadata"]["metadata"]
    assert not (out / ".zgroup").exists() and not (out / ".zmetadata").exists()
    meta = json.loads((out / "amplitude" / "zarr.json").read_text())
    assert meta["zarr_format"] == 3
    assert meta["dimension_names"] == ["iline", "xline", "sample"]
    assert meta["data_type"] == "float32" and meta["fill_value"] == 0.0
    assert [c["name"] for c in meta["codecs"]] == ["bytes", "blosc"]
    assert zarr.open_group(str(out), mode="r").metadata.zarr_format == 3


@needs_real
@pytest.mark.slow
@pytest.mark.parametrize("path", REAL, ids=lambda p: p.name)
def test_real_files(path: Path, tmp_path: Path) -> None:
    out = convert(path, tmp_path / "real.zarr", chunks={"iline": 7, "xline": 5, "cdp": 64})
    got = _assert_same_as_segy(out, path)
    xr.testing.assert_identical(open_volume(out), got)
    if path == F3_DEAD:
        live = got["live"].values
        assert 0 < (~live).sum() < live.size
        assert not got["amplitude"].values[~live].any()
    if path == LINE_2D:
        assert got["amplitude"].dims == ("cdp", "sample")
        assert got["amplitude"].chunks[0][0] == 64


@pytest.mark.parametrize("name", ["xline_sorted", "unsorted", "dead", "line2d", "int16"])
def test_every_sorting_and_kind(synth: dict[str, Synth], tmp_path: Path, name: str) -> None:
    """Inline-sorted files take the segyio path, the others the Dask graph; both give the same store."""
    s = synth[name]
    out = convert(s.path, tmp_path / f"{name}.zarr", chunks={"iline": 5, "xline": 3, "cdp": 7})
    got = _assert_same_as_segy(out, s.path)
    np.testing.assert_array_equal(got["amplitude"].values, s.data)
    np.testing.assert_array_equal(got["live"].values, s.live)


def test_empty_chunks_left_to_fill_value(synth: dict[str, Synth], tmp_path: Path) -> None:
    """Chunks of dead traces only are not written; they read back as 0 (the fill value)."""
    s = synth["dead"]
    out = convert(s.path, tmp_path / "dead.zarr", chunks={"iline": 1, "xline": 1})
    chunk_files = list((out / "amplitude").rglob("c/*/*/*"))
    assert len(chunk_files) == int(s.live.sum())
    np.testing.assert_array_equal(xr.open_zarr(out)["amplitude"].values, s.data)


def test_sample_chunks_and_zstd(synth: dict[str, Synth], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    s = synth["ibm"]
    monkeypatch.setattr(zarr_mod, "_COMPRESSION", "zstd")
    out = convert(s.path, tmp_path / "zstd.zarr", chunks={"iline": 4, "xline": -1, "sample": 16})
    meta = json.loads((out / "amplitude" / "zarr.json").read_text())
    assert [c["name"] for c in meta["codecs"]] == ["bytes", "zstd"]
    got = _assert_same_as_segy(out, s.path)
    assert got["amplitude"].chunks == ((4, 4, 4), (10,), (16, 16, 16, 2))


# --------------------------------------------------------------------------- #
# chunking
# --------------------------------------------------------------------------- #


def _geometry(n_il: int, n_xl: int, n_samples: int, kind: str = "3d") -> Geometry:
    il, xl = np.meshgrid(np.arange(n_il), np.arange(n_xl), indexing="ij")
    ilines, xlines, ti = build_grid(il.ravel(), xl.ravel())
    nan = np.full(ti.shape, np.nan)
    return Geometry(
        kind, ilines, xlines, ti, np.arange(n_samples) * 4.0, "ms", 5, 189, 193, nan, nan, "iline",
        ti.size, "/x.sgy", "", False,
    )  # fmt: skip


@pytest.mark.parametrize(
    ("shape", "kind", "expected"),
    [
        ((300, 300, 500), "3d", (64, 64, 500)),  # 8 MiB
        ((300, 300, 2000), "3d", (64, 64, 2000)),  # 32 MiB, the cap
        ((300, 300, 3000), "3d", (52, 52, 3000)),  # shrunk below 32 MiB
        ((300, 300, 65535), "3d", (11, 11, 65535)),
        ((10, 700, 50), "3d", (10, 64, 50)),  # clamped to the grid
        ((1, 9000, 1000), "2d", (4096, 1000)),
        ((1, 9000, 3000), "2d", (2796, 3000)),
        ((1, 30, 50), "2d", (30, 50)),
    ],
)
def test_default_chunks(shape: tuple[int, int, int], kind: str, expected: tuple[int, ...]) -> None:
    chunks = zarr_mod._default_chunks(_geometry(*shape, kind=kind))
    assert chunks == expected
    assert 4 * np.prod(chunks) <= 32 * 2**20


def test_default_chunks_in_store_and_open_volume(
    synth_volume: tuple[xr.Dataset, dict[int, Path]], tmp_path: Path
) -> None:
    _, paths = synth_volume
    out = convert(paths[5], tmp_path / "default.zarr")
    assert zarr.open_array(str(out), path="amplitude", mode="r").chunks == (13, 11, 40)
    assert zarr.open_array(str(out), path="live", mode="r").chunks == (13, 11)
    assert open_volume(out)["amplitude"].chunks == ((13,), (11,), (40,))
    assert open_volume(out, chunks={"iline": 4})["amplitude"].chunks == ((4, 4, 4, 1), (11,), (40,))


@pytest.mark.parametrize(
    "chunks",
    [{"iline": 0}, {"iline": -2}, {"iline": 2.5}, {"iline": True}, {"depth": 4}, [64, 64]],
)
def test_bad_chunks(synth: dict[str, Synth], tmp_path: Path, chunks: object) -> None:
    with pytest.raises(InputError, match="chunk"):
        convert(synth["ieee"].path, tmp_path / "bad.zarr", chunks=chunks)  # type: ignore[arg-type]
    assert list(tmp_path.iterdir()) == []


# --------------------------------------------------------------------------- #
# output safety
# --------------------------------------------------------------------------- #


def test_refuses_existing_store_and_leaves_it_untouched(synth: dict[str, Synth], tmp_path: Path) -> None:
    out = convert(synth["ieee"].path, tmp_path / "out.zarr")
    before = _tree_digest(out)
    with pytest.raises(OutputExistsError, match="--overwrite"):
        convert(synth["ibm"].path, out)
    assert _tree_digest(out) == before
    assert _leftovers(tmp_path) == []


def test_refuses_existing_file_or_empty_folder(synth: dict[str, Synth], tmp_path: Path) -> None:
    target = tmp_path / "notes.txt"
    target.write_text("keep me")
    with pytest.raises(OutputPathError, match="not a Zarr store"):
        convert(synth["ieee"].path, target)
    assert target.read_text() == "keep me"
    empty = tmp_path / "empty.zarr"
    empty.mkdir()
    with pytest.raises(OutputExistsError, match="--overwrite"):
        convert(synth["ieee"].path, empty)
    convert(synth["ieee"].path, empty, overwrite=True)
    assert (empty / "zarr.json").is_file()


def test_refuses_non_zarr_folder_even_with_overwrite(synth: dict[str, Synth], tmp_path: Path) -> None:
    folder = tmp_path / "photos"
    folder.mkdir()
    (folder / "a.jpg").write_bytes(b"x")
    with pytest.raises(OutputPathError, match="not a Zarr store"):
        convert(synth["ieee"].path, folder, overwrite=True)
    assert (folder / "a.jpg").read_bytes() == b"x"


def test_refuses_bad_locations(synth: dict[str, Synth], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    src = synth["ieee"].path
    with pytest.raises(OutputPathError, match="does not exist"):
        convert(src, tmp_path / "missing" / "out.zarr")
    with pytest.raises(OutputPathError, match="source file itself"):
        convert(src, src, overwrite=True)
    with pytest.raises(OutputPathError, match="URL"):
        convert(src, "s3://bucket/out.zarr")
    monkeypatch.setattr(zarr_mod.os, "access", lambda *args, **kwargs: False)
    with pytest.raises(OutputPathError, match="not writable"):
        convert(src, tmp_path / "out.zarr")


def test_overwrite_replaces(synth: dict[str, Synth], tmp_path: Path) -> None:
    out = convert(synth["ieee"].path, tmp_path / "out.zarr", chunks={"iline": 2})
    (out / "stray.txt").write_text("old")
    convert(synth["line2d"].path, out, overwrite=True)
    got = _assert_same_as_segy(out, synth["line2d"].path)
    assert got["amplitude"].dims == ("cdp", "sample")
    assert not (out / "stray.txt").exists()
    assert _leftovers(tmp_path) == []
    # a regular file is replaced too when asked
    target = tmp_path / "was_a_file.zarr"
    target.write_text("x")
    convert(synth["ieee"].path, target, overwrite=True)
    assert (target / "zarr.json").is_file()


@pytest.mark.parametrize(("name", "reader"), [("ieee", "_read_traces"), ("unsorted", "_compute_block")])
@pytest.mark.parametrize("existing", [False, True])
def test_failure_midway_leaves_nothing(
    synth: dict[str, Synth], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str, reader: str, existing: bool
) -> None:
    """The block reader fails on the 2nd block: no output, no partial store, an old output intact."""
    out = tmp_path / "out.zarr"
    before = None
    if existing:
        convert(synth["ibm"].path, out)
        before = _tree_digest(out)
    calls = []
    real = getattr(zarr_mod, reader)

    def flaky(*args: object, **kwargs: object) -> np.ndarray:
        calls.append(1)
        if len(calls) == 2:
            raise SegyFormatError("disk went away")
        return real(*args, **kwargs)

    monkeypatch.setattr(zarr_mod, reader, flaky)
    with pytest.raises(SegyFormatError, match="disk went away"):
        convert(synth[name].path, out, chunks={"iline": 2}, overwrite=existing)
    assert len(calls) == 2
    if existing:
        assert _tree_digest(out) == before
    else:
        assert not out.exists()
    assert _leftovers(tmp_path) == []


def test_progress(synth: dict[str, Synth], tmp_path: Path) -> None:
    seen: list[tuple[int, int]] = []
    convert(synth["ieee"].path, tmp_path / "p.zarr", chunks={"iline": 5}, progress=lambda d, t: seen.append((d, t)))
    assert seen == [(0, 120), (50, 120), (100, 120), (120, 120)]


# --------------------------------------------------------------------------- #
# open_volume
# --------------------------------------------------------------------------- #


def test_open_volume_segy_and_zarr_agree(synth: dict[str, Synth], tmp_path: Path) -> None:
    s = synth["dead"]
    out = convert(s.path, tmp_path / "dead.zarr")
    from_segy = open_volume(s.path)
    xr.testing.assert_identical(from_segy, open_segy(s.path))
    from_zarr = open_volume(out)
    xr.testing.assert_identical(from_zarr.drop_attrs(deep=False), from_segy.drop_attrs(deep=False))
    for ds in (from_segy, from_zarr):
        assert isinstance(ds["amplitude"].data, dask.array.Array)
    xr.testing.assert_identical(open_volume(str(out)), from_zarr)
    xr.testing.assert_identical(open_volume(f"file://{out}"), from_zarr)


def test_open_volume_chunks(synth: dict[str, Synth], tmp_path: Path) -> None:
    s = synth["line2d"]
    out = convert(s.path, tmp_path / "line.zarr", chunks={"cdp": 8})
    assert open_volume(out)["amplitude"].chunks == ((8, 8, 8, 6), (50,))
    assert open_volume(out, chunks={"cdp": -1, "iline": 3})["amplitude"].chunks == ((30,), (50,))
    with pytest.raises(InputError, match="unknown dimension"):
        open_volume(out, chunks={"trace": 3})
    with pytest.raises(InputError, match="not a chunk size"):
        open_volume(out, chunks={"cdp": 0})


@pytest.mark.filterwarnings("ignore:Failed to open Zarr store with consolidated metadata")
def test_open_volume_errors(synth: dict[str, Synth], tmp_path: Path) -> None:
    with pytest.raises(InputError, match="does not exist"):
        open_volume(tmp_path / "nothing.zarr")
    (tmp_path / "folder").mkdir()
    with pytest.raises(InputError, match="not a Zarr store"):
        open_volume(tmp_path / "folder")
    (tmp_path / "file.zarr").write_text("x")
    with pytest.raises(InputError, match="Zarr store is a folder"):
        open_volume(tmp_path / "file.zarr")
    (tmp_path / "text.sgy").write_text("not seismic")
    with pytest.raises(SegyFormatError):
        open_volume(tmp_path / "text.sgy")
    with pytest.raises(InputError, match="no Zarr store"):
        open_volume(f"file://{tmp_path}/nothing.zarr")
    other = tmp_path / "other.zarr"
    xr.Dataset({"x": ("t", np.arange(3))}).to_zarr(other, zarr_format=3, consolidated=False)
    with pytest.raises(InputError, match="no 'amplitude' variable"):
        open_volume(other)
    assert os.path.isdir(other)
