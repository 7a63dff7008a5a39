"""The streaming magnifier: frames in, magnified frames and the network's reading out.

``Magnifier`` owns no threads. The file path (``rtmag magnify``) and the live path
(``rtmag webcam``) are both built on it, so what the live window shows is exactly what
``rtmag magnify --causal`` writes.

Per frame pair (C(t), C(t+1)) of the stream (paper Algorithm 1, DESIGN.md "What
streaming changes"):

1. both frames are area-downsampled to 36x36x3 and X_1(t) is their normalised
   difference (Eq. 14);
2. X_1 is pushed N-1 times along the L1-normalised, sign-corrected input gradient of
   the frozen pulse network (Eq. 3), giving X_N;
3. the running sum S of X_N - X_1 is band-passed causally per element and the frame
   C(t+1) is multiplied by exp(2 F(S)), upsampled to full resolution.

The step size gamma is set per frame from the requested magnification: gamma(t) =
``gamma_scale * (magnification - 1) * s(t)``, where s(t) is a running estimate of the
typical size of X_1 where the gradient puts its mass. ``gamma_scale`` comes from the
weight file's calibration (see ``rtmag.calibrate``), so that ``magnification`` is the
in-band gain of the pulse on skin that the output shows.
"""

from __future__ import annotations

import collections
import math
from dataclasses import dataclass, field

import numpy as np
import torch

from rtmag.errors import FrameError, UserError

MODES = ("pulse",)
REGIONS = ("frame", "face")
SIZE = 36  # side of the low-resolution representation (the paper's L)
DEFAULT_BANDS = {"pulse": (0.7, 2.5), "respiration": (0.16, 0.5)}


@dataclass
class MagnifierConfig:
    """Settings of a :class:`Magnifier`.

    Attributes:
        mode: what to magnify; ``"pulse"``.
        magnification: in-band gain of the source on skin that the output shows (>= 1;
            1 leaves the video unchanged).
        band: band-pass (low, high) in Hz; ``None`` = the mode's default
            (pulse 0.7-2.5 Hz).
        fps: frame rate of the stream in frames/s (used by the filter design).
        n_iter: N, the number of gradient-ascent iterates (N-1 updates).
        gamma: fixed step size in units of X; ``None`` = derived from
            ``magnification`` and the weight file's calibration.
        align: delay the shown frame by the filter's group delay at the band centre so
            that the magnified change is in phase with the frame it sits on.
        engine: where the ascent runs (see ``rtmag.engines``).
        weights: path of a weight file; ``None`` = the shipped weights of the mode.
        max_batch: the most frame pairs given to the ascent at once.
        rate_window_s: length of the window for the heart-rate estimate in seconds.
        scale_halflife_s: half-life in seconds of the running estimate s(t).
        region: ``"frame"``: the representation is the whole frame, as the paper;
            ``"face"``: a tracked square box around the face (``rtmag.region``), the
            magnification pasted back with a feathered edge (whole frame while no face
            is found).
        device: torch device of the ascent.
    """

    mode: str = "pulse"
    magnification: float = 20.0
    band: tuple[float, float] | None = None
    fps: float = 30.0
    n_iter: int = 20
    gamma: float | None = None
    align: bool = False
    engine: str = "eager"
    weights: str | None = None
    max_batch: int = 32
    rate_window_s: float = 10.0
    scale_halflife_s: float = 2.0
    region: str = "frame"
    device: str = "cpu"

    def __post_init__(self):
        if self.mode not in MODES:
            raise UserError(f"unknown mode {self.mode!r}; known modes: {', '.join(MODES)}")
        if not (math.isfinite(self.magnification) and 1.0 <= self.magnification <= 1000.0):
            raise UserError(
                f"magnification must be between 1 and 1000 (got {self.magnification}); "
                "1 leaves the video unchanged"
            )
        if not (self.fps > 0 and math.isfinite(self.fps)):
            raise UserError(f"fps must be a positive number (got {self.fps})")
        if self.band is None:
            self.band = DEFAULT_BANDS[self.mode]
        low, high = (float(b) for b in self.band)
        if not 0 < low < high < self.fps / 2:
            raise UserError(
                f"band {low}-{high} Hz is not valid at {self.fps} fps: need "
                f"0 < low < high < {self.fps / 2} Hz (half the frame rate)"
            )
        self.band = (low, high)
        if not 2 <= self.n_iter <= 200:
            raise UserError(f"n_iter (N) must be between 2 and 200 (got {self.n_iter})")
        if self.gamma is not None and not (self.gamma >= 0 and math.isfinite(self.gamma)):
            raise UserError(f"gamma must be a non-negative number (got {self.gamma})")
        if self.region not in REGIONS:
            raise UserError(f"unknown region {self.region!r}; choose one of {', '.join(REGIONS)}")
        if not 1 <= self.max_batch <= 4096:
            raise UserError(f"max_batch must be between 1 and 4096 (got {self.max_batch})")


@dataclass
class MagnifiedFrame:
    """One output of the magnifier.

    Attributes:
        image: magnified RGB frame, uint8 (H, W, 3).
        original: the input frame ``image`` was made from, uint8 (H, W, 3).
        index: index of that frame in the stream (0-based).
        time_s: its timestamp in seconds.
        signal: the network's reading y (pulse derivative, network units) on the pair
            ending at this frame; NaN for the first frame of the stream.
        gamma: the step size used for that pair.
        box: the face box the magnification came from (``region="face"``), or None
            for the whole frame.
        extra: free for callers (the live pipeline keeps the capture's pts there).
    """

    image: np.ndarray
    original: np.ndarray
    index: int
    time_s: float
    signal: float
    gamma: float = 0.0
    box: object = None
    extra: dict = field(default_factory=dict)


def check_frame(frame, shape: tuple[int, int] | None = None) -> np.ndarray:
    """Validate one input frame and return it as a C-contiguous uint8 (H, W, 3) array.

    Raises:
        FrameError: wrong type, dtype, number of channels, zero size, or a size that
            differs from the stream's ``shape`` (H, W).
    """
    if not isinstance(frame, np.ndarray):
        raise FrameError(
            f"a frame must be a numpy array of shape (H, W, 3), got {type(frame).__name__}"
        )
    if frame.ndim == 2 or (frame.ndim == 3 and frame.shape[2] == 1):
        raise FrameError(
            f"got a grey-scale frame of shape {frame.shape}; rtmag needs RGB (H, W, 3): "
            "convert with cv2.cvtColor(frame, cv2.COLOR_GRAY2RGB)"
        )
    if frame.ndim != 3 or frame.shape[2] not in (3, 4):
        raise FrameError(f"a frame must have shape (H, W, 3), got {frame.shape}")
    if frame.shape[0] == 0 or frame.shape[1] == 0:
        raise FrameError(f"got a zero-size frame of shape {frame.shape}")
    if frame.shape[2] == 4:
        frame = frame[..., :3]
    if frame.dtype != np.uint8:
        if np.issubdtype(frame.dtype, np.floating) or np.issubdtype(frame.dtype, np.integer):
            raise FrameError(
                f"frames must be uint8 (0-255), got {frame.dtype}; convert with "
                "np.clip(frame, 0, 255).astype(np.uint8)"
            )
        raise FrameError(f"frames must be uint8, got {frame.dtype}")
    if shape is not None and frame.shape[:2] != tuple(shape):
        raise FrameError(
            f"frame size changed mid-stream: expected {shape[1]}x{shape[0]} (WxH), got "
            f"{frame.shape[1]}x{frame.shape[0]}; start a new Magnifier for a new size"
        )
    return np.ascontiguousarray(frame)


DEFAULT_GAMMA_PER_GAIN = 0.05
"""Fallback calibration when a weight file carries none (see ``rtmag.calibrate``)."""


def _ema_alpha(halflife_s: float, dt_s: float) -> float:
    return 1.0 - 0.5 ** (dt_s / max(halflife_s, 1e-9))


class PairAnalyser:
    """Turn consecutive low-resolution frames into the ascent's change ``dX``.

    Stateful over a stream: keeps the previous low-resolution frame, the running
    scale ``s(t)`` (median ``|X_1|`` of a frame, smoothed) and the running spread
    ``K(t)`` of the gradient's mass (participation ratio of ``|X_N - X_1|``), which
    together make the step size of each frame (module docstring).

    Args:
        net: frozen network (``rtmag.nets.PulseNet``) in eval mode.
        config: the magnifier's settings.
        gamma_per_gain: calibration constant ``c`` of ``gamma = c (A - 1) s K``.
    """

    def __init__(self, net, config: MagnifierConfig, gamma_per_gain: float):
        from rtmag.engines import create_engine

        self.net = net.eval()
        self.config = config
        self.gamma_per_gain = float(gamma_per_gain)
        self.engine = create_engine(config.engine, net, config.n_iter, config.device)
        self.prev: np.ndarray | None = None
        self.scale: float | None = None
        self.spread: float | None = None
        self._alpha = _ema_alpha(config.scale_halflife_s, 1.0 / config.fps)

    def reset(self) -> None:
        self.prev = None
        self.scale = None
        self.spread = None

    def gammas(self, x1: torch.Tensor) -> np.ndarray:
        """Step size of each pair ``(P,)`` in units of X, updating ``s`` and ``K``.

        Frame by frame in stream order, so the result does not depend on how the
        stream is cut into batches: ``s`` follows the median ``|X_1|`` of each frame
        and ``K`` the participation ratio of the first gradient ``|G_1|`` (how many
        elements share its mass), both smoothed with ``scale_halflife_s``.
        """
        from rtmag.ascent import input_gradient_autograd

        cfg = self.config
        p = x1.shape[0]
        if cfg.gamma is not None:
            return np.full(p, cfg.gamma)
        med = x1.abs().flatten(1).median(dim=1).values.double().numpy()
        g1 = input_gradient_autograd(self.net, x1).abs().flatten(1)
        out = np.empty(p)
        for i in range(p):
            m, k = float(med[i]), _participation(g1[i])
            if self.scale is None:
                self.scale, self.spread = m, k
            else:
                self.scale += self._alpha * (m - self.scale)
                self.spread += self._alpha * (k - self.spread)
            out[i] = self.gamma_per_gain * (cfg.magnification - 1.0) * self.scale * self.spread
        return out

    def __call__(self, lowres: np.ndarray):
        """Analyse a batch of low-resolution frames ``(B, 36, 36, 3)`` float.

        Returns:
            ``(dx, y, gamma)``: ``dx`` ``(P, 36, 36, 3)`` float64 = X_N - X_1 of the
            ``P`` pairs that end at these frames (``P = B``, or ``B - 1`` at the start
            of a stream), ``y`` ``(P,)`` the network's reading of each pair, ``gamma``
            ``(P,)`` the step sizes used.
        """
        lowres = np.asarray(lowres, dtype=np.float32)
        seq = lowres if self.prev is None else np.concatenate([self.prev[None], lowres])
        self.prev = lowres[-1].copy()
        return self.pairs(seq[:-1], seq[1:])

    def pairs(self, c0: np.ndarray, c1: np.ndarray):
        """Analyse explicit frame pairs ``(P, 36, 36, 3)`` (C(t), C(t+1)), in stream
        order; returns ``(dx, y, gamma)`` as :meth:`__call__`."""
        from rtmag.representations.colour import normalized_difference

        if len(c0) == 0:
            return np.zeros((0, SIZE, SIZE, 3)), np.zeros(0), np.zeros(0)
        x = normalized_difference(np.asarray(c0, np.float32), np.asarray(c1, np.float32))
        x1 = torch.from_numpy(np.ascontiguousarray(x.transpose(0, 3, 1, 2)))
        gamma = self.gammas(x1)
        delta = self.engine(x1, torch.from_numpy(gamma).float())
        with torch.inference_mode():
            y = self.net(x1).double().numpy()
        dx = delta.double().numpy().transpose(0, 2, 3, 1)
        return np.ascontiguousarray(dx), y, gamma


def _participation(w: torch.Tensor) -> float:
    """Participation ratio ``(sum w)^2 / sum w^2`` of non-negative weights (1..len)."""
    w = w.double()
    s2 = float((w * w).sum())
    return float(w.sum()) ** 2 / s2 if s2 > 0 else 1.0


def load_net(config: MagnifierConfig):
    """The frozen network and its meta for ``config`` (shipped weights by default)."""
    from rtmag.nets import default_weights_path, load_weights

    path = config.weights or default_weights_path(config.mode)
    return load_weights(path, mode=config.mode)


class Magnifier:
    """Frame-by-frame magnifier of one source (no threads).

    Push RGB ``uint8`` frames ``(H, W, 3)`` with their timestamps; get magnified
    frames back. Causal: the output for frame ``t`` uses frames up to ``t`` only
    (plus the alignment delay with ``config.align``).

    Args:
        config: settings; ``MagnifierConfig()`` for the defaults.
        net: a frozen network to use instead of the weight file (tests, research).
        meta: the network's metadata (calibration); read from the weight file when
            ``net`` is None.

    Example:
        >>> mag = Magnifier(MagnifierConfig(magnification=20))
        >>> for frame in frames:
        ...     for out in mag.push(frame):
        ...         show(out.image)
        >>> for out in mag.flush():
        ...     show(out.image)
    """

    def __init__(self, config: MagnifierConfig | None = None, net=None, meta: dict | None = None):
        from rtmag.filters import design_bandpass, group_delay_s
        from rtmag.representations.colour import LogGainIntegrator
        from rtmag.vitals import RateTracker

        self.config = config = config or MagnifierConfig()
        if net is None:
            net, meta = load_net(config)
        self.meta = dict(meta or {})
        calib = self.meta.get("calibration") or {}
        self.gamma_per_gain = float(calib.get("gamma_per_gain", DEFAULT_GAMMA_PER_GAIN))
        self.net = net
        self.analyser = PairAnalyser(net, config, self.gamma_per_gain)
        low, high = config.band
        self.integrator = LogGainIntegrator(low, high, config.fps)
        sos = design_bandpass(low, high, config.fps)
        centre = math.sqrt(low * high)
        self.group_delay_s = float(group_delay_s(sos, centre, config.fps))
        self.delay_frames = int(round(self.group_delay_s * config.fps)) if config.align else 0
        self.rates = RateTracker(window_s=config.rate_window_s, fs=config.fps, band=config.band)
        self._pending: collections.deque = collections.deque()
        self._prev_frame: np.ndarray | None = None
        self.tracker = None
        if config.region == "face":
            from rtmag.region import FaceTracker

            self.tracker = FaceTracker()
        self._shape: tuple[int, int] | None = None
        self._index = 0
        self._last_t: float | None = None

    @property
    def latency_s(self) -> float:
        """Added display latency of ``align`` in seconds (0 when not aligned)."""
        return self.delay_frames / self.config.fps

    def reset(self) -> None:
        """Start a new stream (new camera, scene cut); keeps network and settings."""
        self.analyser.reset()
        self.integrator.reset()
        self._prev_frame = None
        if self.tracker is not None:
            self.tracker.reset()
        self._pending.clear()
        self._shape = None
        self._index = 0
        self._last_t = None

    def vitals(self) -> dict:
        """Latest heart-rate estimate: ``{heart_rate_bpm, confidence}`` (None until known)."""
        est = self.rates.current
        rate = None if est is None else est.rate_bpm
        conf = 0.0 if est is None else float(est.confidence)
        return {"heart_rate_bpm": rate, "heart_rate_confidence": conf}

    def push(self, frame: np.ndarray, t: float | None = None) -> list[MagnifiedFrame]:
        """Push one frame (RGB uint8 (H, W, 3)); returns the frames ready for output
        (one, or none while the alignment delay fills)."""
        return self.push_many([frame], None if t is None else [t])

    def push_many(self, frames, times=None) -> list[MagnifiedFrame]:
        """Push a batch of frames (a list or a (B, H, W, 3) array) as one ascent batch.

        Args:
            frames: RGB uint8 frames of one size.
            times: their timestamps in seconds, increasing; ``None`` = index / fps.

        Returns:
            The magnified frames now ready, in order.

        Raises:
            FrameError: a frame of the wrong type, shape or size, or a timestamp that
                does not increase. Nothing of the batch is consumed then.
        """
        checked = []
        for f in frames:
            f = check_frame(f, self._shape)
            if self._shape is None:
                self._shape = f.shape[:2]
            checked.append(f)
        if not checked:
            return []
        n = len(checked)
        if times is None:
            times = [(self._index + i) / self.config.fps for i in range(n)]
        times = [float(t) for t in times]
        if len(times) != n:
            raise FrameError(f"got {n} frames but {len(times)} timestamps")
        prev = self._last_t
        for t in times:
            if not math.isfinite(t) or (prev is not None and t <= prev):
                raise FrameError(
                    f"timestamps must increase: got {t} after {prev}; "
                    "drop repeated frames or call reset() for a new stream"
                )
            prev = t
        out: list[MagnifiedFrame] = []
        cap = self.config.max_batch
        for start in range(0, n, cap):
            batch = np.stack(checked[start : start + cap])
            tchunk = times[start : start + cap]
            dx, y, gamma, boxes = self.analyse(batch, tchunk)
            first = batch.shape[0] - dx.shape[0]  # 1 at the start of a stream
            o = np.zeros((batch.shape[0], SIZE, SIZE, 3))
            if dx.shape[0]:
                o[first:] = self.integrator(dx)
            y_full = np.concatenate([np.full(first, np.nan), y])
            g_full = np.concatenate([np.zeros(first), gamma])
            for i in range(batch.shape[0]):
                if np.isfinite(y_full[i]):
                    self.rates.push(float(y_full[i]), tchunk[i])
                self._pending.append(
                    (batch[i], o[i], boxes[i], self._index, tchunk[i], y_full[i], g_full[i])
                )
                self._index += 1
            out.extend(self._emit(final=False))
            self._last_t = tchunk[-1]
        return out

    def analyse(self, frames: np.ndarray, times) -> tuple:
        """Run the ascent on the pairs that end at ``frames`` (stream order).

        Args:
            frames: ``(B, H, W, 3)`` uint8, already checked.
            times: their timestamps in seconds.

        Returns:
            ``(dx, y, gamma, boxes)``: ``dx`` ``(P, 36, 36, 3)`` the changes X_N - X_1
            of the ``P`` pairs (``P = B``, or ``B - 1`` at the start of a stream),
            ``y`` and ``gamma`` ``(P,)``, and ``boxes`` (one per frame: the face box
            the representation came from, or None for the whole frame).
        """
        from rtmag.representations.colour import downsample

        if self.tracker is None:
            dx, y, gamma = self.analyser(downsample(frames))
            return dx, y, gamma, [None] * len(frames)
        from rtmag.region import crop_resize

        c0, c1, boxes = [], [], []
        for f, t in zip(frames, times):
            box = self.tracker.update(f, t)
            if self._prev_frame is not None:
                if box is None:  # no face: the whole frame, as the paper
                    c0.append(downsample(self._prev_frame))
                    c1.append(downsample(f))
                else:
                    c0.append(crop_resize(self._prev_frame, box))
                    c1.append(crop_resize(f, box))
            boxes.append(box)
            self._prev_frame = f
        dx, y, gamma = self.analyser.pairs(np.asarray(c0), np.asarray(c1))
        return dx, y, gamma, boxes

    def render(self, frames: np.ndarray, log_gains: np.ndarray, boxes) -> np.ndarray:
        """Magnified frames: ``frames`` ``(B, H, W, 3)`` uint8 times ``exp`` of the log
        gains ``(B, 36, 36, 3)`` upsampled to the whole frame, or into each frame's
        face box with a feathered edge."""
        from rtmag.representations.colour import apply_log_gain

        if all(b is None for b in boxes):
            return apply_log_gain(frames, log_gains)
        from rtmag.region import paste_log_gain

        h, w = frames.shape[1:3]
        out = np.empty_like(frames)
        for i, (f, o, b) in enumerate(zip(frames, log_gains, boxes)):
            if b is None:
                out[i] = apply_log_gain(f, o)
            else:
                out[i] = apply_log_gain(f, paste_log_gain(o.astype(np.float32), b, h, w))
        return out

    def _emit(self, final: bool) -> list[MagnifiedFrame]:
        """Pair each pending frame with the gain ``delay_frames`` later and emit it."""
        d = self.delay_frames
        ready = []
        while len(self._pending) > d or (final and self._pending):
            frame, _, box, index, t, y, g = self._pending[0]
            if len(self._pending) > d:
                gain = self._pending[d][1]
            else:  # end of stream: the last frames keep the newest gain there is
                gain = self._pending[-1][1]
            self._pending.popleft()
            ready.append((frame, gain, box, index, t, y, g))
        if not ready:
            return []
        images = self.render(
            np.stack([r[0] for r in ready]), np.stack([r[1] for r in ready]), [r[2] for r in ready]
        )
        return [
            MagnifiedFrame(
                image=img,
                original=r[0],
                index=r[3],
                time_s=r[4],
                signal=r[5],
                gamma=r[6],
                box=r[2],
            )
            for img, r in zip(images, ready)
        ]

    def flush(self) -> list[MagnifiedFrame]:
        """Emit the frames still held back by the alignment delay (end of stream)."""
        return self._emit(final=True)
