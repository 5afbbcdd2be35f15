"""Segment a volume from Python: xarray in, xarray out.

Makes a small synthetic volume with a known salt body, segments it lazily with
the bundled model (or --model PATH), and compares the result with the truth.

    python examples/segment_from_python.py [--model PATH] [--shape 48 48 128]
"""

from __future__ import annotations

import argparse

import saltvol
from saltvol.metrics import iou
from saltvol.synth import make_volume


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=None, help="model file (default: the bundled model)")
    parser.add_argument("--shape", type=int, nargs=3, default=(48, 48, 128))
    parser.add_argument("--tile", type=int, default=None)
    args = parser.parse_args()

    ds = make_volume(tuple(args.shape), seed=7)  # amplitude + the true salt mask
    prob = saltvol.segment(ds, model=args.model, tile_size=args.tile)  # lazy: nothing computed yet
    prob = prob.compute()
    print(prob)
    print(f"mean probability inside salt: {float(prob.where(ds.salt).mean()):.3f}")
    print(f"mean probability outside salt: {float(prob.where(~ds.salt).mean()):.3f}")
    print(f"3D IoU at 0.5: {iou(prob.values > 0.5, ds.salt.values):.3f}")


if __name__ == "__main__":
    main()
