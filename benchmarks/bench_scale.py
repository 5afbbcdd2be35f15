"""Scale matching: 3D IoU against the truth on synthetic volumes at several reflector periods.

For each period, a `saltvol.synth` volume is segmented twice with the same
model, once with `scale="auto"` (sections resampled so the volume's measured
reflector period matches the training data's) and once at native sampling
(`scale=1`, or the model's own input zoom for a model trained with
``--input-scale``, so only period matching differs), and the salt-probability cube is compared with the true mask:
3D IoU at 0.5, and the mean probability inside salt and in sediment.

    python benchmarks/bench_scale.py [--model PATH] [--periods 8 12 20 30] [--shape 48 48 192] [--seeds 1 2] [--json out.json]

A second table studies context: inline sections of a wider volume
(``--context-shape``) at the training period, in tiles of ``--tile-sizes``
pixels or whole (0).

Not a test: it prints a markdown table (side by side, with the ratio).
"""

from __future__ import annotations

import argparse
import json
import platform
import time

import saltvol
from saltvol.metrics import iou
from saltvol.synth import make_volume


def _measure(ds, model, scale, tile_size=None, orientations=("iline", "xline")):
    started = time.perf_counter()
    prob = saltvol.segment(ds, model=model, scale=scale, tile_size=tile_size, orientations=orientations).compute()
    seconds = time.perf_counter() - started
    truth = ds.salt.values
    values = prob.values
    return {
        "iou": iou(values > 0.5, truth),
        "p_salt": float(values[truth].mean()),
        "p_sediment": float(values[~truth].mean()),
        "scale": float(prob.attrs["scale"]),
        "period": float(prob.attrs["volume_period_px"]),
        "seconds": round(seconds, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=None, help="model file (default: the bundled model)")
    parser.add_argument("--periods", type=float, nargs="+", default=[8, 12, 20, 30])
    parser.add_argument("--shape", type=int, nargs=3, default=[48, 48, 192])
    parser.add_argument("--seeds", type=int, nargs="+", default=[1])
    parser.add_argument("--tile-sizes", type=int, nargs="*", default=[128, 256, 512, 0],
                        help="context study at the training period; 0 = one tile per whole section")
    parser.add_argument("--context-shape", type=int, nargs=3, default=[8, 384, 384],
                        help="volume of the context study (inline sections of XL x NS, inline pass only)")
    parser.add_argument("--json", default=None)
    args = parser.parse_args()

    model = saltvol.load_model(args.model)
    print(f"model: {model.source} (training period {model.period_px:.1f} px); machine: {platform.processor() or platform.machine()}")
    rows = []
    for period in args.periods:
        for seed in args.seeds:
            ds = make_volume(tuple(args.shape), seed=seed, period=period)
            auto = _measure(ds, model, "auto")
            native = _measure(ds, model, model.meta.input_scale)
            rows.append({"period": period, "seed": seed, "auto": auto, "native": native})
    print()
    print("| true period px | measured px | scale (auto) | IoU auto | IoU native | ratio | p(salt) auto / native | p(sediment) auto / native |")
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        a, n = r["auto"], r["native"]
        ratio = a["iou"] / n["iou"] if n["iou"] > 0 else float("inf")
        print(
            f"| {r['period']:.0f} | {a['period']:.1f} | {a['scale']:.2f} | {a['iou']:.3f} | {n['iou']:.3f} | {ratio:.2f} | "
            f"{a['p_salt']:.2f} / {n['p_salt']:.2f} | {a['p_sediment']:.2f} / {n['p_sediment']:.2f} |"
        )
    context = []
    if args.tile_sizes:
        for seed in args.seeds:
            ds = make_volume(tuple(args.context_shape), seed=seed, period=model.period_px)
            for tile in args.tile_sizes:
                context.append({"tile": tile, "seed": seed, **_measure(ds, model, model.meta.input_scale, tile_size=tile or 10**6, orientations=("iline",))})
        print()
        shape = " x ".join(map(str, args.context_shape))
        print(f"Context at the training period ({model.period_px:.1f} px), {shape} volume, inline sections, scale {model.meta.input_scale:g}:")
        print("| seed | tile | IoU | p(salt) | p(sediment) | seconds |")
        print("|---|---|---|---|---|---|")
        for c in context:
            print(f"| {c['seed']} | {c['tile'] or 'whole section'} | {c['iou']:.3f} | {c['p_salt']:.2f} | {c['p_sediment']:.2f} | {c['seconds']} |")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"rows": rows, "context": context, "model": str(model.source), "shape": args.shape}, fh, indent=2)


if __name__ == "__main__":
    main()
