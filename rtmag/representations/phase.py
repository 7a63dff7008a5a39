"""Respiration (motion) representation: pyramid phase differences and their inverse.

Forward (paper Sec. 3.3, Eq. 18-19). Frames go through the complex steerable pyramid of
:mod:`rtmag.representations.pyramid` (octave bandwidth, orientations 0/45/90/135
degrees); the representation of the pair ``(t, t+1)`` at scale ``r0`` is the wrapped
phase difference ``X = angle(c(t+1) * conj(c(t)))`` in ``(-pi, pi]`` (radians),
one channel per orientation (:func:`phase_difference`). A shift ``d`` (pixels) of the
image gives about ``-2 pi (d . u_k) / centre_wavelength(r0)`` at orientation ``k``.

Size (the paper's 123x123x4). The paper gives one size and no rule for others. Here:

* **r0 follows the frame size** (:func:`choose_r0`): the coarsest scale whose band's
  short side is still at least ``123 / sqrt(2)`` (= the scale nearest to 123 pixels on
  the short side, in octaves). Breathing moves the body by a fraction of its size, so
  this keeps the phase change of a given motion the same at every resolution.
  640x480 -> r0 = 2 (band 120x160); 1280x720 -> 3 (90x160); 1920x1080 -> 3 (135x240);
  320x240 -> 1 (120x160); portrait 480x640 (W x H) -> 2 (160x120); 246x246 -> 1
  (123x123, the paper's size exactly).
* **The band, not the frame, is resampled** (``fit="resize"``, default): the pyramid
  runs on the whole frame at its own resolution (isotropic, so the orientations mean
  what they say), and the band's complex product ``c(t+1) conj(c(t))`` is resampled
  to 123x123 before the angle is taken (no wrap-around in the interpolation; where
  the band is exactly 123x123 it is Eq. 19 exactly). A non-square band is squashed
  to the square (a layout change only: the values stay radians of that band).
  ``fit="crop"`` keeps the aspect by taking the central square of the band; the
  offsets outside it are then zero (no magnification at the sides).
* Frames whose short side is under :func:`~rtmag.representations.pyramid.min_frame_side`
  (64 pixels for 4 scales) raise :class:`~rtmag.errors.FrameError`.

Inverse (Eq. 20-22, the pieces that act on one frame). The integration over time and
the band-pass of Eq. 20-21 are the caller's (they are the same running-sum + filter as
the pulse path); this module takes their result, a phase offset ``o`` at scale ``r0``
(``B, 4, h, w``, radians, any ``h, w``: it is resampled to the band), and
:func:`apply_phase_offsets` multiplies every band by ``exp(i o_r)`` where

    o_r = clip_r( resample(w(o), (h_r, w_r)) * 0.5 ** (r - r0) )       (Eq. 22)

* **Eq. 22 read as**: the r0 offset *field* is resampled to each scale's grid (bilinear)
  and scaled by ``0.5^(r-r0)`` (a displacement is half as many radians at a scale of
  twice the wavelength; finer scales get ``2^(r0-r)`` times). The same orientation
  channel is used at every scale; every colour channel gets the same offset.
* **Clipping** (the ``(sgn(2pi - |phi|) + 1) / 2`` factor of Eq. 21-22, "2 pi phase
  clipping"): the paper's ``phi`` there can only be the offset (a wrapped phase never
  exceeds pi), so the factor drops offsets whose magnitude reaches ``bound`` (2 pi).
  It is applied to the r0 offset before scaling (the paper) *and* to each finer scale
  after scaling, where ``2^(r0-r)`` times the offset would otherwise wrap: the bound
  at scale ``r`` is ``bound * min(1, 0.5^(r-r0))`` on ``o_r``. ``mode="gate"`` is the
  paper's factor (offset set to zero beyond the bound); ``mode="clamp"`` saturates.
* **Amplitude weighting** ``w(o)``: where the band at r0 has little amplitude (flat
  regions) its phase is noise, and so is the offset computed from it. The offset is
  replaced by its amplitude-weighted local mean ``G*(A o) / G*A`` (Gaussian ``G`` of
  ``amplitude_sigma`` band pixels, Wadhwa et al. 2013) times ``a^4 / (a^4 + eps^4)``
  with ``a = G*A`` and ``eps = amplitude_floor * mean(A)`` per frame and orientation:
  offsets fade out below ``amplitude_floor`` of the frame's mean amplitude (to 1/82
  at a third of it) and are kept above it (to 1e-4 at ten times it).

Then :func:`~rtmag.representations.pyramid.reconstruct` gives the magnified frames.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from rtmag.errors import FrameError
from rtmag.representations.pyramid import (
    DEFAULT_SCALES,
    ORIENTATIONS,
    Pyramid,
    _as_frames,
    _check_scales,
    _masks,
    band_shape,
    build_scale,
    min_frame_side,
)

__all__ = [
    "REPRESENTATION_SIZE",
    "FITS",
    "CLIP_MODES",
    "RepresentationGeometry",
    "choose_r0",
    "representation_size",
    "wrapped_phase_difference",
    "phase_difference",
    "weighted_phase_difference",
    "phase_representation",
    "to_band",
    "amplitude_weight",
    "clip_offsets",
    "scale_offsets",
    "apply_phase_offsets",
    "render_change",
]

REPRESENTATION_SIZE = 123
"""Side of the network input at scale r0 (paper Sec. 3.3: 123x123x4)."""

FITS = ("resize", "crop")
CLIP_MODES = ("gate", "clamp")
TWO_PI = 2.0 * math.pi


def _check_choice(name: str, value: str, allowed: tuple[str, ...]) -> str:
    if value not in allowed:
        raise ValueError(f"{name} must be one of {', '.join(allowed)}; got {value!r}")
    return value


def choose_r0(frame_hw: tuple[int, int], size: int = REPRESENTATION_SIZE) -> int:
    """Scale whose band is nearest ``size`` on its short side (in octaves).

    The coarsest ``r`` with ``min(band_shape(frame_hw, r)) >= size / sqrt(2)``, or 0.
    640x480 -> 2, 1280x720 -> 3, 320x240 -> 1, 246x246 -> 1.
    """
    h, w = int(frame_hw[0]), int(frame_hw[1])
    if h <= 0 or w <= 0:
        raise FrameError(f"frame size must be positive, got {h}x{w}")
    r = 0
    while min(band_shape((h, w), r + 1)) >= size / math.sqrt(2.0):
        r += 1
    return r


@dataclass(frozen=True)
class RepresentationGeometry:
    """How a frame size maps to the network input at scale ``r0``.

    Attributes:
        frame_hw: ``(H, W)`` of the frames.
        r0: pyramid scale of the representation.
        band_hw: ``(h, w)`` of the band at ``r0``.
        size: side of the square network input (123).
        fit: ``"resize"`` (whole band squashed to ``size x size``) or ``"crop"``
            (central square of the band, ``crop`` below, resized to ``size``).
        crop: ``(top, left, height, width)`` in band pixels of the part that is used.
    """

    frame_hw: tuple[int, int]
    r0: int
    band_hw: tuple[int, int]
    size: int
    fit: str
    crop: tuple[int, int, int, int]

    @property
    def shape(self) -> tuple[int, int, int]:
        """``(4, size, size)``: the representation of one grey frame pair."""
        return (ORIENTATIONS, self.size, self.size)


def representation_size(
    frame_hw: tuple[int, int],
    r0: int | None = None,
    size: int = REPRESENTATION_SIZE,
    fit: str = "resize",
    num_scales: int = DEFAULT_SCALES,
) -> RepresentationGeometry:
    """Geometry of the phase representation of ``(H, W)`` frames (see the module doc).

    ``r0=None`` picks :func:`choose_r0`. Raises :class:`~rtmag.errors.FrameError` when
    the frame is under ``min_frame_side(max(num_scales, r0 + 1))``.
    """
    _check_choice("fit", fit, FITS)
    h, w = int(frame_hw[0]), int(frame_hw[1])
    if r0 is None:
        r0 = choose_r0((h, w), size)
    if r0 < 0:
        raise ValueError(f"r0 must be >= 0, got {r0}")
    need = min_frame_side(max(num_scales, r0 + 1))
    if min(h, w) < need:
        raise FrameError(
            f"frame of {h}x{w} pixels is too small for the respiration representation "
            f"(a {max(num_scales, r0 + 1)}-scale pyramid needs at least {need}x{need}); "
            "use a larger frame or region"
        )
    bh, bw = band_shape((h, w), r0)
    if fit == "resize":
        crop = (0, 0, bh, bw)
    else:
        s = min(bh, bw)
        crop = ((bh - s) // 2, (bw - s) // 2, s, s)
    return RepresentationGeometry((h, w), int(r0), (bh, bw), int(size), fit, crop)


# ---------------------------------------------------------------------------- forward


def wrapped_phase_difference(c0: Tensor, c1: Tensor) -> Tensor:
    """``angle(c1 * conj(c0))`` in ``(-pi, pi]``: phase of ``c1`` minus phase of ``c0``, wrapped."""
    return torch.angle(c1 * c0.conj())


def _resize(x: Tensor, hw: tuple[int, int]) -> Tensor:
    """Bilinear resize of a real ``(B, K, h, w)`` tensor (antialiased when shrinking)."""
    if tuple(x.shape[-2:]) == tuple(hw):
        return x
    shrink = hw[0] < x.shape[-2] or hw[1] < x.shape[-1]
    return F.interpolate(x, size=hw, mode="bilinear", align_corners=False, antialias=shrink)


def _resize_complex(z: Tensor, hw: tuple[int, int]) -> Tensor:
    if tuple(z.shape[-2:]) == tuple(hw):
        return z
    return torch.complex(_resize(z.real, hw), _resize(z.imag, hw))


def _to_rep(z: Tensor, size: int, fit: str) -> Tensor:
    _check_choice("fit", fit, FITS)
    if fit == "crop":
        h, w = z.shape[-2:]
        s = min(h, w)
        top, left = (h - s) // 2, (w - s) // 2
        z = z[..., top : top + s, left : left + s]
    return _resize_complex(z, (size, size))


def _band(pyr_or_band: Pyramid | Tensor, scale: int) -> Tensor:
    if isinstance(pyr_or_band, Pyramid):
        if not 0 <= scale < pyr_or_band.num_scales:
            raise ValueError(
                f"scale must be in 0..{pyr_or_band.num_scales - 1} for this pyramid, got {scale}"
            )
        return pyr_or_band.bands[scale]
    return pyr_or_band


def phase_difference(
    pyr_t: Pyramid | Tensor,
    pyr_t1: Pyramid | Tensor,
    scale: int,
    size: int | None = None,
    fit: str = "resize",
) -> Tensor:
    """Eq. 19: wrapped phase change from ``t`` to ``t+1`` at ``scale``, radians.

    Args:
        pyr_t, pyr_t1: pyramids of frames ``t`` and ``t+1`` (or their band at
            ``scale``, ``(B, 4*C, h, w)`` complex, e.g. from ``build_scale``).
        scale: the scale ``r0``.
        size: ``None`` for the band's own grid; else the side of the square output,
            the complex product being resampled first (see the module doc, ``fit``).

    Returns:
        ``(B, 4*C, h, w)`` (or ``(B, 4*C, size, size)``) real, in ``(-pi, pi]``.
    """
    c0, c1 = _band(pyr_t, scale), _band(pyr_t1, scale)
    if c0.shape != c1.shape:
        raise ValueError(f"bands differ in shape: {tuple(c0.shape)} vs {tuple(c1.shape)}")
    z = c1 * c0.conj()
    if size is not None:
        z = _to_rep(z, int(size), fit)
    return torch.angle(z)


def _gaussian_blur(x: Tensor, sigma: float) -> Tensor:
    """Separable Gaussian blur of ``(B, K, h, w)``, circular boundary (as the pyramid)."""
    if sigma <= 0:
        return x
    rad = max(1, int(math.ceil(3.0 * sigma)))
    g = [math.exp(-0.5 * (j / sigma) ** 2) for j in range(-rad, rad + 1)]
    h, w = x.shape[-2:]
    for dim, n in ((-2, h), (-1, w)):
        r = min(rad, n - 1)
        taps = g[rad - r : rad + r + 1]
        total = sum(taps)
        xp = torch.cat([x.narrow(dim, n - r, r), x, x.narrow(dim, 0, r)], dim=dim)
        y = xp.narrow(dim, 0, n) * (taps[0] / total)
        for j in range(1, 2 * r + 1):
            y = y.add_(xp.narrow(dim, j, n), alpha=taps[j] / total)
        x = y
    return x


def weighted_phase_difference(
    pyr_t: Pyramid | Tensor,
    pyr_t1: Pyramid | Tensor,
    scale: int,
    sigma: float = 1.0,
    size: int | None = None,
    fit: str = "resize",
) -> Tensor:
    """Amplitude-weighted variant of :func:`phase_difference`: ``angle(G_sigma * (c1 conj c0))``.

    The local mean of the complex product weights each pixel's phase change by
    ``A(t) A(t+1)``, so noisy phases of low-amplitude pixels count little. ``sigma``
    in band pixels (0: Eq. 19 exactly). Same shapes as :func:`phase_difference`.
    """
    c0, c1 = _band(pyr_t, scale), _band(pyr_t1, scale)
    z = c1 * c0.conj()
    z = torch.complex(_gaussian_blur(z.real, sigma), _gaussian_blur(z.imag, sigma))
    if size is not None:
        z = _to_rep(z, int(size), fit)
    return torch.angle(z)


def phase_representation(
    frames: Tensor,
    r0: int | None = None,
    size: int = REPRESENTATION_SIZE,
    fit: str = "resize",
) -> Tensor:
    """Representation of a clip: ``X(t)`` for each consecutive pair of frames.

    Args:
        frames: ``(T, C, H, W)`` real, ``T >= 2`` (grey: ``C = 1``).
        r0, size, fit: see :func:`representation_size`.

    Returns:
        ``(T-1, 4*C, size, size)`` radians. Only the band at ``r0`` is computed.
    """
    if not isinstance(frames, Tensor) or frames.ndim != 4 or frames.shape[0] < 2:
        shape = tuple(frames.shape) if hasattr(frames, "shape") else type(frames).__name__
        raise FrameError(f"phase_representation needs a (T>=2, C, H, W) tensor, got {shape}")
    geo = representation_size(tuple(frames.shape[-2:]), r0, size, fit)
    band = build_scale(frames, geo.r0)
    return phase_difference(band[:-1], band[1:], geo.r0, size=size, fit=fit)


# ---------------------------------------------------------------------------- inverse


def to_band(offsets: Tensor, band_hw: tuple[int, int], fit: str = "resize") -> Tensor:
    """Map offsets ``(B, K, s, s)`` from the representation grid to a band ``(h, w)``.

    The inverse placement of ``fit``: ``"resize"`` resizes (bilinear) to ``band_hw``;
    ``"crop"`` resizes to the central square and leaves zeros outside it. Offsets
    already of ``band_hw`` are returned as they are.
    """
    _check_choice("fit", fit, FITS)
    h, w = int(band_hw[0]), int(band_hw[1])
    if tuple(offsets.shape[-2:]) == (h, w):
        return offsets
    if fit == "resize":
        return _resize(offsets, (h, w))
    s = min(h, w)
    top, left = (h - s) // 2, (w - s) // 2
    out = offsets.new_zeros((*offsets.shape[:-2], h, w))
    out[..., top : top + s, left : left + s] = _resize(offsets, (s, s))
    return out


def _per_orientation_amplitude(band: Tensor, k: int) -> Tensor:
    """``|band|`` ``(B, 4*C, h, w)`` reduced to ``k`` channels (``k = 4``: mean over colour)."""
    a = band.abs()
    if k == a.shape[1]:
        return a
    b, _, h, w = a.shape
    return a.view(b, -1, ORIENTATIONS, h, w).mean(dim=1)


def amplitude_weight(
    offsets: Tensor, amplitude: Tensor, sigma: float = 1.0, floor: float = 0.1
) -> Tensor:
    """Amplitude-weighted local mean of offsets, faded out where the amplitude is low.

    ``G*(A o) / G*A * a^4 / (a^4 + eps^4)``, ``a = G*A``, ``eps = floor * mean(A)``
    over each frame and channel; ``G`` a Gaussian of ``sigma`` pixels (0: none).
    ``offsets`` and ``amplitude`` are ``(B, K, h, w)``. ``floor = 0`` only averages.
    """
    if offsets.shape != amplitude.shape:
        raise ValueError(
            f"offsets {tuple(offsets.shape)} and amplitude {tuple(amplitude.shape)} differ"
        )
    if sigma < 0 or floor < 0:
        raise ValueError(f"sigma and floor must be >= 0, got {sigma}, {floor}")
    a = _gaussian_blur(amplitude, sigma)
    tiny = torch.finfo(a.dtype).tiny
    mean = _gaussian_blur(amplitude * offsets, sigma) / a.clamp_min(tiny)
    if floor == 0:
        return mean
    eps = floor * amplitude.mean(dim=(-2, -1), keepdim=True)
    ratio4 = (eps / a.clamp_min(tiny)) ** 4  # inf where a == 0: weight 0, never NaN
    return mean / (1.0 + ratio4)


def clip_offsets(offsets: Tensor, bound: float = TWO_PI, mode: str = "gate") -> Tensor:
    """Eq. 21's clipping: ``"gate"`` keeps ``|o| < bound`` and zeroes the rest, ``"clamp"`` saturates.

    Either way no returned value exceeds ``bound`` in magnitude. With ``"clamp"`` a
    bound of ``pi`` is the sensible one (an offset of 2 pi is no offset at all).
    """
    _check_choice("mode", mode, CLIP_MODES)
    if not bound > 0:
        raise ValueError(f"bound must be > 0, got {bound}")
    if mode == "clamp":
        return offsets.clamp(-bound, bound)
    # (sgn(bound - |o|) + 1) / 2: 1 inside, 0 outside (the paper's 1/2 exactly on the
    # bound is taken as 0, which changes nothing measurable)
    return torch.where(offsets.abs() < bound, offsets, offsets.new_zeros(()))


def scale_offsets(
    offsets_r0: Tensor,
    band_shapes: list[tuple[int, int]],
    r0: int,
    clip: bool = True,
    bound: float = TWO_PI,
    mode: str = "gate",
) -> list[Tensor]:
    """Eq. 22 for every scale: ``clip_r(resample(o, (h_r, w_r)) * 0.5^(r - r0))``.

    Args:
        offsets_r0: ``(B, K, h_r0, w_r0)`` phase offsets at scale ``r0`` (radians),
            already on the band's grid (see :func:`to_band`).
        band_shapes: ``(h_r, w_r)`` of every scale, finest first.
        r0: scale of ``offsets_r0``.
        clip: apply :func:`clip_offsets` with bound ``bound * min(1, 0.5^(r - r0))``
            on scale ``r`` (so the r0 offset is gated at ``bound`` before scaling, and
            no scale's offset reaches ``bound``).

    Returns:
        One ``(B, K, h_r, w_r)`` tensor per scale.
    """
    if not 0 <= r0 < len(band_shapes):
        raise ValueError(f"r0 must be in 0..{len(band_shapes) - 1}, got {r0}")
    if tuple(offsets_r0.shape[-2:]) != tuple(band_shapes[r0]):
        raise ValueError(
            f"offsets_r0 of {tuple(offsets_r0.shape[-2:])} do not match band {r0} "
            f"{tuple(band_shapes[r0])}; map them with to_band() first"
        )
    peak = math.inf
    if clip:
        _check_choice("mode", mode, CLIP_MODES)
        if not bound > 0:
            raise ValueError(f"bound must be > 0, got {bound}")
        if offsets_r0.numel():
            peak = float(offsets_r0.abs().amax())
    out = []
    for r, hw in enumerate(band_shapes):
        factor = 0.5 ** (r - r0)
        o = _resize(offsets_r0, tuple(hw))
        o = o * factor if o is offsets_r0 else o.mul_(factor)  # a new tensor either way
        if clip:
            limit = bound * min(1.0, factor)
            # The resampling takes convex combinations (weights >= 0 summing to 1), so
            # |o| <= peak * factor up to rounding: below the limit clipping changes nothing.
            if not peak * factor * (1.0 + 1e-5) < limit:
                o = _clip_own(o, limit, mode, finite=math.isfinite(peak))
        out.append(o)
    return out


def _clip_own(o: Tensor, bound: float, mode: str, finite: bool) -> Tensor:
    """:func:`clip_offsets` of a tensor the caller owns, in place where that is faster.

    Same values; a gated negative offset may become ``-0.0`` rather than ``0.0``.
    Non-finite offsets take :func:`clip_offsets` itself (a gated NaN becomes 0).
    """
    if mode == "clamp":
        return o.clamp_(-bound, bound)
    if not finite:
        return clip_offsets(o, bound, mode)
    return o.mul_(o.abs().lt_(bound))


def apply_phase_offsets(
    pyr: Pyramid,
    offsets_r0: Tensor,
    r0: int,
    clip: bool = True,
    bound: float = TWO_PI,
    mode: str = "gate",
    amplitude_sigma: float | None = 1.0,
    amplitude_floor: float = 0.1,
    fit: str = "resize",
) -> Pyramid:
    """Add phase offsets to every band (Eq. 22); reconstruct the result with ``reconstruct``.

    Args:
        pyr: pyramid of the frames to modify, bands ``(B, 4*C, h_r, w_r)``.
        offsets_r0: ``(B, 4, h, w)`` (same offset for every colour channel) or
            ``(B, 4*C, h, w)``, radians, at scale ``r0``; any ``h, w`` (the band's own
            or the representation's, mapped with :func:`to_band` and ``fit``).
        r0: scale of the offsets, ``0 <= r0 < pyr.num_scales``.
        clip, bound, mode: see :func:`scale_offsets` and :func:`clip_offsets`.
        amplitude_sigma: ``None`` for no amplitude weighting; else the Gaussian of
            :func:`amplitude_weight` (band pixels at r0), with ``amplitude_floor``.
        fit: placement of representation-sized offsets, as in :func:`representation_size`.

    Returns:
        A new :class:`Pyramid`; residuals shared with ``pyr``.
    """
    k = _check_offsets(offsets_r0, r0, pyr.num_scales, pyr.batch, pyr.channels)
    c = pyr.channels
    shapes = [tuple(band.shape[-2:]) for band in pyr.bands]
    per_scale = _offsets_per_scale(
        offsets_r0.to(pyr.highpass.dtype),
        pyr.bands[r0],
        shapes,
        r0,
        clip,
        bound,
        mode,
        amplitude_sigma,
        amplitude_floor,
        fit,
    )
    bands = []
    for band, o_r in zip(pyr.bands, per_scale):
        if k != band.shape[1]:
            o_r = o_r.repeat(1, c, 1, 1)  # channel 4*c + k: same offset per colour
        bands.append(band * torch.complex(torch.cos(o_r), torch.sin(o_r)))
    return pyr.with_bands(bands)


def _check_offsets(offsets_r0: Tensor, r0: int, num_scales: int, batch: int, channels: int) -> int:
    """Check ``offsets_r0`` ``(B, 4 or 4*C, h, w)`` and ``r0``; return the channel count."""
    if not 0 <= r0 < num_scales:
        raise ValueError(f"r0 must be in 0..{num_scales - 1} for this pyramid, got {r0}")
    if offsets_r0.ndim != 4:
        raise ValueError(f"offsets_r0 must be (B, 4 or 4*C, h, w), got {tuple(offsets_r0.shape)}")
    b, k = int(offsets_r0.shape[0]), int(offsets_r0.shape[1])
    if b != batch or k not in (ORIENTATIONS, ORIENTATIONS * channels):
        raise ValueError(
            f"offsets_r0 of shape {tuple(offsets_r0.shape)} do not fit a pyramid of "
            f"batch {batch} and {channels} channel(s): need ({batch}, 4 or {4 * channels}, h, w)"
        )
    return k


def _offsets_per_scale(
    offsets_r0: Tensor,
    band_r0: Tensor,
    shapes: list[tuple[int, int]],
    r0: int,
    clip: bool,
    bound: float,
    mode: str,
    amplitude_sigma: float | None,
    amplitude_floor: float,
    fit: str,
) -> list[Tensor]:
    """The offset of every scale (Eq. 22), ``(B, K, h_r, w_r)``, from offsets at ``r0``
    (already of the bands' float dtype) and the band at ``r0`` (for the amplitude)."""
    k = int(offsets_r0.shape[1])
    o = to_band(offsets_r0, tuple(band_r0.shape[-2:]), fit)
    if amplitude_sigma is not None:
        amp = _per_orientation_amplitude(band_r0, k)
        o = amplitude_weight(o, amp, amplitude_sigma, amplitude_floor)
    return scale_offsets(o, shapes, r0, clip, bound, mode)


@functools.lru_cache(maxsize=8)
def _change_masks(h: int, w: int, num_scales: int, dtype: torch.dtype, device: str) -> tuple:
    """The pyramid's masks as :func:`render_change` uses them, per scale.

    The analysis masks are ``i A_k`` and the synthesis masks ``-i B_k`` with ``A_k``,
    ``B_k`` real (the ``(-i)^3`` and ``i^3`` of ``pyramid._masks``), so they are kept
    real and applied to ``view_as_real`` spectra (two products per value instead of a
    complex product); the factors ``i`` are taken out exactly. Each real mask is
    repeated on a last axis of 2 (real, imaginary), contiguous.
    """
    m = _masks(h, w, num_scales, dtype, device)

    def pair(a: Tensor) -> Tensor:
        return a.unsqueeze(-1).expand(*a.shape, 2).contiguous()

    levels = tuple(
        (pair(lev.fwd.imag), pair(-lev.inv_half.imag), pair(lev.lo_half), pair(lev.lo))
        for lev in m.levels
    )
    return m, levels, pair(m.lo0), pair(m.lo0_half)


def _rotated_band(low: Tensor, fwd_pair: Tensor) -> Tensor:
    """``-i`` times a band of ``build``, ``(1, C, 4, h, w)`` complex, from the spectrum
    entering its scale (``view_as_real``) and the scale's real analysis masks."""
    spec = torch.view_as_complex(low.unsqueeze(2) * fwd_pair)
    return torch.fft.ifft2(spec, norm="forward")


def render_change(
    frames: Tensor,
    offsets_r0: Tensor,
    r0: int,
    num_scales: int = DEFAULT_SCALES,
    clip: bool = True,
    bound: float = TWO_PI,
    mode: str = "gate",
    amplitude_sigma: float | None = 1.0,
    amplitude_floor: float = 0.1,
    fit: str = "resize",
) -> Tensor:
    """The change phase offsets make to frames: a faster ``reconstruct(apply_phase_offsets(
    build(frames, num_scales), offsets_r0, r0, ...)) - frames``.

    Same arguments and the same offsets as :func:`apply_phase_offsets` (``frames`` as
    for :func:`~rtmag.representations.pyramid.build`); returns ``(B, C, H, W)`` real,
    equal to that reference up to float rounding (``tests/test_phase.py``). It computes
    the same thing in fewer operations:

    * by linearity the change is the reconstruction of the bands' changes alone, with
      zero residuals: the high-pass residual, the low-pass residual and their FFTs
      are never made;
    * :func:`~rtmag.representations.pyramid.reconstruct` uses only the real part of a
      band, so the change of band ``b`` is ``Re(b) (cos o - 1) - Im(b) sin o`` (no
      complex ``exp(i o)``, no complex product); the masks are applied as real
      factors (:func:`_change_masks`);
    * a frame whose offsets are all zero is not transformed at all;
    * frames go one at a time, so the working tensors are a few MB and are reused
      (at 640x480 the reference ran about 1.8 times slower per frame on batches of
      eight than on single frames, mostly in allocating fresh 40 MB tensors).

    A frame whose offsets are all zero gets a change of exactly zero.
    """
    num_scales = _check_scales(num_scales)
    x = _as_frames(frames, num_scales)
    b, c, h, w = x.shape
    k = _check_offsets(offsets_r0, r0, num_scales, b, c)
    m, levels, lo0_pair, lo0_half_pair = _change_masks(h, w, num_scales, x.dtype, str(x.device))
    offsets_r0 = offsets_r0.to(device=x.device, dtype=x.dtype)
    shapes = [band_shape((h, w), r) for r in range(num_scales)]
    out = x.new_zeros(x.shape)
    for i in range(b):
        o_i = offsets_r0[i : i + 1]
        if not bool(o_i.any()):
            continue  # exactly no change
        # spectrum entering each scale, on that scale's grid, as real pairs
        lo = torch.view_as_real(torch.fft.fft2(x[i : i + 1], norm="forward")) * lo0_pair
        lows = []
        for r, lev in enumerate(m.levels):
            lows.append(lo)
            if r + 1 < num_scales:
                lo = lo.index_select(-3, lev.keep_y).index_select(-2, lev.keep_x) * levels[r][3]

        band_r0 = _rotated_band(lows[r0], levels[r0][0])  # the offsets need |band| only
        hb, wb = shapes[r0]
        per_scale = _offsets_per_scale(
            o_i,
            band_r0.reshape(1, c * ORIENTATIONS, hb, wb),
            shapes,
            r0,
            clip,
            bound,
            mode,
            amplitude_sigma,
            amplitude_floor,
            fit,
        )
        # With z = -i band: Re(band) = -Im z, Im(band) = Re z, so the band's change is
        # -(Im z (cos o - 1) + Re z sin o) =: -d, and its share of the spectrum is
        # rfft(-d) (-i B) = i rfft(d) B. The factor i is common to every scale.
        spec = None  # spectrum of the change over i, coarsest scale first, real view
        for r in range(num_scales - 1, -1, -1):
            _, inv_pair, lo_pair, _ = levels[r]
            hb, wb = shapes[r]
            acc = x.new_zeros((1, c, hb, wb // 2 + 1, 2))
            if spec is not None:
                low = spec * lo_pair
                hc, wc = low.shape[-3], low.shape[-2]
                pos = hc - hc // 2  # rows 0..pos-1 are frequencies >= 0, the rest negative
                acc[..., :pos, :wc, :] = low[..., :pos, :, :]
                if hc // 2:
                    acc[..., hb - hc // 2 :, :wc, :] = low[..., pos:, :, :]
            z = band_r0 if r == r0 else _rotated_band(lows[r], levels[r][0])
            o_r = per_scale[r].reshape(1, k // ORIENTATIONS, ORIENTATIONS, hb, wb)  # colour bcast
            d = torch.mul(z.imag, torch.cos(o_r).sub_(1.0))
            d.addcmul_(z.real, torch.sin(o_r))
            dspec = torch.view_as_real(torch.fft.rfft2(d, norm="forward"))
            for j in range(ORIENTATIONS):
                acc.addcmul_(dspec[:, :, j], inv_pair[j])
            spec = acc
        final = torch.view_as_complex(spec * lo0_half_pair) * 1j
        out[i] = torch.fft.irfft2(final, s=(h, w), norm="forward")[0]
    return out
