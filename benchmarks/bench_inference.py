"""Benchmark inference: ``saltvol segment`` end to end against the model alone (and MONAI), side by side.

Three whole processes on the same synthetic volume and the same model, one after the other (round-robin when --reps > 1):

1. **saltvol end to end**: ``saltvol segment VOLUME.sgy -o OUT.zarr --model M --device cpu`` (local Dask
   threads), everything included: interpreter start, imports, SEG-Y reading, statistics, tiling, both
   orientations, blending, fusing, Zarr writing.
2. **model alone (the ceiling)**: a process that imports saltvol, loads the same model with
   ``saltvol.load_model(path)`` and pushes exactly the tiles the end-to-end run inferred through
   ``SaltModel.predict_tiles`` in batches of the same size: the count is the cube's ``tiles_inferred``
   attr, the tile shapes are those of the cube's tile grid (``tile_size`` x ``tile_size``, or the
   section's own size where a section is smaller than a tile), the values random.  It runs twice, in
   two layouts: one stream of batches on torch's default threads (one per core), and one stream per
   core with one torch thread each (saltvol's own layout on local threads); the faster is the ceiling.
   **Efficiency = ceiling wall time / end-to-end wall time** (goal >= 0.9): the share of the
   end-to-end time that the network itself needs.
3. **MONAI** ``sliding_window_inference`` (gaussian blending, the same overlap, window size and batch
   size, the same model and TTA) over the same inline and crossline sections in the same image units,
   if ``monai`` is importable; else the row says "not installed" (nothing is installed).

The model is ``--model PATH`` if given, else the bundled ``saltvol/weights/saltvol-unet.safetensors``
if installed, else an untrained network of the bundled model's architecture (same cost to run); the
output says which.

Usage::

    python benchmarks/bench_inference.py [--shape 64 64 200] [--tile N] [--batch-size N] [--reps 1] [--json FILE]
    python benchmarks/bench_inference.py raw --model M --tiles-json SPEC --batch-size B --streams N   (worker)
    python benchmarks/bench_inference.py monai --model M --source SGY --cube OUT.zarr       (worker)
"""

from __future__ import annotations

import time

_T0 = time.perf_counter()

import argparse
import json
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as common

DEFAULT_SHAPE = (64, 64, 200)


# --------------------------------------------------------------------------- workers
def tile_spec(attrs: dict, shape: tuple[int, int, int]) -> list[dict]:
    """The tiles a cube's run inferred: [{"shape": [h, w], "count": n}, ...] per orientation."""
    from saltvol.tiling import TileGrid

    n_il, n_xl, n_s = shape
    scale = float(attrs.get("scale", 1.0))
    sections = {"iline": (n_il, n_xl), "xline": (n_xl, n_il)}  # (how many, traces across)
    spec = []
    for orientation in attrs["orientations"]:
        count, traces = sections[orientation]
        scaled = (max(1, int(round(n_s * scale))), max(1, int(round(traces * scale))))
        grid = TileGrid(scaled, int(attrs["tile_size"]), float(attrs["overlap"]))
        spec.append({"orientation": orientation, "shape": list(grid.tile_shape), "count": count * len(grid)})
    return spec


def worker_raw(args: argparse.Namespace) -> None:
    """Load the model and push the given tiles through predict_tiles; print timings as JSON.

    With ``--streams 1`` one stream of batches uses torch's default threads (one per core); with
    ``--streams N`` N Python threads, one torch thread each, share the tiles, as saltvol's local
    threads do (one block per core, one torch thread per block).
    """
    from concurrent.futures import ThreadPoolExecutor

    import numpy as np
    import torch

    import saltvol

    t_import = time.perf_counter()
    if args.streams > 1:
        torch.set_num_threads(1)
    model = saltvol.load_model(args.model, device="cpu")
    t_loaded = time.perf_counter()
    rng = np.random.default_rng(0)
    work = []
    for item in json.loads(args.tiles_json):
        h, w = item["shape"]
        tiles = rng.normal(model.meta.image_center, model.meta.image_spread, size=(item["count"], h, w)).astype(np.float32)
        # whole batches per stream, as a block of sections holds whole batches
        batches = [tiles[i : i + args.batch_size] for i in range(0, len(tiles), args.batch_size)]
        work += [np.concatenate(batches[k :: args.streams]) for k in range(min(args.streams, len(batches)))]
    t_ready = time.perf_counter()
    with ThreadPoolExecutor(args.streams) as pool:
        list(pool.map(lambda t: model.predict_tiles(t, batch_size=args.batch_size), work))
    t_end = time.perf_counter()
    n = sum(len(t) for t in work)

    print(json.dumps({
        "tiles": n, "import_s": t_import - _T0, "load_s": t_loaded - t_import, "predict_s": t_end - t_ready,
        "streams": args.streams, "torch_threads": torch.get_num_threads(), "tta": model.meta.tta,
        "precision": str(model.amp_dtype or "fp32"),
    }))


def worker_monai(args: argparse.Namespace) -> None:
    """MONAI sliding_window_inference over every inline and crossline section, in saltvol's image units."""
    import numpy as np
    import torch
    from monai.inferers import sliding_window_inference

    import saltvol
    from saltvol.inference import _resample, volume_stats
    from saltvol.normalize import to_image_units

    t_import = time.perf_counter()
    attrs = common.cube_attrs(Path(args.cube))
    model = saltvol.load_model(args.model, device="cpu")
    ds = saltvol.open_volume(args.source)
    amplitude = ds["amplitude"].values.astype(np.float32)
    stats = volume_stats(ds).amplitude
    scale = float(attrs.get("scale", 1.0))
    tile, overlap, batch = int(attrs["tile_size"]), float(attrs["overlap"]), int(attrs["batch_size"])
    t_loaded = time.perf_counter()

    def predictor(x: torch.Tensor) -> torch.Tensor:
        return torch.from_numpy(model._predict_batch(x[:, 0].contiguous(), tta=model.meta.tta))[:, None]

    passes = []
    with torch.inference_mode():
        for axis, orientation in enumerate(("iline", "xline")):
            if orientation not in attrs["orientations"]:
                continue
            sections = amplitude if axis == 0 else np.swapaxes(amplitude, 0, 1)
            native = (sections.shape[2], sections.shape[1])
            scaled = (max(1, int(round(native[0] * scale))), max(1, int(round(native[1] * scale))))
            out = np.empty(sections.shape, np.float32)
            # saltvol's tile shrinks to a smaller section (whole-section tiles); MONAI would pad the section up to
            # the window instead, so give it the tile shape saltvol used.
            roi = (min(tile, scaled[0]), min(tile, scaled[1]))
            for start in range(0, len(sections), 16):  # 16 sections per call, as a block would hold
                images = np.stack([
                    _resample(to_image_units(s.T, stats, target_center=model.meta.image_center, target_spread=model.meta.image_spread), scaled)
                    for s in sections[start : start + 16]
                ])
                prob = sliding_window_inference(
                    torch.from_numpy(images)[:, None], roi, batch, predictor, overlap=overlap, mode="gaussian"
                )[:, 0].numpy()
                for i, p in enumerate(prob):
                    out[start + i] = np.clip(_resample(p, native), 0, 1).T
            passes.append(out if axis == 0 else np.swapaxes(out, 0, 1))
    fused = np.mean(passes, axis=0)
    t_end = time.perf_counter()
    import xarray as xr

    with xr.open_zarr(args.cube) as c:
        ref = c["salt_probability"].values
    corr = float(np.corrcoef(fused.ravel(), ref.ravel())[0, 1])
    import monai

    print(json.dumps({
        "import_s": t_import - _T0, "load_s": t_loaded - t_import, "predict_s": t_end - t_loaded,
        "corr_with_saltvol": corr, "max_abs_diff": float(np.abs(fused - ref).max()), "monai": monai.__version__,
    }))


# --------------------------------------------------------------------------- driver
def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["raw"]:
        p = argparse.ArgumentParser(prog="bench_inference.py raw")
        p.add_argument("--model", required=True)
        p.add_argument("--tiles-json", required=True)
        p.add_argument("--batch-size", type=int, required=True)
        p.add_argument("--streams", type=int, default=1)
        return worker_raw(p.parse_args(argv[1:]))
    if argv[:1] == ["monai"]:
        p = argparse.ArgumentParser(prog="bench_inference.py monai")
        p.add_argument("--model", required=True)
        p.add_argument("--source", required=True)
        p.add_argument("--cube", required=True)
        return worker_monai(p.parse_args(argv[1:]))

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--shape", type=int, nargs=3, default=DEFAULT_SHAPE, metavar=("IL", "XL", "NS"))
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--model", default=None, help="model file (default: the bundled model, else an untrained one of its architecture)")
    p.add_argument("--tile", type=int, default=None, help="--tile for saltvol segment (default: saltvol's, 1024)")
    p.add_argument("--batch-size", type=int, default=None, help="--batch-size for saltvol segment (default: saltvol's, 4 on a CPU, 16 on a GPU)")
    p.add_argument("--reps", type=int, default=1, help="median of N round-robin repetitions")
    p.add_argument("--data", type=Path, default=common.DATA, help="cache folder for volumes, the model and outputs")
    p.add_argument("--json", default=None, help="write every run here")
    args = p.parse_args(argv)

    shape = tuple(args.shape)
    machine, versions = common.machine(), common.versions(("monai",))
    model, model_note = common.benchmark_model(args.model, args.data)
    sgy = common.synth_volume(shape, args.seed, args.data)
    out = args.data / "out" / "inference.zarr"
    out.parent.mkdir(parents=True, exist_ok=True)
    extra = (["--tile", str(args.tile)] if args.tile else []) + (["--batch-size", str(args.batch_size)] if args.batch_size else [])
    e2e_cmd = [*common.SALTVOL, "segment", str(sgy), "-o", str(out), "--model", str(model), "--device", "cpu", "--overwrite", *extra]
    try:
        import monai  # noqa: F401

        has_monai = True
    except ImportError:
        has_monai = False

    cores = os.cpu_count() or 1
    layouts = {"raw1": 1, f"raw{cores}": cores} if cores > 1 else {"raw1": 1}
    runs: dict[str, list[dict]] = {"saltvol": [], **{k: [] for k in layouts}, "monai": []}
    attrs: dict = {}
    spec: list[dict] = []
    for rep in range(args.reps):
        print(f"rep {rep + 1}/{args.reps}: saltvol segment ...", file=sys.stderr, flush=True)
        common.fresh_output(out)
        r = common.run(e2e_cmd)
        common.check(r, "saltvol segment")
        attrs = common.cube_attrs(out)
        r["cube_seconds"] = attrs.get("seconds")
        runs["saltvol"].append(r)
        spec = tile_spec(attrs, shape)
        assert sum(s["count"] for s in spec) == attrs["tiles_inferred"], (spec, attrs["tiles_inferred"])
        batch = int(attrs["batch_size"])
        for key, streams in layouts.items():
            print(f"rep {rep + 1}/{args.reps}: model alone, {attrs['tiles_inferred']} tiles, {streams} stream(s) ...", file=sys.stderr, flush=True)
            raw_cmd = [common.PY, __file__, "raw", "--model", str(model), "--tiles-json", json.dumps(spec),
                       "--batch-size", str(batch), "--streams", str(streams)]
            r = common.run(raw_cmd)
            common.check(r, "model-alone worker")
            r.update(json.loads(r["stdout"].strip().splitlines()[-1]))
            runs[key].append(r)
        if has_monai:
            print(f"rep {rep + 1}/{args.reps}: MONAI ...", file=sys.stderr, flush=True)
            r = common.run([common.PY, __file__, "monai", "--model", str(model), "--source", str(sgy), "--cube", str(out)])
            common.check(r, "MONAI worker")
            r.update(json.loads(r["stdout"].strip().splitlines()[-1]))
            runs["monai"].append(r)
    machine["loadavg_end"] = [round(x, 2) for x in os.getloadavg()]

    def med(key: str, field: str) -> float:
        return common.median([r[field] for r in runs[key]])

    tiles = int(attrs["tiles_inferred"])
    e2e = med("saltvol", "wall_s")
    ceiling_key = min(layouts, key=lambda k: med(k, "wall_s"))  # the faster layout is the ceiling
    ceiling = med(ceiling_key, "wall_s")
    shapes = ", ".join(f"{s['count']} x {s['shape'][0]}x{s['shape'][1]} ({s['orientation']})" for s in spec)
    rows = [[
        "**saltvol segment** (end to end, local threads)", tiles, common.runs_text([r["wall_s"] for r in runs["saltvol"]]),
        f"{med('saltvol', 'cpu_s'):.1f}", f"{tiles / e2e:.2f}", f"**{ceiling / e2e:.2f}**",
        f"{med('saltvol', 'peak_tree_rss_mib'):.0f}",
        f"in-run time (cube `seconds` attr) {med('saltvol', 'cube_seconds'):.1f} s; {cores} blocks at once, 1 torch thread each",
    ]]
    for key, streams in layouts.items():
        first = runs[key][0]
        layout = (f"1 stream of batches, {first['torch_threads']} torch threads" if streams == 1
                  else f"{streams} streams (Python threads), 1 torch thread each: saltvol's layout")
        rows.append([
            f"model alone: `load_model` + `predict_tiles`, {layout}" + (" (**ceiling**)" if key == ceiling_key else ""),
            tiles, common.runs_text([r["wall_s"] for r in runs[key]]), f"{med(key, 'cpu_s'):.1f}",
            f"{tiles / med(key, 'wall_s'):.2f}", f"{ceiling / med(key, 'wall_s'):.2f}", f"{med(key, 'peak_tree_rss_mib'):.0f}",
            (f"imports + model load {med(key, 'import_s') + med(key, 'load_s'):.1f} s, predict {med(key, 'predict_s'):.1f} s; "
             f"{first['precision']}, TTA {first['tta']}"),
        ])
    if has_monai:
        monai_wall = med("monai", "wall_s")
        rows.append([
            f"MONAI {runs['monai'][0]['monai']} `sliding_window_inference` (gaussian)", "–", common.runs_text([r["wall_s"] for r in runs["monai"]]),
            f"{med('monai', 'cpu_s'):.1f}", "–", f"{ceiling / monai_wall:.2f}", f"{med('monai', 'peak_tree_rss_mib'):.0f}",
            f"predict {med('monai', 'predict_s'):.1f} s; corr. with saltvol's cube {runs['monai'][0]['corr_with_saltvol']:.3f}",
        ])
    else:
        rows.append(["MONAI `sliding_window_inference`", "–", "not installed", "", "", "", "", "`import monai` fails; nothing was installed"])

    common.print_header(f"Inference, {shape[0]} x {shape[1]} x {shape[2]} volume, median of {args.reps}", machine, versions, f"Model: {model_note} (`{model}`). Tiles: {shapes}; batch {attrs['batch_size']}, overlap {attrs['overlap']}, scale {attrs['scale']}.")
    print(common.table(
        ["whole process", "tiles", "wall s (runs)", "CPU s", "tiles/s", "efficiency (ceiling wall / wall)", "peak tree RSS MiB", "notes"], rows
    ))
    print(f"\nEfficiency of saltvol end to end: **{ceiling / e2e:.2f}** (goal >= 0.9).")
    print("\nExact commands:\n")
    for key in ("saltvol", *layouts, "monai"):
        if runs[key]:
            print(f"    {runs[key][0]['cmd']}")
    for key in runs:
        for r in runs[key]:
            r.pop("stdout", None)
    common.write_json(args.json, {
        "benchmark": "inference", "command": common.command_line(), "machine": machine, "versions": versions,
        "model": str(model), "model_note": model_note, "shape": shape, "tile_spec": spec, "cube_attrs": attrs,
        "efficiency": ceiling / e2e, "ceiling": ceiling_key, "runs": runs,
    })


if __name__ == "__main__":
    main()
