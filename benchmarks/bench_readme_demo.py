"""The README demo, scored: ``saltvol segment`` of the synthetic dome against its true salt mask, per model.

The README's first command makes ``demo.sgy`` with ``saltvol synth`` (defaults: a
96 x 96 x 160 dome) and segments it with the bundled model.  This runs the same
two commands, each model in its own ``saltvol segment`` process (timed, peak RSS
of the process tree sampled), and scores every cube against ``--truth``:

* 3D IoU of ``salt_probability > 0.5`` with the true mask;
* the mean probability inside the salt and outside it (the sediment).

Models are run side by side in one invocation, so a candidate is compared with
the shipped model on the same machine and load::

    python benchmarks/bench_readme_demo.py [--model A.safetensors --model B.safetensors] [--reps 1] [--json out.json]

Not a test: it prints a markdown table.  The synthetic dome comes from the same
generator as ``--synthetic-tiles`` training sections (other seeds and shapes), so
the scores say how well a model carries over to whole sections of that geology,
not how well it finds real salt (docs/model.md).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as common


def _synth(folder: Path) -> tuple[Path, Path]:
    """``demo.sgy`` and ``demo_truth.zarr`` exactly as the README makes them."""
    segy, truth = folder / "demo.sgy", folder / "demo_truth.zarr"
    made = common.run([*common.SALTVOL, "synth", "-o", str(segy), "--truth", str(truth)])
    common.check(made, "saltvol synth")
    return segy, truth


def _score(cube: Path, truth: Path) -> dict[str, float]:
    import xarray as xr

    with xr.open_zarr(cube) as out, xr.open_zarr(truth) as true:
        prob = out["salt_probability"].values
        salt = true["salt"].values.astype(bool)
    if prob.shape != salt.shape:
        raise SystemExit(f"the cube's shape {prob.shape} is not the truth's {salt.shape}")
    found = prob > 0.5
    union = np.logical_or(found, salt).sum()
    return {
        "iou": float(np.logical_and(found, salt).sum() / union) if union else 1.0,
        "p_salt": float(prob[salt].mean()) if salt.any() else float("nan"),
        "p_sediment": float(prob[~salt].mean()),
    }


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", action="append", default=None, metavar="PATH",
                   help="a model file to run (repeat for several, side by side); default: the bundled model")
    p.add_argument("--reps", type=int, default=1, help="runs per model; times are the median (scores do not change)")
    p.add_argument("--json", default=None, help="also write the rows and the machine record here")
    args = p.parse_args(argv)
    if args.reps < 1:
        p.error("--reps must be at least 1")

    models = [common.benchmark_model(m) for m in (args.model or [None])]
    for path, _ in models:
        if not path.is_file():
            raise SystemExit(f"bench_readme_demo: model {path} does not exist; pass a model file to --model")
    machine, versions = common.machine(), common.versions()
    rows, records = [], []
    with tempfile.TemporaryDirectory(prefix="saltvol-demo-") as tmp:
        folder = Path(tmp)
        segy, truth = _synth(folder)
        for index, (path, how) in enumerate(models):
            runs = []
            for rep in range(args.reps):
                cube = folder / f"salt_{index}_{rep}.zarr"
                result = common.run([*common.SALTVOL, "-q", "segment", str(segy), "-o", str(cube), "--model", str(path)])
                common.check(result, f"saltvol segment with {path}")
                runs.append(result)
            scores = _score(cube, truth)
            wall = common.median([r["wall_s"] for r in runs])
            rss = max(r["peak_tree_rss_mib"] for r in runs) / 1024
            rows.append([path.name, f"{scores['iou']:.3f}", f"{scores['p_salt']:.3f}", f"{scores['p_sediment']:.3f}",
                         common.runs_text([r["wall_s"] for r in runs]), f"{rss:.2f}"])
            records.append({"model": str(path), "chosen_as": how, **scores, "wall_s": wall, "peak_tree_rss_gib": rss,
                            "runs": [{k: r[k] for k in ("wall_s", "cpu_s", "peak_tree_rss_mib")} for r in runs]})
    machine["loadavg_end"] = [round(x, 2) for x in os.getloadavg()]
    common.print_header("README demo: saltvol segment of the synthetic dome against its true mask", machine, versions,
                        "Models: " + "; ".join(how for _, how in models))
    print(common.table(["model", "3D IoU at 0.5", "mean p in salt", "mean p in sediment", "segment wall s", "peak RSS GiB"], rows))
    common.write_json(args.json, {"machine": machine, "versions": versions, "rows": records})


if __name__ == "__main__":
    main()
