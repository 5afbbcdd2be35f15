"""Benchmark scaling: ``saltvol segment`` on 1 and 2 worker processes and on local threads, side by side.

Each configuration is one whole ``saltvol segment`` process on the same synthetic volume and model
(round-robin when --reps > 1), timed from interpreter start to exit:

* ``threads``:  local Dask threads (no option; as many blocks at once as cores, one torch thread each),
* ``workers1``: ``--workers 1`` (a LocalCluster of one single-threaded worker process),
* ``workers2``: ``--workers 2`` (two of them).

**Speedup = wall(workers1) / wall(workers2)** (goal >= 1.8 on 2 cores); threads are compared with
workers1 the same way.  Every cube is compared with the first configuration's (max abs diff: the
result must not depend on the worker count).

``--big`` runs the 400 x 400 x 400 end-to-end check instead (goal: <= 3 min with local threads);
it writes a 256 MB SEG-Y and about 1 GB of Zarr into --data and takes minutes, so it is not run by default.

Usage::

    python benchmarks/bench_scaling.py [--shape 64 64 200] [--configs threads,workers1,workers2] [--reps 1] [--json FILE]
    python benchmarks/bench_scaling.py --big [--configs threads] [--json FILE]
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as common

DEFAULT_SHAPE = (64, 64, 200)
BIG_SHAPE = (400, 400, 400)
BIG_GOAL_S = 180.0
CONFIGS = {"threads": [], "workers1": ["--workers", "1"], "workers2": ["--workers", "2"]}
LABELS = {
    "threads": "local threads (default)",
    "workers1": "`--workers 1` (1 process x 1 thread)",
    "workers2": "`--workers 2` (2 processes x 1 thread)",
}


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--shape", type=int, nargs=3, default=None, metavar=("IL", "XL", "NS"), help=f"default {DEFAULT_SHAPE}, or {BIG_SHAPE} with --big")
    p.add_argument("--big", action="store_true", help=f"the {BIG_SHAPE[0]}^3 end-to-end run (goal <= {BIG_GOAL_S:.0f} s); default --configs threads")
    p.add_argument("--configs", default=None, help="comma-separated from threads, workers1, workers2 (default: all; threads with --big)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--model", default=None, help="model file (default: the bundled model, else an untrained one of its architecture)")
    p.add_argument("--tile", type=int, default=None, help="--tile for saltvol segment (default: saltvol's)")
    p.add_argument("--reps", type=int, default=1, help="median of N round-robin repetitions")
    p.add_argument("--data", type=Path, default=common.DATA, help="cache folder for volumes, the model and outputs")
    p.add_argument("--json", default=None, help="write every run here")
    args = p.parse_args(argv)

    shape = tuple(args.shape or (BIG_SHAPE if args.big else DEFAULT_SHAPE))
    configs = (args.configs or ("threads" if args.big else ",".join(CONFIGS))).split(",")
    unknown = [c for c in configs if c not in CONFIGS]
    if unknown:
        p.error(f"unknown --configs {unknown}; choose from {', '.join(CONFIGS)}")
    machine, versions = common.machine(), common.versions()
    model, model_note = common.benchmark_model(args.model, args.data)
    sgy = common.synth_volume(shape, args.seed, args.data)
    outs = {c: args.data / "out" / f"scaling_{c}.zarr" for c in configs}
    extra = ["--tile", str(args.tile)] if args.tile else []

    runs: dict[str, list[dict]] = {c: [] for c in configs}
    for rep in range(args.reps):
        for c in configs:
            print(f"rep {rep + 1}/{args.reps}: {c} ...", file=sys.stderr, flush=True)
            common.fresh_output(outs[c])
            cmd = [*common.SALTVOL, "segment", str(sgy), "-o", str(outs[c]), "--model", str(model), "--device", "cpu", *extra, *CONFIGS[c]]
            r = common.run(cmd, log=args.data / "out" / f"scaling_{c}.log")
            common.check(r, f"saltvol segment ({c})")
            r["cube_seconds"] = common.cube_attrs(outs[c]).get("seconds")
            r.pop("stdout", None)
            runs[c].append(r)
    machine["loadavg_end"] = [round(x, 2) for x in os.getloadavg()]
    attrs = common.cube_attrs(outs[configs[0]])
    tiles = int(attrs["tiles_inferred"])
    wall = {c: common.median([r["wall_s"] for r in runs[c]]) for c in configs}
    diffs = {c: common.max_abs_diff(outs[c], outs[configs[0]]) for c in configs}
    base = wall.get("workers1")

    rows = []
    for c in configs:
        rows.append([
            LABELS[c], common.runs_text([r["wall_s"] for r in runs[c]]),
            f"{common.median([r['cpu_s'] for r in runs[c]]):.1f}",
            f"{common.median([r['cube_seconds'] for r in runs[c]]):.1f}",
            f"{tiles / wall[c]:.2f}",
            f"{base / wall[c]:.2f}x" if base else "–",
            f"{common.median([r['peak_tree_rss_mib'] for r in runs[c]]):.0f}",
            f"{diffs[c]:.1e}" if c != configs[0] else "(reference)",
        ])

    title = "End to end, big volume" if args.big else "Scaling"
    common.print_header(f"{title}: {shape[0]} x {shape[1]} x {shape[2]}, {tiles} tiles, median of {args.reps}", machine, versions, f"Model: {model_note} (`{model}`); tile {attrs['tile_size']}, batch {attrs['batch_size']}, scale {attrs['scale']}.")
    print(common.table(
        ["configuration", "wall s (runs)", "CPU s", "in-run s (cube attr)", "tiles/s", "speedup vs workers1", "peak tree RSS MiB", "max abs diff vs first"],
        rows,
    ))
    summary = {}
    if "workers1" in wall and "workers2" in wall:
        summary["speedup_2_workers"] = wall["workers1"] / wall["workers2"]
        print(f"\nSpeedup of 2 workers over 1: **{summary['speedup_2_workers']:.2f}x** (goal >= 1.8x on 2 cores).")
    if "workers1" in wall and "threads" in wall:
        summary["speedup_threads"] = wall["workers1"] / wall["threads"]
        print(f"Local threads against 1 worker: **{summary['speedup_threads']:.2f}x**.")
    if args.big:
        for c in configs:
            verdict = "meets" if wall[c] <= BIG_GOAL_S else "misses"
            print(f"{LABELS[c]}: {wall[c]:.0f} s end to end, {verdict} the goal of <= {BIG_GOAL_S:.0f} s.")
    print("\nExact commands:\n")
    for c in configs:
        print(f"    {runs[c][0]['cmd']}")
    common.write_json(args.json, {
        "benchmark": "scaling", "command": common.command_line(), "machine": machine, "versions": versions,
        "model": str(model), "model_note": model_note, "shape": shape, "cube_attrs": attrs, "summary": summary,
        "max_abs_diff": diffs, "runs": runs,
    })


if __name__ == "__main__":
    main()
