"""The colour pipeline shared by the EVM and VAM baselines, as in the MIT EVM code.

``amplify_spatial_Gdown_temporal_ideal`` (Wu et al. 2012, MATLAB, 2012) does, per clip:

1. RGB ``[0, 1]`` doubles -> NTSC YIQ (``rgb2ntsc``);
2. ``blurDnClr(frame, level)`` (matlabPyrTools): ``level`` times a 5-tap binomial
   ``[1 4 6 4 1] / 16`` blur with mirror ('reflect1') edges, keeping every second row
   and column (the same operation as ``cv2.pyrDown``);
3. a temporal filter on that stack (ideal FFT band-pass there; here any filter);
4. multiply Y by ``alpha`` and I, Q by ``alpha * chrom_attenuation``;
5. ``imresize`` (bicubic, MATLAB's kernel ``a = -0.5`` and mirrored edges) back to
   full size, add to the frame's YIQ, ``ntsc2rgb``, clip to ``[0, 1]``, ``im2uint8``.

Shapes: frames ``(T, H, W, 3)`` RGB ``uint8`` (0-255) or float in ``[0, 1]``; a stack
``(T, h, w, 3)`` float64 YIQ with ``h = ceil(H / 2**level)`` (each halving rounds up).
"""

from __future__ import annotations

import math

import numpy as np

from rtmag.errors import FrameError, UserError

__all__ = [
    "RGB2YIQ",
    "YIQ2RGB",
    "rgb2ntsc",
    "ntsc2rgb",
    "blur_dn",
    "gaussian_stack",
    "stack_shape",
    "imresize_bicubic",
    "render_colour",
]

# MATLAB ntsc2rgb's matrix T (YIQ -> RGB); rgb2ntsc divides by it, i.e. uses inv(T).
YIQ2RGB = np.array([[1.0, 0.956, 0.621], [1.0, -0.272, -0.647], [1.0, -1.106, 1.703]])
RGB2YIQ = np.linalg.inv(YIQ2RGB)


def _as_unit(frames: np.ndarray) -> np.ndarray:
    """uint8 0-255 -> float64 0-1 (``im2double``); floats are taken as 0-1 already."""
    x = np.asarray(frames)
    if x.dtype == np.uint8:
        return x.astype(np.float64) / 255.0
    if not np.issubdtype(x.dtype, np.floating):
        raise FrameError(f"frames must be uint8 (0-255) or float (0-1), got dtype {x.dtype}")
    return x.astype(np.float64, copy=False)


def rgb2ntsc(rgb: np.ndarray) -> np.ndarray:
    """RGB -> YIQ on the last axis (MATLAB ``rgb2ntsc``); float64, any leading shape."""
    return _as_unit(rgb) @ RGB2YIQ.T


def ntsc2rgb(yiq: np.ndarray) -> np.ndarray:
    """YIQ -> RGB on the last axis (MATLAB ``ntsc2rgb`` without its clipping)."""
    return np.asarray(yiq, np.float64) @ YIQ2RGB.T


def _check_level(level: int) -> int:
    if int(level) != level or level < 0:
        raise UserError(f"pyramid level must be an integer >= 0, got {level!r}")
    return int(level)


def blur_dn(image: np.ndarray, level: int) -> np.ndarray:
    """``level`` Gaussian reductions of one image ``(H, W)`` or ``(H, W, C)``.

    matlabPyrTools ``blurDn(im, level, 'binom5')``: the binomial filter ``[1 4 6 4 1]/16``
    along each axis with mirror edges (about the edge sample, not repeating it), then
    every second sample starting at the first; the size goes ``N -> ceil(N / 2)``.
    Computed with ``cv2.pyrDown`` (the same kernel, border and sampling) in float64.
    """
    import cv2

    level = _check_level(level)
    out = np.asarray(image, np.float64)
    for _ in range(level):
        if min(out.shape[:2]) < 2:
            raise UserError(
                f"pyramid level {level} is too deep for a {image.shape[1]}x{image.shape[0]} "
                "frame; use a smaller --level"
            )
        out = cv2.pyrDown(out, borderType=cv2.BORDER_REFLECT_101)
    if out.ndim == 2 and np.ndim(image) == 3:
        out = out[..., None]
    return out


def stack_shape(height: int, width: int, level: int) -> tuple[int, int]:
    """``(h, w)`` of the level-``level`` image of an ``H x W`` frame."""
    h, w = int(height), int(width)
    for _ in range(_check_level(level)):
        h, w = math.ceil(h / 2), math.ceil(w / 2)
    return h, w


def gaussian_stack(frames: np.ndarray, level: int = 4, yiq: bool = True) -> np.ndarray:
    """The Gaussian-pyramid level of every frame (MIT ``build_GDown_stack``).

    Args:
        frames: ``(T, H, W, 3)`` RGB, uint8 0-255 or float 0-1.
        level: number of halvings (4: 1/16 of the size).
        yiq: convert to YIQ first (as the MIT code), else keep RGB.

    Returns:
        ``(T, h, w, 3)`` float64, ``(h, w) = stack_shape(H, W, level)``.
    """
    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.shape[-1] != 3:
        raise FrameError(f"frames must have shape (T, H, W, 3), got {frames.shape}")
    h, w = stack_shape(frames.shape[1], frames.shape[2], level)
    out = np.empty((frames.shape[0], h, w, 3))
    for t, fr in enumerate(frames):
        low = blur_dn(_as_unit(fr), level)  # linear: blurring RGB then converting to
        out[t] = rgb2ntsc(low) if yiq else low  # YIQ equals the MIT order, to rounding
    return out


def _cubic(x: np.ndarray) -> np.ndarray:
    """MATLAB imresize's bicubic kernel (Keys, a = -0.5)."""
    ax = np.abs(x)
    ax2, ax3 = ax * ax, ax * ax * ax
    return (1.5 * ax3 - 2.5 * ax2 + 1) * (ax <= 1) + (-0.5 * ax3 + 2.5 * ax2 - 4 * ax + 2) * (
        (ax > 1) & (ax <= 2)
    )


def _resize_matrix(n_in: int, n_out: int) -> np.ndarray:
    """``(n_out, n_in)`` matrix of MATLAB ``imresize`` bicubic along one axis.

    Output sample ``i`` (1-based) sits at input coordinate ``i / s + (1 - 1 / s) / 2``,
    ``s = n_out / n_in``; weights from :func:`_cubic` (stretched by ``s`` when
    shrinking, MATLAB's antialiasing), normalised to sum 1; indices outside the image
    mirror back (``[1..n, n..1]`` periodically), as MATLAB's ``contributions``.
    """
    s = n_out / n_in
    width = 4.0 / s if s < 1 else 4.0
    u = np.arange(1, n_out + 1) / s + 0.5 * (1 - 1 / s)
    left = np.floor(u - width / 2)
    p = int(math.ceil(width)) + 2
    idx = left[:, None] + np.arange(p)[None, :]  # 1-based
    d = u[:, None] - idx
    wts = s * _cubic(s * d) if s < 1 else _cubic(d)
    wts /= wts.sum(axis=1, keepdims=True)
    aux = np.concatenate([np.arange(n_in), np.arange(n_in)[::-1]])
    cols = aux[np.mod(idx.astype(np.int64) - 1, len(aux))]
    m = np.zeros((n_out, n_in))
    np.add.at(m, (np.repeat(np.arange(n_out), p), cols.ravel()), wts.ravel())
    return m


def imresize_bicubic(images: np.ndarray, height: int, width: int) -> np.ndarray:
    """MATLAB ``imresize(x, [height width])`` (bicubic) of ``(..., h, w, C)`` float64."""
    x = np.asarray(images, np.float64)
    my = _resize_matrix(x.shape[-3], int(height))
    mx = _resize_matrix(x.shape[-2], int(width))
    # rows then columns (MATLAB resizes the dimension with the smaller scale first; the
    # two orders are equal up to rounding for this linear, separable operation)
    return np.einsum("yh,...hwc,xw->...yxc", my, x, mx, optimize=True)


def render_colour(
    frames: np.ndarray,
    filtered: np.ndarray,
    alpha: float,
    chrom_attenuation: float = 1.0,
    out: np.ndarray | None = None,
) -> np.ndarray:
    """Add the amplified, up-sampled filtered stack to the frames (MIT rendering).

    Args:
        frames: ``(T, H, W, 3)`` RGB uint8 0-255 or float 0-1.
        filtered: ``(T, h, w, 3)`` temporally filtered YIQ stack.
        alpha: amplification of the filtered signal (Y channel).
        chrom_attenuation: I and Q are amplified by ``alpha * chrom_attenuation``.
        out: optional ``(T, H, W, 3)`` uint8 array to write into.

    Returns:
        ``(T, H, W, 3)`` uint8: ``im2uint8(clip(ntsc2rgb(rgb2ntsc(f) + up(a * F))))``.
    """
    frames = np.asarray(frames)
    filtered = np.asarray(filtered, np.float64)
    if frames.ndim != 4 or filtered.ndim != 4 or len(frames) != len(filtered):
        raise FrameError(
            f"frames {frames.shape} and filtered stack {filtered.shape} must both be "
            "(T, ., ., 3) with the same T"
        )
    T, H, W, _ = frames.shape
    if out is None:
        out = np.empty((T, H, W, 3), np.uint8)
    gain = float(alpha) * np.array([1.0, chrom_attenuation, chrom_attenuation])
    my = _resize_matrix(filtered.shape[1], H)
    mxt = np.ascontiguousarray(_resize_matrix(filtered.shape[2], W).T)
    for t in range(T):
        # ntsc2rgb(rgb2ntsc(f) + up(d)) = f + up(ntsc2rgb(d)): all three steps are linear,
        # so the colour conversion runs at the stack's size (equal to rounding)
        d = ntsc2rgb(filtered[t] * gain)  # (h, w, 3)
        up = np.tensordot(my, d, axes=(1, 0))  # (H, w, 3)
        up = np.matmul(up.transpose(0, 2, 1), mxt).transpose(0, 2, 1)  # (H, W, 3)
        rgb = _as_unit(frames[t]) + up
        np.clip(rgb, 0.0, 1.0, out=rgb)
        # im2uint8 rounds to nearest (values are >= 0 here)
        out[t] = np.floor(rgb * 255.0 + 0.5).astype(np.uint8)
    return out


class ColourMagnifier:
    """Base of the Gaussian-pyramid colour baselines: a holder of settings and state.

    Subclasses give the temporal filter: ``_filter_offline(stack)`` over a whole clip
    and ``_filter_causal(stack_chunk)`` that carries its state from chunk to chunk.
    The work is done by the pure functions of this module.

    Args:
        fps: frame rate in frames per second.
        band: ``(low, high)`` pass band in Hz, ``0 < low < high < fps / 2``.
        alpha: amplification of the filtered signal; a pure in-band colour change comes
            out ``1 + alpha`` times as large (at the filter's unit-gain frequency).
        level: Gaussian pyramid level (number of halvings).
        chrom_attenuation: I, Q amplified by ``alpha * chrom_attenuation``, in ``[0, 1]``.
        causal: ``__call__`` uses the causal form (what :meth:`push` streams).
    """

    name = "colour"

    def __init__(
        self,
        fps: float = 30.0,
        band: tuple[float, float] = (0.7, 2.5),
        alpha: float = 20.0,
        level: int = 4,
        chrom_attenuation: float = 1.0,
        causal: bool = False,
    ) -> None:
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
        if not 0.0 <= float(chrom_attenuation) <= 1.0:
            raise UserError(f"chrom_attenuation must be in [0, 1], got {chrom_attenuation!r}")
        self.fps, self.band = fps, (low, high)
        self.alpha = float(alpha)
        self.level = _check_level(level)
        self.chrom_attenuation = float(chrom_attenuation)
        self.causal = bool(causal)
        self.reset()

    def reset(self) -> None:
        """Forget the stream: the next :meth:`push` starts a new clip."""
        self.state = None

    def settings(self) -> dict:
        return {
            "method": self.name,
            "fps": self.fps,
            "band_hz": list(self.band),
            "alpha": self.alpha,
            "level": self.level,
            "chrom_attenuation": self.chrom_attenuation,
            "causal": self.causal,
        }

    def stack(self, frames: np.ndarray) -> np.ndarray:
        """``(T, H, W, 3)`` frames -> ``(T, h, w, 3)`` YIQ Gaussian level."""
        return gaussian_stack(frames, self.level)

    def filter_offline(self, stack: np.ndarray) -> np.ndarray:
        """Temporal filter over the whole clip's stack ``(T, h, w, 3)``."""
        return self._filter_offline(np.asarray(stack, np.float64))

    def render(self, frames: np.ndarray, filtered: np.ndarray) -> np.ndarray:
        """Magnified uint8 frames from the frames and their filtered stack."""
        return render_colour(frames, filtered, self.alpha, self.chrom_attenuation)

    def push(self, frames: np.ndarray) -> np.ndarray:
        """Causal streaming: magnify the next chunk ``(T, H, W, 3)`` -> uint8, no delay.

        Chunks of any size give the same frames as one call on the whole clip with
        ``causal=True``; the filter state lives on this object (:meth:`reset`).
        """
        frames = np.asarray(frames)
        if len(frames) == 0:
            return np.zeros(frames.shape, np.uint8)
        return self.render(frames, self._filter_causal(self.stack(frames)))

    def __call__(self, frames: np.ndarray) -> np.ndarray:
        """Magnify a whole clip ``(T, H, W, 3)`` -> uint8 (offline, or causal if set)."""
        if self.causal:
            self.reset()
            out = self.push(frames)
            self.reset()
            return out
        return self.render(frames, self.filter_offline(self.stack(frames)))

    def _filter_offline(self, stack: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def _filter_causal(self, stack: np.ndarray) -> np.ndarray:
        raise NotImplementedError
