"""Benchmark SEG-Y -> Zarr ingestion: saltvol against segyio, segysak and MDIO, side by side.

The driver builds (once, cached in ``benchmarks/data/``) a synthetic
300 x 300 x 500 volume with :func:`saltvol.synth.make_volume` and writes it as
IEEE (format 5) and IBM (format 1) SEG-Y with :func:`saltvol.io.segy_write.write_segy`.
It then runs every tool in its own subprocess, round-robin (rep 1: every
format x tool, rep 2: again, ...), with the SEG-Y read once before every run so
that all runs see a warm page cache, and reports the median of the reps.

Per run: "work s" is timed inside the worker from its first line (before it
imports the tool) to the last byte written; "wall s" covers the whole process,
interpreter start included; "CPU s" is user + system time of the process tree
(from ``os.wait4``); "peak RSS" is the worker's own high-water mark (VmHWM)
or that of a child process it waited for, whichever is larger (RSS includes
the mapped pages of the SEG-Y file where a tool maps it). MB/s = SEG-Y file
size / work s. After the first rep every output is read back (untimed) and
compared with the volume segyio reads.

Tools
-----
cat           ``cat file > /dev/null``: page-cache bandwidth, for reference.
saltvol       ``saltvol.io.zarr.convert`` (what ``saltvol convert`` calls), its
              default codec (Blosc LZ4 + shuffle) and chunks (64, 64, 500).
saltvol_zstd  the same with Zstd level 0, zarr's default codec, as the peers use.
segyio_cube   ``segyio.tools.cube`` on the mmap'ed file, wrapped in xarray/Dask
              with chunks (64, 64, 500), ``.to_zarr`` (zarr v3, default codec).
segysak       segysak's ``xr.open_dataset(engine="sgy_engine")`` with chunks
              (64, 64, all), ``.to_zarr``; run with ``$PY_SEGYSAK`` if set.
mdio          MDIO v1 ``segy_to_mdio`` (PostStack3DTime template, its own
              chunks and codec); run with ``$PY_MDIO`` if set.

Usage::

    python benchmarks/bench_ingest.py --reps 3 --json benchmarks/results/ingest.json
    PY_SEGYSAK=venv_segysak/bin/python PY_MDIO=venv_mdio/bin/python python benchmarks/bench_ingest.py
    python benchmarks/bench_ingest.py worker TOOL SEGY OUT   # one measurement (used by the driver)

Only the standard library is imported at the top, so the worker runs in the
peers' own virtual environments.
"""

from __future__ import annotations

import time

_T0 = time.perf_counter()

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import warnings
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
SHAPE = (300, 300, 500)
SEED = 0
FORMATS = {"ieee": 5, "ibm": 1}
CHUNKS = (64, 64, 500)
TOOLS = ("cat", "saltvol", "saltvol_zstd", "segyio_cube", "segysak", "mdio")
#: Tools run by another interpreter, and the environment variable naming it.
PEER_ENV = {"segysak": "PY_SEGYSAK", "mdio": "PY_MDIO"}
LABELS = {
    "cat": "`cat file > /dev/null` (page cache)",
    "saltvol": "**saltvol `convert`** (Blosc LZ4, default)",
    "saltvol_zstd": "**saltvol `convert`**, Zstd-0 codec",
    "segyio_cube": "segyio `tools.cube` (mmap) -> xarray `.to_zarr`",
    "segysak": "segysak `sgy_engine` (64,64,-1) -> `.to_zarr`",
    "mdio": "MDIO `segy_to_mdio` (PostStack3DTime)",
}


# --------------------------------------------------------------------------- #
# workers: one conversion each, in a fresh process
# --------------------------------------------------------------------------- #


def _version(name: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(name)
    except PackageNotFoundError:
        return "?"


def _work_saltvol(segy: str, out: str, compression: str) -> str:
    import saltvol.io.zarr as sz

    sz._COMPRESSION = compression
    sz.convert(segy, out, overwrite=True)
    return _version("saltvol")


def _work_segyio_cube(segy: str, out: str) -> str:
    import dask.array as da
    import numpy as np
    import segyio
    import xarray as xr

    with segyio.open(segy, iline=189, xline=193) as f:
        f.mmap()
        cube = segyio.tools.cube(f)
        ilines, xlines, samples = np.asarray(f.ilines), np.asarray(f.xlines), np.asarray(f.samples)
        x, y = f.attributes(181)[:].astype(float), f.attributes(185)[:].astype(float)
        s = f.attributes(71)[:].astype(float)
    factor = np.where(s < 0, -1.0 / np.where(s < 0, s, -1.0), np.where(s > 0, s, 1.0))
    grid = (len(ilines), len(xlines))
    ds = xr.Dataset(
        {"amplitude": (("iline", "xline", "sample"), da.from_array(cube, chunks=CHUNKS))},
        coords={
            "iline": ilines,
            "xline": xlines,
            "sample": samples,
            "cdp_x": (("iline", "xline"), (x * factor).reshape(grid)),
            "cdp_y": (("iline", "xline"), (y * factor).reshape(grid)),
        },
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ds.to_zarr(out, mode="w", zarr_format=3)
    return _version("segyio")


def _work_segysak(segy: str, out: str) -> str:
    import xarray as xr

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ds = xr.open_dataset(
            segy,
            engine="sgy_engine",
            dim_byte_fields={"iline": 189, "xline": 193},
            extra_byte_fields={"cdp_x": 181, "cdp_y": 185},
            chunks={"iline": CHUNKS[0], "xline": CHUNKS[1], "samples": -1},
        )
        ds.to_zarr(out, mode="w", zarr_format=3)
    return _version("segysak")


def _work_mdio(segy: str, out: str) -> str:
    from mdio import segy_to_mdio
    from mdio.builder.template_registry import get_template
    from segy.standards import get_segy_standard

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        segy_to_mdio(get_segy_standard(1.0), get_template("PostStack3DTime"), segy, out, overwrite=True)
    return _version("multidimio")


def worker(tool: str, segy: str, out: str) -> None:
    """Run one conversion and print one JSON line: version and work seconds (from process start)."""
    if tool == "saltvol":
        version = _work_saltvol(segy, out, "blosc-lz4")
    elif tool == "saltvol_zstd":
        version = _work_saltvol(segy, out, "zstd")
    elif tool == "segyio_cube":
        version = _work_segyio_cube(segy, out)
    elif tool == "segysak":
        version = _work_segysak(segy, out)
    elif tool == "mdio":
        version = _work_mdio(segy, out)
    else:
        raise SystemExit(f"unknown tool {tool!r}; use one of {TOOLS[1:]}")
    work_s = time.perf_counter() - _T0
    print(json.dumps({"tool": tool, "version": version, "work_s": work_s, "peak_rss_mib": _peak_rss_mib()}), flush=True)


def _peak_rss_mib() -> float:
    """Peak RSS of this process (VmHWM, which exec resets) and of any child processes it waited for."""
    import resource

    own = 0.0
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                own = int(line.split()[1]) / 1024
    except OSError:
        own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return max(own, children)


def verify(segy: str, out: str) -> None:
    """Compare the largest float array of a store with the cube segyio reads; print one JSON line."""
    import numpy as np
    import segyio
    import zarr

    with segyio.open(segy, iline=189, xline=193) as f:
        f.mmap()
        expected = segyio.tools.cube(f)
    group = zarr.open_group(out, mode="r")
    arrays = [a for _, a in group.arrays() if a.dtype.kind == "f" and a.ndim == 3]
    if not arrays:
        print(json.dumps({"ok": False, "detail": "no 3D float array in the store"}))
        return
    array = max(arrays, key=lambda a: a.size)
    if tuple(array.shape) != expected.shape:
        print(json.dumps({"ok": False, "detail": f"shape {array.shape} != {expected.shape}"}))
        return
    worst = 0.0
    ok = True
    for i in range(0, expected.shape[0], CHUNKS[0]):
        got = array[i : i + CHUNKS[0]]
        ref = expected[i : i + CHUNKS[0]]
        ok &= bool(np.allclose(got, ref, rtol=1e-6, atol=1e-6))
        worst = max(worst, float(np.abs(got - ref).max()))
    print(json.dumps({"ok": ok, "detail": f"{array.path}: max |diff| {worst:.3g}"}))


# --------------------------------------------------------------------------- #
# driver
# --------------------------------------------------------------------------- #


def ensure_data(data_dir: Path) -> dict[str, Path]:
    """The synthetic SEG-Y files, built once with make_volume + write_segy and reused while their recipe matches."""
    data_dir.mkdir(parents=True, exist_ok=True)
    recipe = {"shape": list(SHAPE), "seed": SEED, "formats": FORMATS, "generator": "saltvol.synth.make_volume"}
    paths = {name: data_dir / f"synth_{name}.sgy" for name in FORMATS}
    meta = data_dir / "synth.json"
    if meta.is_file() and all(p.is_file() for p in paths.values()):
        try:
            if json.loads(meta.read_text()) == recipe:
                return paths
        except json.JSONDecodeError:
            pass
    print(f"building the synthetic volume {SHAPE} in {data_dir} (once) ...", file=sys.stderr)
    start = time.perf_counter()
    # in a subprocess: the driver stays small, so it does not inflate the children's RSS figures
    subprocess.run([sys.executable, str(Path(__file__).resolve()), "build", str(data_dir)], check=True)
    meta.write_text(json.dumps(recipe))
    print(f"  done in {time.perf_counter() - start:.1f} s", file=sys.stderr)
    return paths


def build(data_dir: str) -> None:
    """Write the synthetic volume as SEG-Y in every format (run by ensure_data in a subprocess)."""
    from saltvol.io.segy_write import write_segy
    from saltvol.synth import make_volume

    ds = make_volume(SHAPE, seed=SEED)
    for name, fmt in FORMATS.items():
        write_segy(ds, Path(data_dir) / f"synth_{name}.sgy", sample_format=fmt, overwrite=True)


def _warm(path: Path) -> None:
    with open(path, "rb") as fh:
        while fh.read(16 << 20):
            pass


def _du_mb(path: Path) -> float:
    if path.is_file():
        return path.stat().st_size / 1e6
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) / 1e6


def _run(cmd: list[str], env: dict[str, str] | None = None) -> tuple[int, float, Any, str, str]:
    """Run a command; return exit code, wall seconds, its rusage (os.wait4), stdout and stderr."""
    with open(os.devnull, "rb") as stdin, _tmpfile() as out, _tmpfile() as err:
        start = time.perf_counter()
        proc = subprocess.Popen(cmd, stdin=stdin, stdout=out, stderr=err, env=env)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - start
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        return proc.returncode, wall, usage, out.read().decode(errors="replace"), err.read().decode(errors="replace")


def _tmpfile() -> Any:
    import tempfile

    return tempfile.TemporaryFile()


def _last_line(text: str) -> str:
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return lines[-1][:200] if lines else ""


def run_one(tool: str, python: str, segy: Path, out_dir: Path) -> dict[str, Any]:
    """One timed run of ``tool`` on ``segy``; the output is left in ``out_dir`` for verification."""
    out = out_dir / f"{tool}.zarr"
    if out.exists():
        shutil.rmtree(out)
    _warm(segy)
    if tool == "cat":
        code, wall, usage, stdout, stderr = _run(["bash", "-c", f'cat "{segy}" > /dev/null'])
        result: dict[str, Any] = {"version": "coreutils", "work_s": wall}
    else:
        env = dict(os.environ, PYTHONWARNINGS="ignore")
        cmd = [python, str(Path(__file__).resolve()), "worker", tool, str(segy), str(out)]
        code, wall, usage, stdout, stderr = _run(cmd, env)
        result = {}
        for line in stdout.splitlines():
            if line.startswith("{"):
                result = json.loads(line)
    row = {
        "tool": tool,
        "ok": code == 0 and "work_s" in result,
        "version": result.get("version", "?"),
        "work_s": result.get("work_s"),
        "wall_s": wall,
        "cpu_s": usage.ru_utime + usage.ru_stime,
        "peak_rss_mib": result.get("peak_rss_mib"),
        "out_mb": _du_mb(out) if out.exists() else None,
    }
    if not row["ok"]:
        row["error"] = _last_line(stderr) or f"exit code {code}"
    return row


def machine_info() -> dict[str, Any]:
    cpu = platform.processor()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
        mem = next(line for line in Path("/proc/meminfo").read_text().splitlines() if line.startswith("MemTotal"))
        mem_gib = int(mem.split()[1]) / 2**20
    except (OSError, StopIteration):
        mem_gib = float("nan")
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return {
        "cpu": cpu,
        "cores": cores,
        "memory_gib": round(mem_gib, 1),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "loadavg_start": os.getloadavg(),
    }


def versions() -> dict[str, str]:
    return {name: _version(name) for name in ("saltvol", "numpy", "segyio", "zarr", "numcodecs", "xarray", "dask")}


def _median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def summarize(rows: list[dict[str, Any]], size_mb: float) -> dict[str, Any]:
    """Median work/wall/CPU seconds, MB/s and max RSS per tool."""
    ok = [r for r in rows if r["ok"]]
    if not ok:
        first = rows[0] if rows else {}
        return {"ok": False, "version": first.get("version", "?"), "error": first.get("error")}
    work = [r["work_s"] for r in ok]
    med = _median(work)
    return {
        "ok": True,
        "version": ok[0]["version"],
        "runs": len(ok),
        "work_s": med,
        "work_all": work,
        "wall_s": _median([r["wall_s"] for r in ok]),
        "cpu_s": _median([r["cpu_s"] for r in ok]),
        "mb_s": size_mb / med,
        "peak_rss_mib": max((r["peak_rss_mib"] for r in ok if r["peak_rss_mib"] is not None), default=None),
        "out_mb": ok[0]["out_mb"],
    }


def markdown(results: dict[str, Any]) -> str:
    lines = []
    m = results["machine"]
    lines.append(
        f"Machine: {m['cpu']}, {m['cores']} cores, {m['memory_gib']} GiB RAM, Python {m['python']}; "
        f"load average {m['loadavg_start'][0]:.2f} at start, {m['loadavg_end'][0]:.2f} at end."
    )
    lines.append("Versions: " + ", ".join(f"{k} {v}" for k, v in results["versions"].items()) + ".")
    for fmt, block in results["formats"].items():
        size_mb = block["size_mb"]
        lines.append("")
        lines.append(f"### {fmt.upper()} (format {FORMATS[fmt]}, {size_mb:.1f} MB), median of {results['reps']}")
        lines.append("")
        lines.append(
            "| tool | version | work s (runs) | wall s | CPU s | MB/s | speed vs segyio "
            "| peak RSS MiB | out MB | read back |"
        )
        lines.append("|---|---|---|---|---|---|---|---|---|---|")
        ref = block["summary"].get("segyio_cube", {})
        for tool in results["tools"]:
            s = block["summary"].get(tool)
            label = LABELS[tool]
            if s is None:
                continue
            if s.get("skipped"):
                lines.append(f"| {label} | – | {s['skipped']} | | | | | | | |")
                continue
            if not s["ok"]:
                lines.append(f"| {label} | {s['version']} | failed: {s.get('error')} | | | | | | | |")
                continue
            runs = "/".join(f"{w:.2f}" for w in s["work_all"])
            ratio = f"{ref['work_s'] / s['work_s']:.2f}x" if ref.get("ok") and tool != "cat" else "–"
            out_mb = f"{s['out_mb']:.1f}" if s["out_mb"] is not None else "–"
            rss = f"{s['peak_rss_mib']:.0f}" if s["peak_rss_mib"] is not None else "–"
            check = block["verify"].get(tool, {})
            verified = ("ok" if check.get("ok") else f"MISMATCH: {check.get('detail')}") if check else "–"
            lines.append(
                f"| {label} | {s['version']} | {s['work_s']:.2f} ({runs}) | {s['wall_s']:.2f} | {s['cpu_s']:.2f} | "
                f"**{s['mb_s']:.0f}** | {ratio} | {rss} | {out_mb} | {verified} |"
            )
    return "\n".join(lines)


def drive(args: argparse.Namespace) -> None:
    tools = [t for t in args.tools.split(",") if t]
    unknown = sorted(set(tools) - set(TOOLS))
    if unknown:
        raise SystemExit(f"unknown tools {unknown}; choose from {','.join(TOOLS)}")
    formats = [f for f in args.formats.split(",") if f]
    paths = ensure_data(Path(args.data))
    out_dir = Path(args.data) / "out"
    out_dir.mkdir(parents=True, exist_ok=True)
    pythons: dict[str, str | None] = {}
    for tool in tools:
        if tool in PEER_ENV:
            pythons[tool] = os.environ.get(PEER_ENV[tool]) or None
        else:
            pythons[tool] = sys.executable
    machine = machine_info()
    runs: dict[str, dict[str, list[dict[str, Any]]]] = {fmt: {t: [] for t in tools} for fmt in formats}
    verified: dict[str, dict[str, Any]] = {fmt: {} for fmt in formats}
    for rep in range(args.reps):
        for fmt in formats:
            for tool in tools:
                if pythons[tool] is None:
                    continue
                row = run_one(tool, pythons[tool], paths[fmt], out_dir)
                row["rep"] = rep
                runs[fmt][tool].append(row)
                status = f"{row['work_s']:.2f} s" if row["ok"] else f"failed: {row.get('error')}"
                print(f"rep {rep + 1}/{args.reps} {fmt:4s} {tool:13s} {status}", file=sys.stderr)
                out = out_dir / f"{tool}.zarr"
                if rep == 0 and row["ok"] and tool != "cat" and args.verify:
                    code, _, _, stdout, stderr = _run(
                        [sys.executable, str(Path(__file__).resolve()), "verify", str(paths[fmt]), str(out)]
                    )
                    verified[fmt][tool] = json.loads(stdout.strip().splitlines()[-1]) if code == 0 else {
                        "ok": False,
                        "detail": _last_line(stderr),
                    }
                if out.exists():
                    shutil.rmtree(out)
    machine["loadavg_end"] = os.getloadavg()
    results: dict[str, Any] = {
        "machine": machine,
        "versions": versions(),
        "reps": args.reps,
        "tools": tools,
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "formats": {},
    }
    for fmt in formats:
        size_mb = paths[fmt].stat().st_size / 1e6
        summary: dict[str, Any] = {}
        for tool in tools:
            if pythons[tool] is None:
                summary[tool] = {"skipped": f"not installed (set {PEER_ENV[tool]} to its python)"}
            else:
                summary[tool] = summarize(runs[fmt][tool], size_mb)
        results["formats"][fmt] = {"size_mb": size_mb, "summary": summary, "verify": verified[fmt], "runs": runs[fmt]}
    table = markdown(results)
    print(table)
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(results, indent=1, default=str))


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["worker"]:
        if len(argv) != 4:
            raise SystemExit("usage: bench_ingest.py worker TOOL SEGY OUT")
        worker(*argv[1:])
        return
    if argv[:1] == ["build"]:
        build(argv[1])
        return
    if argv[:1] == ["verify"]:
        verify(*argv[1:3])
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reps", type=int, default=3, help="runs per tool and format (median reported); default 3")
    parser.add_argument("--tools", default=",".join(TOOLS), help=f"comma-separated subset of {','.join(TOOLS)}")
    parser.add_argument("--formats", default=",".join(FORMATS), help="comma-separated subset of ieee,ibm")
    parser.add_argument("--data", default=str(HERE / "data"), help="cache folder of the synthetic SEG-Y files")
    parser.add_argument("--json", default=None, help="also write every run and the summary to this JSON file")
    parser.add_argument("--no-verify", dest="verify", action="store_false", help="skip reading the outputs back")
    drive(parser.parse_args(argv))


if __name__ == "__main__":
    main()
