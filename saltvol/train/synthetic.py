"""Training tiles cut from ``saltvol synth`` volumes, prepared exactly as ``segment`` prepares a real section.

TGS tiles all share one acquisition, one processing flow and one reflector
spacing. A model trained on them alone learns that salt is "the quiet region
under a bright event at TGS's scale", and on whole sections at other scales it
misses salt or marks weak layering (see docs/model.md). Synthetic volumes
come with their exact salt masks at any reflector period, so mixing a share
of their sections into training teaches the network what layered sediment
and salt look like after the same amplitude mapping and rescaling that
inference applies: the amplitude statistics and the period are measured by
:func:`saltvol.inference.volume_stats`, amplitudes mapped by
:func:`saltvol.normalize.to_image_units`, and sections resampled by the
factor :func:`saltvol.inference.resolve_scale` chooses, all as in
:func:`saltvol.segment`.

A share of the volumes get a quiet top above their first reflection: a mute
(exact zeros ending on a ragged line, as on the F3 crops), half of them over a
band of incoherent noise a few periods thick (the shallow, unstacked-looking
zone under the mute of the F3 2-inline file), or a water column (weak noise
over a seabed reflection). Real sections start that way, and a network trained
on TGS tiles reads the featureless top, the chaotic band and the strong onset
under them as salt (docs/real-data.md); these tiles carry mask 0 there.

Validation stays on TGS tiles only, so the reported score is unchanged in
meaning.
"""

from __future__ import annotations

import logging
import math
import warnings

import numpy as np
from scipy import signal

from ..inference import _resample, resolve_scale, volume_stats
from ..model import ModelInfo, ModelMeta
from ..normalize import to_image_units
from ..synth import make_volume, ricker_wavelet

__all__ = ["SYNTH_PERIODS", "synthetic_tiles"]

log = logging.getLogger(__name__)

#: Reflector periods (samples) of the synthetic volumes: from half to well over TGS's ~18-25 px.
SYNTH_PERIODS = (8.0, 12.0, 16.0, 20.0, 25.0, 30.0)
#: Tiles cut from each synthetic volume: many small volumes (more geology) beat many tiles of one.
_TILES_PER_VOLUME = 12
#: Inlines per synthetic volume: a thin slab is cheap, and the salt is fitted to whatever shape is asked.
_LINES_PER_VOLUME = 4
#: Share of salt-free tiles asked for (TGS: 39 %).
_EMPTY_SHARE = 0.35
#: Share of volumes given a muted or water-filled top, and of their tiles cut from the very top.
_QUIET_TOP_SHARE = 0.4
_TOP_TILE_SHARE = 0.6


def synthetic_tiles(
    n_tiles: int,
    *,
    meta: ModelMeta,
    seed: int = 0,
    size: int = 101,
    periods: tuple[float, ...] = SYNTH_PERIODS,
) -> tuple[np.ndarray, np.ndarray]:
    """Cut ``n_tiles`` image/mask tiles from synthetic volumes at several reflector periods.

    Parameters
    ----------
    n_tiles : int
        How many tiles to return (0 gives empty arrays).
    meta : ModelMeta
        The model being trained: its image centre/spread and reflector period
        are the targets of the amplitude mapping and the rescaling.
    seed : int, default 0
        The same seed gives the same tiles (a resumed run regenerates them).
    size : int, default 101
        Tile edge, TGS's by default so synthetic and TGS tiles share a batch.
    periods : tuple of float
        Periods of the volumes, used in turn.

    Returns
    -------
    images : np.ndarray of float32, shape (n_tiles, size, size), in [0, 1]
    masks : np.ndarray of uint8, shape (n_tiles, size, size), 1 = salt
    """
    if n_tiles <= 0:
        return np.zeros((0, size, size), np.float32), np.zeros((0, size, size), np.uint8)
    rng = np.random.default_rng(seed)
    target = ModelInfo(meta=meta, source="training", sha256="")
    images: list[np.ndarray] = []
    masks: list[np.ndarray] = []
    n_volumes = 0
    while len(images) < n_tiles:
        period = float(periods[n_volumes % len(periods)]) * float(rng.uniform(0.9, 1.1))
        want = min(_TILES_PER_VOLUME, n_tiles - len(images))
        image_tiles, mask_tiles = _tiles_from_volume(want, period=period, seed=int(rng.integers(2**31)), target=target, size=size, rng=rng)
        if not image_tiles:
            raise ValueError(f"a synthetic volume at a period of {period:.1f} px gave no {size} px tile; use periods closer to the model's {target.period_px:.1f} px")
        images.extend(image_tiles)
        masks.extend(mask_tiles)
        n_volumes += 1
    log.info("cut %d synthetic tiles from %d volumes (periods %s px)", len(images), n_volumes, ", ".join(f"{p:g}" for p in periods))
    return np.stack(images).astype(np.float32), np.stack(masks).astype(np.uint8)


def _tiles_from_volume(
    n_tiles: int, *, period: float, seed: int, target: ModelInfo, size: int, rng: np.random.Generator
) -> tuple[list[np.ndarray], list[np.ndarray]]:
    # Sized so that, once rescaled to the training period, a section holds a few tiles each way.
    factor_guess = target.period_px / period
    n_traces = max(24, math.ceil(1.6 * size / factor_guess))
    n_samples = max(48, math.ceil(2.4 * size / factor_guess))
    volume = make_volume((_LINES_PER_VOLUME, n_traces, n_samples), seed=seed, period=period, noise=float(rng.uniform(0.02, 0.15)))
    top_rows = 0
    if rng.random() < _QUIET_TOP_SHARE:
        amplitude, top_rows = _with_quiet_top(volume["amplitude"].values, volume["salt"].values, period=period, rng=rng)
        volume = volume.assign(amplitude=(volume["amplitude"].dims, amplitude))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # far-from-training periods are the point here
        stats = volume_stats(volume)
        factor = resolve_scale("auto", stats, target)
    amplitude = np.asarray(volume["amplitude"].values, dtype=np.float32)
    salt = np.asarray(volume["salt"].values, dtype=np.float32)
    images, masks = [], []
    for _ in range(n_tiles):
        line = int(rng.integers(_LINES_PER_VOLUME))
        section, truth = amplitude[line], salt[line]
        shape = (max(1, round(section.shape[1] * factor)), max(1, round(section.shape[0] * factor)))
        if shape[0] < size or shape[1] < size:  # an explicit rescale far from the guess: nothing to cut
            break
        image = _resample(to_image_units(section.T, stats.amplitude, target_center=target.meta.image_center, target_spread=target.meta.image_spread), shape)
        mask = _resample(np.ascontiguousarray(truth.T), shape) > 0.5
        # TGS has about 39 % salt-free tiles: look for one that often, or salt otherwise.
        want_salt = rng.random() >= _EMPTY_SHARE
        from_top = top_rows > 0 and rng.random() < _TOP_TILE_SHARE
        lowest_top = min(shape[0] - size, round(top_rows * factor)) if from_top else shape[0] - size  # tile's top row
        for _attempt in range(8):
            top = int(rng.integers(lowest_top + 1))
            left = int(rng.integers(shape[1] - size + 1))
            if mask[top : top + size, left : left + size].any() == want_salt:
                break
        images.append(np.clip(image[top : top + size, left : left + size], 0.0, 1.0))
        masks.append(mask[top : top + size, left : left + size])
    return images, masks


def _with_quiet_top(
    amplitude: np.ndarray, salt: np.ndarray, *, period: float, rng: np.random.Generator
) -> tuple[np.ndarray, int]:
    """Blank each trace above a cut line: a mute (zeros) or a water column (weak noise over a seabed).

    ``amplitude`` and ``salt`` are ``(line, trace, sample)``. The cut lies at
    8-30 % of the trace length, undulates laterally, and for a mute is ragged
    from trace to trace (as processing mutes are); it always stays a period
    above the salt. Half of the mutes sit over an incoherent band 2-10 periods
    thick, ending a period above the salt and in the upper 60 % of the trace
    (see :func:`_incoherent_band`). Returns the new amplitude and the deepest
    altered sample.
    """
    n_lines, n_traces, n_samples = amplitude.shape
    traces = np.arange(n_traces)
    cut = n_samples * rng.uniform(0.08, 0.3) + n_samples * rng.uniform(0.0, 0.06) * np.sin(
        2 * math.pi * traces / (n_traces * rng.uniform(0.8, 3.0)) + rng.uniform(0, 2 * math.pi)
    )
    mute = rng.random() < 0.5
    cut = np.broadcast_to(cut, (n_lines, n_traces)).copy()
    if mute:
        cut += rng.integers(-round(period / 2), round(period / 2) + 1, size=cut.shape)
    salt_top = np.where(salt.any(axis=-1), salt.argmax(axis=-1), n_samples)
    cut = np.clip(np.minimum(cut, salt_top - period), 0, None).astype(int)
    rms = float(np.sqrt(np.mean(np.square(amplitude, dtype=np.float64))))
    depth = np.arange(n_samples) - cut[..., None]  # samples below the cut
    out = amplitude.astype(np.float32, copy=True)
    if mute:
        out[depth < 0] = 0.0
        if rng.random() < 0.5:
            thickness = rng.uniform(2.0, 10.0) * period
            bottom = np.minimum(np.minimum(cut + thickness, salt_top - period), 0.6 * n_samples).astype(int)
            out, deepest = _incoherent_band(out, cut, bottom, rms=rms, period=period, rng=rng)
            return out, max(int(cut.max()), deepest)
    else:
        noise = rng.normal(0.0, rng.uniform(0.01, 0.1) * rms, size=out.shape).astype(np.float32)
        out = np.where(depth < 0, noise, out)
        wavelet = ricker_wavelet(period)
        half = len(wavelet) // 2
        near = np.abs(depth) <= half
        out[near] += np.float32(rng.uniform(1.5, 4.0) * rms) * wavelet[depth[near] + half].astype(np.float32)
    return out, int(cut.max())


def _incoherent_band(
    amplitude: np.ndarray, top: np.ndarray, bottom: np.ndarray, *, rms: float, period: float, rng: np.random.Generator
) -> tuple[np.ndarray, int]:
    """Replace samples ``top <= s < bottom`` of each trace by weaker noise at the reflectors' period.

    The noise is white per trace, band-limited along ``sample`` by the same
    Ricker wavelet as the reflectors, and mixed with a little of the layering
    it replaces, so it is laterally almost uncorrelated at 30-80 % of their
    RMS, like the F3 band (trace-to-trace correlation 0.1-0.3 there, against
    0.6-0.75 for the reflectors below): chaotic like salt interiors, but under
    a mute where no salt is.
    Returns the amplitude and the deepest sample replaced (0 if none).
    """
    samples = np.arange(amplitude.shape[-1])
    inside = (samples >= top[..., None]) & (samples < bottom[..., None])
    if not inside.any():
        return amplitude, 0
    noise = signal.fftconvolve(rng.standard_normal(amplitude.shape), ricker_wavelet(period)[None, None, :], mode="same", axes=-1)
    noise *= rng.uniform(0.3, 0.8) * rms / max(float(noise.std()), 1e-12)
    keep = rng.uniform(0.0, 0.35)  # share of the layering left in the band
    out = amplitude.copy()
    out[inside] = (keep * amplitude[inside] + math.sqrt(1.0 - keep**2) * noise[inside]).astype(np.float32)
    return out, int(bottom[inside.any(axis=-1)].max())
