"""Real sections: what the default model marks on the real F3 and Volve files in ``shared/data/segy``.

None of these crops holds a salt body (``shared/data/PROVENANCE.md``): they
are layered North Sea sediment, so every probability the model puts there is
a false alarm.  For each file this runs ``saltvol.segment`` with defaults
(scale matching on), prints the measured reflector period, the scale chosen,
the mean probability, its 99th percentile and the share of samples above 0.5,
and draws a preview of the middle section into ``--previews`` (the PNGs that
``docs/real-data.md`` shows).

    python benchmarks/bench_real_sections.py [--data ../shared/data/segy] [--model PATH] [--previews docs/images] [--json out.json]

Not a test: it prints a markdown table.  The goal of issue 7 for sediment is a
mean probability of at most 0.1.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as common

import saltvol

# Files whose amplitudes are seismic reflections (the Volve velocity cube and the
# 4-sample geometry file are not, and segyio_small is synthetic).
REAL_FILES = {
    "segyio_f3.sgy": "F3 Netherlands crop, 23 x 18 traces, 0-300 ms",
    "segysak_f3-ebcidctest.sgy": "F3 Netherlands, 2 inlines x 100 xlines, 0-1848 ms",
    "segysak_f3-withdead.sgy": "F3 crop with 175 of 414 traces missing",
    "segysak_volve10r12-full-z-il10117sub.sgy": "Volve PSDM 2D line, 202 CDPs, 0-4500 m",
}


def _measure(path: Path, model: saltvol.model.SaltModel, previews: Path | None) -> dict:
    ds = saltvol.open_segy(path)
    started = time.perf_counter()
    prob = saltvol.segment(ds, model=model).compute()
    seconds = time.perf_counter() - started
    values = prob.values
    if "live" in ds:
        values = values[ds["live"].values]
    row = {
        "file": path.name,
        "shape": list(prob.shape),
        "period_px": float(prob.attrs["volume_period_px"]),
        "scale": float(prob.attrs["scale"]),
        "mean": float(values.mean()),
        "p99": float(np.percentile(values, 99)),
        "above_half": float((values > 0.5).mean()),
        "seconds": round(seconds, 1),
    }
    if previews is not None:
        png = previews / f"real-{path.stem}.png"
        saltvol.preview(prob.to_dataset(name="salt_probability"), png, seismic=ds, overwrite=True)
        row["preview"] = str(png)
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "data" / "segy")
    parser.add_argument("--model", default=None, help="model file (default: the bundled model)")
    parser.add_argument("--previews", type=Path, default=None, help="folder for preview PNGs (default: none)")
    parser.add_argument("--json", default=None)
    args = parser.parse_args()

    model = saltvol.load_model(args.model)
    if args.previews:
        args.previews.mkdir(parents=True, exist_ok=True)
    print(common.machine_line(common.machine()))
    print(common.versions_line(common.versions()))
    print(f"model: {model.source} (training period {model.period_px:.1f} px, sha256 {model.sha256[:12]})")
    print(f"command: {common.command_line()}")
    rows = [_measure(args.data / name, model, args.previews) | {"what": what} for name, what in REAL_FILES.items() if (args.data / name).is_file()]
    if not rows:
        raise SystemExit(f"none of {sorted(REAL_FILES)} is in {args.data}; pass --data")
    print()
    print(
        common.table(
            ["file", "what", "shape", "period px", "scale", "mean p (goal <= 0.1)", "p99", "share > 0.5", "seconds"],
            [
                [r["file"], r["what"], " x ".join(map(str, r["shape"])), f"{r['period_px']:.1f}", f"{r['scale']:.2f}",
                 f"{r['mean']:.3f}", f"{r['p99']:.2f}", f"{r['above_half']:.3f}", r["seconds"]]
                for r in rows
            ],
        )
    )
    common.write_json(args.json, {"rows": rows, "model": str(model.source), "sha256": model.sha256})


if __name__ == "__main__":
    main()
