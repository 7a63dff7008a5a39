"""Pulse (skin colour) representation and its inverse, in the log domain.

Forward (paper Sec. 3.2, Eq. 14). Frames are area-downsampled to ``36 x 36 x 3``
(:func:`downsample`) and each consecutive pair becomes the normalised difference
``X(t) = (C(t+1) - C(t)) / (C(t+1) + C(t))`` (:func:`normalized_difference`).

Exact identity. For positive colours, ``(1 + X) / (1 - X) = C(t+1) / C(t)``, so
``log(C(t+1) / C(t)) = 2 * atanh(X)`` (:func:`log_ratio_from_x`).

Inverse (Eq. 15-17, rebuilt for streams). The paper rebuilds the magnified
low-resolution frames by a running product (Eq. 16), which drifts without bound on a
long stream. Here the change is rebuilt in the log domain (DESIGN.md, "Filter the
integral, not the derivative"): with ``dX(t) = X_N(t) - X_1(t)`` the change the
gradient ascent made to pair ``(t, t+1)``,

    S(k) = sum_{t < k} dX(t)            (float64 running sum, S(0) = 0)
    O(k) = 2 * F(S)(k)                  (log gain of frame k, F the band-pass)
    C~_l(k) = C_l(k) * exp(O(k))

Without the filter this equals Eq. 16 to first order in ``dX`` (``2 * atanh`` is
``2 * X + O(X^3)`` and ``|X| ~ 1e-2`` for skin); feeding :func:`log_increment`
instead of ``dX`` makes it exact. ``F`` is linear, so ``F(S)`` is the running sum of
``F(dX)`` of Eq. 15, but it stays bounded: the band-pass has zeros at 0 Hz that remove
the random walk and any ramp in ``S``. :class:`LogGainIntegrator` does this causally
on a stream, :func:`offline_log_gain` with the zero-phase filter on a whole clip.
:func:`apply_log_gain` puts the low-resolution gain back on the full-resolution
frames, multiplicatively (default) or by the paper's additive Eq. 17.

Frames are RGB ``uint8`` of shape ``(H, W, 3)`` or batches ``(B, H, W, 3)``.
"""

from __future__ import annotations

from typing import Any

import cv2
import numpy as np

from rtmag.errors import FrameError, UserError
from rtmag.filters import (
    RunningSum,
    StreamingBandpass,
    VariableRateBandpass,
    ema_rate,
    zero_phase,
)

__all__ = [
    "SIZE",
    "MAX_LOG_GAIN",
    "downsample",
    "normalized_difference",
    "x_from_sequence",
    "log_ratio_from_x",
    "log_increment",
    "LogGainIntegrator",
    "offline_log_gain",
    "smooth_log_gain",
    "colour_axis",
    "project_on_axis",
    "ColourAxis",
    "apply_log_gain",
]

SIZE = 36
"""Side of the low-resolution frames, L in the paper (Sec. 3.2)."""

MAX_LOG_GAIN = 8.0
"""Log gains are clipped to +-MAX_LOG_GAIN (exp(8) ~ 3000: any brighter is saturated)."""

_X_CLIP = 1.0 - 1e-7


def _frames_batch(frames: Any, name: str = "frames", allow_float: bool = True):
    """Check RGB frames and return them as ``(B, H, W, 3)`` plus whether one was given."""
    if not isinstance(frames, np.ndarray):
        if hasattr(frames, "detach"):  # a torch tensor
            frames = frames.detach().cpu().numpy()
        else:
            frames = np.asarray(frames)
    shape = frames.shape
    hint = ""
    if frames.ndim == 2 or (frames.ndim in (3, 4) and shape[-1] == 1):
        hint = "; for grey-scale frames use cv2.cvtColor(frame, cv2.COLOR_GRAY2RGB)"
    elif frames.ndim in (3, 4) and shape[-1] == 4:
        hint = "; for RGBA frames use cv2.cvtColor(frame, cv2.COLOR_RGBA2RGB)"
    elif frames.ndim == 3 and shape[-1] != 3:
        hint = (
            "; a stack of grey-scale frames (B, H, W) needs a colour axis: "
            "np.repeat(frames[..., None], 3, axis=-1)"
        )
    if frames.ndim not in (3, 4) or shape[-1] != 3:
        raise FrameError(
            f"{name} must be RGB of shape (H, W, 3) or (B, H, W, 3), got shape {shape}{hint}"
        )
    if shape[-3] == 0 or shape[-2] == 0:
        raise FrameError(f"{name} have zero size {shape}; expected (H, W, 3) with H, W >= 1")
    ok = frames.dtype == np.uint8 or (allow_float and np.issubdtype(frames.dtype, np.floating))
    if not ok:
        want = "uint8 or float" if allow_float else "uint8"
        raise FrameError(
            f"{name} must be {want}, got dtype {frames.dtype}; "
            "convert with frame.astype(np.uint8) after scaling to 0..255"
        )
    single = frames.ndim == 3
    return (frames[None] if single else frames), single


def _resize_area(frame: np.ndarray, hw: tuple[int, int]) -> np.ndarray:
    return cv2.resize(frame, (hw[1], hw[0]), interpolation=cv2.INTER_AREA)


def downsample(frames: np.ndarray, size: int = SIZE, dtype: Any = np.float32) -> np.ndarray:
    """Area-downsample RGB frames to ``size x size`` (the paper's ``C_l``, L = 36).

    Each output pixel is the mean of the input pixels it covers, with fractional
    weights where the factor is not an integer (``cv2.resize(..., cv2.INTER_AREA)``
    on a float copy, so nothing is rounded to 8 bits). The paper says bicubic; area
    averaging is the anti-aliased choice for factors of ~13-30 and the one DESIGN.md
    fixes. Values keep the input's scale (0-255 for ``uint8``).

    Args:
        frames: ``(H, W, 3)`` or ``(B, H, W, 3)``, ``uint8`` or float, RGB.
        size: output side in pixels (>= 1).
        dtype: output dtype, ``np.float32`` (default) or ``np.float64``.

    Returns:
        ``(size, size, 3)`` or ``(B, size, size, 3)`` (the input's rank) of ``dtype``.

    Raises:
        FrameError: not RGB, wrong rank, zero size or an unsupported dtype.
    """
    batch, single = _frames_batch(frames)
    size = int(size)
    if size < 1:
        raise UserError(f"downsample size must be >= 1 pixel, got {size}")
    work = np.float64 if np.dtype(dtype) == np.float64 else np.float32
    out = np.empty((batch.shape[0], size, size, 3), dtype=dtype)
    for i, f in enumerate(batch):
        out[i] = _resize_area(f.astype(work, copy=False), (size, size))
    return out[0] if single else out


def _is_torch(x: Any) -> bool:
    return type(x).__module__.split(".")[0] == "torch"


def normalized_difference(c0: Any, c1: Any, eps: float = 1e-6) -> Any:
    """Normalised frame difference, paper Eq. 14: ``X = (c1 - c0) / (c1 + c0)``.

    Elementwise; where ``c1 + c0 <= eps`` (black pixels) ``X = 0``, never NaN or inf.
    For non-negative colours ``X`` is in ``[-1, 1]`` and scale-free (0-255 or 0-1
    inputs give the same ``X``).

    Args:
        c0, c1: colours at ``t`` and ``t + 1``, same (broadcastable) shape, e.g.
            ``(B, 36, 36, 3)``; numpy arrays (integers are converted to float32,
            float64 stays float64) or torch tensors (kept on their device).
        eps: threshold on ``c1 + c0`` below which ``X`` is set to 0, in the inputs' units.

    Returns:
        ``X`` of the broadcast shape, numpy or torch like the inputs.
    """
    if _is_torch(c0) or _is_torch(c1):
        import torch

        c0 = torch.as_tensor(c0)
        c1 = torch.as_tensor(c1, device=c0.device)
        if not c0.is_floating_point():
            c0 = c0.to(torch.float32)
        if not c1.is_floating_point():
            c1 = c1.to(torch.float32)
        s = c1 + c0
        ok = s > eps
        return torch.where(ok, (c1 - c0) / torch.where(ok, s, torch.ones_like(s)), 0.0)
    c0 = np.asarray(c0)
    c1 = np.asarray(c1)
    dt = np.result_type(np.float32, c0.dtype, c1.dtype)
    c0 = c0.astype(dt, copy=False)
    c1 = c1.astype(dt, copy=False)
    s = c1 + c0
    out = np.zeros(np.broadcast_shapes(c0.shape, c1.shape), dtype=dt)
    np.divide(c1 - c0, s, out=out, where=s > eps)
    return out


def x_from_sequence(lowres: Any, eps: float = 1e-6) -> Any:
    """``X(t)`` for each consecutive pair of a sequence ``(T, h, w, 3)`` -> ``(T-1, h, w, 3)``."""
    return normalized_difference(lowres[:-1], lowres[1:], eps=eps)


def log_ratio_from_x(x: Any, clip: float = _X_CLIP) -> Any:
    """``log(c1 / c0) = 2 * atanh(X)``, the exact inverse of Eq. 14.

    Because ``(1 + X) / (1 - X) = c1 / c0`` exactly for positive colours. ``X`` is
    clipped to ``[-clip, clip]`` first so a black-to-colour pair (``X = +-1``) gives a
    large finite value instead of inf. numpy or torch in, the same out.
    """
    if _is_torch(x):
        import torch

        return 2.0 * torch.atanh(torch.clamp(x, -clip, clip))
    return 2.0 * np.arctanh(np.clip(x, -clip, clip))


def log_increment(x1: Any, xn: Any) -> Any:
    """Exact alternative to ``dX = X_N - X_1``: ``atanh(X_N) - atanh(X_1)``.

    Fed to :class:`LogGainIntegrator` in place of ``dX`` it makes the unfiltered log
    gain equal the paper's running product (Eq. 16) exactly, not to first order.
    """
    return 0.5 * (log_ratio_from_x(xn) - log_ratio_from_x(x1))


class LogGainIntegrator:
    """Causal, bounded log gain of each frame from the ascent's changes ``dX``.

    Keeps ``S(k) = sum_{t < k} dX(t)`` (float64, :class:`~rtmag.filters.RunningSum`)
    and a causal Butterworth band-pass ``F`` on it
    (:class:`~rtmag.filters.StreamingBandpass`, zero initial state), and returns
    ``O(k) = 2 * F(S)(k)``. Frame 0 has ``O(0) = 0`` (``S(0) = 0`` and a filter at
    rest gives 0); show it unchanged. Each call with the changes of pairs
    ``(t, t+1)`` returns the log gains of frames ``t + 1``.

    ``O``'s envelope lags the skin's own colour change by the filter's group delay
    (:meth:`group_delay_s`, ~0.35 s at 1.3 Hz for 0.7-2.5 Hz at 30 fps).

    Variable frame rate: called with ``times`` (the timestamps of the frames the
    pairs end at), ``F`` is :class:`~rtmag.filters.VariableRateBandpass`, which follows
    each frame's own time step (and equals the fixed-rate filter when the timestamps
    are ``1 / fs`` apart). A stream is filtered with timestamps throughout or without
    them throughout; :meth:`reset` to switch.

    Args:
        low_hz, high_hz: pass band in Hz (default the pulse band 0.7-2.5 Hz, 42-150 bpm).
        fs: frame rate in fps.
        order: total band-pass order (6, the paper's).

    Example:
        >>> integ = LogGainIntegrator(fs=30.0)
        >>> o = integ(dx)  # dx (T, 36, 36, 3) -> o (T, 36, 36, 3) float64
    """

    def __init__(
        self, low_hz: float = 0.7, high_hz: float = 2.5, fs: float = 30.0, order: int = 6
    ) -> None:
        self.bandpass = StreamingBandpass(low_hz, high_hz, fs, order=order, init="zeros")
        self.vfr = VariableRateBandpass(low_hz, high_hz, fs, order=order, init="zeros")
        self.sum = RunningSum()
        self._timed: bool | None = None  # this stream gives timestamps (None: not yet known)

    @property
    def S(self) -> np.ndarray | None:  # noqa: N802 (the paper's symbol)
        """``S`` after the last pushed pair, ``(*shape)`` float64, or None."""
        return self.sum.total

    def reset(self) -> None:
        """Start a new stream (a scene cut, a new camera)."""
        self.bandpass.reset()
        self.vfr.reset()
        self.sum.reset()
        self._timed = None

    def __call__(self, dx: np.ndarray, times=None) -> np.ndarray:
        """Push changes ``dx`` of shape ``(T, *shape)``; get ``O`` ``(T, *shape)`` float64.

        Args:
            dx: the changes of ``T`` consecutive pairs.
            times: ``(T,)`` timestamps in seconds of the frames the pairs end at
                (strictly increasing across calls), or None for a fixed rate ``fs``.

        Raises:
            FrameError: timestamps given for some chunks of a stream but not others,
                or timestamps that do not increase (nothing is consumed then).
        """
        timed = times is not None
        if self._timed is not None and timed != self._timed:
            raise FrameError(
                "give timestamps for every chunk of a stream or for none; "
                "call reset() to start a new stream"
            )
        dx = np.asarray(dx, dtype=np.float64)
        if not timed:
            self._timed = False
            return 2.0 * self.bandpass(self.sum(dx))
        # the filter checks the timestamps before the sum takes anything
        total = None if self.sum.total is None else self.sum.total.copy()
        s = self.sum(dx)
        try:
            out = 2.0 * self.vfr(s, times)
        except FrameError:
            self.sum.total = total
            raise
        self._timed = True
        return out

    def group_delay_s(self, freq_hz: float | None = None) -> float:
        """Delay of ``O``'s envelope behind the skin colour, seconds, at ``freq_hz``
        (band centre)."""
        return self.bandpass.group_delay_s(freq_hz)

    def alignment_delay_s(self) -> float:
        """The display delay that puts ``O`` in phase with the skin colour at the band
        centre (:func:`~rtmag.filters.alignment_delay_s`)."""
        from rtmag.filters import alignment_delay_s

        bp = self.bandpass
        return alignment_delay_s(bp.sos, bp.band, bp.fs)


def offline_log_gain(dx_all: np.ndarray, sos: np.ndarray, padlen: int | None = None) -> np.ndarray:
    """Zero-phase log gain of every frame of a whole clip (the paper's offline filter).

    Args:
        dx_all: ``(T - 1, *shape)``, the changes ``X_N - X_1`` of the ``T - 1`` frame
            pairs of a ``T``-frame clip.
        sos: band-pass ``(n_sections, 6)``, e.g.
            ``rtmag.filters.design_bandpass(0.7, 2.5, fs)``.
        padlen: see :func:`rtmag.filters.zero_phase`.

    Returns:
        ``O`` of shape ``(T, *shape)`` float64: ``2 * F(S)`` with ``F`` zero-phase
        (magnitude response squared, no delay). Unlike the causal form ``O(0)`` need
        not be 0.

    Raises:
        UserError: the clip is too short for zero-phase filtering.
    """
    dx_all = np.asarray(dx_all, dtype=np.float64)
    s = np.concatenate([np.zeros((1,) + dx_all.shape[1:]), np.cumsum(dx_all, axis=0)])
    return 2.0 * zero_phase(sos, s, axis=0, padlen=padlen)


def smooth_log_gain(log_gain: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian smoothing of log gains over the low-resolution grid.

    Args:
        log_gain: ``(..., L, L, 3)`` log gains (any leading axes: frames).
        sigma: the Gaussian's standard deviation in grid elements (1 element is
            1/36 of the frame, or of the face box); 0 returns ``log_gain`` as it is.

    Returns:
        The same shape and dtype: each channel smoothed over the two grid axes only
        (not over time or colour), borders extended by their nearest element
        (``scipy.ndimage.gaussian_filter``, truncated at 4 sigma).

    Why: the pulse is one colour change over the whole skin, but the sign-corrected
    ascent moves each element by its own sign and rhythm, so most of the change is
    element-to-element noise in the pulse band (on synthetic task-B clips 80-85% of
    the error against the ideal was in the band, 61-65% at the scale of 8x8 pixels).
    Averaging neighbours keeps the common pulse and cancels that noise.
    """
    if sigma <= 0:
        return log_gain
    from scipy import ndimage

    a = np.asarray(log_gain)
    sig = (0.0,) * (a.ndim - 3) + (float(sigma), float(sigma), 0.0)
    return ndimage.gaussian_filter(a, sig, mode="nearest", truncate=4.0).astype(a.dtype, copy=False)


def colour_axis(log_gain: np.ndarray) -> tuple[np.ndarray, float]:
    """The colour along which a clip's magnified change moves, and how sure that is.

    Args:
        log_gain: ``(T, L, L, 3)`` band-passed log gains of ``T`` frames.

    Returns:
        ``(axis, reliability)``: ``axis`` ``(3,)`` float64 of norm 1 (sign arbitrary),
        the principal axis of the grid's mean log gain ``m(t)`` (the eigenvector of
        ``M = sum_t m(t) m(t)^T`` with the largest eigenvalue ``l1``); ``reliability``
        ``(l1 - l2) / l1`` in [0, 1] (``l2`` the second): the share of the axis's
        power that stands above the power across it. 1 for a change of one colour, 0
        when the moment is as large across the axis as along it (noise, or nothing:
        an all-zero change gives green and 0).

    Why: the change the network's ascent makes on the skin is one colour change,
    common to hundreds of elements, and the grid mean is that colour; the noise the
    ascent amplifies with it is independent from element to element and channel to
    channel, and mostly cancels in the mean. Not wholly: on a weak pulse on dark skin
    what is left can outweigh the change and take the axis, and then the reliability
    is low (:func:`project_on_axis` keeps that much less). The axis is the change's
    own colour, as the ascent made it (source-specific), not the input's: on moving
    synthetic heads the input's band-passed skin colour followed the head's shading.
    """
    m = _grid_mean(log_gain)
    return _principal_axis(m.T @ m)


def _grid_mean(log_gain: np.ndarray) -> np.ndarray:
    """``(T, 3)`` float64 mean over the grid of ``(T, L, L, 3)`` log gains."""
    g = np.asarray(log_gain)
    return g.reshape(len(g), -1, 3).mean(axis=1, dtype=np.float64)


def _principal_axis(moment: np.ndarray) -> tuple[np.ndarray, float]:
    """``(axis, reliability)`` of the symmetric 3x3 ``moment`` (see
    :func:`colour_axis`); green and 0 when it is all zero (no change seen yet)."""
    if not np.any(moment):
        return np.array([0.0, 1.0, 0.0]), 0.0
    vals, vecs = np.linalg.eigh(moment)
    rel = (vals[2] - vals[1]) / vals[2] if vals[2] > 0 else 0.0
    return vecs[:, -1], float(min(max(rel, 0.0), 1.0))


def project_on_axis(log_gain: np.ndarray, axis: np.ndarray, reliability: float = 1.0) -> np.ndarray:
    """``log_gain`` ``(..., 3)`` with its component across the unit colour ``axis``
    ``(3,)`` scaled by ``1 - reliability``: with 1 each element keeps only its change
    along that colour, with 0 it is returned as it is (same shape and dtype)."""
    a = np.asarray(log_gain)
    v = np.asarray(axis, dtype=np.float64)
    along = (a @ v)[..., None] * v
    return (along + (1.0 - float(reliability)) * (a - along)).astype(a.dtype, copy=False)


class ColourAxis:
    """The colour axis of a stream: the running :func:`colour_axis` of its log gains,
    and the projection on it.

    Each frame's grid-mean log gain ``m`` updates the running moment ``M <- M + r (m
    m^T - M)`` (``r`` from the half-life in frames; its first steps are ``1 / n``, an
    equal average, until that is smaller than ``r``), and the frame is projected on
    ``M``'s principal axis with ``M``'s reliability (:func:`project_on_axis`). The
    frames before ``warmup`` frames have passed are shown unprojected: a first axis,
    from a few frames of the band-pass's start, could point anywhere.

    Args:
        halflife_frames: the moment's half-life in frames (> 0).
        warmup: frames shown unprojected at the start of a stream.
    """

    def __init__(self, halflife_frames: float, warmup: int) -> None:
        if not halflife_frames > 0:
            raise ValueError(f"halflife_frames must be positive, got {halflife_frames}")
        self.rate = ema_rate(float(halflife_frames), 1.0)
        self.warmup = int(warmup)
        self.reset()

    def reset(self) -> None:
        """Start a new stream."""
        self.moment = np.zeros((3, 3))
        self.frames = 0

    @property
    def axis(self) -> tuple[np.ndarray, float]:
        """The current ``(axis, reliability)``."""
        return _principal_axis(self.moment)

    def __call__(self, log_gain: np.ndarray) -> np.ndarray:
        """Push the ``(T, L, L, 3)`` log gains of consecutive frames; get them projected."""
        g = np.asarray(log_gain)
        out = np.array(g, copy=True)
        for k, m in enumerate(_grid_mean(g)):
            self.frames += 1
            r = max(self.rate, 1.0 / self.frames)
            self.moment += r * (np.outer(m, m) - self.moment)
            if self.frames > self.warmup:
                out[k] = project_on_axis(g[k], *self.axis)
        return out


_U8 = cv2.CV_8U


def _into(out: np.ndarray, i: int, res: np.ndarray) -> None:
    """Copy an OpenCV result into ``out[i]`` unless OpenCV already wrote it there."""
    if not np.shares_memory(res, out):
        out[i] = res


def apply_log_gain(
    frames: np.ndarray,
    log_gain: np.ndarray,
    mode: str = "multiplicative",
    lowres: np.ndarray | None = None,
    interpolation: int = cv2.INTER_LINEAR,
) -> np.ndarray:
    """Put a low-resolution log gain back on full-resolution frames.

    * ``"multiplicative"`` (default): ``C~_k = C_k * U(exp(O))``. Each pixel's change
      scales with its own brightness, as skin reflectance does (Eq. 10); black pixels
      stay black.
    * ``"additive"``: the paper's Eq. 17, ``C~_k = C_k + U(C_l * (exp(O) - 1))``
      with ``C_l`` the area-downsampled frame (computed when ``lowres`` is None).
      Adds the same change to every full-resolution pixel of a low-resolution cell.

    ``U`` is ``cv2.resize`` with ``interpolation`` (bilinear by default; both
    half-pixel-centre aligned with :func:`downsample`). Results are rounded (half to
    even) and clipped to 0..255; ``O`` is clipped to +-:data:`MAX_LOG_GAIN`. With
    ``O == 0`` the output equals the input exactly.

    Args:
        frames: ``(H, W, 3)`` or ``(B, H, W, 3)`` RGB ``uint8``.
        log_gain: ``O``, ``(h, w, 3)`` or ``(B, h, w, 3)`` matching ``frames``' rank
            and batch, any float dtype (natural log units).
        mode: ``"multiplicative"`` or ``"additive"``.
        lowres: ``C_l`` for the additive form, shaped like ``log_gain``.
        interpolation: a ``cv2.INTER_*`` flag for ``U``.

    Returns:
        ``uint8`` array of ``frames``' shape.

    Raises:
        FrameError: frames not RGB ``uint8`` or of zero size; shapes do not match.
        ValueError: ``log_gain`` has NaN or inf (a bug upstream).
    """
    batch, single = _frames_batch(frames, allow_float=False)
    o = np.asarray(log_gain)
    if single:
        o = o[None]
    if lowres is not None:
        lowres = np.asarray(lowres, dtype=np.float32)
        if single:
            lowres = lowres[None]
    if o.ndim != 4 or o.shape[0] != batch.shape[0] or o.shape[-1] != 3 or 0 in o.shape[1:3]:
        raise FrameError(
            f"log gain of shape {np.shape(log_gain)} does not fit frames of shape "
            f"{np.shape(frames)}: expected (h, w, 3) per frame, same batch size"
        )
    if mode not in ("multiplicative", "additive"):
        raise UserError(f"mode must be 'multiplicative' or 'additive', got {mode!r}")
    if not np.isfinite(o).all():
        raise ValueError("log gain contains NaN or inf")
    o = np.clip(o.astype(np.float32), -MAX_LOG_GAIN, MAX_LOG_GAIN)
    H, W = batch.shape[1:3]
    out = np.empty_like(batch)
    if mode == "multiplicative":
        gain = np.exp(o)
        for i in range(batch.shape[0]):
            g = cv2.resize(gain[i], (W, H), interpolation=interpolation)
            _into(out, i, cv2.multiply(np.ascontiguousarray(batch[i]), g, dst=out[i], dtype=_U8))
    else:
        if lowres is None:
            lowres = np.stack([_resize_area(f.astype(np.float32), o.shape[1:3]) for f in batch])
        elif lowres.shape != o.shape:
            raise FrameError(f"lowres has shape {lowres.shape}, expected {o.shape}")
        delta = lowres * np.expm1(o)
        for i in range(batch.shape[0]):
            d = cv2.resize(delta[i], (W, H), interpolation=interpolation)
            _into(out, i, cv2.add(np.ascontiguousarray(batch[i]), d, dst=out[i], dtype=_U8))
    return out[0] if single else out
