"""Complex steerable pyramid (octave bandwidth, 4 orientations) in torch, by FFT.

The transform of Portilla & Simoncelli (2000), with the radial and angular masks of
plenoptic's ``SteerablePyramidFreq(order=3, twidth=1, is_complex=True)`` (itself a
port of matlabPyrTools ``buildSCFpyr``). Written here rather than imported: it is
~150 lines, has no dependency beyond torch, keeps each band at its own resolution
and is batched over ``(B, C)``; see ``bench/bench_pyramid.py`` for the speed.

Layout. A frame batch ``(B, C, H, W)`` (float32 or float64) becomes a
:class:`Pyramid`:

* ``highpass`` ``(B, C, H, W)`` real — the residual above the finest band;
* ``bands[r]`` ``(B, 4 * C, h_r, w_r)`` complex, ``r = 0`` finest; channel
  ``4 * c + k`` is colour channel ``c`` at orientation ``k * 45`` degrees.
  ``h_0 = H`` and ``h_{r+1} = ceil(h_r / 2)`` (likewise ``w``);
* ``lowpass`` ``(B, C, h_R, w_R)`` real — the residual below the coarsest band.

Frequencies. With ``rho`` the radial frequency in units of the Nyquist frequency
(``rho = 1`` is 0.5 cycles/pixel) and ``v_r = clip(log2(rho) + r + 1, -1, 0)``:

* high-pass mask of scale ``r``: ``cos(pi/2 * v_r)``; low-pass ``|sin(pi/2 * v_r)|``
  (the squares sum to one; scale ``-1`` gives the residual masks ``hi0``, ``lo0``);
* band ``r`` is the ring between them, peaking at ``rho = 2^-(r+1)``: a centre
  frequency of ``2^-(r+2)`` cycles per frame pixel, a wavelength of
  ``2^(r+2)`` frame pixels (4, 8, 16, 32, ...; :func:`centre_wavelength`);
* orientation ``k`` keeps the half-plane around the frequency direction
  ``(cos(k pi/4), sin(k pi/4))`` in (x right, y down) image coordinates, with the
  angular profile ``2 sqrt(0.8) cos^3(theta - k pi/4)``. Orientation 0 responds to
  vertical edges, so to horizontal motion; orientation 2 (90 degrees) to vertical
  motion. A shift of the image by ``d`` (pixels, x right / y down) changes the phase
  of orientation ``k`` at scale ``r`` by about
  ``-2 pi (d . u_k) / centre_wavelength(r)``, ``u_k = (cos k pi/4, sin k pi/4)``.

Differences from plenoptic, on purpose: the FFTs use ``norm="forward"`` so every band
and residual is in the frame's intensity units (plenoptic's coarse bands grow by 4 per
scale); the frequency grids are ``fftfreq`` (exact for odd sizes too, where plenoptic
warns that reconstruction is inexact); the spectrum stays in FFT order (no shifts).
Boundaries are circular, as in every FFT pyramid.

Reconstruction of an unmodified pyramid is exact up to rounding: about 1e-7 relative
error in float32 and 1e-16 in float64 (tests/test_phase.py).
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import torch
from torch import Tensor

from rtmag.errors import FrameError

__all__ = [
    "ORIENTATIONS",
    "DEFAULT_SCALES",
    "Pyramid",
    "SteerablePyramid",
    "build",
    "build_scale",
    "reconstruct",
    "band_shape",
    "centre_wavelength",
    "min_frame_side",
    "max_scales",
]

ORIENTATIONS = 4
"""Orientations per scale: 0, 45, 90 and 135 degrees."""

DEFAULT_SCALES = 4
"""Number of band-pass scales built by default."""

_ORDER = ORIENTATIONS - 1
# 2^(2o) (o!)^2 / (K (2o)!) with o = 3, K = 4: makes sum_k c cos^6(theta - k pi/4) = 1.
_ANGLE_CONST = (
    (2 ** (2 * _ORDER)) * math.factorial(_ORDER) ** 2 / (ORIENTATIONS * math.factorial(2 * _ORDER))
)


def min_frame_side(num_scales: int) -> int:
    """Smallest frame side (pixels) a pyramid of ``num_scales`` scales accepts: ``2^(R+2)``.

    The coarsest band is then at least 8 pixels and the low-pass residual 4, the rule
    of matlabPyrTools and plenoptic (``max height = floor(log2(min side)) - 2``).
    """
    return 2 ** (num_scales + 2)


def max_scales(frame_hw: tuple[int, int]) -> int:
    """Most scales a frame of ``(H, W)`` pixels allows (``floor(log2(min side)) - 2``)."""
    side = min(int(frame_hw[0]), int(frame_hw[1]))
    return max(int(math.floor(math.log2(side))) - 2, 0) if side > 0 else 0


def band_shape(frame_hw: tuple[int, int], scale: int) -> tuple[int, int]:
    """``(h, w)`` of the band at ``scale`` (0 finest) for a frame of ``(H, W)``: halved, rounded up."""
    h, w = int(frame_hw[0]), int(frame_hw[1])
    for _ in range(scale):
        h, w = (h + 1) // 2, (w + 1) // 2
    return h, w


def centre_wavelength(scale: int) -> float:
    """Wavelength (frame pixels) at the peak of the radial response of ``scale``: ``2^(scale+2)``."""
    return float(2 ** (scale + 2))


@dataclass(frozen=True)
class Pyramid:
    """Coefficients of a complex steerable pyramid of a batch of frames.

    Attributes:
        highpass: ``(B, C, H, W)`` real residual above the finest band.
        bands: one complex tensor per scale, finest first, ``(B, 4*C, h_r, w_r)``;
            channel ``4*c + k`` is colour channel ``c``, orientation ``k*45`` degrees.
        lowpass: ``(B, C, h_R, w_R)`` real residual below the coarsest band.

    All in the frame's intensity units. Use :meth:`with_bands` to get a modified copy.
    """

    highpass: Tensor
    bands: tuple[Tensor, ...]
    lowpass: Tensor

    @property
    def num_scales(self) -> int:
        return len(self.bands)

    @property
    def frame_hw(self) -> tuple[int, int]:
        return int(self.highpass.shape[-2]), int(self.highpass.shape[-1])

    @property
    def channels(self) -> int:
        return int(self.highpass.shape[1])

    @property
    def batch(self) -> int:
        return int(self.highpass.shape[0])

    def orientation_view(self, scale: int) -> Tensor:
        """Band ``scale`` as ``(B, C, 4, h, w)`` (a view)."""
        b = self.bands[scale]
        return b.view(b.shape[0], self.channels, ORIENTATIONS, b.shape[-2], b.shape[-1])

    def with_bands(self, bands) -> Pyramid:
        """A copy with the band tensors replaced (same shapes); residuals are shared."""
        bands = tuple(bands)
        if len(bands) != len(self.bands) or any(
            a.shape != b.shape for a, b in zip(bands, self.bands)
        ):
            raise ValueError("with_bands: the new bands must have the shapes of the old ones")
        return replace(self, bands=bands)


# ---------------------------------------------------------------------------- masks


@dataclass(frozen=True)
class _Level:
    fwd: Tensor  # (4, h, w) complex: analysis masks of this scale's band
    inv_half: Tensor  # (4, h, w//2+1) complex: synthesis masks, rfft half
    keep_y: Tensor  # indices (FFT order) of the next, coarser grid inside this one
    keep_x: Tensor
    lo: Tensor  # (h', w') real: low-pass mask on the coarser grid
    lo_half: Tensor  # (h', w'//2+1)


@dataclass(frozen=True)
class _Masks:
    hi0_half: Tensor  # (H, W//2+1), rfft half
    lo0: Tensor  # (H, W)
    lo0_half: Tensor
    levels: tuple[_Level, ...]


def _keep(n: int) -> np.ndarray:
    """Indices of the ``ceil(n/2)``-point DFT frequencies inside an ``n``-point DFT (FFT order)."""
    m = (n + 1) // 2
    return np.concatenate([np.arange(0, m - m // 2), np.arange(n - m // 2, n)])


def _radial(log_rad: np.ndarray, scale: int) -> tuple[np.ndarray, np.ndarray]:
    v = np.clip(log_rad + scale + 1, -1.0, 0.0)
    return np.cos(0.5 * np.pi * v), np.abs(np.sin(0.5 * np.pi * v))


@functools.lru_cache(maxsize=32)
def _masks(h: int, w: int, num_scales: int, dtype: torch.dtype, device: str) -> _Masks:
    """Masks for an ``(h, w)`` frame, computed in float64 and cached per dtype and device."""
    fy = 2.0 * np.fft.fftfreq(h)  # Nyquist = 1
    fx = 2.0 * np.fft.fftfreq(w)
    y, x = np.meshgrid(fy, fx, indexing="ij")
    rad = np.hypot(x, y)
    rad[0, 0] = 1e-30  # DC: log2 -> very negative, so it goes wholly to the low-pass
    log_rad = np.log2(rad)
    angle = np.arctan2(y, x)
    cdtype = torch.complex64 if dtype == torch.float32 else torch.complex128

    def real(a):
        return torch.as_tensor(np.ascontiguousarray(a), dtype=dtype, device=device)

    def cplx(a):
        return torch.as_tensor(np.ascontiguousarray(a), dtype=cdtype, device=device)

    hi0, lo0 = _radial(log_rad, -1)
    levels = []
    sq = math.sqrt(_ANGLE_CONST)
    for r in range(num_scales):
        hi, _ = _radial(log_rad, r)
        fwd, inv = [], []
        for k in range(ORIENTATIONS):
            d = angle - np.pi * k / ORIENTATIONS
            d = (d + np.pi) % (2 * np.pi) - np.pi
            c3 = np.cos(d) ** _ORDER
            half = (np.abs(d) < np.pi / 2).astype(np.float64)
            # (-i)^3 on analysis, i^3 on synthesis (plenoptic's complex_const)
            fwd.append((-1j) ** _ORDER * 2.0 * sq * c3 * half * hi)
            inv.append((1j) ** _ORDER * sq * c3 * hi)
        ky, kx = _keep(log_rad.shape[0]), _keep(log_rad.shape[1])
        log_rad = log_rad[np.ix_(ky, kx)]
        angle = angle[np.ix_(ky, kx)]
        _, lo = _radial(log_rad, r)
        levels.append(
            _Level(
                fwd=cplx(np.stack(fwd)),
                inv_half=cplx(np.stack(inv)[..., : hi.shape[1] // 2 + 1]),
                keep_y=torch.as_tensor(ky, device=device),
                keep_x=torch.as_tensor(kx, device=device),
                lo=real(lo),
                lo_half=real(lo[:, : lo.shape[1] // 2 + 1]),
            )
        )
    half = w // 2 + 1
    return _Masks(
        hi0_half=real(hi0[:, :half]),
        lo0=real(lo0),
        lo0_half=real(lo0[:, :half]),
        levels=tuple(levels),
    )


# ---------------------------------------------------------------------------- transform


def _as_frames(frames: Any, num_scales: int) -> Tensor:
    """Check and convert frames to a float32/float64 tensor ``(B, C, H, W)``."""
    if not isinstance(frames, Tensor):
        frames = torch.as_tensor(np.asarray(frames))
    if frames.ndim != 4:
        hint = ""
        if frames.ndim == 2:
            hint = "; for one grey frame use frame[None, None]"
        elif frames.ndim == 3:
            hint = "; for a stack of grey frames (B, H, W) use frames[:, None]"
        raise FrameError(
            f"pyramid frames must be a (B, C, H, W) tensor, got shape {tuple(frames.shape)}{hint}"
        )
    if frames.is_complex():
        raise FrameError("pyramid frames must be real, got a complex tensor")
    if frames.dtype not in (torch.float32, torch.float64):
        frames = frames.to(torch.float32)
    h, w = int(frames.shape[-2]), int(frames.shape[-1])
    need = min_frame_side(num_scales)
    if min(h, w) < need:
        raise FrameError(
            f"frame of {h}x{w} pixels is too small for a {num_scales}-scale steerable "
            f"pyramid, which needs at least {need}x{need}; use a larger frame or region, "
            f"or at most {max_scales((h, w))} scales"
        )
    return frames


def _check_scales(num_scales: int) -> int:
    if isinstance(num_scales, bool) or not isinstance(num_scales, (int, np.integer)):
        raise ValueError(f"num_scales must be an int >= 1, got {num_scales!r}")
    if num_scales < 1:
        raise ValueError(f"num_scales must be >= 1, got {num_scales}")
    return int(num_scales)


def build(frames: Tensor, num_scales: int = DEFAULT_SCALES) -> Pyramid:
    """Decompose frames into a complex steerable pyramid.

    Args:
        frames: ``(B, C, H, W)`` real tensor (or array), float32 or float64 (other
            dtypes become float32), any intensity unit. ``min(H, W)`` must be at least
            :func:`min_frame_side` ``(num_scales)``, else :class:`~rtmag.errors.FrameError`.
        num_scales: band-pass scales ``R >= 1``.

    Returns:
        :class:`Pyramid` with bands ``(B, 4*C, h_r, w_r)`` complex64/complex128.
    """
    num_scales = _check_scales(num_scales)
    x = _as_frames(frames, num_scales)
    b, c, h, w = x.shape
    m = _masks(h, w, num_scales, x.dtype, str(x.device))
    spec = torch.fft.fft2(x, norm="forward")
    half = spec[..., : w // 2 + 1] * m.hi0_half
    highpass = torch.fft.irfft2(half, s=(h, w), norm="forward")
    lo = spec * m.lo0
    bands = []
    for lev in m.levels:
        band = torch.fft.ifft2(lo.unsqueeze(2) * lev.fwd, norm="forward")
        bands.append(band.reshape(b, c * ORIENTATIONS, band.shape[-2], band.shape[-1]))
        lo = lo.index_select(-2, lev.keep_y).index_select(-1, lev.keep_x) * lev.lo
    lowpass = torch.fft.ifft2(lo, norm="forward").real
    return Pyramid(highpass=highpass, bands=tuple(bands), lowpass=lowpass)


def build_scale(frames: Tensor, scale: int) -> Tensor:
    """Only the band at ``scale`` of :func:`build`: ``(B, 4*C, h, w)`` complex.

    Equal to ``build(frames, R).bands[scale]`` for any ``R > scale`` (the band does not
    depend on the coarser scales), at the cost of one full-size FFT and one band-size
    inverse FFT. The frame must allow ``scale + 1`` scales.
    """
    if isinstance(scale, bool) or not isinstance(scale, (int, np.integer)) or scale < 0:
        raise ValueError(f"scale must be an int >= 0, got {scale!r}")
    scale = int(scale)
    x = _as_frames(frames, scale + 1)
    b, c, h, w = x.shape
    m = _masks(h, w, scale + 1, x.dtype, str(x.device))
    lo = torch.fft.fft2(x, norm="forward") * m.lo0
    for lev in m.levels[:scale]:
        lo = lo.index_select(-2, lev.keep_y).index_select(-1, lev.keep_x) * lev.lo
    band = torch.fft.ifft2(lo.unsqueeze(2) * m.levels[scale].fwd, norm="forward")
    return band.reshape(b, c * ORIENTATIONS, band.shape[-2], band.shape[-1])


def reconstruct(pyr: Pyramid) -> Tensor:
    """Frames ``(B, C, H, W)`` (real, the pyramid's float dtype) from a :class:`Pyramid`.

    The inverse of :func:`build`; the bands may have been modified (e.g. phase
    offsets). As in plenoptic's ``recon_pyr``, a modified band contributes only what an
    analytic filter can carry: the synthesis masks are Hermitian (real kernels), so
    ``Re(ifft(fft(band) * inv))`` is ``ifft(fft(Re band) * inv)`` and only the real part
    of each band is used, with real FFTs throughout.
    """
    b, c = pyr.batch, pyr.channels
    h, w = pyr.frame_hw
    m = _masks(h, w, pyr.num_scales, pyr.highpass.dtype, str(pyr.highpass.device))
    spec = torch.fft.rfft2(pyr.lowpass, norm="forward")
    for r in range(pyr.num_scales - 1, -1, -1):
        lev = m.levels[r]
        band = pyr.bands[r]
        hb, wb = band.shape[-2], band.shape[-1]
        low = spec * lev.lo_half  # coarse grid, rfft half
        hc, wc = low.shape[-2], low.shape[-1]
        pos = hc - hc // 2  # rows 0..pos-1 are frequencies >= 0, the rest negative
        up = low.new_zeros((b, c, hb, wb // 2 + 1))
        up[..., :pos, :wc] = low[..., :pos, :]
        if hc // 2:
            up[..., hb - hc // 2 :, :wc] = low[..., pos:, :]
        real = band.real.reshape(b, c, ORIENTATIONS, hb, wb)
        bspec = torch.fft.rfft2(real, norm="forward")
        spec = up + (bspec * lev.inv_half).sum(dim=2)
    spec = spec * m.lo0_half + torch.fft.rfft2(pyr.highpass, norm="forward") * m.hi0_half
    return torch.fft.irfft2(spec, s=(h, w), norm="forward")


class SteerablePyramid:
    """Holds ``num_scales`` and delegates to :func:`build` / :func:`reconstruct`."""

    def __init__(self, num_scales: int = DEFAULT_SCALES):
        self.num_scales = _check_scales(num_scales)

    def build(self, frames: Tensor) -> Pyramid:
        return build(frames, self.num_scales)

    def reconstruct(self, pyr: Pyramid) -> Tensor:
        if pyr.num_scales != self.num_scales:
            raise ValueError(
                f"pyramid has {pyr.num_scales} scales, this SteerablePyramid {self.num_scales}"
            )
        return reconstruct(pyr)

    def __repr__(self) -> str:
        return f"SteerablePyramid(num_scales={self.num_scales})"
