"""``saltvol bodies``: the connected salt bodies of a cube, measured, as JSON."""

from __future__ import annotations

import json
import os
import uuid
from pathlib import Path
from typing import Any

import click

from ..options import given, output_opt, overwrite_opt


@click.command("bodies")
@click.argument("cube", type=click.Path(path_type=Path), metavar="CUBE.zarr")
@output_opt("JSON file to write: one entry per body, largest first.", metavar="FILE.json")
@click.option("--threshold", type=float, default=None, metavar="T",
              help="A voxel is salt when its probability is above T.  [default: 0.5]")
@click.option("--min-voxels", type=click.IntRange(min=1), default=None, metavar="N",
              help="Drop bodies with fewer voxels.  [default: 100]")
@click.option("--connectivity", type=click.Choice(["6", "26"]), default=None,
              help="Voxels touching by a face (6) or also by an edge or corner (26).  [default: 26]")
@overwrite_opt
def command(
    cube: Path,
    output: Path,
    threshold: float | None,
    min_voxels: int | None,
    connectivity: str | None,
    overwrite: bool,
) -> None:
    """Find the connected salt bodies of a cube and measure them.

    Writes each body's voxel count, volume (depth data with coordinates),
    mean probability, bounding box and centroid, largest first.

    \b
    Example:
      saltvol bodies salt.zarr -o bodies.json --threshold 0.6 --min-voxels 500
    """
    from saltvol.io.cube import open_cube
    from saltvol.salt_bodies import bodies

    target = _check_output(output, overwrite=overwrite)
    found = bodies(
        open_cube(cube),
        **given(threshold=threshold, min_voxels=min_voxels, connectivity=int(connectivity) if connectivity else None),
    )
    _write_json(found, target)
    click.echo(f"wrote {target}: {_summary(found)}")


def _check_output(path: Path, *, overwrite: bool) -> Path:
    from saltvol.io.cube import check_file_output

    return check_file_output(path, overwrite=overwrite, example="bodies.json")


def _write_json(value: Any, path: Path) -> None:
    """Write under a hidden temporary name next to ``path``, then rename into place."""
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:12]}.partial")
    try:
        tmp.write_text(json.dumps(value, indent=2, allow_nan=False) + "\n")
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def _summary(found: list[dict[str, Any]]) -> str:
    if not found:
        return "no salt bodies"
    largest = found[0]
    volume = f", {largest['volume_m3']:.3g} m3" if largest.get("volume_m3") is not None else ""
    noun = "body" if len(found) == 1 else "bodies"
    return f"{len(found)} {noun}, the largest {largest['voxels']} voxels{volume}"
