"""``saltvol segment``: a salt-probability cube from a SEG-Y or Zarr volume."""

from __future__ import annotations

import logging
import time
from contextlib import ExitStack
from pathlib import Path

import click

from ..options import (
    CommaList,
    ScaleType,
    batch_size_opt,
    byte_location_opts,
    device_opt,
    given,
    model_opt,
    output_opt,
    overwrite_opt,
    resume_opt,
)
from ..ui import progress_bar

log = logging.getLogger(__name__)


@click.command("segment")
@click.argument("source", type=click.Path(path_type=Path), metavar="INPUT")
@output_opt("Zarr store for the salt probability (0..1).", metavar="OUT.zarr")
@model_opt
@byte_location_opts
@click.option("--tile", "tile_size", type=click.IntRange(min=16), default=None, metavar="N",
              help="Tile size in pixels: sections up to this size go through the network whole.  [default: 1024]")
@click.option("--overlap", type=click.FloatRange(0, 1, max_open=True), default=None, metavar="F",
              help="Fraction of a tile shared with its neighbour.  [default: 0.5]")
@click.option("--orientations", type=CommaList(("iline", "xline")), default=None,
              help="Sections to segment and fuse.  [default: iline,xline]")
@batch_size_opt
@device_opt
@click.option("--scale", type=ScaleType(), default=None,
              help="Resample sections so reflectors look like the training tiles: auto, or a factor.  [default: auto]")
@overwrite_opt
@resume_opt
@click.option("--scheduler", default=None, metavar="tcp://HOST:PORT", help="Run on an existing Dask cluster.")
@click.option("--workers", type=click.IntRange(min=1), default=None, metavar="N",
              help="Start a local Dask cluster of N single-threaded worker processes.")
@click.option("--uncertainty", is_flag=True, default=False,
              help="Also write the disagreement between orientations as a second variable.")
def command(
    source: Path,
    output: Path,
    model: Path | None,
    iline: int | None,
    xline: int | None,
    tile_size: int | None,
    overlap: float | None,
    orientations: tuple[str, ...] | None,
    batch_size: int | None,
    device: str | None,
    scale: str | float | None,
    overwrite: bool,
    resume: bool,
    scheduler: str | None,
    workers: int | None,
    uncertainty: bool,
) -> None:
    """Segment salt in a SEG-Y or Zarr volume.

    Writes a salt-probability cube (0..1) with the input's coordinates.

    Every inline and crossline section is cut into overlapping tiles on one
    global grid, predicted, blended and the orientations fused, so the result
    does not depend on chunking or the number of workers.  An interrupted run
    continues where it stopped with --resume.

    \b
    Examples:
      saltvol segment synthetic.sgy -o salt.zarr
      saltvol segment survey.zarr -o salt.zarr --workers 4 --model run/model.safetensors
      saltvol segment survey.zarr -o salt.zarr --scheduler tcp://10.0.0.5:8786 --resume
    """
    if scheduler and workers:
        raise click.UsageError("--scheduler and --workers exclude each other: use a running cluster or start one")
    import saltvol

    started = time.perf_counter()
    with ExitStack() as stack:
        client = _client(stack, scheduler=scheduler, workers=workers)
        with progress_bar("segment") as progress:
            out = saltvol.segment_to_zarr(
                source,
                output,
                overwrite=overwrite,
                resume=resume,
                uncertainty=uncertainty,
                client=client,
                progress=progress,
                **given(
                    model=model, iline=iline, xline=xline, tile_size=tile_size, overlap=overlap,
                    orientations=orientations, batch_size=batch_size, device=device, scale=scale,
                ),
            )
    shape = _shape(out)
    click.echo(f"wrote {out}: {shape}, {time.perf_counter() - started:.1f} s")


def _client(stack: ExitStack, *, scheduler: str | None, workers: int | None):  # -> distributed.Client | None
    """A Dask client on the given scheduler or on a new local cluster, closed when ``stack`` exits."""
    if not scheduler and not workers:
        return None
    from distributed import Client, LocalCluster

    if scheduler:
        log.info("connecting to the Dask scheduler at %s", scheduler)
        return stack.enter_context(Client(scheduler))
    log.info("starting a local Dask cluster of %d worker processes", workers)
    import dask

    # Dask starts workers with MALLOC_TRIM_THRESHOLD_=65536, which makes glibc hand memory back after every
    # batch of tiles: inference ran about 1.6x slower that way (docs/benchmarks.md). Keep freed memory instead,
    # in one arena, so that task threads use the main heap (saltvol/_allocator.py explains both).
    environ = {"MALLOC_TRIM_THRESHOLD_": str(1 << 30), "MALLOC_ARENA_MAX": "1"}
    with dask.config.set({f"distributed.nanny.pre-spawn-environ.{k}": v for k, v in environ.items()}):
        cluster = stack.enter_context(LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None))
    return stack.enter_context(Client(cluster))


def _shape(path: Path) -> str:
    import xarray as xr

    with xr.open_zarr(path, consolidated=None) as ds:
        dims = ds["salt_probability"].sizes if "salt_probability" in ds else ds.sizes
        return " x ".join(f"{n} {d}" for d, n in dims.items())
