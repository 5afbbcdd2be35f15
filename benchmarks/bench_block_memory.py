"""Benchmark memory of one block: what a worker holds while it segments one block of whole sections.

``bench_memory.py`` measures whole ``saltvol segment`` processes; when its ratio is above 1.2, this
says whether the block stage (reading, image units, tiles, network, blending) is what grows, and with
which tile size.  For each volume and ``--tiles`` entry it starts a fresh process that loads the
model, measures the volume's statistics, reads the first crossline block exactly as ``segment``
chunks it (:func:`saltvol.inference.section_chunks`) and segments it twice, then prints the
process's high-water RSS (``VmHWM``) after each step.  The difference between sizes at the same
tile is the pipeline's own growth; the difference between tiles is the network's activations.

Usage::

    python benchmarks/bench_block_memory.py --light-model --sizes 300x300x500 600x600x1000 --tiles 1024 512
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as common
from bench_memory import parse_size

_CHILD = r"""
import json, sys
import numpy as np
from saltvol._allocator import tune_allocator
tune_allocator()  # as segment does, before anything allocates
import saltvol
from saltvol.inference import resolve_scale, section_chunks, segment_sections, volume_stats

def hwm():
    status = open("/proc/self/status").read()
    return int(status.split("VmHWM:")[1].split()[0]) / 1024

path, model_path, tile = sys.argv[1], sys.argv[2], int(sys.argv[3])
steps = {}
model = saltvol.load_model(model_path, device="cpu")
steps["model loaded"] = hwm()
ds = saltvol.open_segy(path)
stats = volume_stats(ds)
factor = resolve_scale("auto", stats, model)
steps["statistics"] = hwm()
amplitude = ds["amplitude"]
k = section_chunks(amplitude.shape, 1)[1]
sections = np.ascontiguousarray(np.swapaxes(amplitude[:, :k].values.astype(np.float32), 0, 1))
steps["block read"] = hwm()
for i in (1, 2):
    segment_sections(sections, model=model, stats=stats.amplitude, tile_size=tile, overlap=0.5, batch_size=4, scale=factor)
    steps[f"block segmented ({i})"] = hwm()
print(json.dumps({"steps": steps, "block": list(sections.shape), "scale": factor}))
"""


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sizes", type=parse_size, nargs="+", default=[parse_size("300x300x500"), parse_size("600x600x1000")], metavar="ILxXLxNS")
    p.add_argument("--tiles", type=int, nargs="+", default=[1024, 512], help="tile sizes to compare (default: 1024 512)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--model", default=None, help="model file (default: the bundled model)")
    p.add_argument("--light-model", action="store_true", help="use the ~10x cheaper untrained network of bench_memory.py")
    p.add_argument("--data", type=Path, default=common.DATA, help="cache folder for volumes and the model")
    p.add_argument("--json", default=None, help="write every run here")
    args = p.parse_args(argv)

    machine, versions = common.machine(), common.versions()
    model, model_note = common.light_model(args.data) if args.light_model else common.benchmark_model(args.model, args.data)
    rows, runs = [], []
    for size in sorted(args.sizes, key=lambda s: s[0] * s[1] * s[2]):
        volume = common.synth_volume(size, args.seed, args.data)
        for tile in args.tiles:
            name = "x".join(map(str, size))
            print(f"{name}, tile {tile} ...", file=sys.stderr, flush=True)
            done = subprocess.run([sys.executable, "-c", _CHILD, str(volume), str(model), str(tile)], capture_output=True, text=True)
            if done.returncode != 0:
                sys.exit(f"the block run for {name}, tile {tile} failed:\n{done.stderr.strip()[-2000:]}")
            result = json.loads(done.stdout.strip().splitlines()[-1])
            steps = result["steps"]
            read, last = steps["block read"], steps["block segmented (2)"]
            rows.append([name, tile, "x".join(map(str, result["block"])), f"{steps['model loaded']:.0f}", f"{read:.0f}", f"{last:.0f}", f"{last - read:.0f}"])
            runs.append({"size": name, "tile": tile, **result})
    common.print_header("Memory of one block of sections (high-water RSS of one process, MiB)", machine, versions, f"Model: {model_note} (`{model}`).")
    print(common.table(["volume", "--tile", "block (sections x traces x samples)", "model loaded", "block read", "block segmented twice", "block stage adds"], rows))
    common.write_json(args.json, {"benchmark": "block_memory", "command": common.command_line(), "machine": machine, "versions": versions, "model": str(model), "runs": runs})


if __name__ == "__main__":
    main()
