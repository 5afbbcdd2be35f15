"""Run the main job on a local Dask cluster, exactly as on a real one.

Starts a LocalCluster of worker processes (one thread each), writes a small
synthetic SEG-Y, and streams its salt cube to Zarr through the cluster. For a
real cluster, replace the LocalCluster with Client("tcp://scheduler:8786").

    python examples/local_cluster.py [--workers 2] [--model PATH] [--out DIR]
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import xarray as xr
from distributed import Client, LocalCluster

import saltvol
from saltvol.io.segy_write import write_segy
from saltvol.synth import make_volume


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--model", default=None)
    parser.add_argument("--tile", type=int, default=None)
    parser.add_argument("--out", type=Path, default=Path(tempfile.mkdtemp(prefix="saltvol-")))
    args = parser.parse_args()

    segy = write_segy(make_volume((32, 32, 96), seed=3), args.out / "volume.sgy", overwrite=True)
    with LocalCluster(n_workers=args.workers, threads_per_worker=1, processes=True, dashboard_address=None) as cluster, Client(cluster) as client:
        cube = saltvol.segment_to_zarr(
            segy, args.out / "salt.zarr", model=args.model, tile_size=args.tile, client=client, overwrite=True
        )
    result = xr.open_zarr(cube)
    print(f"{cube}: {dict(result.salt_probability.sizes)}, tiles inferred: {result.attrs['tiles_inferred']}")


if __name__ == "__main__":
    main()
