"""Map seismic amplitudes and scale onto what the model saw in training.

Two quantities decide whether a network trained on TGS tiles transfers to a
volume: the amplitude distribution and the vertical scale of the reflectors.

*Amplitude.*  The model works in *image units*: a TGS pixel / 255, where mid
grey (zero amplitude) is about 0.47.  :func:`amplitude_stats` measures a
robust centre (median) and spread (half the 16-84 percentile range) of a
sample of traces, once per volume; :func:`to_image_units` maps amplitudes
linearly so that centre and spread match the training images', then clips to
[0, 1] as the 8-bit TGS images were.  The training data pass through the same
statistics (:func:`image_stats`), so a volume is scaled the way the model was
trained.

*Scale.*  :func:`estimate_period` finds the dominant vertical period (in
samples) from the mean amplitude spectrum of traces; the ratio to the training
period gives the factor by which sections are resampled before tiling.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .errors import DataError

__all__ = ["AmplitudeStats", "amplitude_stats", "estimate_period", "image_stats", "to_image_units"]


@dataclass(frozen=True)
class AmplitudeStats:
    """Robust centre and spread of amplitudes, plus the share of non-finite samples."""

    center: float
    spread: float
    nonfinite_fraction: float = 0.0


def _robust(values: np.ndarray) -> tuple[float, float]:
    p16, p50, p84 = np.percentile(values, [16, 50, 84])
    return float(p50), float(0.5 * (p84 - p16))


def amplitude_stats(traces: np.ndarray) -> AmplitudeStats:
    """Robust statistics of a sample of traces (any shape; NaN/Inf ignored).

    A volume that is constant (all zero, say) gets a spread of 1 so that it
    maps to flat mid grey instead of dividing by zero.
    """
    values = np.asarray(traces, dtype=np.float64).ravel()
    finite = np.isfinite(values)
    nonfinite = 1.0 - finite.mean() if values.size else 0.0
    values = values[finite]
    if values.size == 0:
        return AmplitudeStats(0.0, 1.0, float(nonfinite))
    center, spread = _robust(values)
    if not spread > 0:
        spread = float(np.abs(values - center).max()) or 1.0
    return AmplitudeStats(center, spread, float(nonfinite))


def image_stats(images: np.ndarray) -> AmplitudeStats:
    """Robust statistics of training images in image units (same estimator as for amplitudes)."""
    return amplitude_stats(images)


def to_image_units(
    amplitude: np.ndarray, stats: AmplitudeStats, *, target_center: float, target_spread: float
) -> np.ndarray:
    """Linearly map amplitudes so their centre/spread match the training images, clipped to [0, 1].

    Non-finite samples become the target centre (mid grey), the value that
    carries no reflector.
    """
    scale = target_spread / stats.spread
    image = (np.asarray(amplitude, dtype=np.float32) - np.float32(stats.center)) * np.float32(scale)
    image += np.float32(target_center)
    np.nan_to_num(image, copy=False, nan=target_center, posinf=1.0, neginf=0.0)
    return np.clip(image, 0.0, 1.0, out=image)


#: Traces per FFT batch in :func:`estimate_period` (bounds its memory whatever the trace count).
_SPECTRUM_BATCH = 256


def estimate_period(traces: np.ndarray, *, min_period: float = 3.0) -> float:
    """Dominant period, in samples, of traces along their last axis.

    The traces are demeaned, tapered with a Hann window and zero-padded; their
    mean amplitude spectrum is fitted, over the band holding most of its
    energy, with the shape of a Ricker wavelet's spectrum,
    ``A(f) = c f^2 exp(-f^2 / fp^2)``, which is a straight line in
    ``log(A / f^2)`` against ``f^2``.  The period is ``1 / fp``.  Fitting the
    whole band is far steadier than picking the highest bin, because a
    wavelet's spectrum is nearly flat around its peak.

    Parameters
    ----------
    traces : np.ndarray, shape (..., n_samples)
    min_period : float, default 3.0
        Shorter periods (higher frequencies) are ignored.

    Returns
    -------
    float
        The period in samples.

    Raises
    ------
    DataError
        Fewer than 8 samples, or no energy at all.
    """
    traces = np.asarray(traces)
    n = traces.shape[-1]
    if n < 8:
        raise DataError(f"cannot estimate a period from traces of {n} samples; need at least 8")
    traces = traces.reshape(-1, n)
    nfft = max(1024, 1 << int(np.ceil(np.log2(4 * n))))
    taper = np.hanning(n)
    # The mean spectrum is summed over batches of traces: 4096 traces of 1000 samples padded to 4096 would
    # otherwise hold about 300 MB of float64 copies and complex spectra at once, kept by the tuned allocator.
    spectrum = np.zeros(nfft // 2 + 1)
    for start in range(0, len(traces), _SPECTRUM_BATCH):
        x = np.nan_to_num(np.asarray(traces[start : start + _SPECTRUM_BATCH], dtype=np.float64))
        x -= x.mean(axis=1, keepdims=True)
        x *= taper
        spectrum += np.abs(np.fft.rfft(x, n=nfft, axis=1)).sum(axis=0)
    spectrum /= max(1, len(traces))
    freqs = np.fft.rfftfreq(nfft)
    valid = (freqs >= 1.0 / n) & (freqs <= 1.0 / min_period)
    if not valid.any() or not np.any(spectrum[valid] > 0):
        raise DataError("the traces carry no signal (all constant); cannot estimate a period")
    band = valid & (spectrum >= 0.2 * spectrum[valid].max())
    f, a = freqs[band], spectrum[band]
    slope, _ = np.polyfit(f**2, np.log(a / f**2), 1, w=a / a.max())
    if slope < 0:
        return float(np.sqrt(-slope))  # slope = -1 / fp^2, period = 1 / fp
    return float(1.0 / f[np.argmax(a)])  # a spectrum rising to the band edge: fall back to its peak
