"""`saltvol segment` on every shared real SEG-Y: the cube's axes equal what segyio reads from the file."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import segyio
import xarray as xr

from tests.conftest import SEGY_DIR

FILES = sorted(SEGY_DIR.glob("*.sgy")) if SEGY_DIR.is_dir() else []


def _segyio_axes(path):
    """(ilines, xlines, samples) as segyio reports them; 2D lines and irregular files from the raw headers."""
    try:
        with segyio.open(path) as f:
            return np.asarray(f.ilines), np.asarray(f.xlines), np.asarray(f.samples)
    except (RuntimeError, ValueError):
        with segyio.open(path, ignore_geometry=True) as f:
            il = f.attributes(segyio.TraceField.INLINE_3D)[:]
            xl = f.attributes(segyio.TraceField.CROSSLINE_3D)[:]
            cdp = f.attributes(segyio.TraceField.CDP)[:]
            samples = np.asarray(f.samples)
        if len(np.unique(il)) > 1:
            return np.unique(il), np.unique(xl), samples
        return None, np.unique(cdp), samples


@pytest.mark.slow
@pytest.mark.parametrize("path", FILES, ids=[p.name for p in FILES])
def test_segment_matches_segyio_axes(path, tmp_path, tiny_model_path):
    out = tmp_path / "salt.zarr"
    done = subprocess.run(
        [sys.executable, "-m", "saltvol_cli", "-q", "segment", str(path), "-o", str(out), "--model", str(tiny_model_path), "--tile", "64", "--scale", "1"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    ilines, xlines, samples = _segyio_axes(path)
    cube = xr.open_zarr(out)
    prob = cube.salt_probability
    np.testing.assert_allclose(cube.sample.values, samples)
    if ilines is None:
        assert prob.dims == ("cdp", "sample")
        np.testing.assert_array_equal(cube.cdp.values, xlines)
    else:
        assert prob.dims == ("iline", "xline", "sample")
        np.testing.assert_array_equal(cube.iline.values, ilines)
        np.testing.assert_array_equal(cube.xline.values, xlines)
    values = prob.values
    assert np.isfinite(values).all() and values.min() >= 0 and values.max() <= 1
