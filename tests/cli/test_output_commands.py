"""The interpreter-output commands end to end: info, export, preview, bodies, surfaces.

One small synthetic SEG-Y segmented once with the tiny model (module fixture),
plus the real segyio F3 file. The main path of each command runs through
``python -m saltvol_cli``; refusals and usage errors through CliRunner.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import segyio
import xarray as xr
from click.testing import CliRunner
from saltvol_cli.main import cli

from ..conftest import SEGY_DIR

F3 = SEGY_DIR / "segyio_f3.sgy"
needs_f3 = pytest.mark.skipif(not F3.is_file(), reason="shared SEG-Y data not available")


def _one_error_line(stderr: str) -> str:
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    assert lines[0].startswith("saltvol: error:"), stderr
    return lines[0]


@pytest.fixture(scope="module")
def synth(tmp_path_factory, tiny_model_path) -> dict[str, Path]:
    """A 8 x 8 x 64 synthetic SEG-Y and its salt cube, made with the tiny random model."""
    from saltvol.io.segy_write import write_segy
    from saltvol.pipeline import segment_to_zarr
    from saltvol.synth import make_volume

    folder = tmp_path_factory.mktemp("synth")
    sgy = write_segy(make_volume((8, 8, 64), seed=1), folder / "s.sgy")
    cube = segment_to_zarr(sgy, folder / "salt.zarr", model=tiny_model_path, tile_size=64, device="cpu")
    return {"sgy": Path(sgy), "cube": Path(cube)}


@pytest.fixture(scope="module")
def f3_cube(tmp_path_factory) -> Path:
    """A cube on the F3 grid (|amplitude| scaled to 0..1), written the way segment_to_zarr lays one out."""
    if not F3.is_file():
        pytest.skip("shared SEG-Y data not available")
    from saltvol.io.zarr import open_volume

    amp = open_volume(F3)["amplitude"].load()
    prob = (np.abs(amp) / float(np.abs(amp).max())).astype("float32")
    cube = prob.drop_vars(["cdp_x", "cdp_y"], errors="ignore").to_dataset(name="salt_probability")
    path = tmp_path_factory.mktemp("f3") / "f3_salt.zarr"
    cube.to_zarr(path, zarr_format=3, consolidated=False)
    return path


def _median(cube: Path) -> float:
    """A threshold that leaves salt in any cube, even one from a random model."""
    with xr.open_zarr(cube, consolidated=False) as ds:
        return float(np.median(ds["salt_probability"].values))


# ---------------------------------------------------------------- info
@pytest.mark.parametrize("which", ["synthetic", pytest.param("f3", marks=needs_f3)])
def test_info_json_counts_match_segyio(run_cli, synth, which):
    path = synth["sgy"] if which == "synthetic" else F3
    result = run_cli("info", path, "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    with segyio.open(path) as f:
        expected = (len(f.ilines), len(f.xlines), len(f.samples), f.tracecount)
    got = (report["iline"]["count"], report["xline"]["count"], report["samples"]["count"], report["live_traces"])
    assert got == expected
    assert all(type(v) is int for v in got)  # numbers, not strings or floats
    assert report["format"] == "segy" and report["kind"] == "3d"


def test_info_text_of_a_cube(synth):
    result = CliRunner().invoke(cli, ["info", str(synth["cube"])])
    assert result.exit_code == 0, result.stderr
    assert "salt-probability cube" in result.stdout
    assert "inlines" in result.stdout and "provenance" in result.stdout


def test_info_missing_input_is_one_line(tmp_path):
    result = CliRunner().invoke(cli, ["info", str(tmp_path / "nope.sgy")])
    assert result.exit_code == 2
    assert "does not exist" in _one_error_line(result.stderr)


# ---------------------------------------------------------------- export
def _cube_per_trace(cube: Path, segy: Path) -> np.ndarray:
    """The cube's values in the trace order of ``segy`` (looked up by inline/crossline header)."""
    with xr.open_zarr(cube, consolidated=False) as ds:
        prob = ds["salt_probability"].transpose("iline", "xline", "sample")
        ilines, xlines, values = prob["iline"].values, prob["xline"].values, prob.values
    with segyio.open(segy, ignore_geometry=True) as f:
        il = f.attributes(segyio.TraceField.INLINE_3D)[:]
        xl = f.attributes(segyio.TraceField.CROSSLINE_3D)[:]
    return values[np.searchsorted(ilines, il), np.searchsorted(xlines, xl)]


@pytest.mark.parametrize("which", ["synthetic", pytest.param("f3", marks=needs_f3)])
def test_export_copies_headers_and_writes_the_cube(run_cli, synth, f3_cube, which, tmp_path):
    source, cube = (synth["sgy"], synth["cube"]) if which == "synthetic" else (F3, f3_cube)
    out = tmp_path / "salt.sgy"
    result = run_cli("export", cube, "--like", source, "-o", out)
    assert result.returncode == 0, result.stderr
    assert str(out) in result.stdout
    with segyio.open(source, ignore_geometry=True) as src, segyio.open(out, ignore_geometry=True) as dst:
        assert dst.tracecount == src.tracecount
        assert [dict(h) for h in dst.header] == [dict(h) for h in src.header]
        assert dst.text[0] == src.text[0]
        assert int(dst.format) == 5
        samples = dst.trace.raw[:]
    np.testing.assert_array_equal(samples, _cube_per_trace(cube, source))
    assert not list(tmp_path.glob(".*partial"))


def test_export_threshold_gives_a_mask(synth, tmp_path):
    out = tmp_path / "mask.sgy"
    t = _median(synth["cube"])
    result = CliRunner().invoke(cli, ["export", str(synth["cube"]), "--like", str(synth["sgy"]), "-o", str(out), "--threshold", str(t)])
    assert result.exit_code == 0, result.stderr
    with segyio.open(out, ignore_geometry=True) as f:
        samples = f.trace.raw[:]
    np.testing.assert_array_equal(samples, (_cube_per_trace(synth["cube"], synth["sgy"]) > t).astype("float32"))


def test_export_wrong_source_is_one_line(synth, f3_cube, tmp_path):
    if not F3.is_file():
        pytest.skip("shared SEG-Y data not available")
    result = CliRunner().invoke(cli, ["export", str(f3_cube), "--like", str(synth["sgy"]), "-o", str(tmp_path / "x.sgy")])
    assert result.exit_code == 2
    _one_error_line(result.stderr)
    assert not (tmp_path / "x.sgy").exists()


# ---------------------------------------------------------------- preview
def test_preview_writes_a_png(run_cli, synth, tmp_path):
    from PIL import Image

    out = tmp_path / "inline.png"
    result = run_cli("preview", synth["cube"], "--seismic", synth["sgy"], "--inline", 1003, "--dpi", 50, "-o", out)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"wrote {out} (inline 1003)"
    with Image.open(out) as img:
        assert img.format == "PNG" and img.size == (500, 300)


@needs_f3
def test_preview_of_real_seismic_alone(tmp_path):
    out = tmp_path / "slice.png"
    result = CliRunner().invoke(cli, ["preview", str(F3), "--sample", "100", "--dpi", "30", "-o", str(out)])
    assert result.exit_code == 0, result.stderr
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize(
    ("args", "named"),
    [
        (["--inline", "1", "--xline", "2"], "--inline and --xline"),
        (["--xline", "2", "--sample", "40"], "--xline and --sample"),
        (["--inline", "1", "--xline", "2", "--sample", "40"], "--inline and --xline and --sample"),
    ],
)
def test_preview_sections_exclude_each_other(tmp_path, args, named):
    result = CliRunner().invoke(cli, ["preview", "cube.zarr", *args, "-o", str(tmp_path / "p.png")])
    assert result.exit_code == 2
    line = _one_error_line(result.stderr)
    assert named in line and line.endswith("(see 'saltvol preview --help')")


# ---------------------------------------------------------------- bodies
def test_bodies_writes_json(run_cli, synth, tmp_path):
    from saltvol.io.cube import open_cube
    from saltvol.salt_bodies import bodies

    out = tmp_path / "bodies.json"
    t = _median(synth["cube"])
    result = run_cli("bodies", synth["cube"], "--threshold", t, "--min-voxels", 1, "--connectivity", 6, "-o", out)
    assert result.returncode == 0, result.stderr
    found = json.loads(out.read_text())
    assert isinstance(found, list) and found
    voxels = [b["voxels"] for b in found]
    assert all(type(v) is int and v >= 1 for v in voxels) and voxels == sorted(voxels, reverse=True)
    assert found == json.loads(json.dumps(bodies(open_cube(synth["cube"]), threshold=t, min_voxels=1, connectivity=6)))
    line = result.stdout.strip()
    assert len(line.splitlines()) == 1 and f"the largest {voxels[0]} voxels" in line
    assert not list(tmp_path.glob(".*partial"))


def test_bodies_none_found(synth, tmp_path):
    out = tmp_path / "none.json"
    result = CliRunner().invoke(cli, ["bodies", str(synth["cube"]), "--threshold", "1", "-o", str(out)])
    assert result.exit_code == 0, result.stderr
    assert json.loads(out.read_text()) == []
    assert "no salt bodies" in result.stdout


# ---------------------------------------------------------------- surfaces
def test_surfaces_writes_store_and_horizons(run_cli, synth, tmp_path):
    from saltvol.io.cube import open_cube
    from saltvol.salt_surfaces import surfaces

    out, horizons = tmp_path / "surfaces.zarr", tmp_path / "horizons"
    t = _median(synth["cube"])
    result = run_cli("surfaces", synth["cube"], "-o", out, "--threshold", t, "--horizons-dir", horizons)
    assert result.returncode == 0, result.stderr
    assert json.loads((out / "zarr.json").read_text())["zarr_format"] == 3
    expected = surfaces(open_cube(synth["cube"]), threshold=t).load()
    with xr.open_zarr(out, consolidated=False) as ds:
        assert {"top_of_salt", "base_of_salt"} <= set(ds.data_vars)
        assert ds["top_of_salt"].dims == ("iline", "xline")
        for name in ("top_of_salt", "base_of_salt"):
            np.testing.assert_array_equal(ds[name].values, expected[name].values)
    for name in ("top_of_salt", "base_of_salt"):
        lines = (horizons / f"{name}.txt").read_text().splitlines()
        assert lines[0].startswith("#")
        assert len(lines) - 1 == int(np.isfinite(expected[name].values).sum()) > 0
        assert len(lines[1].split()) == 3
    assert len(result.stdout.strip().splitlines()) == 1
    assert not list(tmp_path.glob(".*partial"))


def test_surfaces_overwrite_replaces_the_store(synth, tmp_path):
    out = tmp_path / "surfaces.zarr"
    first = CliRunner().invoke(cli, ["surfaces", str(synth["cube"]), "-o", str(out), "--threshold", "1"])
    assert first.exit_code == 0, first.stderr
    again = CliRunner().invoke(cli, ["surfaces", str(synth["cube"]), "-o", str(out), "--threshold", "0", "--overwrite"])
    assert again.exit_code == 0, again.stderr
    with xr.open_zarr(out, consolidated=False) as ds:
        assert ds.attrs["threshold"] == 0.0
    assert [p.name for p in tmp_path.iterdir()] == ["surfaces.zarr"]


# ---------------------------------------------------------------- refusing existing outputs
@pytest.mark.parametrize("command", ["export", "preview", "bodies", "surfaces"])
def test_refuses_existing_output(synth, tmp_path, command):
    if command == "surfaces":
        out = tmp_path / "surfaces.zarr"
        out.mkdir()
        (out / "zarr.json").write_text("precious")
        precious = out / "zarr.json"
    else:
        out = precious = tmp_path / {"export": "out.sgy", "preview": "out.png", "bodies": "out.json"}[command]
        out.write_text("precious")
    extra = ["--like", str(synth["sgy"])] if command == "export" else []
    result = CliRunner().invoke(cli, [command, str(synth["cube"]), *extra, "-o", str(out)])
    assert result.exit_code == 2
    assert "--overwrite" in _one_error_line(result.stderr)
    assert precious.read_text() == "precious"
    assert sorted(p.name for p in tmp_path.iterdir()) == [out.name]


def test_surfaces_refuses_existing_horizons_before_writing(synth, tmp_path):
    horizons = tmp_path / "horizons"
    horizons.mkdir()
    (horizons / "top_of_salt.txt").write_text("precious")
    out = tmp_path / "surfaces.zarr"
    result = CliRunner().invoke(cli, ["surfaces", str(synth["cube"]), "-o", str(out), "--horizons-dir", str(horizons)])
    assert result.exit_code == 2
    assert "--overwrite" in _one_error_line(result.stderr)
    assert (horizons / "top_of_salt.txt").read_text() == "precious"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["horizons"]


@pytest.mark.parametrize("command", ["bodies", "surfaces"])
def test_output_folder_must_exist(synth, tmp_path, command):
    out = tmp_path / "missing" / ("b.json" if command == "bodies" else "s.zarr")
    result = CliRunner().invoke(cli, [command, str(synth["cube"]), "-o", str(out)])
    assert result.exit_code == 2
    assert "does not exist" in _one_error_line(result.stderr)


def test_surfaces_refuses_to_replace_its_input(synth):
    result = CliRunner().invoke(cli, ["surfaces", str(synth["cube"]), "-o", str(synth["cube"]), "--overwrite"])
    assert result.exit_code == 2
    assert "input cube itself" in _one_error_line(result.stderr)
    with xr.open_zarr(synth["cube"], consolidated=False) as ds:
        assert "salt_probability" in ds


# ---------------------------------------------------------------- library exports
def test_lazy_top_level_exports():
    import subprocess
    import sys

    code = (
        "import sys, saltvol\n"
        "names = ['export_segy', 'info', 'preview', 'bodies', 'surfaces']\n"
        "assert set(names) <= set(saltvol.__all__)\n"
        "assert not any(m in sys.modules for m in ('xarray', 'torch')), 'import saltvol must stay light'\n"
        "for name in names:\n"
        "    assert callable(getattr(saltvol, name)), name\n"
        "from saltvol.io.segy_export import export_segy\n"
        "assert saltvol.export_segy is export_segy\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
