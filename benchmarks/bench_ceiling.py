"""The most two processes can gain on this machine: raw ``predict_tiles`` alone against two side by side.

``bench_scaling.py`` compares ``saltvol segment --workers 1`` with ``--workers 2``.  Whatever the
pipeline does, that speedup cannot exceed what the bare model gains when two single-threaded
processes run it at once, because two cores share caches and memory bandwidth.  This script
measures that ceiling with no Dask, no I/O and no blending:

* ``one``:  one process, one torch thread, predicting ``2 N`` tiles;
* ``two``:  two such processes started together, each predicting ``N`` tiles.

Each process loads the model and runs one warm-up batch before its clock starts, and reports the
seconds of its prediction loop.  **Ceiling = one / max(two)**.

Usage::

    python benchmarks/bench_ceiling.py [--tiles 48] [--tile 256] [--batch 4] [--model PATH] [--reps 2] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as common

WORKER = """
import json, sys, time
import numpy as np, torch
torch.set_num_threads(1)
import saltvol
model = saltvol.load_model(sys.argv[1], device="cpu")
n, tile, batch = int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
tiles = np.random.default_rng(0).random((n, tile, tile), dtype=np.float32)
model.predict_tiles(tiles[:batch], batch_size=batch)
print("ready", flush=True)
sys.stdin.readline()  # start together
started = time.perf_counter()
model.predict_tiles(tiles, batch_size=batch)
print(json.dumps({"seconds": time.perf_counter() - started}), flush=True)
"""


def _start(model: Path, n: int, tile: int, batch: int) -> subprocess.Popen:
    proc = subprocess.Popen([common.PY, "-c", WORKER, str(model), str(n), str(tile), str(batch)],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    if proc.stdout.readline().strip() != "ready":
        raise SystemExit(f"the benchmark worker failed to start (exit {proc.wait()})")
    return proc


def _timed(procs: list[subprocess.Popen]) -> list[float]:
    for proc in procs:
        proc.stdin.write("go\n")
        proc.stdin.flush()
    seconds = [json.loads(proc.stdout.readline())["seconds"] for proc in procs]
    for proc in procs:
        proc.wait()
    return seconds


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--tiles", type=int, default=48, help="tiles per process in the pair (the single process runs twice as many)")
    p.add_argument("--tile", type=int, default=256)
    p.add_argument("--batch", type=int, default=4)
    p.add_argument("--model", default=None, help="model file (default: the bundled model)")
    p.add_argument("--reps", type=int, default=2, help="median of N round-robin repetitions")
    p.add_argument("--data", type=Path, default=common.DATA)
    p.add_argument("--json", default=None)
    args = p.parse_args(argv)

    machine, versions = common.machine(), common.versions()
    model, model_note = common.benchmark_model(args.model, args.data)
    one, two = [], []
    for rep in range(args.reps):
        print(f"rep {rep + 1}/{args.reps} ...", file=sys.stderr, flush=True)
        one.append(_timed([_start(model, 2 * args.tiles, args.tile, args.batch)])[0])
        two.append(max(_timed([_start(model, args.tiles, args.tile, args.batch) for _ in range(2)])))
    t_one, t_two = common.median(one), common.median(two)
    ceiling = t_one / t_two
    common.print_header(f"Two-process ceiling: raw predict_tiles, {args.tile} x {args.tile} tiles, batch {args.batch}, median of {args.reps}", machine, versions, f"Model: {model_note} (`{model}`).")
    print(common.table(
        ["configuration", "tiles", "seconds (runs)", "tiles/s"],
        [
            ["one process, 1 thread", 2 * args.tiles, common.runs_text(one), f"{2 * args.tiles / t_one:.2f}"],
            ["two processes side by side, 1 thread each (slower of the two)", f"2 x {args.tiles}", common.runs_text(two), f"{2 * args.tiles / t_two:.2f}"],
        ],
    ))
    print(f"\nCeiling of a 2-process speedup here: **{ceiling:.2f}x** (the pipeline's goal is >= 1.8x).")
    common.write_json(args.json, {
        "benchmark": "ceiling", "command": common.command_line(), "machine": machine, "versions": versions,
        "model": str(model), "model_note": model_note, "tiles": args.tiles, "tile": args.tile, "batch": args.batch,
        "one_s": one, "two_s": two, "ceiling": ceiling,
    })


if __name__ == "__main__":
    main()
