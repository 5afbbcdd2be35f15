"""Synthetic post-stack seismic volumes around a salt body, with the truth mask.

The volume is built the way a geologist would draw it, then "shot": a 1D
log-impedance column (layers of random thickness, heavy-tailed contrasts, a
compaction trend) is mapped into 3D through a relative-geologic-time field
``tau(iline, xline, sample)`` that carries gentle folds, a regional dip, one or
two normal faults with throw and the drag of sediments against a salt body.
The salt (a dome, a mushroom-headed diapir or an elongated wall rising from the
bottom) replaces the sediments with one high impedance plus weak chaotic
reflectivity. Reflectivity is the vertical difference of log-impedance, so the
top of salt is a bright positive event and the salt interior is quiet. It is
convolved along ``sample`` with a zero-phase Ricker wavelet whose dominant
period is ``period`` samples, and band-limited noise is added.

Laterally continuous layers mean that neighbouring traces share one random
reflectivity series, whose spectrum alone would move the apparent dominant
period by 10-30 %. So a few independent layer sequences are blended laterally
(facies), and the wavelet is combined with a smooth whitening of the mean
reflectivity spectrum of the salt-free traces: their mean amplitude spectrum
then follows the Ricker spectrum, peaking at ``1 / period`` cycles per sample.

Everything is vectorised numpy, built in blocks of inlines to bound memory.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

import numpy as np
import xarray as xr
from scipy import fft as sp_fft
from scipy import ndimage, signal, special

from .errors import DataError

__all__ = ["make_volume"]

logger = logging.getLogger(__name__)

#: Voxels per block of inlines; bounds the temporaries to a few tens of MB.
_BLOCK_VOXELS = 1_500_000
#: Oversampling of the 1D impedance table along relative geologic time.
_TABLE_OVERSAMPLE = 4
#: Independent layer sequences blended laterally (facies).
_N_FACIES = 4
#: Length of the random series read, shifted and stretched per trace, inside salt.
_CHAOS_LEN = 32768
#: Bin spacing of the synthetic grid, in metres.
_BIN_SIZE = 25.0
#: Map origin and azimuth of the crossline axis (degrees from east).
_ORIGIN = (512_000.0, 6_710_000.0)
_AZIMUTH_DEG = 30.0
_SALT_KINDS = ("dome", "diapir", "wall")


@dataclass(frozen=True)
class _Fault:
    """A planar normal fault: lateral position moves with depth, throw tapers along strike."""

    cos: float
    sin: float
    u0: float  # lateral position (traces, across strike) at mid depth
    slope: float  # traces of lateral move per sample of depth (sets the dip)
    throw: float  # samples of vertical displacement at the fault's centre
    taper: float  # traces; along-strike Gaussian taper length of the throw


@dataclass(frozen=True)
class _Salt:
    """Parameters of a salt body whose radius depends on depth only, plus lateral lobes."""

    kind: str
    ci: float  # centre at the crest, iline index
    cj: float  # centre at the crest, xline index
    cos: float
    sin: float
    elongation: float  # stretch along strike (1 = round, large = wall)
    crest: float  # sample index of the crest
    drift_i: float  # centre shift (traces) from crest to bottom
    drift_j: float
    lobes: tuple[tuple[int, float, float], ...]  # (order, amplitude, phase)
    strike_wave: tuple[float, float, float]  # wall: (amplitude, wavelength, phase)
    profile: tuple[float, ...]  # kind-specific shape parameters
    wiggle: tuple[float, float, float]  # depth wiggle of the radius (amp, wavelength, phase)
    drag: float  # samples of upward drag next to the salt
    drag_width: float  # traces


@dataclass(frozen=True)
class _Geology:
    tables: np.ndarray  # float32 (n_facies, n_grid): log-impedance vs. oversampled relative time
    tau0: float  # relative time of column 0 of the tables
    facies_waves: tuple[tuple[float, float, float], ...]  # (kx, ky, phase): lateral facies field
    growth: tuple[float, float, float, float, float]  # (amp, kx, ky, phase, vertical wavelength)
    fold_waves: tuple[tuple[float, float, float, float], ...]  # (amp, kx, ky, phase)
    dip: tuple[float, float]  # samples per trace along iline, xline
    faults: tuple[_Fault, ...]
    salt: _Salt
    salt_contrast: float  # log-impedance of salt above the sediment trend
    trend: float  # log-impedance increase over the volume height (compaction)
    interior_sigma: float  # std of chaotic reflectivity inside salt
    chaos: np.ndarray  # float32 unit-variance random reflectivity series for the salt interior
    # (shift, stretch, kx, ky, phase) of the per-trace reading of `chaos`
    chaos_waves: tuple[tuple[float, float, float, float, float], ...]


def make_volume(
    shape: tuple[int, int, int] = (64, 64, 128),
    *,
    seed: int = 0,
    period: float = 25.0,
    noise: float = 0.05,
    dt: float = 4.0,
    salt: bool = True,
) -> xr.Dataset:
    """Make a synthetic seismic volume around a salt body, with its truth mask.

    A 1D layered log-impedance column is mapped into 3D through a folded,
    faulted and salt-dragged relative-geologic-time field, the salt body
    replaces the sediments with a high, nearly constant impedance, and the
    vertical reflectivity is convolved with a Ricker wavelet along ``sample``.

    Parameters
    ----------
    shape : tuple of int, default (64, 64, 128)
        ``(n_iline, n_xline, n_sample)``. Tiny shapes such as ``(3, 4, 16)``
        and 2D-like lines ``(1, n, ns)`` work too.
    seed : int, default 0
        Seed of :func:`numpy.random.default_rng`; the same seed and arguments
        give an identical volume.
    period : float, default 25.0
        Dominant vertical period of the reflectors, in samples: the Ricker
        peak frequency is ``1 / (period * dt)`` (cycles per ms), and the mean
        amplitude spectrum of the salt-free traces is shaped to the Ricker
        spectrum. Must be > 2.
    noise : float, default 0.05
        Standard deviation of the added band-limited noise, as a fraction of
        the RMS of the noise-free amplitude.
    dt : float, default 4.0
        Sample interval in ms; the ``sample`` coordinate is ``0, dt, 2 dt, ...``.
    salt : bool, default True
        Whether to put a salt body in. With False the sediments are the same
        as with True for the same seed, minus the salt and its drag.

    Returns
    -------
    xr.Dataset
        ``amplitude`` (iline, xline, sample) float32, RMS about 1;
        ``salt`` (iline, xline, sample) bool, the truth mask. Coordinates
        ``iline`` (from 1000), ``xline`` (from 2000), ``sample`` (ms) and
        ``cdp_x``/``cdp_y`` (iline, xline) in metres on a rotated 25 m grid.
        ``attrs`` record the arguments, the salt kind and the salt fraction.

    Raises
    ------
    DataError
        If the shape or a parameter is out of range.

    See Also
    --------
    saltvol.io.segy_write.write_segy : write the volume to SEG-Y.

    Examples
    --------
    >>> ds = make_volume((16, 12, 64), seed=1, period=10.0)
    >>> ds["amplitude"].dims, ds["amplitude"].dtype.name
    (('iline', 'xline', 'sample'), 'float32')
    >>> int(ds.iline[0]), int(ds.xline[0]), float(ds.sample[1])
    (1000, 2000, 4.0)
    """
    shape = _check_args(shape, period=period, noise=noise, dt=dt)
    ni, nx, ns = shape
    rng = np.random.default_rng(seed)
    geo = _draw_geology(rng, shape, period=period)
    scale = _fit_salt_scale(geo.salt, shape, rng) if salt else 0.0

    amplitude = np.empty(shape, dtype=np.float32)
    mask = np.zeros(shape, dtype=bool)
    step = max(1, _BLOCK_VOXELS // (nx * ns))
    blocks = [slice(i, min(i + step, ni)) for i in range(0, ni, step)]
    for sl in blocks:
        amplitude[sl], mask[sl] = _reflectivity_block(
            geo, sl, shape, salt_scale=scale, with_salt=salt
        )

    # One zero-phase shaping filter for all traces: the Ricker wavelet times a
    # smooth whitening of the mean reflectivity spectrum (measured on a sample
    # of traces), scaled so that the noise-free amplitude has RMS 1. Laterally
    # continuous layers share one reflectivity series, whose random spectrum
    # would otherwise move the dominant period by +-20 %. Noise is added to the
    # reflectivity, so it has the signal's band, with std `noise` afterwards.
    traces = amplitude.reshape(-1, ns)
    sediment = np.flatnonzero(~mask.reshape(-1, ns).any(axis=-1))
    pool = sediment if len(sediment) >= min(16, len(traces)) else np.arange(len(traces))
    pick = np.sort(rng.choice(pool, size=min(len(pool), 2048), replace=False))
    shaping = _shaping_filter(traces[pick], period=period)
    clean = _apply_filter(traces[pick], shaping)
    rms = float(np.sqrt(np.mean(np.square(clean, dtype=np.float64))))
    if rms > 0:
        shaping = _Filter(shaping.response / np.float32(rms), shaping.nfft, shaping.delay)
    noise_sigma = noise / shaping.norm()
    for sl in blocks:
        block = amplitude[sl]
        if noise > 0:
            # uniform noise is cheaper to draw and is Gaussian after the filter
            block += np.float32(noise_sigma * math.sqrt(12.0)) * (
                rng.random(block.shape, dtype=np.float32) - np.float32(0.5)
            )
        amplitude[sl] = _apply_filter(block, shaping)

    fraction = float(mask.mean())
    logger.debug(
        "synthetic volume %s seed=%d kind=%s salt fraction %.3f",
        shape,
        seed,
        geo.salt.kind if salt else "none",
        fraction,
    )
    return _to_dataset(
        amplitude,
        mask,
        dt=dt,
        attrs={
            "title": "saltvol synthetic seismic volume",
            "generator": "saltvol.synth.make_volume",
            "seed": int(seed),
            "period": float(period),
            "noise": float(noise),
            "dt": float(dt),
            "salt": bool(salt),
            "salt_kind": geo.salt.kind if salt else "none",
            "salt_fraction": fraction,
            "n_faults": len(geo.faults),
            "peak_frequency_hz": 1000.0 / (period * dt),
        },
    )


# ----------------------------------------------------------------------------
# argument checks and output assembly


def _check_args(
    shape: tuple[int, int, int], *, period: float, noise: float, dt: float
) -> tuple[int, int, int]:
    try:
        dims = tuple(int(n) for n in shape)
    except (TypeError, ValueError) as e:
        raise DataError(
            f"shape {shape!r} is not a tuple of integers; pass (n_iline, n_xline, n_sample)"
        ) from e
    if len(dims) != 3 or min(dims) < 1 or dims[2] < 2:
        raise DataError(
            f"shape {shape!r} is not usable; pass three positive sizes (n_iline, n_xline, "
            "n_sample) with at least 2 samples"
        )
    if not (math.isfinite(period) and period > 2.0):
        raise DataError(
            f"period {period!r} is not above the Nyquist period of 2 samples; pass a period > 2"
        )
    if not (math.isfinite(noise) and noise >= 0.0):
        raise DataError(f"noise {noise!r} is negative or not finite; pass a fraction >= 0")
    if not (math.isfinite(dt) and dt > 0.0):
        raise DataError(f"dt {dt!r} is not positive; pass the sample interval in ms, e.g. 4.0")
    return dims  # type: ignore[return-value]


def _to_dataset(
    amplitude: np.ndarray, mask: np.ndarray, *, dt: float, attrs: dict[str, object]
) -> xr.Dataset:
    ni, nx, ns = amplitude.shape
    ii, jj = np.meshgrid(np.arange(ni, dtype=float), np.arange(nx, dtype=float), indexing="ij")
    az = math.radians(_AZIMUTH_DEG)
    cdp_x = _ORIGIN[0] + _BIN_SIZE * (jj * math.cos(az) - ii * math.sin(az))
    cdp_y = _ORIGIN[1] + _BIN_SIZE * (jj * math.sin(az) + ii * math.cos(az))
    dims3 = ("iline", "xline", "sample")
    return xr.Dataset(
        {
            "amplitude": (dims3, amplitude, {"long_name": "seismic amplitude"}),
            "salt": (dims3, mask, {"long_name": "salt truth mask"}),
        },
        coords={
            "iline": ("iline", np.arange(1000, 1000 + ni, dtype=np.int64)),
            "xline": ("xline", np.arange(2000, 2000 + nx, dtype=np.int64)),
            "sample": ("sample", np.arange(ns, dtype=np.float64) * dt, {"units": "ms"}),
            "cdp_x": (("iline", "xline"), cdp_x, {"units": "m"}),
            "cdp_y": (("iline", "xline"), cdp_y, {"units": "m"}),
        },
        attrs=attrs,
    )


# ----------------------------------------------------------------------------
# random geology


def _draw_geology(
    rng: np.random.Generator, shape: tuple[int, int, int], *, period: float
) -> _Geology:
    """Draw every random parameter up front, so blocks only evaluate formulas."""
    ni, nx, ns = shape
    lat = float(max(ni, nx, 48))  # lateral scale of the geology, in traces

    # Folds: a few plane waves in (iline, xline), gentle slopes, amplitude
    # growing with depth (applied in _tau); plus a regional dip.
    waves = []
    for _ in range(3):
        wavelength = lat * rng.uniform(0.7, 2.0)
        theta = rng.uniform(0.0, math.pi)
        amp = min(wavelength * rng.uniform(0.015, 0.045), 0.08 * ns)
        waves.append(
            (
                amp,
                math.cos(theta) * 2 * math.pi / wavelength,
                math.sin(theta) * 2 * math.pi / wavelength,
                rng.uniform(0, 2 * math.pi),
            )
        )
    dip = (float(rng.uniform(-0.08, 0.08)), float(rng.uniform(-0.08, 0.08)))
    # Growth: layer thickness varies laterally and differently with depth, so
    # thin beds tune differently along a reflector; the slope in depth stays < 0.4.
    g_len = lat * rng.uniform(0.8, 2.0)
    g_theta = rng.uniform(0.0, math.pi)
    g_vert = ns * rng.uniform(0.3, 0.7)
    growth = (
        float(min(0.25 * g_vert / (2 * math.pi), lat * 0.1) * rng.uniform(0.6, 1.0)),
        math.cos(g_theta) * 2 * math.pi / g_len,
        math.sin(g_theta) * 2 * math.pi / g_len,
        float(rng.uniform(0, 2 * math.pi)),
        float(g_vert),
    )
    # Facies: which of a few independent layer sequences a trace sees, as a
    # smooth lateral field, so layers are continuous over a fraction of the
    # survey and then change character (and the traces' spectra decorrelate).
    facies_waves = tuple(
        (math.cos(th) * 2 * math.pi / wl, math.sin(th) * 2 * math.pi / wl, float(ph))
        for th, wl, ph in (
            (rng.uniform(0, math.pi), lat * rng.uniform(0.4, 0.9), rng.uniform(0, 2 * math.pi))
            for _ in range(3)
        )
    )

    faults = []
    for _ in range(int(rng.integers(1, 3))):
        theta = rng.uniform(0.0, math.pi)
        faults.append(
            _Fault(
                cos=math.cos(theta),
                sin=math.sin(theta),
                u0=float(rng.uniform(-0.3, 0.3) * lat),
                slope=float(rng.uniform(0.2, 0.5) * rng.choice([-1.0, 1.0])),
                throw=float(rng.uniform(0.3, 1.0) * period),
                taper=float(rng.uniform(0.5, 1.2) * lat),
            )
        )

    salt_body = _draw_salt(rng, shape, lat)
    max_fold = sum(w[0] for w in waves) + (abs(dip[0]) * ni + abs(dip[1]) * nx) + growth[0]
    tau_lo = -max_fold - sum(f.throw for f in faults) - 2.0
    tau_hi = ns + max_fold + salt_body.drag + 2.0
    tables, sigma = _impedance_tables(rng, tau_lo, tau_hi, period=period)
    return _Geology(
        tables=tables,
        tau0=float(tau_lo),
        facies_waves=facies_waves,
        growth=growth,
        fold_waves=tuple(waves),
        dip=dip,
        faults=tuple(faults),
        salt=salt_body,
        salt_contrast=float(rng.uniform(0.2, 0.3)),
        trend=0.3,
        interior_sigma=0.25 * sigma,
        chaos=(rng.laplace(0.0, 1.0 / math.sqrt(2.0), size=_CHAOS_LEN)).astype(np.float32),
        chaos_waves=tuple(
            (
                float(rng.uniform(0.2, 0.6) * period),
                float(rng.uniform(0.01, 0.04)),
                math.cos(th) * 2 * math.pi / wl,
                math.sin(th) * 2 * math.pi / wl,
                float(rng.uniform(0, 2 * math.pi)),
            )
            for th, wl in ((rng.uniform(0, math.pi), rng.uniform(4.0, 16.0)) for _ in range(10))
        ),
    )


def _impedance_tables(
    rng: np.random.Generator, tau_lo: float, tau_hi: float, *, period: float
) -> tuple[np.ndarray, float]:
    """Independent layered log-impedance columns on an oversampled relative-time axis.

    Layers come in sequences with their own mean thickness (gamma-distributed
    thicknesses); log-impedance follows a mean-reverting walk with Laplace
    steps, so reflection coefficients are nearly white and heavy-tailed. The
    compaction trend is added later. Returns the tables and the RMS
    reflectivity per sample (reflection coefficients diluted by the layer
    thickness), the scale for the salt's weak interior reflectivity.
    """
    span = tau_hi - tau_lo
    n_grid = int(math.ceil(span * _TABLE_OVERSAMPLE)) + 1
    grid = tau_lo + np.arange(n_grid) / _TABLE_OVERSAMPLE
    tables = np.empty((_N_FACIES, n_grid), dtype=np.float32)
    sigmas = []
    for row in tables:
        bounds = [tau_lo]
        while bounds[-1] < tau_hi:
            mean = max(1.2, period * rng.uniform(0.12, 0.45))
            n = int(span * rng.uniform(0.15, 0.4) / mean) + 1
            bounds.extend(bounds[-1] + np.cumsum(rng.gamma(2.5, mean / 2.5, size=n)))
        interfaces = np.asarray(bounds[1:])
        walk = signal.lfilter([1.0], [1.0, -0.9], rng.laplace(0.0, 0.035, size=len(interfaces) + 1))
        row[:] = walk[np.searchsorted(interfaces, grid)]
        sigmas.append(np.std(np.diff(row[::_TABLE_OVERSAMPLE])) / 2)
    return tables, float(np.mean(sigmas))


def _draw_salt(rng: np.random.Generator, shape: tuple[int, int, int], lat: float) -> _Salt:
    ni, nx, ns = shape
    kind = str(rng.choice(_SALT_KINDS, p=[0.4, 0.35, 0.25]))
    theta = rng.uniform(0.0, math.pi)
    if kind == "dome":
        elongation = rng.uniform(1.0, 1.5)
        profile: tuple[float, ...] = (rng.uniform(0.35, 0.6),)
    elif kind == "diapir":
        elongation = rng.uniform(1.0, 1.3)
        # head height (fraction of the body height), stem/head radius ratio
        profile = (rng.uniform(0.2, 0.35), rng.uniform(0.45, 0.7))
    else:
        elongation = 6.0
        profile = (rng.uniform(0.3, 0.5),)
    lobes = tuple(
        (m, float(rng.uniform(0.0, 0.08)), float(rng.uniform(0, 2 * math.pi))) for m in (2, 3, 4)
    )
    return _Salt(
        kind=kind,
        ci=0.0 if ni == 1 else float((ni - 1) / 2 + rng.uniform(-0.2, 0.2) * ni),
        cj=float((nx - 1) / 2 + rng.uniform(-0.2, 0.2) * nx),
        cos=math.cos(theta),
        sin=math.sin(theta),
        elongation=float(elongation),
        crest=float(ns * rng.uniform(0.25, 0.5)),
        drift_i=0.0 if ni == 1 else float(rng.uniform(-0.15, 0.15) * lat),
        drift_j=float(rng.uniform(-0.15, 0.15) * lat),
        lobes=lobes,
        strike_wave=(
            float(rng.uniform(0.1, 0.3)),
            float(lat * rng.uniform(0.6, 1.5)),
            float(rng.uniform(0, 2 * math.pi)),
        ),
        profile=tuple(float(p) for p in profile),
        wiggle=(
            float(rng.uniform(0.02, 0.07)),
            float(ns * rng.uniform(0.2, 0.5)),
            float(rng.uniform(0, 2 * math.pi)),
        ),
        drag=float(ns * rng.uniform(0.03, 0.08)),
        drag_width=float(lat * rng.uniform(0.06, 0.12)),
    )


# ----------------------------------------------------------------------------
# salt geometry


def _salt_radius(salt: _Salt, k: np.ndarray, ns: int) -> np.ndarray:
    """Unit-scale salt radius at sample indices ``k`` (0 above the crest)."""
    t = np.clip((k - salt.crest) / max(ns - salt.crest, 1.0), 0.0, 1.0)
    if salt.kind == "diapir":
        head, stem = salt.profile
        cap = np.sqrt(np.clip(1.0 - (1.0 - t / head) ** 2, 0.0, 1.0))
        neck = stem + (1.0 - stem) * np.exp(-(((t - head) / (0.6 * head)) ** 2))
        radius = np.where(t < head, cap, neck)
    else:
        radius = t ** salt.profile[0]
    amp, wavelength, phase = salt.wiggle
    radius = radius * (1.0 + amp * np.sin(2 * math.pi * k / wavelength + phase))
    return np.where(k >= salt.crest, radius, 0.0)


def _salt_r2(salt: _Salt, i: np.ndarray, j: np.ndarray, k: np.ndarray, ns: int) -> np.ndarray:
    """Squared effective lateral distance to the salt axis, broadcast over (i, j, k).

    The axis drifts linearly with depth (a tilted stem); the distance is
    stretched along strike by the elongation and shrunk/grown by angular
    lobes (or, for a wall, by a wave along strike) so the outline is irregular.
    """
    frac = np.clip((k - salt.crest) / max(ns - salt.crest, 1.0), 0.0, 1.0).astype(np.float32)
    di = (i - salt.ci).astype(np.float32)
    dj = (j - salt.cj).astype(np.float32)
    # lobes from the crest geometry (2D, cheap)
    u0 = dj * salt.cos + di * salt.sin
    v0 = -dj * salt.sin + di * salt.cos
    if salt.kind == "wall":
        amp, wavelength, phase = salt.strike_wave
        grow = 1.0 + amp * np.cos(2 * math.pi * u0 / wavelength + phase)
    else:
        ang = np.arctan2(v0, u0 / salt.elongation)
        grow = 1.0 + sum(a * np.cos(m * ang + p) for m, a, p in salt.lobes)
    inv_grow2 = (1.0 / np.square(grow)).astype(np.float32)
    # depth-dependent axis
    shift_u = (salt.drift_j * salt.cos + salt.drift_i * salt.sin) * frac
    shift_v = (-salt.drift_j * salt.sin + salt.drift_i * salt.cos) * frac
    u = (u0 - shift_u) / np.float32(salt.elongation)
    v = v0 - shift_v
    return (u * u + v * v) * inv_grow2


def _fit_salt_scale(salt: _Salt, shape: tuple[int, int, int], rng: np.random.Generator) -> float:
    """Radius scale (traces) that makes the salt fill a random 12-35 % of the volume.

    The mask is ``r2 <= (scale * R(k))**2``, so on a coarse grid the scale
    for a target fraction is a quantile of ``r2 / R(k)**2``.
    """
    ni, nx, ns = shape
    target = rng.uniform(0.12, 0.35)
    i = np.arange(0, ni, max(1, ni // 40), dtype=np.float32)[:, None, None]
    j = np.arange(0, nx, max(1, nx // 40), dtype=np.float32)[None, :, None]
    k = np.arange(0, ns, max(1, ns // 64), dtype=np.float32)[None, None, :]
    radius = _salt_radius(salt, k.astype(np.float64), ns)
    with np.errstate(divide="ignore"):
        q = _salt_r2(salt, i, j, k, ns) / np.square(radius)
    q = np.where(radius > 0, q, np.inf)
    return float(np.sqrt(np.quantile(q, target)))


# ----------------------------------------------------------------------------
# per-block evaluation


def _reflectivity_block(
    geo: _Geology,
    sl: slice,
    shape: tuple[int, int, int],
    *,
    salt_scale: float,
    with_salt: bool,
) -> tuple[np.ndarray, np.ndarray]:
    """Reflectivity and salt mask of the inlines ``sl``: tau field -> log-impedance -> diff.

    Every field is a function of the (iline, xline, sample) index, so the
    result does not depend on how the volume is cut into blocks.
    """
    _, nx, ns = shape
    i = np.arange(sl.start, sl.stop, dtype=np.float32)[:, None]
    j = np.arange(nx, dtype=np.float32)[None, :]
    k = np.arange(ns, dtype=np.float32)

    # folds (2D) scaled with depth, regional dip
    fold = np.zeros((len(i), nx), dtype=np.float32)
    for amp, kx, ky, phase in geo.fold_waves:
        fold += np.float32(amp) * np.cos(kx * j + ky * i + phase).astype(np.float32)
    fold += np.float32(geo.dip[0]) * i + np.float32(geo.dip[1]) * j
    depth_gain = (0.4 + 0.6 * k / ns).astype(np.float32)
    tau = k + fold[:, :, None] * depth_gain
    g_amp, g_kx, g_ky, g_phase, g_vert = geo.growth
    growth = (g_amp * np.cos(g_kx * j + g_ky * i + g_phase)).astype(np.float32)
    tau += growth[:, :, None] * np.sin(2 * math.pi * k / g_vert).astype(np.float32)

    # normal faults: hanging wall (beyond the dipping plane) moves down
    for f in geo.faults:
        uc = (j - (nx - 1) / 2) * f.cos + (i - (shape[0] - 1) / 2) * f.sin
        w = -(j - (nx - 1) / 2) * f.sin + (i - (shape[0] - 1) / 2) * f.cos
        throw = (f.throw * np.exp(-((w / f.taper) ** 2))).astype(np.float32)
        plane = (f.u0 + f.slope * (k - ns / 2)).astype(np.float32)
        tau -= (uc[:, :, None] > plane) * throw[:, :, None]

    mask = np.zeros((len(i), nx, ns), dtype=bool)
    if with_salt:
        s = geo.salt
        radius = (salt_scale * _salt_radius(s, k.astype(np.float64), ns)).astype(np.float32)
        r2 = _salt_r2(s, i[:, :, None], j[:, :, None], k, ns)
        mask = r2 <= radius * radius
        # drag: sediments bend up next to the salt and arch over its crest
        dist = np.sqrt(r2) - radius
        np.maximum(dist, 0.0, out=dist)
        dist *= np.float32(1.0 / s.drag_width)
        np.square(dist, out=dist)
        np.negative(dist, out=dist)
        np.exp(dist, out=dist)
        gain = np.clip(k / max(s.crest, 1.0), 0.0, 1.0).astype(np.float32) * np.float32(s.drag)
        tau += dist * gain

    # look up two neighbouring facies tables and blend them (variance kept)
    n_facies, n_grid = geo.tables.shape
    phi = np.zeros((len(i), nx), dtype=np.float64)
    for kx, ky, phase in geo.facies_waves:
        phi += np.cos(kx * j + ky * i + phase)
    phi = (n_facies - 1) * 0.5 * (1.0 + special.erf(phi / math.sqrt(2 * 1.5)))
    first = np.minimum(phi.astype(np.int32), n_facies - 2)
    t = phi - first
    norm = np.sqrt((1 - t) ** 2 + t**2)
    w0 = ((1 - t) / norm).astype(np.float32)[:, :, None]
    w1 = (t / norm).astype(np.float32)[:, :, None]
    idx = tau
    idx -= np.float32(geo.tau0)
    idx *= np.float32(_TABLE_OVERSAMPLE)
    pos = idx.astype(np.int32)
    np.clip(pos, 0, n_grid - 1, out=pos)
    pos += (first * n_grid)[:, :, None]
    flat = geo.tables.ravel()
    logz = flat[pos]
    logz *= w0
    pos += n_grid
    logz += w1 * flat[pos]
    # compaction trend, shared by salt (whose contrast to the trend is fixed)
    logz += (geo.trend * k / ns).astype(np.float32)
    if with_salt:
        salt_logz = (geo.salt_contrast + geo.trend * k / ns).astype(np.float32)
        np.copyto(logz, np.broadcast_to(salt_logz, logz.shape), where=mask)

    refl = np.empty_like(logz)
    refl[..., 0] = 0.0
    np.subtract(logz[..., 1:], logz[..., :-1], out=refl[..., 1:])
    refl *= np.float32(0.5)
    if with_salt and mask.any():
        # weak chaotic reflectivity in the salt, smoothed along xline so it
        # forms short incoherent events after the wavelet
        refl += np.where(mask, _chaos(geo, i, j, k), np.float32(0.0))
    return refl, mask


def _chaos(geo: _Geology, i: np.ndarray, j: np.ndarray, k: np.ndarray) -> np.ndarray:
    """Weak chaotic reflectivity: one random series, shifted and stretched per trace.

    The shift and stretch are sums of short-wavelength plane waves (4-16
    traces), so neighbouring traces are only partly aligned and events are
    short and incoherent, as inside salt.
    """
    shift = np.full(np.broadcast_shapes(i.shape, j.shape), _CHAOS_LEN / 2, dtype=np.float32)
    stretch = np.ones_like(shift)
    for amp, st, kx, ky, phase in geo.chaos_waves:
        wave = np.cos(kx * j + ky * i + phase).astype(np.float32)
        shift += np.float32(amp) * wave
        stretch += np.float32(st) * wave
    pos = (k * stretch[:, :, None] + shift[:, :, None]).astype(np.int32)
    np.clip(pos, 0, _CHAOS_LEN - 1, out=pos)
    out = geo.chaos[pos]
    out *= np.float32(geo.interior_sigma)
    return out


def ricker_wavelet(period: float) -> np.ndarray:
    """Zero-phase Ricker wavelet with peak frequency ``1 / period`` cycles per sample."""
    half = int(math.ceil(1.5 * period))
    t = np.arange(-half, half + 1, dtype=np.float64)
    a = (math.pi * t / period) ** 2
    return (1.0 - 2.0 * a) * np.exp(-a)


@dataclass(frozen=True)
class _Filter:
    """A filter as an rFFT response; output sample ``t`` is convolution sample ``t + delay``."""

    response: np.ndarray  # complex64, length nfft // 2 + 1
    nfft: int
    delay: int

    def norm(self) -> float:
        """L2 norm of the impulse response, the noise gain for white input."""
        h = sp_fft.irfft(self.response.astype(np.complex128), n=self.nfft)
        return float(np.sqrt(np.sum(h * h)))


def _shaping_filter(traces: np.ndarray, *, period: float) -> _Filter:
    """Ricker wavelet times the inverse of the smoothed mean reflectivity amplitude spectrum.

    The whitening is smoothed over one natural frequency bin (``1 / ns``) and
    clipped to a gain of 0.2..5, so its impulse response stays within about
    half a trace; the FFT length leaves room for that without wrap-around.
    """
    ns = traces.shape[-1]
    wavelet = ricker_wavelet(period)
    half = len(wavelet) // 2
    nfft = sp_fft.next_fast_len(2 * ns + 2 * half, real=True)
    response = sp_fft.rfft(wavelet, n=nfft)
    mean_spec = np.abs(sp_fft.rfft(traces.astype(np.float64), n=nfft, axis=-1)).mean(axis=0)
    smooth = ndimage.gaussian_filter1d(mean_spec, sigma=nfft / ns, mode="nearest")
    if smooth.max() > 0:
        level = float(np.median(smooth[1:]))
        gain = np.clip(level / np.maximum(smooth, 1e-12 * smooth.max()), 0.2, 5.0)
        response = response * gain
    return _Filter(response.astype(np.complex64), int(nfft), half)


def _apply_filter(block: np.ndarray, filt: _Filter) -> np.ndarray:
    """Filter every trace (last axis) by FFT multiplication; same length, float32."""
    ns = block.shape[-1]
    spec = sp_fft.rfft(block, n=filt.nfft, axis=-1)
    spec *= filt.response
    out = sp_fft.irfft(spec, n=filt.nfft, axis=-1)
    return out[..., filt.delay : filt.delay + ns].astype(np.float32, copy=False)
