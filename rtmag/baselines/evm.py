"""Eulerian video magnification of colour (Wu et al., SIGGRAPH 2012), as a baseline.

The MIT code's ``amplify_spatial_Gdown_temporal_ideal``: YIQ, a Gaussian pyramid level,
a temporal band-pass, ``alpha`` (and ``alpha * chrom_attenuation`` on I, Q), bicubic
up-sampling, added to the frame (see :mod:`rtmag.baselines.colour`). Temporal filters:

* ``"ideal"``: FFT over the whole clip, bins with ``low < f < high`` kept (offline).
* ``"butter"``: :func:`rtmag.filters.design_bandpass` (Butterworth, ``order`` total),
  zero-phase offline (magnitude ``|H|^2``, 1 at the band centre) or causal IIR with its
  state on the object (``causal=True``; magnitude ``|H|``, with a phase lag), started at
  steady state for the first frame so the clip's DC does not ring.

*The MIT ideal filter halves the band.* Their ``ideal_bandpassing.m`` zeroes every FFT
bin outside ``wl < f < wh`` for ``f = (k - 1) / n * fs``, which keeps the positive
frequencies only, and takes the real part: the band comes back at half its amplitude,
so their ``alpha = 50`` is an in-band gain of 26, not 51. ``mit_ideal=True`` reproduces
that (used to compare with their output); the default keeps both halves of the band
and the in-band gain is ``1 + alpha``.
"""

from __future__ import annotations

import numpy as np

from rtmag.baselines._registry import register_method
from rtmag.baselines.colour import ColourMagnifier
from rtmag.errors import UserError

__all__ = ["ideal_bandpass", "evm_colour", "EVMColour"]


def ideal_bandpass(
    x: np.ndarray, fs: float, low: float, high: float, axis: int = 0, mit: bool = False
) -> np.ndarray:
    """Ideal (brick-wall) temporal band-pass by FFT over the whole clip.

    Args:
        x: signal, time along ``axis`` (e.g. a ``(T, h, w, 3)`` stack), any real dtype.
        fs: sampling rate in frames per second.
        low, high: keep frequencies ``low < |f| < high`` in Hz (strict, as MIT's mask).
        axis: the time axis.
        mit: keep the positive-frequency bins only and take the real part, as the MIT
            ``ideal_bandpassing.m``: the band at half amplitude.

    Returns:
        float64 array of ``x``'s shape; gain 1 in the band (``mit``: 1/2), 0 outside.
    """
    x = np.asarray(x, np.float64)
    n = x.shape[axis]
    if n < 2:
        raise UserError(f"the ideal band-pass needs a clip of at least 2 frames, got {n}")
    k = np.arange(n)
    freq = k / n * float(fs)
    mask = (freq > low) & (freq < high)
    if not mit:
        fneg = (n - k) / n * float(fs)  # bin k is also frequency -(n - k) fs / n
        mask |= (fneg > low) & (fneg < high) & (k > 0)
    spec = np.fft.fft(x, axis=axis)
    shape = [1] * x.ndim
    shape[axis] = n
    spec *= mask.reshape(shape)
    return np.real(np.fft.ifft(spec, axis=axis))


class EVMColour(ColourMagnifier):
    """EVM colour magnification (Wu et al. 2012); see the module docstring.

    Args (beyond :class:`~rtmag.baselines.colour.ColourMagnifier`'s):
        filter: ``"ideal"`` (offline only) or ``"butter"``.
        order: total order of the Butterworth band-pass (even).
        mit_ideal: the MIT code's half-amplitude ideal filter (see the module doc).

    ``push`` (streaming) always uses the causal Butterworth filter, whatever ``filter``.
    """

    name = "evm"

    def __init__(
        self,
        fps: float = 30.0,
        band: tuple[float, float] = (0.7, 2.5),
        alpha: float = 20.0,
        level: int = 4,
        chrom_attenuation: float = 1.0,
        filter: str = "ideal",
        causal: bool = False,
        order: int = 6,
        mit_ideal: bool = False,
    ) -> None:
        from rtmag.filters import design_bandpass

        if filter not in ("ideal", "butter"):
            raise UserError(f"EVM filter must be 'ideal' or 'butter', got {filter!r}")
        super().__init__(fps, band, alpha, level, chrom_attenuation, causal)
        self.filter = filter
        self.mit_ideal = bool(mit_ideal)
        self.sos = design_bandpass(self.band[0], self.band[1], self.fps, order)

    def settings(self) -> dict:
        s = super().settings()
        s["filter"] = "butter" if self.causal else self.filter
        return s

    def _filter_offline(self, stack: np.ndarray) -> np.ndarray:
        from rtmag.filters import zero_phase

        if self.filter == "ideal":
            return ideal_bandpass(stack, self.fps, *self.band, axis=0, mit=self.mit_ideal)
        return zero_phase(self.sos, stack, axis=0)

    def _filter_causal(self, stack: np.ndarray) -> np.ndarray:
        from rtmag.filters import sosfilt_step, steady_state

        if self.state is None:
            self.state = steady_state(self.sos, stack[0])
        y, self.state = sosfilt_step(self.sos, stack, self.state)
        return y


def evm_colour(
    frames: np.ndarray,
    fps: float,
    low: float,
    high: float,
    alpha: float,
    level: int = 4,
    chrom_attenuation: float = 1.0,
    filter: str = "ideal",
    causal: bool = False,
    mit_ideal: bool = False,
) -> np.ndarray:
    """EVM colour magnification of a clip held in memory.

    Args:
        frames: ``(T, H, W, 3)`` RGB, uint8 0-255 or float 0-1.
        fps: frame rate (frames per second); low, high: pass band in Hz.
        alpha: amplification (in-band gain ``1 + alpha``; ``mit_ideal``: ``1 + alpha/2``).
        level: Gaussian pyramid level; chrom_attenuation: factor on I and Q.
        filter: ``"ideal"`` (FFT, offline) or ``"butter"`` (zero-phase; causal if set).
        causal: causal Butterworth IIR, started at steady state (what streaming gives).
        mit_ideal: reproduce the MIT ideal filter's half-amplitude band.

    Returns:
        ``(T, H, W, 3)`` uint8.
    """
    m = EVMColour(
        fps, (low, high), alpha, level, chrom_attenuation, filter, causal, mit_ideal=mit_ideal
    )
    return m(frames)


@register_method("evm")
def create_evm(**kwargs) -> EVMColour:
    """Registry factory of :class:`EVMColour` (keywords as its constructor)."""
    return EVMColour(**kwargs)
