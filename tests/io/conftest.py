"""Small synthetic SEG-Y files (12 inlines x 10 crosslines x 50 samples) for the io tests.

Every file is written once per session with ``segyio.create`` and comes with
the volume it should read back as (dead cells 0), so tests compare against
known truth rather than against the reader itself.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import segyio

N_IL, N_XL, N_SAMPLES = 12, 10, 50
ILINES = 100 + 2 * np.arange(N_IL)  # 100, 102, ... (step 2)
XLINES = 300 + np.arange(N_XL)
DT_US = 4000
DELAY_MS = 8


@dataclass(frozen=True)
class Synth:
    """A synthetic SEG-Y file and what reading it must give."""

    path: Path
    kind: str  # "3d" or "2d"
    data: np.ndarray  # (il, xl, sample) or (cdp, sample) float32, 0 where dead
    ilines: np.ndarray  # for 2d: the CDP numbers
    xlines: np.ndarray
    live: np.ndarray
    cdp_x: np.ndarray  # NaN where dead
    cdp_y: np.ndarray
    iline: int
    xline: int
    sorting: str
    sample_format: int


def _volume(fmt: int, seed: int = 0) -> np.ndarray:
    """Values exact in IBM, IEEE and int16 (multiples of 1/8, or integers for int16)."""
    rng = np.random.default_rng(seed)
    ints = rng.integers(-3000, 3000, size=(N_IL, N_XL, N_SAMPLES))
    return (ints if fmt == 3 else ints / 8).astype(np.float32)


def _coords(n_il: int, n_xl: int) -> tuple[np.ndarray, np.ndarray]:
    """CDP coordinates with 2 decimals (written as int * 100, scalar -100)."""
    i, j = np.meshgrid(np.arange(n_il), np.arange(n_xl), indexing="ij")
    return 500000.0 + 25.0 * i + 12.5 * j + 0.25, 6000000.0 + 12.5 * i - 25.0 * j + 0.75


def write_segy(
    path: Path,
    traces: np.ndarray,
    headers: list[dict[int, int]],
    *,
    fmt: int = 1,
) -> Path:
    """Write traces (n, ns) with the given trace-header words, plus dt and delay."""
    spec = segyio.spec()
    spec.format = fmt
    spec.samples = list(range(traces.shape[1]))
    spec.tracecount = traces.shape[0]
    with segyio.create(str(path), spec) as f:
        f.bin.update(hdt=DT_US, hns=traces.shape[1], format=fmt)
        for k, (trace, words) in enumerate(zip(traces, headers)):
            f.header[k] = {
                segyio.TraceField.TRACE_SAMPLE_COUNT: traces.shape[1],
                segyio.TraceField.TRACE_SAMPLE_INTERVAL: DT_US,
                segyio.TraceField.DelayRecordingTime: DELAY_MS,
                **words,
            }
            f.trace[k] = trace.astype(f.dtype)
    return path


def make_3d(
    path: Path,
    *,
    fmt: int = 1,
    iline: int = 189,
    xline: int = 193,
    order: str = "iline",
    dead: tuple[tuple[int, int], ...] = (),
    duplicate: tuple[int, int] | None = None,
    coord_bytes: tuple[int, int, int] = (181, 185, -100),
) -> Synth:
    """Write a 3D file: grid order, dead cells, an optional duplicated cell, coordinate bytes."""
    data = _volume(fmt)
    x, y = _coords(N_IL, N_XL)
    cells = [(i, j) for i in range(N_IL) for j in range(N_XL)]
    if order == "xline":
        cells = [(i, j) for j in range(N_XL) for i in range(N_IL)]
    elif order == "unsorted":
        rng = np.random.default_rng(1)
        cells = [cells[k] for k in rng.permutation(len(cells))]
    cells = [c for c in cells if c not in dead]
    if duplicate is not None:
        cells.append(duplicate)
    bx, by, scalar = coord_bytes
    factor = -scalar if scalar < 0 else 1.0 / scalar
    headers = [
        {
            iline: int(ILINES[i]),
            xline: int(XLINES[j]),
            bx: int(round(x[i, j] * factor)),
            by: int(round(y[i, j] * factor)),
            segyio.TraceField.SourceGroupScalar: scalar,
        }
        for i, j in cells
    ]
    traces = np.stack([data[i, j] for i, j in cells])
    write_segy(path, traces, headers, fmt=fmt)
    live = np.ones((N_IL, N_XL), dtype=bool)
    for cell in dead:
        live[cell] = False
    data[~live] = 0
    # what the headers hold once scaled back
    x, y = np.round(x * factor) / factor, np.round(y * factor) / factor
    return Synth(
        path=path,
        kind="3d",
        data=data,
        ilines=ILINES,
        xlines=XLINES,
        live=live,
        cdp_x=np.where(live, x, np.nan),
        cdp_y=np.where(live, y, np.nan),
        iline=iline,
        xline=xline,
        sorting=order,
        sample_format=fmt,
    )


def make_2d(path: Path, *, n: int = 30) -> Synth:
    """A 2D line: inline/crossline words 0, CDP numbers 1001.. in byte 21, IEEE floats."""
    data = _volume(5)[0, 0:1, :].repeat(n, axis=0) + np.arange(n, dtype=np.float32)[:, None]
    cdp = 1001 + np.arange(n)
    x = 430000.0 + 12.5 * np.arange(n)
    y = 6470000.0 + 6.25 * np.arange(n)
    headers = [
        {
            segyio.TraceField.CDP: int(cdp[k]),
            segyio.TraceField.CDP_X: int(round(x[k] * 100)),
            segyio.TraceField.CDP_Y: int(round(y[k] * 100)),
            segyio.TraceField.SourceGroupScalar: -100,
        }
        for k in range(n)
    ]
    write_segy(path, data, headers, fmt=5)
    return Synth(path, "2d", data, cdp, cdp, np.ones(n, bool), x, y, 189, 21, "iline", 5)


@pytest.fixture(scope="session")
def synth(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Synth]:
    """All synthetic files, by name."""
    d = tmp_path_factory.mktemp("segy")
    return {
        "ibm": make_3d(d / "ibm.sgy", fmt=1),
        "ieee": make_3d(d / "ieee.sgy", fmt=5),
        "int16": make_3d(d / "int16.sgy", fmt=3),
        "xline_sorted": make_3d(d / "xline_sorted.sgy", fmt=5, order="xline"),
        "unsorted": make_3d(d / "unsorted.sgy", fmt=5, order="unsorted"),
        "bytes_9_21": make_3d(d / "bytes_9_21.sgy", iline=9, xline=21),
        "bytes_5_21": make_3d(d / "bytes_5_21.sgy", iline=5, xline=21),
        "dead": make_3d(d / "dead.sgy", dead=((0, 0), (3, 4), (11, 9))),
        "coords_73_77": make_3d(d / "coords_73_77.sgy", coord_bytes=(73, 77, 10)),
        "line2d": make_2d(d / "line2d.sgy"),
    }


@pytest.fixture(scope="session")
def duplicate_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 3D file in which cell (2, 2) appears twice."""
    return make_3d(tmp_path_factory.mktemp("dup") / "duplicate.sgy", duplicate=(2, 2)).path
