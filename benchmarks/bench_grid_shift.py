"""How much ``saltvol segment`` depends on where the volume starts: the synthetic dome cropped by a few samples and traces.

A section reaches the network on its own grid: it is predicted whole (or on
tiles from its first pixel), and the encoder downsamples by 2 five times, so
what the network sees depends on where the geology falls on a 32 px grid.  An
interpreter who cuts the same volume a few samples later should get the same
salt.  This crops the README demo dome (``saltvol.synth.make_volume`` with the
README's defaults) by ``k`` samples at the top and ``k`` crosslines at the
start, segments each crop with the same amplitude statistics and scale as the
uncropped volume, and compares each with the uncropped result on one fixed
interior region: the voxels at least ``max(k) + margin`` samples and crosslines
from the uncropped start, so every crop keeps ``margin`` voxels of context before
the region and what changes is the placement on the stride grid (and context
far away).  The default shifts cover one full 32 px grid cycle at the dome's
scale (0.75: 43 samples are 32 network pixels).

* mean |p_k - p_0| and the share of voxels whose call at 0.5 flips;
* 3D IoU of ``p_k > 0.5`` against the true mask on the same region, so a model that is steady but wrong shows.

Usage::

    python benchmarks/bench_grid_shift.py [--model A --model B] [--shifts 0,1,2,3,5,8,13,21,32,43] [--margin 16]

Not a test: it prints a markdown table.  Networks trained with ``--frame-jitter``
were meant to be steadier here (docs/model.md, "Session 23").
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as common

#: The README's ``saltvol synth`` default: (iline, xline, sample).
SHAPE = (96, 96, 160)


def _shifts(text: str) -> list[int]:
    try:
        values = sorted({int(v) for v in text.split(",")})
    except ValueError:
        raise argparse.ArgumentTypeError(f"--shifts takes whole numbers separated by commas, not {text!r}") from None
    if values[0] != 0:
        raise argparse.ArgumentTypeError("--shifts must start at 0 (the uncropped reference) and hold no negatives")
    return values


def _label(path: Path) -> str:
    """The file name, with its run folder when the name alone says nothing (``runs/X/model.safetensors``)."""
    return f"{path.parent.name}/{path.name}" if path.name == "model.safetensors" else path.name


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", action="append", default=None, metavar="PATH",
                   help="a model file (repeat for several, side by side); default: the bundled model")
    p.add_argument("--shifts", type=_shifts, default=_shifts("0,1,2,3,5,8,13,21,32,43"), metavar="K,K,...",
                   help="samples (and crosslines) cropped from the start; must include 0")
    p.add_argument("--margin", type=int, default=16, help="context every crop keeps before the compared region")
    args = p.parse_args(argv)
    start = max(args.shifts) + args.margin
    if args.margin < 0 or start > SHAPE[1] - 16:
        p.error(f"the largest shift plus --margin ({start}) must leave at least 16 of the dome's {SHAPE[1]} crosslines to compare")

    import saltvol
    from saltvol.inference import resolve_scale, volume_stats
    from saltvol.synth import make_volume

    models = [common.benchmark_model(m) for m in (args.model or [None])]
    for path, _ in models:
        if not path.is_file():
            raise SystemExit(f"bench_grid_shift: model {path} does not exist; pass a model file to --model")
    volume = make_volume(SHAPE)
    truth = volume["salt"].values.astype(bool)
    stats = volume_stats(volume)
    rows = []
    for path, _ in models:
        model = saltvol.load_model(path, device="cpu")
        factor = resolve_scale("auto", stats, model)
        reference = None
        for k in args.shifts:
            crop = volume.isel(xline=slice(k, None), sample=slice(k, None))
            prob = saltvol.segment(crop, model=model, stats=stats, scale=factor).values
            if reference is None:
                reference = prob[:, start:, start:]
            here = prob[:, start - k :, start - k :]
            found, salt = here > 0.5, truth[:, start:, start:]
            union = np.logical_or(found, salt).sum()
            iou = np.logical_and(found, salt).sum() / union if union else float("nan")
            rows.append([_label(path), f"{factor:.2f}", str(k), f"{np.abs(here - reference).mean():.4f}",
                         f"{np.mean(found != (reference > 0.5)):.4f}", f"{iou:.3f}"])
    machine = common.machine()
    machine["loadavg_end"] = [round(x, 2) for x in os.getloadavg()]
    common.print_header(f"saltvol segment of the README dome, cropped by k samples and k crosslines; compared from voxel {start} on", machine, common.versions(),
                        "Models: " + "; ".join(how for _, how in models))
    print(common.table(["model", "scale", "k", "mean |p_k - p_0|", "calls flipped at 0.5", "3D IoU at 0.5"], rows))


if __name__ == "__main__":
    main()
