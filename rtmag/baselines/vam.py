"""Video acceleration magnification (Zhang, Pintea & van Gemert, CVPR 2017): colour and motion.

The temporal filter is the authors' ``tempkernel.m`` ('DOG'): for the target frequency
``f`` (here the band centre ``f_c = sqrt(low * high)``), ``q = ceil(fps / (4 f))``
frames (a quarter period), ``sigma = q / 2``, and on ``n = -2q .. 2q`` the difference of
two normalised Gaussians ``G(sigma / 2) - G(2 sigma)``: a second-order (Laplacian-like)
band-pass that ignores constant and linear change, i.e. responds to acceleration. It
runs on the YIQ Gaussian-pyramid level of :mod:`rtmag.baselines.colour`, times
``alpha``, added back.

Scaling: the authors normalise the kernel to ``sum |k| = 1``, so their ``alpha`` is not
an in-band gain (``normalise="l1"``). The default ``normalise="peak"`` scales the
kernel to response 1 at ``f_c``, so a pure colour change at ``f_c`` comes out
``1 + alpha`` times as large, as with EVM; elsewhere ``1 + alpha * H(f)``
(:func:`dog_response`).

Offline the kernel is centred (zero phase, mirrored ends). Causally each frame gets the
kernel over the last ``4q + 1`` frames (as the authors' ``motionamp.m`` does, a delay of
``2q`` frames in the filtered signal, ``H(f) exp(-2 pi i f 2q / fps)``), the history
started with copies of the first frame.

Motion (:class:`VAMPhase`, ``"vam-motion"``): the same DoG filter on the complex
steerable pyramid's phase, in the pipeline of the phase-based baseline
(:mod:`rtmag.baselines.phase`: luminance, phase relative to the first frame,
amplitude-weighted smoothing, ``exp(i alpha o)``), which is how the authors apply it
to motion. An in-band sinusoidal motion at ``f_c`` comes out ``1 + alpha`` times as
large, elsewhere ``1 + alpha * H(f)``.
"""

from __future__ import annotations

import math

import numpy as np

from rtmag.baselines._registry import register_method
from rtmag.baselines.colour import ColourMagnifier
from rtmag.baselines.phase import PhaseMagnifier
from rtmag.errors import UserError

__all__ = [
    "dog_kernel",
    "dog_response",
    "dog_filter",
    "dog_filter_causal",
    "vam_colour",
    "VAMColour",
    "VAMPhase",
]


def dog_kernel(fps: float, freq: float, normalise: str = "peak") -> np.ndarray:
    """The DoG temporal kernel ``(4q + 1,)`` tuned to ``freq`` Hz at ``fps`` (see module).

    Args:
        fps: frame rate; freq: target frequency in Hz (``0 < freq < fps / 2``).
        normalise: ``"peak"`` (response 1 at ``freq``) or ``"l1"`` (the authors',
            ``sum |k| = 1``).
    """
    if not 0 < freq < fps / 2:
        raise UserError(f"VAM frequency {freq:g} Hz must be in (0, fps/2 = {fps / 2:g})")
    if normalise not in ("peak", "l1"):
        raise UserError(f"normalise must be 'peak' or 'l1', got {normalise!r}")
    q = math.ceil(fps / (4.0 * freq))
    sigma = q / 2.0
    x = np.arange(-2 * q, 2 * q + 1, dtype=np.float64)
    g1 = np.exp(-(x**2) / (2 * (sigma / 2) ** 2))
    g2 = np.exp(-(x**2) / (2 * (2 * sigma) ** 2))
    k = g1 / g1.sum() - g2 / g2.sum()
    if normalise == "l1":
        return k / np.abs(k).sum()
    return k / _response(k, np.asarray(freq), fps)


def _response(k: np.ndarray, f: np.ndarray, fps: float) -> np.ndarray:
    n = np.arange(len(k)) - (len(k) - 1) / 2
    return np.cos(2 * np.pi * np.multiply.outer(f, n) / fps) @ k


def dog_response(freq_hz, fps: float, centre_hz: float, normalise: str = "peak"):
    """Real (zero-phase) response of the centred kernel at ``freq_hz`` (scalar or array)."""
    f = np.asarray(freq_hz, np.float64)
    out = _response(dog_kernel(fps, centre_hz, normalise), f, fps)
    return float(out) if out.ndim == 0 else out


def dog_filter(stack: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    """Offline: the centred kernel along axis 0 (time), mirrored ends; ``stack``'s shape."""
    from scipy.ndimage import correlate1d

    return correlate1d(stack, kernel, axis=0, mode="mirror")


def dog_filter_causal(
    stack: np.ndarray, kernel: np.ndarray, state: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray]:
    """Causal: each frame of ``stack`` ``(T, ...)`` gets the kernel over the last
    ``len(kernel)`` frames (a delay of ``len(kernel) // 2`` frames).

    ``state`` holds the previous ``len(kernel) - 1`` frames (``None`` at the start of a
    stream: copies of the first frame). Returns ``(filtered, new_state)``; chunks of any
    size give the same frames as one call.
    """
    taps = len(kernel)
    if state is None:
        state = np.repeat(stack[:1], taps - 1, axis=0)
    hist = np.concatenate([state, stack])
    out = np.empty_like(stack)
    for t in range(len(stack)):
        out[t] = np.tensordot(kernel, hist[t : t + taps], axes=(0, 0))
    return out, hist[len(stack) :].copy()


class VAMColour(ColourMagnifier):
    """Acceleration magnification of colour; see the module docstring.

    Args (beyond :class:`~rtmag.baselines.colour.ColourMagnifier`'s):
        normalise: ``"peak"`` (default) or ``"l1"`` (the authors' kernel scaling).
    """

    name = "vam"

    def __init__(
        self,
        fps: float = 30.0,
        band: tuple[float, float] = (0.7, 2.5),
        alpha: float = 20.0,
        level: int = 4,
        chrom_attenuation: float = 1.0,
        causal: bool = False,
        normalise: str = "peak",
    ) -> None:
        super().__init__(fps, band, alpha, level, chrom_attenuation, causal)
        self.centre_hz = math.sqrt(self.band[0] * self.band[1])
        self.normalise = normalise
        self.kernel = dog_kernel(self.fps, self.centre_hz, normalise)

    def settings(self) -> dict:
        s = super().settings()
        s.update(centre_hz=self.centre_hz, kernel_taps=len(self.kernel), normalise=self.normalise)
        return s

    def _filter_offline(self, stack: np.ndarray) -> np.ndarray:
        return dog_filter(stack, self.kernel)

    def _filter_causal(self, stack: np.ndarray) -> np.ndarray:
        out, self.state = dog_filter_causal(stack, self.kernel, self.state)
        return out


def vam_colour(
    frames: np.ndarray,
    fps: float,
    low: float,
    high: float,
    alpha: float,
    level: int = 4,
    chrom_attenuation: float = 1.0,
    causal: bool = False,
    normalise: str = "peak",
) -> np.ndarray:
    """VAM colour magnification of ``(T, H, W, 3)`` frames -> uint8 (see module)."""
    return VAMColour(fps, (low, high), alpha, level, chrom_attenuation, causal, normalise)(frames)


@register_method("vam")
def create_vam(**kwargs) -> VAMColour:
    """Registry factory of :class:`VAMColour` (keywords as its constructor)."""
    return VAMColour(**kwargs)


class VAMPhase(PhaseMagnifier):
    """Acceleration magnification of motion: the DoG filter on pyramid phases.

    Args: as :class:`~rtmag.baselines.phase.PhaseMagnifier` without ``filter`` and
    ``order``, plus ``normalise`` (``"peak"`` or ``"l1"``, see :func:`dog_kernel`).
    """

    name = "vam-motion"

    def __init__(
        self,
        fps: float = 30.0,
        band: tuple[float, float] = (0.7, 2.5),
        alpha: float = 10.0,
        num_scales: int | None = None,
        sigma: float = 2.0,
        causal: bool = False,
        normalise: str = "peak",
        max_memory_gb: float = 4.0,
    ) -> None:
        super().__init__(
            fps, band, alpha, num_scales, sigma, causal=causal, max_memory_gb=max_memory_gb
        )
        self.centre_hz = math.sqrt(self.band[0] * self.band[1])
        self.normalise = normalise
        self.kernel = dog_kernel(self.fps, self.centre_hz, normalise)

    def settings(self) -> dict:
        s = super().settings()
        s.update(
            filter="dog",
            centre_hz=self.centre_hz,
            kernel_taps=len(self.kernel),
            normalise=self.normalise,
        )
        return s

    def _filter_offline(self, stack: np.ndarray) -> np.ndarray:
        return dog_filter(stack, self.kernel)

    def _filter_causal(self, stack: np.ndarray) -> np.ndarray:
        out, self.state = dog_filter_causal(stack, self.kernel.astype(np.float32), self.state)
        return out


@register_method("vam-motion")
def create_vam_motion(**kwargs) -> VAMPhase:
    """Registry factory of :class:`VAMPhase` (keywords as its constructor)."""
    return VAMPhase(**kwargs)
