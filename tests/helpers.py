"""Helpers shared by the tests that drive the real CLI in subprocesses."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np


def _env() -> dict[str, str]:
    return dict(os.environ, COLUMNS="100", PYTHONUNBUFFERED="1")


def default_sigint() -> None:
    """Give a child Python its own Ctrl-C handling even when the tests run in the background.

    A shell starts background jobs with SIGINT ignored, children inherit that,
    and Python then leaves it ignored: a Ctrl-C test would see the run finish.
    Pass it as ``preexec_fn`` to every child a test sends SIGINT to.
    """
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def saltvol(*args: object, timeout: float = 150) -> subprocess.CompletedProcess[str]:
    """Run ``python -m saltvol_cli ARGS`` to completion."""
    return subprocess.run(
        [sys.executable, "-m", "saltvol_cli", *map(str, args)],
        env=_env(), capture_output=True, text=True, timeout=timeout, check=False,
    )


def segment_args(source: Path, out: Path, model: Path) -> list[object]:
    return ["segment", source, "-o", out, "--model", model, "--device", "cpu", "--tile", 64]


def read_cube(path: Path) -> np.ndarray:
    import xarray as xr

    with xr.open_zarr(path) as ds:
        return ds["salt_probability"].values
