"""Segment a SEG-Y, export the cube back to SEG-Y with the source's headers, and plot a section.

    python examples/export_and_plot.py [SEGY] [--model PATH] [--out DIR]

Without SEGY a small synthetic volume is made first.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import segyio

import saltvol
from saltvol.io.segy_export import export_segy
from saltvol.io.segy_write import write_segy
from saltvol.plotting import preview
from saltvol.synth import make_volume


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("segy", nargs="?", type=Path)
    parser.add_argument("--model", default=None)
    parser.add_argument("--tile", type=int, default=None)
    parser.add_argument("--out", type=Path, default=Path(tempfile.mkdtemp(prefix="saltvol-")))
    args = parser.parse_args()

    segy = args.segy or write_segy(make_volume((24, 28, 96), seed=5), args.out / "volume.sgy", overwrite=True)
    cube = saltvol.segment_to_zarr(segy, args.out / "salt.zarr", model=args.model, tile_size=args.tile, overwrite=True)
    exported = export_segy(cube, segy, args.out / "salt.sgy", overwrite=True)
    png = preview(cube, args.out / "section.png", seismic=segy, overwrite=True)
    with segyio.open(exported, ignore_geometry=True) as f:
        print(f"{exported}: {f.tracecount} traces of {len(f.samples)} samples (headers copied from {segy.name})")
    print(f"preview: {png}")


if __name__ == "__main__":
    main()
