"""The whole job: a volume in, a salt-probability Zarr cube out, streamed and resumable.

:func:`segment_to_zarr` runs in stages so that memory never grows with the
volume.  Stage ``iline`` runs every inline section through the model, a few
sections per task, and writes the blended probabilities to a scratch array;
stage ``xline`` does the same for crossline sections; stage ``fuse`` reads
both scratch arrays chunk by chunk, averages them, zeroes dead traces and
writes ``salt_probability``.  Each task reads its input itself (SEG-Y or
Zarr, by path), so nothing large passes through the scheduler, and writes
its own region (see :mod:`saltvol.io.cube`), so a killed run resumes where
it stopped.  The same task list runs on Dask's local threads or on a
``dask.distributed`` cluster.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import logging
import os
import time
import uuid
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import dask
import dask.array as da
import dask.threaded
import numpy as np
import xarray as xr

from . import __version__
from ._allocator import tune_allocator
from .errors import DataError, InputError, OutputPathError
from .inference import (
    DEFAULT_TILE,
    ModelRef,
    VolumeStats,
    default_batch_size,
    orientation_pass,
    resolve_scale,
    section_chunks,
    tiles_per_section,
    usable_orientations,
    volume_stats,
)
from .io import cube
from .model import ModelInfo, SaltModel, load_model, read_model_info
from .tiling import TileGrid

__all__ = ["segment_to_zarr"]

log = logging.getLogger(__name__)

#: The executor dask's threaded scheduler uses itself (it passes contextvars such as caught warnings on to
#: task threads); a plain ThreadPoolExecutor on a dask without it.
_ThreadPool = getattr(dask.threaded, "ContextAwareThreadPoolExecutor", ThreadPoolExecutor)

Progress = Callable[[int, int, str], None]

_SCRATCH = {"iline": "_p_iline", "xline": "_p_xline", "line": "_p_line"}


@dataclass(frozen=True)
class _Task:
    stage: str
    block: tuple[int, ...]
    work: Any  # a dask.delayed object


def _open(source: str | os.PathLike | xr.Dataset, *, iline: int | None, xline: int | None, chunks: dict | None) -> xr.Dataset:
    if isinstance(source, xr.Dataset):
        return source if chunks is None else source.chunk({k: v for k, v in chunks.items() if k in source.dims})
    from .io.zarr import open_volume

    return open_volume(source, iline=iline, xline=xline, chunks=chunks)


def _concurrency(client: Any, device: str) -> tuple[int, int | None]:
    """How many blocks run at once, and how many torch threads each may use."""
    cores = os.cpu_count() or 1
    if client is not None:
        from ._workers import worker_infos

        threads = sum(w.get("nthreads", 1) for w in worker_infos(client).values()) or 1
        # Dask gives each worker thread one core, so one torch thread per task avoids oversubscription;
        # with --device cuda, torch's default is kept.
        return threads, (None if device.startswith("cuda") else 1)
    if device.startswith("cuda"):
        return 1, None
    return cores, 1


def _cluster_model_ref(model: SaltModel | str | os.PathLike | None, *, device: str, torch_threads: int | None) -> ModelRef:
    """The model as cluster workers load it: from a file, on the device each worker chooses."""
    if model is None:  # the bundled model: each worker loads its own installation's copy
        return ModelRef(path=None, device=device, torch_threads=torch_threads)
    ref = ModelRef.from_model(model, device=device, torch_threads=torch_threads)
    if ref.path is None:
        raise InputError("a model that exists only in memory cannot be sent to cluster workers; save it with saltvol.model.save_model and pass its path")
    # Workers choose their own device: the client may run on a machine without the workers' GPUs.
    return dataclasses.replace(ref, device=device, local_key=None)


def _output_chunks(shape: tuple[int, ...]) -> tuple[int, ...]:
    """Output chunks for section and map access: 64 x 64 traces x all samples, capped near 32 MB."""
    n_samples = shape[-1]
    side = int(max(8, min(64, np.sqrt(32 * 2**20 / (4 * max(1, n_samples))))))
    return tuple(min(side, n) for n in shape[:-1]) + (n_samples,)


def _template(ds: xr.Dataset, chunks: tuple[int, ...], *, uncertainty: bool) -> xr.Dataset:
    amplitude = ds["amplitude"]
    lazy = da.zeros(amplitude.shape, chunks=chunks, dtype=np.float32)
    variables = {"salt_probability": (amplitude.dims, lazy, {"long_name": "salt probability", "units": "1"})}
    if uncertainty:
        variables["orientation_disagreement"] = (
            amplitude.dims,
            da.zeros(amplitude.shape, chunks=chunks, dtype=np.float32),
            {"long_name": "|p_inline - p_crossline|", "units": "1"},
        )
    out = xr.Dataset(variables, coords={k: v.variable.load() for k, v in amplitude.coords.items()})
    if "live" in ds:
        out["live"] = ds["live"].load()
    for name in out.variables:
        out[name].encoding = {}
    return out


def _block_slices(chunks: tuple[tuple[int, ...], ...]) -> list[tuple[tuple[int, ...], tuple[slice, ...]]]:
    bounds = [np.concatenate([[0], np.cumsum(c)]) for c in chunks]
    out = []
    for index in np.ndindex(*[len(c) for c in chunks]):
        region = tuple(slice(int(b[i]), int(b[i + 1])) for b, i in zip(bounds, index))
        out.append((tuple(int(i) for i in index), region))
    return out


def _pass_tasks(target: cube.CubeTarget, stage: str, probs: da.Array, run_id: str) -> list[_Task]:
    blocks = probs.to_delayed()
    work = str(target.work)
    write = dask.delayed(cube.write_region, pure=False)
    tasks = []
    for index, region in _block_slices(probs.chunks):
        if target.is_done(stage, index):
            continue
        delayed_block = blocks[index]
        tasks.append(_Task(stage, index, write(work, _SCRATCH[stage], region, delayed_block, str(target.marker(stage, index)), dask_key_name=f"saltvol-write-{stage}-{'-'.join(map(str, index))}-{run_id}")))
    return tasks


def _fuse_block(work: str, stages: Sequence[str], region: tuple[slice, ...], live: np.ndarray | None, marker: str, uncertainty: bool) -> int:
    # In place on the first pass's block: an output chunk (64 x 64 traces x all samples) is up to 32 MB, and
    # np.mean/np.where/np.clip made about six copies of it per task.
    parts = [cube.read_region(work, _SCRATCH[s], region) for s in stages]
    dead = None if live is None else ~live
    if uncertainty and len(parts) == 2:
        disagreement = np.abs(parts[0] - parts[1]).astype(np.float32, copy=False)
        if dead is not None:
            disagreement[dead] = 0
        cube.write_region(work, "orientation_disagreement", region, disagreement)
        del disagreement
    prob = parts[0].astype(np.float32, copy=False)
    if len(parts) == 2:
        prob += parts[1]
        prob *= np.float32(0.5)  # the mean of the two, exactly as (a + b) / 2 in float32
    del parts
    np.nan_to_num(prob, copy=False, nan=0.0)
    np.clip(prob, 0, 1, out=prob)
    if dead is not None:
        prob[dead] = 0
    return cube.write_region(work, "salt_probability", region, prob, marker)


def _fuse_tasks(target: cube.CubeTarget, stages: Sequence[str], chunks: tuple[int, ...], shape: tuple[int, ...], live: np.ndarray | None, uncertainty: bool, run_id: str) -> list[_Task]:
    normalized = da.core.normalize_chunks(chunks, shape)
    fuse = dask.delayed(_fuse_block, pure=False)
    tasks = []
    for index, region in _block_slices(normalized):
        if target.is_done("fuse", index):
            continue
        live_block = None if live is None else live[region[:-1]]
        key = f"saltvol-write-fuse-{'-'.join(map(str, index))}-{run_id}"
        tasks.append(_Task("fuse", index, fuse(str(target.work), list(stages), region, live_block, str(target.marker("fuse", index)), uncertainty, dask_key_name=key)))
    return tasks


def _run(tasks: list[_Task], *, client: Any, concurrency: int, progress: Progress | None, done: int, total: int) -> None:
    """Compute tasks on the client or local threads, reporting each finished block."""
    if not tasks:
        return
    if client is not None:
        from distributed import as_completed

        futures = client.compute([t.work for t in tasks])
        stage_of = {f.key: t.stage for f, t in zip(futures, tasks)}
        try:
            for future in as_completed(futures):
                future.result()  # re-raises a task's error here
                done += 1
                if progress:
                    progress(done, total, stage_of[future.key])
        except Exception:  # an interrupt does not wait: its .partial is kept for --resume
            _settle_cluster_writes(client, futures)
            raise
        return

    from dask.callbacks import Callback

    counter = {"done": done}

    class _Report(Callback):
        def _posttask(self, key: Any, result: Any, dsk: Any, state: Any, worker_id: Any) -> None:
            name = key[0] if isinstance(key, tuple) else key
            if isinstance(name, str) and name.startswith("saltvol-write-"):
                counter["done"] += 1
                if progress:
                    progress(counter["done"], total, name.split("-")[2])

    # Our own pool, so that when a task fails the blocks already being written finish before the caller
    # removes the work store (dask returns at the first error and lets them run on, and a late write would
    # recreate part of a store that was just removed). An interrupt does not wait: its .partial is kept for
    # --resume, and Ctrl-C should stop the command at once.
    pool = _ThreadPool(max_workers=concurrency, thread_name_prefix="saltvol")
    try:
        with _Report():
            dask.compute(*[t.work for t in tasks], scheduler="threads", pool=pool)
    except Exception:
        pool.shutdown(wait=True, cancel_futures=True)
        raise
    finally:
        pool.shutdown(wait=False, cancel_futures=True)


def _settle_cluster_writes(client: Any, futures: list[Any]) -> None:
    """After a failed block, cancel the blocks not yet started and wait for those being written.

    A worker cannot stop a running task; waiting for the few in flight (at most
    the cluster's thread count) means no write lands after the caller has
    removed the work store.
    """
    from distributed import wait

    unfinished = [f for f in futures if not f.done()]
    running: set[Any] = set()
    try:
        for keys in client.processing().values():
            running.update(keys)
        client.cancel([f for f in unfinished if f.key not in running])
        in_flight = [f for f in unfinished if f.key in running]
        if in_flight:
            wait(in_flight, timeout=600)
    except TimeoutError:
        log.warning("blocks were still being written 10 minutes after the failure; giving up waiting")
    except Exception as e:  # the scheduler itself is gone: nothing to wait for, and the run's own error is the one to report
        log.debug("could not settle the blocks still running: %s", e)


def _same_path(a: str | os.PathLike, b: str | os.PathLike) -> bool:
    try:
        return Path(a).expanduser().resolve() == Path(b).expanduser().resolve()
    except (OSError, RuntimeError):
        return False


def segment_to_zarr(
    source: str | os.PathLike | xr.Dataset,
    output: str | os.PathLike,
    *,
    model: SaltModel | str | os.PathLike | None = None,
    iline: int | None = None,
    xline: int | None = None,
    tile_size: int | None = None,
    overlap: float = 0.5,
    orientations: Sequence[Literal["iline", "xline"]] = ("iline", "xline"),
    batch_size: int | None = None,
    device: str = "auto",
    scale: Literal["auto"] | float = "auto",
    overwrite: bool = False,
    resume: bool = False,
    client: Any = None,
    uncertainty: bool = False,
    progress: Progress | None = None,
) -> Path:
    """Segment a SEG-Y or Zarr volume into a salt-probability Zarr cube on disk.

    Parameters
    ----------
    source : path or xr.Dataset
        A SEG-Y file, a Zarr store written by ``saltvol convert``, or a Dataset with ``amplitude``.
    output : path
        The Zarr v3 store to write (``salt_probability`` plus the input's coordinates).
    model : SaltModel or path, optional
        Default: the bundled model.
    iline, xline : int, optional
        Trace-header byte locations (SEG-Y only); autodetected when not given.
    tile_size, overlap, orientations, batch_size, device, scale
        As in :func:`saltvol.segment`.
    overwrite : bool, default False
        Replace an existing output (only once the new cube is complete).
    resume : bool, default False
        Continue an interrupted run with the same settings; finished blocks are skipped.
    client : distributed.Client, optional
        Run on this Dask cluster; default: local threads.
    uncertainty : bool, default False
        Also write ``orientation_disagreement = |p_inline - p_xline|``.
    progress : callable, optional
        ``progress(done, total, stage)`` after each block.

    Returns
    -------
    Path
        The finished store.

    Raises
    ------
    OutputExistsError, OutputPathError, InputError, CheckpointError, DataError
    """
    started = time.time()
    tune_allocator()  # before any task thread allocates: threads started later share the tuned heap
    if not isinstance(source, xr.Dataset) and _same_path(source, output):
        raise OutputPathError(f"the output {str(output)!r} is the input; choose another -o")
    target = cube.prepare_target(output, overwrite=overwrite, resume=resume)
    if target.complete:
        log.info("%s is already complete; nothing to resume", target.output)
        return target.output
    if not 0 <= overlap < 1:
        raise DataError(f"overlap must be in [0, 1), got {overlap!r}; pass --overlap between 0 and 0.9")
    orientations = tuple(dict.fromkeys(orientations))
    if not orientations or set(orientations) - {"iline", "xline"}:
        raise DataError(f"orientations must be iline, xline or both, got {orientations!r}; pass --orientations iline,xline")

    tile_size = int(tile_size or DEFAULT_TILE)
    if tile_size < 16:
        raise DataError(f"tile size {tile_size!r} is too small; pass --tile 64 or more")
    if batch_size is not None and batch_size < 1:
        raise DataError(f"batch size {batch_size!r} must be at least 1; pass --batch-size 4")
    ds = _open(source, iline=iline, xline=xline, chunks=None)
    if "amplitude" not in ds:
        raise InputError("the input has no 'amplitude' variable; pass a SEG-Y file or a store written by 'saltvol convert'")
    saltmodel: SaltModel | ModelInfo
    warming: list[Any] = []  # futures of the workers' model loading
    if client is None:
        saltmodel = model if isinstance(model, SaltModel) else load_model(model, device=device)
        run_device = saltmodel.device
    else:
        from ._workers import prepare_workers, warm_workers

        # The client reads only the model's metadata, without torch (a bad path fails here, before any
        # worker is asked); the workers load the weights, each on its own device, starting now.
        saltmodel = model if isinstance(model, SaltModel) else read_model_info(model)
        run_device = device
        prepare_workers(client)
        cluster_ref = _cluster_model_ref(model, device=device, torch_threads=_concurrency(client, device)[1])
        warming = warm_workers(client, cluster_ref)
    stats: VolumeStats = volume_stats(ds)
    factor = resolve_scale(scale, stats, saltmodel)
    concurrency, torch_threads = _concurrency(client, run_device)
    if client is None:
        ref = ModelRef.from_model(saltmodel if (model is None or isinstance(model, SaltModel)) else model, device=run_device, torch_threads=torch_threads)
    else:
        ref = cluster_ref
    if batch_size is None and not (client is not None and device == "auto"):  # else each worker picks for its device
        batch_size = default_batch_size(run_device)
    kernel_kwargs = dict(stats=stats.amplitude, tile_size=tile_size, overlap=overlap, batch_size=batch_size, scale=factor)

    amplitude = ds["amplitude"]
    shape = amplitude.shape
    is_line = amplitude.ndim == 2
    stages = ("line",) if is_line else usable_orientations(shape, orientations)
    out_chunks = _output_chunks(shape)
    source_name = str(source) if not isinstance(source, xr.Dataset) else ds.attrs.get("source", "<in-memory dataset>")
    settings = {
        "source": os.path.basename(source_name),
        "source_size": int(ds.attrs.get("source_size", 0)),
        "shape": list(shape),
        "model_sha256": saltmodel.sha256 or "",
        "tile_size": tile_size,
        "overlap": overlap,
        "stages": list(stages),
        "scale": factor,
        "batch_size": batch_size,
        "uncertainty": bool(uncertainty and len(stages) == 2),
        "amplitude_center": stats.amplitude.center,
        "amplitude_spread": stats.amplitude.spread,
        "blocks": {},
    }
    # A resumed run keeps the interrupted run's blocks, whatever its own worker count: the done-markers
    # name blocks by index, and the scratch arrays are chunked to fit those blocks.
    stored_blocks = (cube.stored_settings(target) or {}).get("blocks") or {}

    pass_arrays: dict[str, da.Array] = {}
    for stage in stages:
        axis = 0 if stage in ("iline", "line") else 1
        if is_line:
            line_chunks = {"cdp": -1, "sample": -1}
            array = _open(source, iline=iline, xline=xline, chunks=line_chunks)["amplitude"].data[None]
            chunks = (1,) + tuple(-1 for _ in shape)
        else:
            chunks = section_chunks(shape, axis, concurrency=concurrency)
            if isinstance(stored_blocks.get(stage), int):
                chunks = tuple(stored_blocks[stage] if i == axis else -1 for i in range(len(shape)))
            settings["blocks"][stage] = chunks[axis]
            names = amplitude.dims
            array = _open(source, iline=iline, xline=xline, chunks=dict(zip(names, chunks)))["amplitude"].data
        probs = orientation_pass(array.astype(np.float32), axis, model_ref=ref, kernel_kwargs=kernel_kwargs, chunks=chunks)
        pass_arrays[stage] = probs[0] if is_line else probs

    scratch = {
        _SCRATCH[stage]: (tuple(shape), tuple(min(c, o) for c, o in zip((max(p) for p in arr.chunks), out_chunks)) if not is_line else tuple(shape))
        for stage, arr in pass_arrays.items()
    }
    if warming:
        # The workers' own check of the weights (shape, NaN, architecture): a model they cannot load fails here,
        # before anything is written. Their loading overlapped the statistics above.
        client.gather(warming)
        for future in warming:
            future.release()
    cube.create_store(target, _template(ds, out_chunks, uncertainty=settings["uncertainty"]), run_settings=settings, extra_arrays=scratch)

    live = ds["live"].values if "live" in ds else None
    # Task keys are unique per run, so two runs on one cluster never share (and skip) each other's writes.
    run_id = uuid.uuid4().hex[:12]
    tasks: list[_Task] = []
    for stage, probs in pass_arrays.items():
        if is_line:
            probs = probs.rechunk(tuple(-1 for _ in shape))
        tasks += _pass_tasks(target, stage, probs, run_id)
    fuse_tasks = _fuse_tasks(target, stages, out_chunks, tuple(shape), live, settings["uncertainty"], run_id)
    total = sum(len(_block_slices(p.chunks)) for p in pass_arrays.values()) + len(_block_slices(da.core.normalize_chunks(out_chunks, shape)))
    done = total - len(tasks) - len(fuse_tasks)
    if target.resuming:
        log.info("resuming %s: %d of %d blocks already written are skipped", target.output, done, total)
    try:
        _run(tasks, client=client, concurrency=concurrency, progress=progress, done=done, total=total)
        _run(fuse_tasks, client=client, concurrency=concurrency, progress=progress, done=total - len(fuse_tasks), total=total)
    except InputError:  # a damaged input chunk: no .partial of this run is left behind
        cube.abandon(target)
        raise

    sections = {"iline": (shape[0], (shape[1], shape[-1])), "xline": (shape[1], (shape[0], shape[-1])), "line": (1, tuple(shape))} if not is_line else {"line": (1, tuple(shape))}
    tiles = sum(n * tiles_per_section(sec_shape, tile_size=tile_size, overlap=overlap, scale=factor) for stage, (n, sec_shape) in sections.items() if stage in stages)
    attrs = {
        "title": "saltvol salt probability",
        "saltvol_version": __version__,
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "source": settings["source"],
        "source_size": settings["source_size"],
        "model_name": saltmodel.name,
        "model_sha256": saltmodel.sha256 or "",
        "model_val_score": saltmodel.meta.val_score if saltmodel.meta.val_score is not None else float("nan"),
        "tile_size": tile_size,
        "stride": TileGrid((tile_size, tile_size), tile_size, overlap).stride,
        "overlap": overlap,
        "blending": "hann",
        "orientations": list(stages),
        "tiles_inferred": int(tiles),
        "batch_size": batch_size if batch_size is not None else "auto (chosen by each worker)",
        "device": f"{device} (chosen by each worker)" if client is not None and device == "auto" else run_device,
        "scale": factor,
        "volume_period_px": stats.period_px if stats.period_px is not None else float("nan"),
        "model_period_px": saltmodel.period_px,
        "model_input_scale": float(saltmodel.meta.input_scale),
        "amplitude_center": stats.amplitude.center,
        "amplitude_spread": stats.amplitude.spread,
        "seconds": round(time.time() - started, 1),
    }
    for key in ("iline_byte", "xline_byte", "sample_unit", "kind"):
        if key in ds.attrs:
            attrs[key] = ds.attrs[key]
    return cube.finalize(target, attrs=attrs, drop=tuple(_SCRATCH[s] for s in stages))
