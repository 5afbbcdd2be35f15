"""Shared helpers of the inference, scaling and memory benchmarks (not a benchmark itself).

Machine and version records, a timed subprocess that samples the RSS of its
whole process tree with psutil, synthetic volumes cached by recipe, the model
to benchmark, and markdown tables.  Only the standard library and psutil are
imported at the top.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import re
import shlex
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
DATA = HERE / "data"
RESULTS = HERE / "results"
#: The trained model that ships with saltvol (same path as saltvol.model.DEFAULT_MODEL_PATH).
BUNDLED_MODEL = HERE.parent / "saltvol" / "weights" / "saltvol-unet.safetensors"
PY = sys.executable
SALTVOL = [PY, "-m", "saltvol_cli"]


# --------------------------------------------------------------------------- machine and versions
def cpu_flags() -> dict[str, Any]:
    """The CPU's model name and the vector/matrix extensions that decide inference speed."""
    model, flags = platform.processor() or "unknown", set()
    try:
        text = Path("/proc/cpuinfo").read_text()
        model = re.search(r"^model name\s*:\s*(.+)$", text, re.MULTILINE).group(1).strip()  # type: ignore[union-attr]
        flags = set(re.search(r"^flags\s*:\s*(.+)$", text, re.MULTILINE).group(1).split())  # type: ignore[union-attr]
    except (OSError, AttributeError):
        pass
    return {
        "cpu": model,
        "avx2": "avx2" in flags,
        "avx512": sorted(f for f in flags if f.startswith("avx512")),
        "amx": sorted(f for f in flags if f.startswith("amx")),
    }


def machine() -> dict[str, Any]:
    info = cpu_flags()
    info["cores"] = os.cpu_count()
    info["cores_usable"] = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    try:
        kib = int(re.search(r"MemTotal:\s+(\d+)", Path("/proc/meminfo").read_text()).group(1))  # type: ignore[union-attr]
        info["memory_gib"] = round(kib / 2**20, 1)
    except (OSError, AttributeError):
        info["memory_gib"] = None
    info["python"] = platform.python_version()
    info["platform"] = platform.platform()
    info["loadavg_start"] = [round(x, 2) for x in os.getloadavg()]
    try:
        import torch

        info["torch_cpu_capability"] = torch.backends.cpu.get_cpu_capability()
        info["torch_threads"] = torch.get_num_threads()
        from saltvol.model import autocast_dtype

        dtype = autocast_dtype("cpu")
        info["saltvol_cpu_precision"] = "bf16 autocast" if dtype is not None else "fp32"
    except Exception as e:  # noqa: BLE001 - a record, never a reason to stop
        info["torch_cpu_capability"] = f"unknown ({type(e).__name__})"
    return info


def versions(extra: tuple[str, ...] = ()) -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    names = ("saltvol", "torch", "segmentation-models-pytorch", "numpy", "dask", "distributed", "xarray", "zarr", "segyio", "psutil", *extra)
    out = {}
    for name in names:
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = "not installed"
    return out


def machine_line(m: dict[str, Any]) -> str:
    ext = ["avx2"] if m["avx2"] else []
    ext += [f for f in m["avx512"] if f in ("avx512f", "avx512_bf16", "avx512_vnni")] + m["amx"]
    load = "/".join(f"{x:.1f}" for x in m["loadavg_start"])
    end = m.get("loadavg_end")
    load_end = "/".join(f"{x:.1f}" for x in end) if end else "?"
    return (
        f"Machine: {m['cpu']}, {m['cores']} cores, {m['memory_gib']} GiB, Python {m['python']}; "
        f"CPU extensions: {', '.join(ext) or 'none of avx2/avx512/amx'}; torch kernels: {m.get('torch_cpu_capability')}, "
        f"saltvol precision on CPU: {m.get('saltvol_cpu_precision', '?')}. Load average (1/5/15 min) {load} at start, {load_end} at end."
    )


def versions_line(v: dict[str, str]) -> str:
    return "Versions: " + ", ".join(f"{k} {val}" for k, val in v.items())


def command_line() -> str:
    return shlex.join([Path(PY).name, *sys.argv])


def print_header(title: str, machine: dict[str, Any], versions: dict[str, str], model_line: str) -> None:
    """The lines every table starts with: title, machine, versions, model and the exact command."""
    print(f"\n### {title}\n")
    print(machine_line(machine))
    print(versions_line(versions))
    print(model_line)
    print(f"Command: `{command_line()}`\n")


# --------------------------------------------------------------------------- timed subprocess
def _tree_rss(proc: Any) -> tuple[int, dict[int, int]]:
    import psutil

    try:
        members = [proc, *proc.children(recursive=True)]
    except psutil.Error:
        return 0, {}
    sizes = {}
    for p in members:
        try:
            sizes[p.pid] = p.memory_info().rss
        except psutil.Error:
            pass
    return sum(sizes.values()), sizes


def run(cmd: list[str], *, env: dict[str, str] | None = None, interval: float = 0.05, timeout: float | None = None, log: Path | None = None) -> dict[str, Any]:
    """Run ``cmd`` to completion and measure it as a whole process.

    Returns wall seconds (interpreter start included), CPU seconds (user + system
    of the process and every descendant it waited for: the RUSAGE_CHILDREN delta), the
    peak RSS of the whole process tree (sum over the process and its children,
    sampled every ``interval`` s with psutil) and of its largest process, the
    return code and the tail of stderr.
    """
    import resource

    import psutil

    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    log_fh = open(log, "w") if log else subprocess.DEVNULL  # noqa: SIM115 - closed below
    started = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=log_fh if log else subprocess.PIPE, text=True)
    ps = psutil.Process(proc.pid)
    peak = {"tree": 0, "largest": 0, "processes": 1}
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            total, sizes = _tree_rss(ps)
            peak["tree"] = max(peak["tree"], total)
            if sizes:
                peak["largest"] = max(peak["largest"], max(sizes.values()))
                peak["processes"] = max(peak["processes"], len(sizes))
            done.wait(interval)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        stdout, stderr = proc.communicate(timeout=timeout)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        done.set()
        sampler.join()
        if log:
            log_fh.close()
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return {
        "cmd": shlex.join(cmd),
        "returncode": proc.returncode,
        "wall_s": wall,
        "cpu_s": (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime),
        "user_s": after.ru_utime - before.ru_utime,
        "sys_s": after.ru_stime - before.ru_stime,
        "peak_tree_rss_mib": peak["tree"] / 2**20,
        "peak_process_rss_mib": peak["largest"] / 2**20,
        "processes": peak["processes"],
        "stdout": stdout,
        "stderr_tail": (log.read_text() if log else stderr or "")[-2000:],
    }


def check(result: dict[str, Any], what: str) -> None:
    if result["returncode"] != 0:
        raise SystemExit(f"{what} failed (exit {result['returncode']}): {result['cmd']}\n{result['stderr_tail']}")


# --------------------------------------------------------------------------- data and model
def synth_volume(shape: tuple[int, int, int], seed: int, folder: Path = DATA) -> Path:
    """A ``saltvol synth`` SEG-Y of ``shape``, cached in ``folder`` by recipe."""
    folder.mkdir(parents=True, exist_ok=True)
    name = f"synth_{shape[0]}x{shape[1]}x{shape[2]}_s{seed}.sgy"
    path = folder / name
    recipe = {"shape": list(shape), "seed": seed}
    stamp = path.with_suffix(".json")
    if path.exists() and stamp.exists() and json.loads(stamp.read_text()) == recipe:
        return path
    made = subprocess.run([*SALTVOL, "synth", "-o", str(path), "--shape", *map(str, shape), "--seed", str(seed), "--overwrite"],
                          capture_output=True, text=True, check=False)
    if made.returncode != 0:
        raise SystemExit(f"saltvol synth failed: {made.stderr}")
    stamp.write_text(json.dumps(recipe))
    return path


def benchmark_model(path: str | None, folder: Path = DATA) -> tuple[Path, str]:
    """The model to benchmark and how it was chosen.

    ``--model PATH`` if given; else the bundled model if it is installed; else an
    untrained network of the bundled model's architecture (efficientnet-b0, no attention,
    default ``ModelMeta()``: same layers, same TTA setting), which costs the same
    to run, saved once in ``folder``.
    """
    if path:
        return Path(path).resolve(), f"--model {path}"
    if BUNDLED_MODEL.is_file():
        return BUNDLED_MODEL, "bundled saltvol/weights/saltvol-unet.safetensors"
    config = "ModelConfig(encoder='efficientnet-b0', decoder_attention=None)"
    target = _untrained_model(folder / "untrained-b0-arch.safetensors", config, "name='untrained-default-arch'", precision="fp16")
    return target, "untrained network of the bundled model's architecture (no bundled weights installed)"


def _untrained_model(target: Path, config: str, meta: str, *, precision: str) -> Path:
    """Save an untrained network built from ``config`` (Python source) once, in a subprocess (no torch import here)."""
    if not target.is_file():
        target.parent.mkdir(parents=True, exist_ok=True)
        code = (
            "import sys, torch; from saltvol.model import ModelConfig, ModelMeta, build_model, read_model_info, save_model; "
            f"torch.manual_seed(0); c = {config}; "
            f"save_model(build_model(c), ModelMeta(config=c, {meta}), sys.argv[1], precision={precision!r})"
        )
        subprocess.run([PY, "-c", code, str(target)], check=True, env={**os.environ, "HF_HUB_OFFLINE": "1"})
    return target


LIGHT_ENCODER = "tu-mobilenetv3_small_050"


def light_model(folder: Path = DATA) -> tuple[Path, str]:
    """A network about 10x cheaper than the bundled one, for measuring the pipeline rather than the model.

    Memory and streaming questions need volumes of a gigabyte and more; with the full
    model those take hours on 2 cores.  This untrained U-Net (timm MobileNetV3-small
    x0.5 encoder, 16-channel decoder, no attention, no aux head, TTA off) exercises the
    same code path with the same tile shapes, and its weights and activations are a
    small constant, so peak memory then shows the pipeline's own share.  Tile shapes
    follow the scale matching, so the network carries the bundled model's reflector
    period (and is rebuilt when the bundled file changes).
    """
    config = f"ModelConfig(encoder={LIGHT_ENCODER!r}, decoder_attention=None, decoder_channels=(16, 16, 16, 16, 16), aux_head=False)"
    meta = "name='light-benchmark', tta=False"
    name = "light-mobilenetv3.safetensors"
    if BUNDLED_MODEL.is_file():
        meta += ", period_px=read_model_info().period_px"  # evaluated in the subprocess
        name = f"light-mobilenetv3-{hashlib.sha256(BUNDLED_MODEL.read_bytes()).hexdigest()[:12]}.safetensors"
    target = _untrained_model(folder / name, config, meta, precision="fp32")
    return target, f"light untrained network ({LIGHT_ENCODER} encoder, TTA off): measures the pipeline, not the model"


def fresh_output(path: Path) -> None:
    """Remove an earlier output and the ``.NAME.partial`` folder an interrupted run of it left behind."""
    shutil.rmtree(path, ignore_errors=True)
    shutil.rmtree(path.with_name(f".{path.name}.partial"), ignore_errors=True)
    path.parent.mkdir(parents=True, exist_ok=True)


def cube_attrs(path: Path) -> dict[str, Any]:
    meta = json.loads((path / "zarr.json").read_text())
    return meta.get("attributes", {})


def max_abs_diff(a: Path, b: Path) -> float:
    import numpy as np
    import xarray as xr

    with xr.open_zarr(a) as x, xr.open_zarr(b) as y:
        return float(np.abs(x["salt_probability"].values - y["salt_probability"].values).max())


# --------------------------------------------------------------------------- output
def table(header: list[str], rows: list[list[Any]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def median(values: list[float]) -> float:
    import statistics

    return statistics.median(values)


def runs_text(values: list[float], fmt: str = "{:.1f}") -> str:
    return fmt.format(median(values)) + (" (" + "/".join(fmt.format(v) for v in values) + ")" if len(values) > 1 else "")


def write_json(path: str | None, payload: dict[str, Any]) -> None:
    if not path:
        return
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(json.dumps(payload, indent=1, default=str))
    print(f"\nwrote {path}")
