"""``saltvol synth``: write a synthetic SEG-Y volume around a salt body (and its truth mask)."""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path
from typing import TYPE_CHECKING

import click

from ..options import byte_location_opts, given, output_opt, overwrite_opt

if TYPE_CHECKING:
    import xarray as xr

#: Big enough to look like a survey, small enough that synth -> segment runs in about a minute on 2 cores.
DEFAULT_SHAPE = (96, 96, 160)
_FORMATS = {"ibm": 1, "ieee": 5}


@click.command("synth")
@output_opt("SEG-Y file to write.", metavar="FILE.sgy")
@click.option("--truth", type=click.Path(path_type=Path), default=None, metavar="DIR.zarr",
              help="Also write the true salt mask (uint8, 1 = salt) as a Zarr store.")
@click.option("--shape", type=(click.IntRange(min=1),) * 3, default=DEFAULT_SHAPE, show_default=True,
              metavar="IL XL NS", help="Inlines, crosslines and samples.")
@click.option("--seed", type=int, default=None, help="Random seed; the same seed gives the same volume.  [default: 0]")
@click.option("--period", type=float, default=None, metavar="SAMPLES",
              help="Dominant reflector period in samples (the bundled model was trained near 18).  [default: 25]")
@click.option("--noise", type=float, default=None, metavar="F", help="Noise level as a fraction of the signal RMS.")
@click.option("--format", "sample_format", type=click.Choice(sorted(_FORMATS)), default=None,
              help="Sample format of the SEG-Y traces.  [default: ieee]")
@byte_location_opts
@overwrite_opt
def command(
    output: Path,
    truth: Path | None,
    shape: tuple[int, int, int],
    seed: int | None,
    period: float | None,
    noise: float | None,
    sample_format: str | None,
    iline: int | None,
    xline: int | None,
    overwrite: bool,
) -> None:
    """Write a synthetic SEG-Y volume around a salt body.

    For demos, tests and benchmarks; --truth also writes the true salt mask.

    \b
    Example:
      saltvol synth -o synthetic.sgy --truth truth.zarr --shape 96 96 160 --seed 1
    """
    from saltvol.io.segy_write import write_segy
    from saltvol.synth import make_volume

    started = time.perf_counter()
    if truth is not None:
        _check_truth_target(truth, overwrite=overwrite)
    ds = make_volume(tuple(shape), **given(seed=seed, period=period, noise=noise))
    fmt = _FORMATS[sample_format] if sample_format else None
    write_segy(ds, output, overwrite=overwrite, **given(iline=iline, xline=xline, sample_format=fmt))
    if truth is not None:
        _write_truth(ds, truth, overwrite=overwrite)
    fraction = float(ds.attrs.get("salt_fraction", float(ds["salt"].mean())))
    extra = f" and {truth}" if truth is not None else ""
    click.echo(
        f"wrote {output}{extra}: {' x '.join(map(str, shape))} (iline x xline x sample), "
        f"{ds.attrs.get('salt_kind', 'salt')} covering {fraction:.0%}, {time.perf_counter() - started:.1f} s"
    )


# TODO: move to saltvol.io.zarr once it has a writer for plain (non-amplitude) cubes.
def _check_truth_target(path: Path, *, overwrite: bool) -> None:
    from saltvol.errors import OutputExistsError, OutputPathError

    if path.exists() and not overwrite:
        raise OutputExistsError(f"output {str(path)!r} exists; pass --overwrite to replace it")
    if path.is_dir() and not any((path / name).exists() for name in ("zarr.json", ".zgroup")):
        raise OutputPathError(f"{str(path)!r} is a folder but not a Zarr store; refusing to replace it, choose another --truth")
    parent = path.parent if str(path.parent) else Path(".")
    if not parent.is_dir():
        raise OutputPathError(f"folder {str(parent)!r} of the output does not exist; create it first")


def _write_truth(ds: xr.Dataset, path: Path, *, overwrite: bool) -> None:
    """The ``salt`` mask as a uint8 Zarr store, written under a temporary name and renamed into place."""
    salt = ds["salt"].astype("uint8")
    salt.attrs = {"long_name": "true salt mask", "flag_values": [0, 1], "flag_meanings": "sediment salt"}
    truth = salt.to_dataset(name="salt")
    truth.attrs = dict(ds.attrs)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        truth.to_zarr(tmp, mode="w")
        if overwrite and path.exists():
            shutil.rmtree(path) if path.is_dir() else path.unlink()
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)
