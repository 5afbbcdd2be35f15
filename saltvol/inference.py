"""Segment a volume: sections through the model, blended, both orientations fused.

Two layers.  A numpy kernel, :func:`segment_sections`, takes a stack of
whole sections (sections, traces, samples), maps amplitudes to image units,
optionally resamples each section to the training scale, cuts it into tiles
on a global grid (:mod:`saltvol.tiling`), runs the tiles through the model in
batches, blends them with Hann windows and resamples back.  The xarray layer,
:func:`segment`, maps that kernel over blocks of whole inline sections and
whole crossline sections (``dask.array.map_blocks`` on arrays chunked so that
a block holds complete sections) and averages the two orientations.

Because a block always holds complete sections and tiles sit on a grid
anchored at each section's origin, the result does not depend on chunk
sizes, worker count or scheduler.  Building the graph reads only a small
sample of traces (for the amplitude and scale statistics, once per volume)
and never calls the model.
"""

from __future__ import annotations

import logging
import math
import os
import threading
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import dask.array as da
import numpy as np
import xarray as xr

from ._allocator import tune_allocator
from .errors import DataError
from .model import ModelInfo, SaltModel, load_model
from .normalize import AmplitudeStats, amplitude_stats, estimate_period, to_image_units
from .tiling import TileGrid

__all__ = [
    "ModelRef",
    "VolumeStats",
    "orientation_pass",
    "resolve_scale",
    "section_chunks",
    "segment",
    "segment_sections",
    "tiles_per_section",
    "usable_orientations",
    "volume_stats",
]

log = logging.getLogger(__name__)

Orientation = Literal["iline", "xline"]

#: Scale factors within this band of 1 are treated as 1 (no resampling).
_SCALE_DEADBAND = 0.1
# Leading samples quieter than this share of the amplitude spread are muted or water column.
_QUIET_FRACTION = 0.02
# Sections narrower than this many traces carry no lateral context (a volume of 1-2 inlines).
MIN_SECTION_TRACES = 16
#: Default tile edge: most sections go through the network whole.
DEFAULT_TILE = 1024
# Pixels of one tile that --batch-size counts (a 256 x 256 tile).
_BATCH_PIXELS = 256 * 256

#: A volume whose period differs from the training period by more than this factor triggers a warning.
_OOD_FACTOR = 2.0


def default_batch_size(device: str) -> int:
    """Tiles per forward pass when the caller does not say: 16 on a GPU, 4 on a CPU.

    A CPU gains nothing from large batches (a 64-section block runs as fast at
    4 as at 16), but every pass holds the batch's activations: at 16 a
    process touches about 0.8 GB more memory, and on a virtual machine first
    touches of memory are slow (page faults cost 5-10 s of system time per
    process, worse when two worker processes fault at once).
    """
    return 16 if str(device).startswith("cuda") else 4


@dataclass(frozen=True)
class VolumeStats:
    """Statistics of a volume measured once from a sample of its traces."""

    amplitude: AmplitudeStats
    period_px: float | None
    n_traces: int


@dataclass(frozen=True)
class ModelRef:
    """A picklable recipe for the model: tasks load it once per process from ``path``.

    ``torch_threads`` is the share of cores one task may use; None leaves
    torch's default.  A model that only lives in memory (no file) is kept in
    a process-local registry, which works with the local schedulers.
    """

    path: str | None
    device: str = "auto"
    torch_threads: int | None = None
    local_key: int | None = None

    def get(self) -> SaltModel:
        if self.torch_threads:
            import torch

            if torch.get_num_threads() != self.torch_threads:
                torch.set_num_threads(self.torch_threads)
        if self.local_key is not None and self.local_key in _LOCAL_MODELS:
            return _LOCAL_MODELS[self.local_key]
        return load_model(self.path, device=self.device)

    @classmethod
    def from_model(cls, model: SaltModel | str | os.PathLike | None, *, device: str = "auto", torch_threads: int | None = None) -> ModelRef:
        if isinstance(model, SaltModel):
            key = id(model)
            _LOCAL_MODELS[key] = model
            return cls(path=model.source, device=model.device, torch_threads=torch_threads, local_key=key)
        path = None if model is None else str(Path(model).resolve())
        return cls(path=path, device=device, torch_threads=torch_threads)


_LOCAL_MODELS: dict[int, SaltModel] = {}

#: Volumes (by their amplitude statistics) already warned about NaN/Inf samples in this process.
_NONFINITE_WARNED: set[AmplitudeStats] = set()
_NONFINITE_LOCK = threading.Lock()


def _warn_nonfinite(stats: AmplitudeStats, count: int, total: int, where: str) -> None:
    """Log once per volume (and process) that NaN/Inf samples were replaced."""
    with _NONFINITE_LOCK:
        if stats in _NONFINITE_WARNED:
            return
        _NONFINITE_WARNED.add(stats)
    log.warning(
        "the volume holds NaN or Inf samples (%d of %d %s): NaN is read as the median amplitude and Inf "
        "as the extreme grey, so the salt probability there means little; check how the volume was exported",
        count, total, where,
    )


# --------------------------------------------------------------------- stats
def _sample_windows(amplitude: da.Array, live: da.Array | None, n_windows: int, width: int) -> tuple[np.ndarray, np.ndarray | None]:
    """Read a few small windows of traces at positions fixed by the volume's shape.

    The windows depend on the shape only, never on the chunking, so the
    statistics (and so the cube) are the same however the volume is chunked;
    only the chunks that the windows touch are read.
    """
    grid_shape = amplitude.shape[:-1]
    side = max(1, int(round(n_windows ** (1 / len(grid_shape)))))
    starts_per_axis = [
        np.unique(np.linspace(0, max(0, n - width), side).round().astype(int)) for n in grid_shape
    ]
    windows = np.stack(np.meshgrid(*starts_per_axis, indexing="ij"), axis=-1).reshape(-1, len(grid_shape))
    parts, live_parts = [], []
    for start in windows:
        index = tuple(slice(int(s), int(s) + width) for s in start)
        parts.append(amplitude[index])
        if live is not None:
            live_parts.append(live[index])
    import dask

    computed = dask.compute(*parts, *live_parts)
    traces = np.concatenate([p.reshape(-1, p.shape[-1]) for p in computed[: len(parts)]])
    mask = np.concatenate([m.ravel() for m in computed[len(parts) :]]) if live_parts else None
    return traces, mask


def volume_stats(data: xr.Dataset | xr.DataArray, *, n_windows: int = 9, width: int = 16, max_traces: int = 4096) -> VolumeStats:
    """Amplitude and reflector-period statistics from a sample of live traces.

    About ``n_windows`` windows of ``width`` x ``width`` traces, spread over
    the survey at positions fixed by its shape, are read; dead and all-zero
    traces are dropped and at most ``max_traces`` kept, so the cost is
    bounded whatever the volume size.
    """
    amplitude = _amplitude(data)
    array = amplitude.data if isinstance(amplitude.data, da.Array) else da.from_array(np.asarray(amplitude.values), chunks=-1)
    live = data["live"].data if isinstance(data, xr.Dataset) and "live" in data else None
    if live is not None and not isinstance(live, da.Array):
        live = da.from_array(np.asarray(live), chunks=-1)
    traces, mask = _sample_windows(array, live, n_windows, width)
    keep = np.any(traces != 0, axis=1)
    if mask is not None:
        keep &= mask
    if keep.any():
        traces = traces[keep]
    if len(traces) > max_traces:
        traces = traces[np.linspace(0, len(traces) - 1, max_traces).astype(int)]
    stats = amplitude_stats(traces)
    if stats.nonfinite_fraction > 0:
        _warn_nonfinite(stats, int(round(stats.nonfinite_fraction * traces.size)), traces.size, "samples read for statistics")
    try:
        period = estimate_period(traces) if traces.shape[-1] >= 8 else None
    except DataError:
        period = None
    return VolumeStats(amplitude=stats, period_px=period, n_traces=len(traces))


def resolve_scale(scale: Literal["auto"] | float, stats: VolumeStats, model: SaltModel | ModelInfo) -> float:
    """The resampling factor for sections: explicit, or the network's period / the volume's period."""
    if scale != "auto":
        factor = float(scale)
        if not (math.isfinite(factor) and 0.05 <= factor <= 20):
            raise DataError(f"scale factor {scale!r} is out of range; pass --scale auto or a factor between 0.05 and 20")
        return factor
    if stats.period_px is None:
        return float(model.meta.input_scale)
    # Out of distribution is judged at the tiles' own scale; the factor brings sections to the network's.
    ratio = model.period_px / stats.period_px
    factor = float(np.clip(ratio, 0.25, 4.0)) * float(model.meta.input_scale)
    if not 1 / _OOD_FACTOR <= ratio <= _OOD_FACTOR:
        warnings.warn(
            f"the volume's dominant reflector period is {stats.period_px:.1f} samples, the model was trained at "
            f"{model.period_px:.1f}; sections are resampled by {factor:.2f} (--scale auto); "
            "check the result, or pass --scale FACTOR",
            UserWarning,
            stacklevel=3,
        )
    return 1.0 if abs(factor - 1) <= _SCALE_DEADBAND else round(factor, 3)


# -------------------------------------------------------------------- kernel
def _resample(section: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Bilinear resampling of a 2D array to ``shape`` (antialiased when shrinking)."""
    if section.shape == shape:
        return section
    import torch
    import torch.nn.functional as F

    shrinking = shape[0] < section.shape[0] or shape[1] < section.shape[1]
    tensor = torch.from_numpy(np.ascontiguousarray(section, dtype=np.float32))[None, None]
    out = F.interpolate(tensor, size=shape, mode="bilinear", align_corners=False, antialias=shrinking)
    return out[0, 0].numpy()


def segment_sections(
    sections: np.ndarray,
    *,
    model: SaltModel,
    stats: AmplitudeStats,
    tile_size: int = DEFAULT_TILE,
    overlap: float = 0.5,
    batch_size: int | None = None,
    scale: float = 1.0,
) -> np.ndarray:
    """Salt probability of a stack of whole sections.

    Parameters
    ----------
    sections : np.ndarray, shape (n_sections, n_traces, n_samples)
        Amplitudes; each section is one inline (traces = crosslines) or one
        crossline (traces = inlines).
    model : SaltModel
    stats : AmplitudeStats
        The volume's amplitude statistics (the same for every block).
    tile_size, overlap, batch_size : see :func:`segment`
    scale : float, default 1.0
        Each section is resampled by this factor before tiling and back after.

    Returns
    -------
    np.ndarray of float32, shape like ``sections``, values in [0, 1]
    """
    n_sections, n_traces, n_samples = sections.shape
    finite = int(np.count_nonzero(np.isfinite(sections)))
    if finite < sections.size:
        _warn_nonfinite(stats, sections.size - finite, sections.size, "samples in a block of sections")
    native = (n_samples, n_traces)
    scaled = (max(1, int(round(n_samples * scale))), max(1, int(round(n_traces * scale))))
    images = []
    for section in sections:
        image = to_image_units(section.T, stats, target_center=model.meta.image_center, target_spread=model.meta.image_spread)
        images.append(_resample(image, scaled))
    grid = TileGrid(scaled, tile_size, overlap)
    th, tw = grid.tile_shape
    positions = [(s, top, left) for s in range(n_sections) for top, left in grid]
    # float32 is ample for a sum of at most a few window-weighted probabilities, and halves the
    # largest buffer of a block (memory stays flat as volumes grow; see docs/benchmarks.md).
    accumulator = np.zeros((n_sections, *scaled), dtype=np.float32)
    weights = np.zeros(scaled, dtype=np.float32)
    for top, left in grid:
        weights[top : top + th, left : left + tw] += grid.window(top, left)
    # batch_size counts 256 x 256 tiles: larger tiles (or whole sections) go fewer at a time, so
    # the network's activations stay the same size whatever --tile is.
    batch_size = default_batch_size(getattr(model, "device", "cpu")) if batch_size is None else batch_size
    per_batch = max(1, min(batch_size, batch_size * _BATCH_PIXELS // (th * tw)))
    for start in range(0, len(positions), per_batch):
        chunk = positions[start : start + per_batch]
        batch = np.stack([images[s][top : top + th, left : left + tw] for s, top, left in chunk])
        probs = model.predict_tiles(batch, batch_size=per_batch)
        for prob, (s, top, left) in zip(probs, chunk):
            accumulator[s, top : top + th, left : left + tw] += grid.window(top, left) * prob
    out = np.empty(sections.shape, dtype=np.float32)
    for s in range(n_sections):
        blended = accumulator[s] / weights
        out[s] = np.clip(_resample(blended, native), 0.0, 1.0).T
    _zero_quiet_tops(out, sections, stats)
    return out


def _zero_quiet_tops(probs: np.ndarray, sections: np.ndarray, stats: AmplitudeStats) -> None:
    """Set the probability to 0 above each trace's first non-quiet sample, in place.

    A muted or water-filled top is as featureless as salt to the network, which
    then marks it (measured on the F3 crops: the top 50 ms came out as salt).
    Salt never sits above the first reflection of a trace, so the leading
    samples below ``_QUIET_FRACTION`` of the volume's amplitude spread are
    set to 0.  Per trace, so chunk-invariant.
    """
    loud = np.abs(np.nan_to_num(sections, nan=stats.center) - stats.center) > _QUIET_FRACTION * stats.spread
    first = np.where(loud.any(axis=-1), loud.argmax(axis=-1), sections.shape[-1])
    probs[np.arange(sections.shape[-1]) < first[..., None]] = 0.0


def usable_orientations(shape: Sequence[int], orientations: Sequence[Orientation]) -> tuple[Orientation, ...]:
    """The requested orientations whose sections are wide enough to segment.

    A volume of one or two inlines has crossline "sections" one or two traces
    wide: the network sees no lateral context there, and averaging that pass
    in would halve the probability of every salt body.  An orientation whose
    sections are narrower than :data:`MIN_SECTION_TRACES` is dropped when
    another requested orientation is wider (logged); if all are narrow, all
    are kept.
    """
    width = {"iline": shape[1], "xline": shape[0]}
    wide = tuple(o for o in orientations if width[o] >= MIN_SECTION_TRACES)
    if not wide or len(wide) == len(orientations):
        return tuple(orientations)
    for o in orientations:
        if o not in wide:
            log.info("skipping the %s pass: its sections are %d traces wide (fewer than %d)", o, width[o], MIN_SECTION_TRACES)
    return wide


def tiles_per_section(shape: tuple[int, int], *, tile_size: int, overlap: float, scale: float) -> int:
    """How many tiles one section of (traces, samples) ``shape`` sends through the model."""
    n_traces, n_samples = shape
    scaled = (max(1, int(round(n_samples * scale))), max(1, int(round(n_traces * scale))))
    return len(TileGrid(scaled, tile_size, overlap))


# --------------------------------------------------------------- xarray layer
def _amplitude(data: xr.Dataset | xr.DataArray) -> xr.DataArray:
    if isinstance(data, xr.Dataset):
        if "amplitude" not in data:
            raise DataError(f"the dataset has no 'amplitude' variable (it has {sorted(data.data_vars)!r}); pass one opened with saltvol.open_volume")
        data = data["amplitude"]
    if data.ndim not in (2, 3) or data.dims[-1] != "sample":
        raise DataError(f"amplitude must have dims (iline, xline, sample) or (cdp, sample), got {data.dims!r}")
    if 0 in data.shape:
        sizes = ", ".join(f"{d}={n}" for d, n in data.sizes.items())
        raise DataError(f"the volume is empty ({sizes}); pass a volume with traces and samples")
    if not (np.issubdtype(data.dtype, np.integer) or np.issubdtype(data.dtype, np.floating)):
        raise DataError(f"amplitude has dtype {data.dtype}, not numbers; pass a seismic volume of floats or integers")
    return data


def section_chunks(shape: Sequence[int], axis: int, *, concurrency: int = 2, max_bytes: int = 32 * 2**20) -> tuple[int, ...]:
    """Chunks holding whole sections across ``axis``: few enough sections per block to bound memory, enough blocks to keep every worker busy.

    A block lives about four times over while it is processed (input, image
    units, accumulator, output), so ``max_bytes`` of float32 input keeps each
    running block near 130 MB whatever the volume size.
    """
    per_section = int(np.prod(shape)) // max(1, shape[axis]) * 4
    by_memory = max(1, max_bytes // max(1, per_section))
    by_parallelism = max(1, math.ceil(shape[axis] / (2 * max(1, concurrency))))
    k = int(min(64, by_memory, by_parallelism))
    return tuple(k if i == axis else -1 for i in range(len(shape)))


def orientation_pass(
    array: da.Array, axis: int, *, model_ref: ModelRef, kernel_kwargs: dict, chunks: tuple[int, ...] | None = None, concurrency: int = 2
) -> da.Array:
    """Lazy probabilities from the sections across ``axis`` of an (il, xl, sample) array.

    The array is rechunked so that each block holds whole sections (``chunks``
    or :func:`section_chunks`), and :func:`segment_sections` is mapped over
    the blocks; the model is loaded inside each task from ``model_ref``.
    """
    array = array.rechunk(chunks or section_chunks(array.shape, axis, concurrency=concurrency))

    def run(block: np.ndarray) -> np.ndarray:
        sections = block if axis == 0 else np.swapaxes(block, 0, 1)
        probs = segment_sections(sections, model=model_ref.get(), **kernel_kwargs)
        return probs if axis == 0 else np.swapaxes(probs, 0, 1)

    name = f"saltvol-{['iline', 'xline'][axis]}-{da.core.tokenize(array, axis, model_ref, kernel_kwargs)}"
    return array.map_blocks(run, dtype=np.float32, meta=np.empty((0, 0, 0), np.float32), name=name)


def segment(
    data: xr.Dataset | xr.DataArray,
    *,
    model: SaltModel | str | os.PathLike | None = None,
    tile_size: int | None = None,
    overlap: float = 0.5,
    orientations: Sequence[Orientation] = ("iline", "xline"),
    batch_size: int | None = None,
    device: str = "auto",
    scale: Literal["auto"] | float = "auto",
    stats: VolumeStats | None = None,
    concurrency: int = 2,
) -> xr.DataArray:
    """Lazy 3D salt probability of a seismic volume (xarray in, xarray out).

    Every inline and crossline section is tiled on a global grid, tiles run
    through the model in batches, are blended with Hann windows, and the two
    orientations are averaged.  Nothing is computed until you ask for values
    (``.compute()``, ``.to_zarr()``); for large volumes prefer
    :func:`saltvol.segment_to_zarr`, which streams each orientation through
    disk with bounded memory and can resume.

    Parameters
    ----------
    data : xr.Dataset or xr.DataArray
        ``amplitude`` with dims (iline, xline, sample), or (cdp, sample) for a 2D line.
    model : SaltModel or path, optional
        Default: the bundled model.
    tile_size : int, optional
        Tile edge in (resampled) pixels; default 1024: most sections are
        predicted whole (the most context, no overlap to compute twice);
        larger ones in 1024-pixel tiles.  On synthetic 384 x 384 sections,
        whole sections ran about 2x faster than 256-pixel tiles and matched
        their IoU within 0.003 with the bundled model (docs/real-data.md);
        try ``tile_size=256`` where salt is missed.
    overlap : float, default 0.5
        Fraction shared by neighbouring tiles, in [0, 1).
    orientations : sequence of {"iline", "xline"}, default both
        Ignored for 2D lines (one section).
    batch_size : int, optional
        Tiles per forward pass, counted in 256 x 256 tiles: larger tiles go
        proportionally fewer at a time, so memory does not grow with ``tile_size``.
        Default: 16 on a GPU, 4 on a CPU (see :func:`default_batch_size`).
    device : {"auto", "cpu", "cuda"}, default "auto"
    scale : "auto" or float, default "auto"
        Resampling factor of sections; "auto" matches the volume's dominant
        reflector period to the training data's.
    stats : VolumeStats, optional
        Precomputed statistics (default: measured from a sample of traces).
    concurrency : int, default 2
        How many blocks are expected to run at once (sizes the blocks).

    Returns
    -------
    xr.DataArray
        ``salt_probability``, float32 in [0, 1], same dims and coords as the input, Dask-backed.

    Raises
    ------
    DataError
        Bad dims or options.

    Examples
    --------
    >>> import saltvol, saltvol.synth
    >>> ds = saltvol.synth.make_volume((16, 16, 64))
    >>> prob = saltvol.segment(ds, tile_size=64)  # doctest: +SKIP
    """
    tune_allocator()  # before Dask's threads allocate: threads started later share the tuned heap
    amplitude = _amplitude(data)
    if not 0 <= overlap < 1:
        raise DataError(f"overlap must be in [0, 1), got {overlap!r}; pass --overlap between 0 and 0.9")
    orientations = tuple(orientations)
    unknown = set(orientations) - {"iline", "xline"}
    if not orientations or unknown:
        raise DataError(f"orientations must be a non-empty subset of ('iline', 'xline'), got {orientations!r}")
    saltmodel = model if isinstance(model, SaltModel) else load_model(model, device=device)
    tile_size = int(tile_size or DEFAULT_TILE)
    if tile_size < 16:
        raise DataError(f"tile size {tile_size!r} is too small; pass --tile 64 or more")
    stats = stats or volume_stats(data)
    factor = resolve_scale(scale, stats, saltmodel)
    if batch_size is not None and batch_size < 1:
        raise DataError(f"batch size {batch_size!r} must be at least 1; pass batch_size=4")
    batch_size = default_batch_size(saltmodel.device) if batch_size is None else batch_size
    kernel_kwargs = dict(stats=stats.amplitude, tile_size=tile_size, overlap=overlap, batch_size=batch_size, scale=factor)
    ref = ModelRef.from_model(saltmodel if model is None or isinstance(model, SaltModel) else model, device=saltmodel.device)

    array = amplitude.data if isinstance(amplitude.data, da.Array) else da.from_array(np.asarray(amplitude.values), chunks=-1)
    array = array.astype(np.float32)
    if amplitude.ndim == 2:  # a 2D line is one section
        probs = orientation_pass(array[None], 0, kernel_kwargs=kernel_kwargs, model_ref=ref, concurrency=1)[0]
        used: tuple[str, ...] = ("line",)
    else:
        axes = {"iline": 0, "xline": 1}
        orientations = usable_orientations(amplitude.shape, orientations)
        passes = [orientation_pass(array, axes[o], kernel_kwargs=kernel_kwargs, model_ref=ref, concurrency=concurrency) for o in orientations]
        target = amplitude.data.chunks if isinstance(amplitude.data, da.Array) else passes[0].chunks
        passes = [p.rechunk(target) for p in passes]
        probs = passes[0] if len(passes) == 1 else sum(passes[1:], passes[0]) / np.float32(len(passes))
        used = orientations
    result = xr.DataArray(probs, dims=amplitude.dims, coords=amplitude.coords, name="salt_probability")
    result.attrs.update(
        long_name="salt probability",
        units="1",
        tile_size=tile_size,
        stride=TileGrid((tile_size, tile_size), tile_size, overlap).stride,
        overlap=overlap,
        orientations=list(used),
        scale=factor,
        volume_period_px=stats.period_px if stats.period_px is not None else float("nan"),
        model_period_px=saltmodel.period_px,
        model_input_scale=float(saltmodel.meta.input_scale),
        model_name=saltmodel.name,
        model_sha256=saltmodel.sha256 or "",
    )
    return result
