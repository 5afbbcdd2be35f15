"""Benchmark memory: peak RSS of the whole ``saltvol segment`` process tree for volumes of two (or more) sizes.

``saltvol segment`` streams: each task holds one block of whole sections (at most about 128 MB of
amplitudes) plus one batch of tiles, whatever the volume size, so its peak memory should stay flat
as the volume grows.  This runs the same command on synthetic volumes of each ``--sizes`` entry (one
whole process each, round-robin when --reps > 1) and samples the RSS of the process and all its
children (LocalCluster workers with ``--workers``) every 50 ms with psutil, summed.

**Ratio = peak tree RSS of the largest volume / that of the smallest** (goal <= 1.2: flat).

The defaults are small so that the script runs in minutes on a busy machine; the real check is::

    python benchmarks/bench_memory.py --sizes 300x300x500 600x600x1000 --json benchmarks/results/memory.json

(180 MB and 1.44 GB of float32 amplitudes).  Building the 1.44 GB synthetic SEG-Y needs about 4-5 GB
of RAM for a minute (``saltvol synth`` makes the volume in memory), and the segmentation of it runs
for a long time on 2 CPU cores with the full-size model; ``--model`` with a small model file measures
the pipeline's own memory sooner (the network's weights and activations add a constant).

Usage::

    python benchmarks/bench_memory.py --tile 64 [--sizes 64x64x128 96x96x192] [--workers N] [--reps 1] [--json FILE]

Where a volume's sections are smaller than a tile (the default tile is 1024), its tiles shrink to the
section and so do the network's activations: the ratio then grows for reasons that have nothing to
do with streaming.  Small check runs therefore pass ``--tile 64``; the script warns when tile shapes
differ between the sizes.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as common

DEFAULT_SIZES = ("64x64x128", "96x96x192")
GOAL = 1.2


def parse_size(text: str) -> tuple[int, int, int]:
    parts = text.lower().split("x")
    if len(parts) != 3 or not all(p.isdigit() and int(p) > 0 for p in parts):
        raise argparse.ArgumentTypeError(f"{text!r} is not ILxXLxNS, e.g. 300x300x500")
    return tuple(int(p) for p in parts)  # type: ignore[return-value]


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sizes", type=parse_size, nargs="+", default=[parse_size(s) for s in DEFAULT_SIZES], metavar="ILxXLxNS")
    p.add_argument("--workers", type=int, default=None, help="pass --workers N to saltvol segment (default: local threads)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--model", default=None, help="model file (default: the bundled model, else an untrained one of its architecture)")
    p.add_argument("--light-model", action="store_true", help="use a ~10x cheaper untrained network (gigabyte volumes in minutes)")
    p.add_argument("--tile", type=int, default=None, help="--tile for saltvol segment (default: saltvol's)")
    p.add_argument("--interval", type=float, default=0.05, help="RSS sampling interval in seconds")
    p.add_argument("--reps", type=int, default=1, help="median of N round-robin repetitions")
    p.add_argument("--data", type=Path, default=common.DATA, help="cache folder for volumes, the model and outputs")
    p.add_argument("--json", default=None, help="write every run here")
    args = p.parse_args(argv)

    sizes = sorted(args.sizes, key=lambda s: s[0] * s[1] * s[2])
    machine, versions = common.machine(), common.versions()
    model, model_note = common.light_model(args.data) if args.light_model else common.benchmark_model(args.model, args.data)
    volumes = {s: common.synth_volume(s, args.seed, args.data) for s in sizes}
    extra = (["--tile", str(args.tile)] if args.tile else []) + (["--workers", str(args.workers)] if args.workers else [])
    name = {s: f"{s[0]}x{s[1]}x{s[2]}" for s in sizes}

    runs: dict[tuple, list[dict]] = {s: [] for s in sizes}
    for rep in range(args.reps):
        for s in sizes:
            print(f"rep {rep + 1}/{args.reps}: {name[s]} ...", file=sys.stderr, flush=True)
            out = args.data / "out" / f"memory_{name[s]}.zarr"
            common.fresh_output(out)
            cmd = [*common.SALTVOL, "segment", str(volumes[s]), "-o", str(out), "--model", str(model), "--device", "cpu", *extra]
            r = common.run(cmd, interval=args.interval, log=args.data / "out" / f"memory_{name[s]}.log")
            common.check(r, f"saltvol segment ({name[s]})")
            attrs = common.cube_attrs(out)
            r.update(tiles=attrs.get("tiles_inferred"), cube_seconds=attrs.get("seconds"))
            r.pop("stdout", None)
            runs[s].append(r)
            common.fresh_output(out)
    machine["loadavg_end"] = [round(x, 2) for x in os.getloadavg()]

    peak = {s: common.median([r["peak_tree_rss_mib"] for r in runs[s]]) for s in sizes}
    smallest = sizes[0]
    rows = []
    for s in sizes:
        mb = s[0] * s[1] * s[2] * 4 / 1e6
        rows.append([
            name[s], f"{mb:.1f}", runs[s][0]["tiles"], common.runs_text([r["wall_s"] for r in runs[s]]),
            common.runs_text([r["peak_tree_rss_mib"] for r in runs[s]], "{:.0f}"),
            f"{common.median([r['peak_process_rss_mib'] for r in runs[s]]):.0f}",
            max(r["processes"] for r in runs[s]),
            f"{peak[s] / peak[smallest]:.2f}",
        ])
    ratio = peak[sizes[-1]] / peak[smallest]
    tile = int(attrs.get("tile_size", 256))
    clipped = [name[s] for s in sizes if min(s) < tile]
    where = f"`--workers {args.workers}`" if args.workers else "local threads"
    common.print_header(f"Memory: peak RSS of the `saltvol segment` process tree ({where}), median of {args.reps}", machine, versions, f"Model: {model_note} (`{model}`). RSS sampled every {args.interval * 1000:.0f} ms with psutil, summed over the process and its children.")
    print(common.table(
        ["volume", "amplitudes MB (float32)", "tiles", "wall s (runs)", "peak tree RSS MiB (runs)", "largest process MiB", "processes", "ratio to smallest"],
        rows,
    ))
    verdict = "flat" if ratio <= GOAL else "not flat"
    print(f"\nPeak memory ratio, largest / smallest volume: **{ratio:.2f}** (goal <= {GOAL}: {verdict}).")
    if clipped:
        print(f"Warning: the sections of {', '.join(clipped)} are smaller than the {tile}-pixel tile, so their tiles (and the "
              "network's activations) are smaller too; pass a smaller --tile to compare like with like.")
    print("\nExact commands:\n")
    for s in sizes:
        print(f"    {runs[s][0]['cmd']}")
    common.write_json(args.json, {
        "benchmark": "memory", "command": common.command_line(), "machine": machine, "versions": versions,
        "model": str(model), "model_note": model_note, "ratio": ratio,
        "runs": {name[s]: runs[s] for s in sizes},
    })


if __name__ == "__main__":
    main()
