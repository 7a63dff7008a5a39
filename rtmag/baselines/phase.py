"""Phase-based video motion magnification (Wadhwa et al., SIGGRAPH 2013), as a baseline.

As the authors' ``phaseAmplify.m``, on the luminance only:

1. RGB -> NTSC YIQ (:mod:`rtmag.baselines.colour`); Y goes through the complex
   steerable pyramid of :mod:`rtmag.representations.pyramid` (octave bandwidth, four
   orientations, ``num_scales`` scales; default as many as the frame allows, the
   authors' ``maxSCFpyrHt``); I and Q are kept as they are.
2. The local phase of every band coefficient relative to the first frame of the clip
   (or stream), wrapped: ``delta(t) = angle(c(t) conj(c(0)))`` in ``(-pi, pi]``.
3. A temporal band-pass of ``delta`` per coefficient: ``"ideal"`` (FFT over the whole
   clip, as the authors) or ``"butter"`` (:func:`rtmag.filters.design_bandpass`,
   zero-phase offline) -- or, ``causal=True`` / :meth:`push`, the causal Butterworth
   IIR with its state on the object.
4. Amplitude-weighted spatial smoothing of the filtered phase in each band,
   ``G*(A o) / G*A`` with ``A = |c(t)|`` and a Gaussian of ``sigma`` band pixels
   (:func:`rtmag.representations.phase.amplitude_weight` with no floor).
5. Every band multiplied by ``exp(i alpha o)``; the residuals are unchanged; the
   pyramid is collapsed into the new Y, then back to RGB, clipped, rounded to uint8.

A translation ``d(t)`` whose band-passed part is ``d_b`` comes out as ``d + alpha d_b``:
an in-band sinusoidal motion is ``1 + alpha`` times as large (for ``alpha d`` well
under a quarter of the wavelengths that carry it, the method's limit).

*Colour changes are not magnified.* A change of intensity that multiplies a region
scales its coefficients and leaves their phase alone, so the pulse on skin comes out
with a gain of about 1 whatever ``alpha`` (tests/test_phase_baselines.py): the method
is a motion baseline (respiration), not a pulse one.

Memory. The offline filter holds the phase of every coefficient of every frame:
``T x P`` float32 with ``P`` about ``4 * 4/3 * H * W`` (e.g. 6.5 MB a frame at
640x480). :meth:`PhaseMagnifier.check_offline_memory` refuses a clip above
``max_memory_gb`` with a message that names the causal form, whose memory does not
grow with the clip.

Shapes: frames ``(T, H, W, 3)`` RGB uint8 0-255 or float 0-1; a "stack" here is that
clip's ``(T, P)`` float32 phase deltas, all bands flattened finest first
(:meth:`PhaseMagnifier.stack`).
"""

from __future__ import annotations

import math

import numpy as np
import torch

from rtmag.baselines._registry import register_method
from rtmag.baselines.colour import ntsc2rgb, rgb2ntsc
from rtmag.errors import FrameError, UserError

__all__ = ["PhaseMagnifier", "phase_magnify"]

_BATCH = 8  # frames per pyramid call
_CHUNK_VALUES = 1 << 24  # float64 values per column chunk of the offline filter


def _check_frames(frames: np.ndarray) -> np.ndarray:
    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.shape[-1] != 3:
        raise FrameError(f"frames must have shape (T, H, W, 3) RGB, got {frames.shape}")
    return frames


class PhaseMagnifier:
    """Phase-based motion magnification; see the module docstring.

    Args:
        fps: frame rate in frames per second.
        band: ``(low, high)`` pass band in Hz, ``0 < low < high < fps / 2``.
        alpha: amplification of the band-passed phase (motion gain ``1 + alpha``).
        num_scales: pyramid scales; ``None``: as many as the frame allows
            (:func:`~rtmag.representations.pyramid.max_scales`).
        sigma: Gaussian of the amplitude-weighted smoothing, in band pixels (0: none;
            the authors use 2).
        filter: offline temporal filter, ``"ideal"`` or ``"butter"``.
        causal: ``__call__`` uses the causal Butterworth form (what :meth:`push` does).
        order: total order of the Butterworth band-pass (even).
        max_memory_gb: the most memory the offline phase stack may take.
    """

    name = "phase"

    def __init__(
        self,
        fps: float = 30.0,
        band: tuple[float, float] = (0.7, 2.5),
        alpha: float = 10.0,
        num_scales: int | None = None,
        sigma: float = 2.0,
        filter: str = "ideal",
        causal: bool = False,
        order: int = 6,
        max_memory_gb: float = 4.0,
    ) -> None:
        from rtmag.filters import design_bandpass

        fps = float(fps)
        if not math.isfinite(fps) or fps <= 0:
            raise UserError(f"fps must be a positive number of frames/s, got {fps!r}")
        low, high = (float(v) for v in band)
        if not (0 < low < high < fps / 2):
            raise UserError(
                f"band ({low:g}, {high:g}) Hz is invalid at {fps:g} fps: "
                f"need 0 < low < high < fps/2 = {fps / 2:g} Hz"
            )
        if not math.isfinite(float(alpha)):
            raise UserError(f"alpha must be a finite number, got {alpha!r}")
        if num_scales is not None and (int(num_scales) != num_scales or num_scales < 1):
            raise UserError(f"num_scales must be an integer >= 1 or None, got {num_scales!r}")
        if not (math.isfinite(float(sigma)) and sigma >= 0):
            raise UserError(f"sigma must be >= 0 band pixels, got {sigma!r}")
        if filter not in ("ideal", "butter"):
            raise UserError(f"phase filter must be 'ideal' or 'butter', got {filter!r}")
        self.fps, self.band = fps, (low, high)
        self.alpha = float(alpha)
        self.num_scales = None if num_scales is None else int(num_scales)
        self.sigma = float(sigma)
        self.filter = filter
        self.causal = bool(causal)
        self.max_memory_gb = float(max_memory_gb)
        self.sos = design_bandpass(low, high, fps, order)
        self.reset()

    # ------------------------------------------------------------------ state

    def reset(self) -> None:
        """Forget the stream: the next frame is a new reference (and filter start)."""
        self.ref: list[torch.Tensor] | None = None  # unit phasors of frame 0, per band
        self.state = None  # temporal filter state
        self.frame_hw: tuple[int, int] | None = None

    def settings(self) -> dict:
        return {
            "method": self.name,
            "fps": self.fps,
            "band_hz": list(self.band),
            "alpha": self.alpha,
            "num_scales": self.num_scales,
            "sigma": self.sigma,
            "filter": "butter" if self.causal else self.filter,
            "causal": self.causal,
        }

    # ------------------------------------------------------------------ geometry

    def scales_for(self, frame_hw: tuple[int, int]) -> int:
        """Scales used for ``(H, W)`` frames (checks that the frame allows them)."""
        from rtmag.representations.pyramid import max_scales, min_frame_side

        most = max_scales(frame_hw)
        r = most if self.num_scales is None else self.num_scales
        if r < 1 or r > most:
            raise FrameError(
                f"a {frame_hw[1]}x{frame_hw[0]} frame allows at most {most} pyramid scales "
                f"(it needs a side of {min_frame_side(max(r, 1))} for {max(r, 1)}); use a "
                "larger frame or fewer scales"
            )
        return r

    def band_shapes(self, frame_hw: tuple[int, int]) -> list[tuple[int, int, int]]:
        """``(4, h_r, w_r)`` of every band, finest first."""
        from rtmag.representations.pyramid import ORIENTATIONS, band_shape

        return [(ORIENTATIONS, *band_shape(frame_hw, r)) for r in range(self.scales_for(frame_hw))]

    def stack_width(self, frame_hw: tuple[int, int]) -> int:
        """``P``: phase values per frame (all bands)."""
        return int(sum(np.prod(s) for s in self.band_shapes(frame_hw)))

    def check_offline_memory(self, n_frames: int, frame_hw: tuple[int, int]) -> None:
        """Raise :class:`UserError` if the offline stack of this clip exceeds the limit."""
        need = 4.0 * n_frames * self.stack_width(frame_hw) / 1e9
        if need > self.max_memory_gb:
            raise UserError(
                f"offline phase magnification of {n_frames} frames of "
                f"{frame_hw[1]}x{frame_hw[0]} would hold {need:.1f} GB of phases (limit "
                f"{self.max_memory_gb:g} GB): use the causal filter (--causal), a shorter "
                "or smaller clip, or a higher max_memory_gb"
            )

    # ------------------------------------------------------------------ pieces

    def _luma(self, frames: np.ndarray) -> tuple[np.ndarray, torch.Tensor]:
        yiq = rgb2ntsc(frames)  # (T, H, W, 3) float64
        y = torch.from_numpy(np.ascontiguousarray(yiq[..., 0], np.float32))[:, None]
        return yiq, y

    def _pyramid(self, y: torch.Tensor):
        from rtmag.representations.pyramid import build

        return build(y, self.scales_for(tuple(y.shape[-2:])))

    def stack(self, frames: np.ndarray) -> np.ndarray:
        """Phase of every coefficient relative to the stream's first frame.

        Args:
            frames: ``(T, H, W, 3)`` RGB; the first frame after :meth:`reset` is the
                reference (its deltas are 0).

        Returns:
            ``(T, P)`` float32 wrapped phase deltas in radians, bands flattened.
        """
        frames = _check_frames(frames)
        hw = tuple(frames.shape[1:3])
        if self.frame_hw is not None and hw != self.frame_hw:
            raise FrameError(f"frame size changed from {self.frame_hw} to {hw} within a stream")
        out = np.empty((len(frames), self.stack_width(hw)), np.float32)
        for i in range(0, len(frames), _BATCH):
            _, y = self._luma(frames[i : i + _BATCH])
            pyr = self._pyramid(y)
            if self.ref is None:
                self.frame_hw = hw
                self.ref = [b[:1] / b[:1].abs().clamp_min(1e-30) for b in pyr.bands]
            cols = [torch.angle(b * r.conj()).flatten(1) for b, r in zip(pyr.bands, self.ref)]
            out[i : i + len(y)] = torch.cat(cols, dim=1).numpy()
        return out

    def filter_offline(self, stack: np.ndarray) -> np.ndarray:
        """Temporal filter over the whole clip's ``(T, P)`` stack -> float32 ``(T, P)``."""
        stack = np.asarray(stack, np.float32)
        out = np.empty_like(stack)
        step = max(1, _CHUNK_VALUES // max(len(stack), 1))
        for j in range(0, stack.shape[1], step):
            out[:, j : j + step] = self._filter_offline(stack[:, j : j + step])
        return out

    def _filter_offline(self, stack: np.ndarray) -> np.ndarray:
        from rtmag.baselines.evm import ideal_bandpass
        from rtmag.filters import zero_phase

        if self.filter == "ideal":
            return ideal_bandpass(stack, self.fps, *self.band, axis=0)
        return zero_phase(self.sos, stack, axis=0)

    def _filter_causal(self, stack: np.ndarray) -> np.ndarray:
        from rtmag.filters import sosfilt_step, steady_state

        if self.state is None:
            self.state = steady_state(self.sos, stack[0])
        y, self.state = sosfilt_step(self.sos, stack, self.state)
        return y.astype(np.float32)

    def render(self, frames: np.ndarray, filtered: np.ndarray) -> np.ndarray:
        """Magnified uint8 frames from the frames and their filtered ``(T, P)`` phases."""
        from rtmag.representations.phase import amplitude_weight
        from rtmag.representations.pyramid import reconstruct

        frames = _check_frames(frames)
        filtered = np.asarray(filtered, np.float32)
        shapes = self.band_shapes(tuple(frames.shape[1:3]))
        if filtered.shape != (len(frames), sum(int(np.prod(s)) for s in shapes)):
            raise FrameError(
                f"filtered phases {filtered.shape} do not fit {len(frames)} frames of "
                f"{frames.shape[2]}x{frames.shape[1]}"
            )
        out = np.empty(frames.shape, np.uint8)
        for i in range(0, len(frames), _BATCH):
            yiq, y = self._luma(frames[i : i + _BATCH])
            pyr = self._pyramid(y)
            f = torch.from_numpy(filtered[i : i + len(y)])
            bands, j = [], 0
            for band, s in zip(pyr.bands, shapes):
                n = int(np.prod(s))
                o = f[:, j : j + n].reshape(len(y), *s)
                j += n
                o = amplitude_weight(o, band.abs(), self.sigma, floor=0.0) * self.alpha
                bands.append(band * torch.polar(torch.ones_like(o), o))
            yiq[..., 0] = reconstruct(pyr.with_bands(bands))[:, 0].double().numpy()
            rgb = np.clip(ntsc2rgb(yiq), 0.0, 1.0)
            out[i : i + len(y)] = np.floor(rgb * 255.0 + 0.5).astype(np.uint8)
        return out

    # ------------------------------------------------------------------ whole clips

    def push(self, frames: np.ndarray) -> np.ndarray:
        """Causal streaming: magnify the next chunk ``(T, H, W, 3)`` -> uint8, no delay.

        Chunks of any size give the frames of one ``causal=True`` call on the whole
        clip; the reference phases and filter state live on this object (:meth:`reset`).
        """
        frames = _check_frames(frames)
        if len(frames) == 0:
            return np.zeros(frames.shape, np.uint8)
        return self.render(frames, self._filter_causal(self.stack(frames)))

    def __call__(self, frames: np.ndarray) -> np.ndarray:
        """Magnify a whole clip ``(T, H, W, 3)`` -> uint8 (offline, or causal if set)."""
        frames = _check_frames(frames)
        self.reset()
        if self.causal:
            out = self.push(frames)
        else:
            self.check_offline_memory(len(frames), tuple(frames.shape[1:3]))
            out = self.render(frames, self.filter_offline(self.stack(frames)))
        self.reset()
        return out


def phase_magnify(
    frames: np.ndarray,
    fps: float,
    low: float,
    high: float,
    alpha: float,
    num_scales: int | None = None,
    sigma: float = 2.0,
    filter: str = "ideal",
    causal: bool = False,
) -> np.ndarray:
    """Phase-based magnification of ``(T, H, W, 3)`` frames -> uint8 (see the module)."""
    return PhaseMagnifier(fps, (low, high), alpha, num_scales, sigma, filter, causal)(frames)


@register_method("phase")
def create_phase(**kwargs) -> PhaseMagnifier:
    """Registry factory of :class:`PhaseMagnifier` (keywords as its constructor)."""
    return PhaseMagnifier(**kwargs)
