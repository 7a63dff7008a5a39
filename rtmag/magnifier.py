"""The streaming magnifier: frames in, magnified frames and the network's reading out.

``Magnifier`` owns no threads. The file path (``rtmag magnify``) and the live path
(``rtmag webcam``) are both built on it, so what the live window shows is exactly what
``rtmag magnify --causal`` writes.

Per frame pair (C(t), C(t+1)) of the stream (paper Algorithm 1, DESIGN.md "What
streaming changes"):

1. both frames are area-downsampled to 36x36x3 and X_1(t) is their normalised
   difference (Eq. 14);
2. X_1 is pushed N-1 times along the L1-normalised, sign-corrected input gradient of
   the frozen pulse network (Eq. 3), giving X_N; the change X_N - X_1 is weighted by
   the network's running attention (``MagnifierConfig.focus``; 0 = the paper as is)
   and set in proportion to each element's own size (``noise_match``; 1 = off);
3. the running sum S of X_N - X_1 is band-passed causally per element and the frame
   C(t+1) is multiplied by exp(2 F(S)), upsampled to full resolution.

The step size gamma is set per frame from the requested magnification: gamma(t) =
``c * (magnification - 1) * s(t) * K(t)``, where s(t) is a running estimate of the
size of X_1 where the gradient puts its mass (``step_scale="attention"``, the pulse's
default; respiration keeps the median of the non-zero |X_1|) and K(t) the number of
elements that share the gradient's mass. ``c`` (``gamma_per_gain``) comes from the
weight file's calibration (``rtmag quality --calibrate``, ``rtmag.quality.calibrate``),
so that ``magnification`` is the in-band gain of the source that the output shows.

Respiration (``mode="respiration"``) runs the same stream logic (timestamps,
alignment delay, rates) through :class:`rtmag.motion.MotionPath`: phase differences of
a complex steerable pyramid (Eq. 19) on every k-th frame, the breathing network's
ascent, and phase offsets (Eq. 20-22) interpolated in time for the frames between.
The two representations are "paths" with one small interface (``analyse``,
``causal``, ``offline``, ``render``); the Magnifier owns what they share.
"""

from __future__ import annotations

import collections
import math
import warnings
from dataclasses import dataclass, field

import numpy as np
import torch

from rtmag.errors import FrameError, UserError
from rtmag.filters import ema_rate
from rtmag.vitals import RELIABLE_CONFIDENCE

MODES = ("pulse", "respiration")
REGIONS = ("frame", "face")
SIZE = 36  # side of the low-resolution representation (the paper's L)
DEFAULT_BANDS = {"pulse": (0.7, 2.5), "respiration": (0.16, 0.5)}
DEFAULT_MAGNIFICATION = {"pulse": 20.0, "respiration": 10.0}
DEFAULT_RATE_WINDOW_S = {"pulse": 10.0, "respiration": 30.0}
STEP_SCALES = ("attention", "median")
DEFAULT_STEP_SCALE = {"pulse": "attention", "respiration": "median"}
DEFAULT_FOCUS = {"pulse": 2.0, "respiration": 0.0}
# focus: elements with at least this share of the attention's 99th percentile keep
# their whole step
FOCUS_REFERENCE = 0.4
# noise_match: the running mean of the ascent's change |X_N - X_1| takes each new value
# winsorised at this multiple of itself (see PairAnalyser.noise_weights)
NOISE_CLIP = 3.0
# ... and set each element's change to kappa = gamma_per_gain (A - 1) this times its own
# running noise (the 10 keeps gamma_per_gain near the values of the steps it also sets)
NOISE_MATCH_SCALE = 10.0
_INV_SQRT3 = 1.0 / math.sqrt(3.0)
# mean over median of |x| for a normal x: the noise's running median, times this, is
# the mean |X_1| of a still element
_MEAN_OVER_MEDIAN = math.sqrt(2.0 / math.pi) / 0.6744897501960817
# what N is (recorded with a calibration): the pulse's, the noise of X_1 from its
# second difference; respiration's, the size of X_1 itself (the breath is the signal
# there, and the largest part of X_1 on the torso)
NOISE_SIZE = "x1_second_difference_median"
MATCH_SIZES = {"pulse": NOISE_SIZE, "respiration": "abs_x1_mean"}
DEFAULT_NOISE_MATCH = {"pulse": 4.0, "respiration": 2.0}
DEFAULT_SMOOTH = {"pulse": 1.5, "respiration": 0.0}
DEFAULT_PHASE_LOCK = {"pulse": True, "respiration": True}
DEFAULT_COLOUR_AXIS = {"pulse": True, "respiration": False}
# colour_axis: the half-life of the running colour moment, and the frames shown
# unprojected at a stream's start (the band-pass's own start is about 1 s)
COLOUR_AXIS_HALFLIFE_S = 5.0
COLOUR_AXIS_WARMUP_S = 2.0
LOCK_CONFIDENCE = RELIABLE_CONFIDENCE
"""The rate reading's confidence from which the phase lock follows it: the one from
which a reading is trusted at all (:data:`rtmag.vitals.RELIABLE_CONFIDENCE`)."""


@dataclass
class MagnifierConfig:
    """Settings of a :class:`Magnifier`.

    Attributes:
        mode: what to magnify; ``"pulse"`` (skin colour) or ``"respiration"`` (body
            motion).
        magnification: in-band gain of the source that the output shows (>= 1; 1
            leaves the video unchanged): of the pulse on skin, or of the breathing
            displacement; ``None`` = the mode's default (pulse 20, respiration 10).
        band: band-pass (low, high) in Hz; ``None`` = the mode's default
            (pulse 0.7-2.5 Hz, respiration 0.16-0.5 Hz).
        fps: frame rate of the stream in frames/s (used by the filter design).
        n_iter: N, the number of gradient-ascent iterates (N-1 updates).
        gamma: fixed step size in units of X; ``None`` = derived from
            ``magnification`` and the weight file's calibration.
        align: delay the shown frame so that the magnified change is in phase with the
            frame it sits on at the band's centre
            (:func:`rtmag.filters.alignment_delay_s`). rtmag's Butterworth band-pass
            is already in phase there, so this is 0 at every default band; it was
            the group delay, which showed the change inverted.
        phase_lock: live (causal) path only: pair each frame with the magnification
            of up to one period earlier, so that at the source's rate, as read by
            the rate estimate (confidence at least :data:`LOCK_CONFIDENCE`), the
            causal band-pass's phase is undone (:func:`rtmag.filters.lock_delay_s`).
            The band-pass leads below its centre and lags above it (respiration:
            +123 degrees at 10 breaths/min, -72 at 24; the pulse: +90 at 50 bpm, -77
            at 120), where the change moved against the source's own. Adds no
            latency; holds its last delay while the reading is unsure; counts in
            frames at ``fps`` (a variable frame rate shifts it a little). The files'
            zero-phase path has no phase to undo. ``None`` = on (both modes).
        engine: where the ascent runs (see ``rtmag.engines``).
        weights: path of a weight file; ``None`` = the shipped weights of the mode.
        max_batch: the most frame pairs given to the ascent at once.
        workers: threads the ascent's batch is split over (frames are independent),
            each running the engine at once. On a CPU with torch on one thread per
            worker (``torch.set_num_threads``) 2 workers ran the pulse ascent 1.6-1.7
            times faster than one on this 2-core machine; with torch's own threads
            on every core, more workers oversubscribe them. CPU engines only (a CUDA
            engine runs one batch). ``rtmag magnify`` picks this for you.
        rate_window_s: window of the heart- or breathing-rate estimate in seconds;
            ``None`` = the mode's default (pulse 10 s, respiration 30 s).
        scale_halflife_s: half-life in seconds of the running estimate s(t).
        step_scale: what s(t) measures in each X_1: ``"attention"``, the mean of
            ``|X_1|`` weighted by the first gradient ``|G_1|`` (the size of X where the
            network looks: skin, not background); ``"median"``, the median of the
            non-zero ``|X_1|`` over the whole representation. ``None`` = the mode's
            default (pulse ``"attention"``, respiration ``"median"``); see
            :meth:`PairAnalyser.gammas`.
        focus: exponent ``q`` that keeps the step where the network looks: each
            element's change ``X_N - X_1`` is scaled by ``min(1, A / A_ref) ** q``,
            with ``A`` the running mean of the first gradient ``|G_1|`` (half-life
            ``scale_halflife_s``) and ``A_ref`` 0.4 of its 99th percentile. 0 is the
            paper's ascent as it is; ``None`` = the mode's default (pulse 2;
            respiration 0: on synthetic clips focus 2 kept the head still, but on the
            real evm_baby it took the chest's magnification from 4.7x to 1.0x). See
            :meth:`PairAnalyser.focus_weights`.
        noise_match: ``B``: each element's change is set to ``kappa`` times its own
            size, up to ``B`` times the ascent's own: it is multiplied by
            ``min(kappa N / D, B)``, ``N`` the element's running size in ``X_1``
            (pulse: its noise, the running median of its second difference, in which
            head motion cancels or counts little; respiration: the running mean of
            ``|X_1|``, the breath's own motion), ``D`` the
            running mean of its ascent change ``|X_N - X_1|`` and ``kappa``
            proportional to ``magnification - 1`` (calibrated). The gain is then
            about the same on every element the focus lets the step reach, whatever
            its noise (dark or bright skin, red or green). ``B`` keeps it from raising
            what the network turned away from: on the worst moving synthetic head
            (task C) the change outside the pulse band is +0.6 dB at 4 (when ``N``
            was ``|X_1|``, which motion inflates: +1.6 at 4, +2.7 with no limit). 1
            turns it off, and a fixed ``gamma`` leaves it off (the paper's step, as
            given); ``None`` = the mode's default (pulse 4, respiration 2). See
            :meth:`PairAnalyser.noise_weights`.
        smooth: pulse only: the Gaussian's sigma, in elements of the 36x36 grid, with
            which the log gains are smoothed over the grid before they are shown
            (:func:`rtmag.representations.colour.smooth_log_gain`). The sign-corrected
            ascent moves each element by its own sign, so most of its change is
            element-to-element noise in the pulse band; the pulse, one change over
            the whole skin, survives the averaging. 0 is the paper's per-element
            change; ``None`` = the mode's default (pulse 1.5, respiration 0).
        colour_axis: pulse only: scale each element's change across one colour, the
            axis along which the grid's mean change moves, by ``1 - reliability``
            (:func:`rtmag.representations.colour.colour_axis`: reliability 1 keeps
            only the change along the axis, 0 all of it; live, a running estimate with
            a half-life of 5 s, :class:`~rtmag.representations.colour.ColourAxis`, the
            first 2 s of a stream shown unprojected). The change the ascent makes on
            the skin is one colour change; the noise it amplifies with it is
            independent per channel, so about two thirds of it lie across that axis.
            The axis is the change's own colour, not the input's (on moving synthetic
            heads the input's in-band skin colour followed the head's shading). On
            held-out synthetic clips it brought the output 1.6-2.5 dB nearer the ideal
            at the same gain on every task. The reliability matters on a weak pulse on
            dark skin, where the axis is read from little more than noise: a full
            projection there lowered tone V's weak-pulse gain by a quarter. Shown
            after the calibrated step, so not part of :func:`step_rule`. ``None`` = the
            mode's default (pulse on, respiration off).
        region: ``"frame"``: the representation is the whole frame, as the paper;
            ``"face"``: a tracked square box around the face (``rtmag.region``), the
            magnification pasted back with a feathered edge (whole frame while no face
            is found). Pulse only.
        device: torch device of the ascent.
        decimate: respiration only: run the ascent on every k-th frame (pairs k frames
            apart) and interpolate the phase offsets between; ``None`` = the k that
            brings the pairs nearest the network's training rate (7.5 Hz: k = 4 at
            30 fps), limited so that the band's top stays below 0.45 of the pair rate.
    """

    mode: str = "pulse"
    magnification: float | None = None
    band: tuple[float, float] | None = None
    fps: float = 30.0
    n_iter: int = 20
    gamma: float | None = None
    align: bool = False
    phase_lock: bool | None = None
    engine: str = "eager"
    weights: str | None = None
    max_batch: int = 32
    workers: int = 1
    rate_window_s: float | None = None
    scale_halflife_s: float = 2.0
    step_scale: str | None = None
    focus: float | None = None
    noise_match: float | None = None
    smooth: float | None = None
    colour_axis: bool | None = None
    region: str = "frame"
    device: str = "cpu"
    decimate: int | None = None

    def __post_init__(self):
        if self.mode not in MODES:
            raise UserError(f"unknown mode {self.mode!r}; known modes: {', '.join(MODES)}")
        if self.magnification is None:
            self.magnification = DEFAULT_MAGNIFICATION[self.mode]
        if self.rate_window_s is None:
            self.rate_window_s = DEFAULT_RATE_WINDOW_S[self.mode]
        if self.step_scale is None:
            self.step_scale = DEFAULT_STEP_SCALE[self.mode]
        if self.focus is None:
            self.focus = DEFAULT_FOCUS[self.mode]
        if not (math.isfinite(self.focus) and 0.0 <= self.focus <= 8.0):
            raise UserError(f"focus must be between 0 and 8 (got {self.focus}); 0 turns it off")
        self.focus = float(self.focus)
        if self.noise_match is None:
            self.noise_match = DEFAULT_NOISE_MATCH[self.mode]
        if not (math.isfinite(self.noise_match) and 1.0 <= self.noise_match <= 64.0):
            raise UserError(
                f"noise_match must be between 1 and 64 (got {self.noise_match}); 1 turns it off"
            )
        self.noise_match = float(self.noise_match)
        if self.phase_lock is None:
            self.phase_lock = DEFAULT_PHASE_LOCK[self.mode]
        self.phase_lock = bool(self.phase_lock)
        if self.smooth is None:
            self.smooth = DEFAULT_SMOOTH[self.mode]
        if not (math.isfinite(self.smooth) and 0.0 <= self.smooth <= 18.0):
            raise UserError(
                f"smooth must be between 0 and 18 grid elements (got {self.smooth}); 0 turns it off"
            )
        self.smooth = float(self.smooth)
        if self.mode == "respiration" and self.smooth > 0:
            raise UserError(
                "smooth is for the pulse's colour change; respiration's phase offsets "
                "are already weighted by amplitude (leave it at 0)"
            )
        if self.colour_axis is None:
            self.colour_axis = DEFAULT_COLOUR_AXIS[self.mode]
        self.colour_axis = bool(self.colour_axis)
        if self.mode == "respiration" and self.colour_axis:
            raise UserError(
                "colour_axis is for the pulse's colour change; respiration changes "
                "phase, not colour (leave it off)"
            )
        if self.step_scale not in STEP_SCALES:
            raise UserError(
                f"unknown step_scale {self.step_scale!r}; choose one of {', '.join(STEP_SCALES)}"
            )
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
        if not (isinstance(self.workers, int) and 1 <= self.workers <= 64):
            raise UserError(f"workers must be an integer from 1 to 64 (got {self.workers!r})")
        if self.mode == "respiration" and self.region != "frame":
            raise UserError(
                "--region face is for the pulse; respiration uses the whole frame "
                "(the chest and shoulders are outside the face)"
            )
        if self.decimate is not None:
            if self.mode != "respiration":
                raise UserError("decimate is for mode respiration only")
            if not 1 <= int(self.decimate) <= 64:
                raise UserError(f"decimate must be between 1 and 64 (got {self.decimate})")
            self.decimate = int(self.decimate)
            if self.band[1] >= 0.5 * self.fps / self.decimate:
                raise UserError(
                    f"decimate {self.decimate} at {self.fps} fps samples the pairs at "
                    f"{self.fps / self.decimate:.3g} Hz, too slow for a band up to "
                    f"{self.band[1]} Hz; use a smaller decimate"
                )


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
        raise FrameError(
            f"a frame must have shape (H, W, 3) (RGB, or RGBA whose alpha is dropped), got"
            f" {frame.shape}"
        )
    if frame.shape[0] == 0 or frame.shape[1] == 0:
        raise FrameError(
            f"got a zero-size frame of shape {frame.shape}: the camera or decoder returned"
            " no picture; skip it (the stream so far is kept) and push the next frame"
        )
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
"""Fallback calibration when a weight file carries none (see ``rtmag.quality.calibrate``)."""


class PairAnalyser:
    """Turn representations of frame pairs into the ascent's change ``dX``.

    Stateful over a stream: keeps the previous low-resolution frame (pulse), the
    running scale ``s(t)`` (the size of ``X_1``, smoothed) and the running spread
    ``K(t)`` of the gradient's mass (participation ratio of ``|G_1|``), which together
    make the step size of each pair (module docstring), and the running attention map
    ``A`` (mean ``|G_1|`` per element) that ``config.focus`` weights the change with.

    Args:
        net: frozen network (``rtmag.nets.PulseNet`` or ``BreathNet``) in eval mode.
        config: the magnifier's settings.
        gamma_per_gain: calibration constant ``c`` of ``gamma = c (A - 1) s K``.
        pair_rate: pairs per second (the frame rate; for a decimated respiration
            stream, frame rate / k), for the smoothing of ``s`` and ``K``.
    """

    def __init__(
        self, net, config: MagnifierConfig, gamma_per_gain: float, pair_rate: float | None = None
    ):
        from rtmag.engines import create_engine

        self.net = net.eval()
        self.config = config
        self.gamma_per_gain = float(gamma_per_gain)
        # the first step is taken here from the gradient that also gives the reading
        # and the step size (:meth:`ascend`); the engine runs the other N - 2 steps
        self.engine = create_engine(config.engine, net, max(config.n_iter - 1, 1), config.device)
        self._first = _first_gradient(net)
        self._pool = None
        self._engine_warm = False
        if config.workers > 1 and torch.device(config.device).type == "cpu":
            from concurrent.futures import ThreadPoolExecutor

            self._pool = ThreadPoolExecutor(config.workers, thread_name_prefix="rtmag-ascent")
        self.prev: np.ndarray | None = None
        self.scale: float | None = None
        self.spread: float | None = None
        self.attention: torch.Tensor | None = None
        self.noise: torch.Tensor | None = None
        self.dsize: torch.Tensor | None = None
        self._last_x1: torch.Tensor | None = None
        self._sizes_seen = 0
        self._alpha = ema_rate(config.scale_halflife_s, 1.0 / (pair_rate or config.fps))

    def reset(self) -> None:
        self.prev = None
        self.scale = None
        self.spread = None
        self.attention = None
        self.noise = None
        self.dsize = None
        self._last_x1 = None
        self._sizes_seen = 0

    def gammas(self, x1: torch.Tensor, g1: torch.Tensor | None) -> np.ndarray:
        """Step size of each pair ``(P,)`` in units of X, updating ``s`` and ``K``.

        ``g1``: the first gradient ``|G_1|`` of ``x1`` (None only with a fixed
        ``config.gamma``).

        Frame by frame in stream order, so the result does not depend on how the
        stream is cut into batches: ``s`` follows the size of each frame's ``X_1``
        (``config.step_scale``: :func:`_attention_mean` or :func:`_median_nonzero`)
        and ``K`` the participation ratio of the first gradient ``|G_1|`` (how many
        elements share its mass), both smoothed with ``scale_halflife_s``.

        Why the scale: every step moves each element by ``gamma |G| / ||G||_1`` in the
        direction of its own sign (Eq. 3's sign correction), whatever its size, so the
        band-passed source gains about ``gamma / sigma`` where ``sigma`` is the spread
        of ``X`` on the elements that carry the source. The attention scale measures
        that spread where the network looks; the whole-frame median (the first rule)
        let head motion on the skin, which the median of a mostly still frame does not
        see, cut the pulse gain 5-fold between synthetic tasks (README).
        """
        cfg = self.config
        p = x1.shape[0]
        if cfg.gamma is not None:
            return np.full(p, cfg.gamma)
        ax = x1.abs().flatten(1)
        g1 = g1.flatten(1)
        if cfg.step_scale == "attention":
            size = _attention_mean(ax, g1)
        else:
            size = _median_nonzero(ax)
        out = np.empty(p)
        for i in range(p):
            m, k = float(size[i]), _participation(g1[i])
            if m == 0.0:  # nothing changed at all (a repeated frame): keep the scale
                m = self.scale if self.scale is not None else 0.0
            if self.scale is None:
                self.scale, self.spread = m, k
            else:
                self.scale += self._alpha * (m - self.scale)
                self.spread += self._alpha * (k - self.spread)
            out[i] = self.gamma_per_gain * (cfg.magnification - 1.0) * self.scale * self.spread
        return out

    def focus_weights(self, g1: torch.Tensor) -> torch.Tensor:
        """Weights ``min(1, A / A_ref) ** q`` of each pair's change, like ``g1``
        ``(P, ...)``, updating the attention map ``A`` frame by frame in stream order.

        ``A`` is the running mean of ``|G_1|`` per element (half-life
        ``config.scale_halflife_s``), ``A_ref`` is :data:`FOCUS_REFERENCE` (0.4) times
        its 99th percentile, and ``q`` is ``config.focus``. Elements the network looks
        at at least that much keep the step Eq. 3 gives them; the others lose it as
        the power ``q`` of their share.

        Why: Eq. 3 spreads an L1 budget ``gamma`` over every element in proportion to
        ``|G|``. The trained PulseNet looks at skin about 8 times harder than at a
        patterned background, but the background has 12 times as many cells, so 60% of
        each step landed off the skin, as change in the pulse band that follows the
        frame-to-frame noise there (sign correction moves every element by its own
        sign). Why a percentile: a reference at the attention's weighted mean (the
        first version) also cut half of the skin on a plain background, where the
        skin holds the mass, and the gain on the turning tasks with it (README).
        """
        q = self.config.focus
        w = torch.ones_like(g1, dtype=torch.float64)
        for i in range(len(g1)):
            gi = g1[i].double()
            if self.attention is None:
                self.attention = gi.clone()
            else:
                self.attention += self._alpha * (gi - self.attention)
            a = self.attention
            ref = FOCUS_REFERENCE * float(torch.quantile(a.flatten(), 0.99))
            if ref > 0:
                w[i] = (a / ref).clamp(max=1.0) ** q
        return w

    def noise_weights(self, x1: torch.Tensor, delta: torch.Tensor) -> torch.Tensor:
        """Weights ``min(kappa N / D, B)`` of each pair's change, like ``x1`` ``(P,
        ...)``, that set each element's change to ``kappa`` times its own size;
        ``B`` is ``config.noise_match`` and ``kappa = c (A - 1)``
        :data:`NOISE_MATCH_SCALE` (``c`` the calibrated ``gamma_per_gain``, ``A`` the
        magnification). Updates the running sizes frame by frame in stream order.

        ``N`` is the running size of the noise of ``X_1`` per element, ``|X_1(t) -
        X_1(t-1)| / sqrt(3)`` (for white frame noise the same size as ``|X_1|``; motion
        and the pulse, smooth from pair to pair, cancel in it): a running median
        (:func:`_running_median`, its steps shrinking from 1 to ``alpha`` over the
        first frames) in units of a normal's mean ``|x|``, so that a head snapping to
        a new pose, which the second difference does see, hardly moves it (on a
        task-D clip a running mean rose 26-40% above the same scene held still, and
        the gain with it, 30 for 20; the median 6%, gain 22.8 against 20.4 still).
        ``D`` is the running mean of the ascent's own change ``|X_N - X_1|``
        (``delta``, before any weight), its new values winsorised at
        :data:`NOISE_CLIP` times the mean after the first ``1 / alpha`` frames. Both
        follow the half-life ``config.scale_halflife_s``; exact zeros (blocks a codec
        copied) leave them as they are. 0 where the ascent never moved the element.

        Why: a sign-corrected change of size ``d`` on an element whose ``X`` has spread
        ``sigma`` gains that element's in-band source by about ``2 d f(0) ~ 0.64 d /
        sigma`` (``X`` is close to normal there). Eq. 3 sizes ``d`` by the gradient, so
        the gain followed the network's attention and the element's quietness: on
        the same task-A clip it was 19.5 at Fitzpatrick tone I and 4.5 at tone VI (dark
        skin's ``X`` is 2.5-4 times noisier), and several times higher in green than
        in red. With ``d = kappa N`` the gain is about ``1 + 0.5 kappa`` on every
        element where the cap ``B`` does not bind (it keeps the change within ``B``
        times the ascent's own, so elements the network turned away from, a moving
        head's edge, are not raised far); the focus weights (applied with these) keep
        the change where the network looks, and the ascent gives each element its
        sign and frame-to-frame rhythm. A relative version (``kappa`` replaced by the
        ascent's own mean change where the gradient looks) let head motion, which
        inflates that mean, cut the gain on synthetic tasks B and C from 16 and 11 to
        8 and 6.

        Respiration (``mode="respiration"``): ``N`` is the running mean of ``|X_1|``
        itself (winsorised as ``D``). There the breath is the signal, and on the
        torso the largest part of ``X_1``: a sign-corrected change of one size per
        element (the paper's step) gained a large breath less than a small one (on
        two synthetic task-A clips, 5.3 for the larger breath and 10.8 for one half
        its size; 2.6-4.7 on tasks B and C), while a change in proportion to the
        element's own motion gains every breath alike (tasks A-D 8.1 / 6.6 / 9.9 /
        8.9, the least clip 5.4). ``B`` = 2 there: at 4 the head, whose turning
        also fills ``|X_1|``, moved more (task D's PSNR against the ideal 32.0 dB,
        33.1 at 2).

        Why the noise and not ``|X_1|`` for the pulse (its first version): the match is for the
        noise the sign correction works against; where a head turns, ``|X_1|`` also
        holds the motion, and matching it raised the change that follows the motion
        (task C's change outside the band: +1.6 dB at ``B`` = 4, +2.7 with no cap),
        so the cap had to stay at 2, and at 2 it held dark skin back (tone VI read
        29-36% under the gain asked).
        """
        cap = self.config.noise_match
        kappa = self.gamma_per_gain * (self.config.magnification - 1.0) * NOISE_MATCH_SCALE
        x = x1.flatten(1).double()
        ad = delta.abs().flatten(1).double()
        w = torch.ones_like(x)
        for i in range(len(x)):
            # D's values winsorised after the first 1/alpha frames (1.4 half-lives)
            warm = self._sizes_seen * self._alpha >= 1.0
            self._sizes_seen += 1
            if self.config.mode == "respiration":
                # the size of the motion itself, as D's: the breath is the signal here
                self.noise = _running_size(self.noise, x[i].abs(), self._alpha, warm)
            else:
                self._update_noise(x[i])
            self.dsize = _running_size(self.dsize, ad[i], self._alpha, warm)
            d = self.dsize
            r = torch.where(d > 0, self.noise / d.clamp_min(torch.finfo(d.dtype).tiny), 0.0)
            w[i] = (kappa * r).clamp(max=cap)
        return w.reshape(x1.shape)

    def _update_noise(self, x: torch.Tensor) -> None:
        """One step of the pulse's ``N`` from this pair's ``X_1`` (``x``, flat, float64).

        The noise of X_1 alone: white frame noise makes X_1 an MA(1) whose second
        difference has sqrt(3) times its spread, while motion and the pulse, smooth
        from pair to pair, cancel in it (the stream's first pair has none: its
        ``|X_1|`` starts ``N``; a codec-copied 0 on either side carries no noise, and 0
        leaves ``N`` as it is)."""
        if self._last_x1 is None:
            a = x.abs()
        else:
            last = self._last_x1
            a = torch.where((x == 0) | (last == 0), 0.0, (x - last).abs() * _INV_SQRT3)
        self._last_x1 = x.clone()
        # the running median, in units of a normal's mean |x|, with steps that shrink
        # from 1 to alpha over the first frames (a first value a tenth of the noise
        # catches up within half a second, not 7 s; one a ten-thousandth of it still
        # takes about 18 s)
        step = max(self._alpha, 1.0 / self._sizes_seen)
        self.noise = _running_median(self.noise, a * _MEAN_OVER_MEDIAN, step)

    def map(self, fn, *iterables) -> list:
        """``[fn(*args) ...]`` over ``iterables``, on the ``config.workers`` threads at
        once when there are several (in order; the first exception is raised), else
        here. For work that is independent per frame: the engine's parts, a render."""
        if self._pool is None:
            return list(map(fn, *iterables))
        return list(self._pool.map(fn, *iterables))

    def _run_engine(self, x: torch.Tensor, gamma: torch.Tensor) -> torch.Tensor:
        """The engine on ``x``, split over ``config.workers`` threads at once (frames
        are independent). The first call runs whole: an engine that builds on first
        use (compile, onnx) builds once, not in every thread."""
        if self._pool is None or len(x) < 2 or not self._engine_warm:
            out = self.engine(x, gamma)
            self._engine_warm = True
            return out
        n = min(self.config.workers, len(x))
        parts = self.map(self.engine, torch.tensor_split(x, n), torch.tensor_split(gamma, n))
        return torch.cat(parts)

    def ascend(self, x1: torch.Tensor):
        """The ascent on representations ``x1`` ``(P, C, h, w)`` float32, in stream order.

        Returns:
            ``(delta, y, gamma)``: ``delta`` ``(P, C, h, w)`` float32 tensor X_N - X_1,
            ``y`` ``(P,)`` float64 the network's reading, ``gamma`` ``(P,)`` the steps.
        """
        from rtmag.ascent import ascent_step

        if len(x1) == 0:
            return x1.new_zeros(x1.shape), np.zeros(0), np.zeros(0)
        cfg = self.config
        # one forward and backward pass gives the reading y(X_1), the first gradient
        # G_1 (step size, focus) and the first step; the engine runs steps 2..N-1
        # from X_2 (the same N - 1 steps as the engine alone, one pass fewer)
        y, g = self._first(x1)
        g1 = g.abs()
        gamma = self.gammas(x1, g1)
        gam = torch.from_numpy(gamma).to(x1.dtype)
        delta = ascent_step(x1, g, gam)  # N >= 2 (MagnifierConfig)
        if cfg.n_iter > 2:
            rest = self._run_engine(x1 + delta, gam)
            delta = delta.to(device=rest.device) + rest
        w = self.focus_weights(g1) if cfg.focus > 0 else None
        if cfg.noise_match > 1 and cfg.gamma is None:
            m = self.noise_weights(x1, delta)
            w = m if w is None else w * m
        if w is not None:
            delta = delta * w.to(device=delta.device, dtype=delta.dtype)
        return delta, y.double().cpu().numpy(), gamma

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
        delta, y, gamma = self.ascend(x1)
        dx = delta.double().cpu().numpy().transpose(0, 2, 3, 1)
        return np.ascontiguousarray(dx), y, gamma


def _first_gradient(net):
    """``x -> (y(x), grad |y(x)|)`` in float32 on the CPU: the hand-written adjoint
    (:meth:`rtmag.ascent.AdjointAscent.output_and_gradient`, channels-last; about 3
    times faster than autograd's pass here), or autograd for a network it cannot
    differentiate."""
    from rtmag.ascent import AdjointAscent, output_and_gradient

    try:
        adj = AdjointAscent(net, 2).float().to(memory_format=torch.channels_last).eval()
    except (TypeError, ValueError):
        return lambda x: output_and_gradient(net, x)

    def first(x: torch.Tensor):
        with torch.no_grad():
            return adj.output_and_gradient(x.contiguous(memory_format=torch.channels_last))

    return first


def _running_size(
    mean: torch.Tensor | None, a: torch.Tensor, alpha: float, warm: bool = True
) -> torch.Tensor:
    """One step of the running mean of sizes ``a >= 0`` per element: each new value
    winsorised at :data:`NOISE_CLIP` times the mean once ``warm``; exact zeros (blocks
    a codec copied) leave it as it is; the first value starts it. (Winsorised from the
    start, an element whose first value happened to be near 0 took seconds to grow.)"""
    if mean is None:
        return a.clone()
    v = torch.where(a == 0, mean, torch.minimum(a, NOISE_CLIP * mean) if warm else a)
    v = torch.where(mean == 0, a, v)
    return mean + alpha * (v - mean)


def _running_median(m: torch.Tensor | None, a: torch.Tensor, alpha: float) -> torch.Tensor:
    """One step of a running median of sizes ``a > 0`` per element: ``m`` moves by the
    factor ``exp(alpha)`` towards each new value (so it settles where half the values
    lie above it, and follows a change of level at about the pace of a running mean
    with the same ``alpha``); exact zeros (blocks a codec copied) leave it as it is, and
    an element still at 0 takes the new value. A burst of motion, however large,
    moves it by one step per frame, where it pulled a running mean by its size. The
    first value starts it."""
    if m is None:
        return a.clone()
    step = torch.where(a == 0, 0.0, torch.sign(a - m))
    return torch.where(m == 0, a, m * torch.exp(alpha * step))


def _median_nonzero(a: torch.Tensor) -> np.ndarray:
    """Median of each row's non-zero elements ``(P, n) -> (P,)``; 0 for an all-zero row.

    Zeros are left out because a video codec copies still blocks exactly: on an H.264
    file of a still scene most of X_1 is exactly 0, and the plain median (so the step)
    was 0, which magnified nothing. Without exact zeros it is the plain median.
    """
    out = np.zeros(a.shape[0])
    for i, row in enumerate(a):
        nz = row[row != 0]
        if nz.numel():
            out[i] = float(nz.double().median())
    return out


def _attention_mean(a: torch.Tensor, g: torch.Tensor) -> np.ndarray:
    """``sum g a / sum_{a != 0} g`` of each row ``(P, n) -> (P,)``: the mean of
    ``a = |X_1|`` weighted by ``g = |G_1|``, over the elements that changed.

    Exact zeros (blocks a video codec copied) are left out of the weights for the
    reason :func:`_median_nonzero` gives. 0 where no weighted element changed. A mean,
    not an RMS: the RMS tracked head motion on synthetic skin a little better (gain
    spread over tasks A-D 2.1x against 2.5x) but a few dark, noisy cells of a real
    clip (evm_wrist) made it 17 times the frame's median, and the gain 110x.
    """
    a, g = a.double(), g.double()
    den = (g * (a != 0)).sum(dim=1)
    num = (g * a).sum(dim=1)
    out = torch.where(den > 0, num / den.clamp_min(torch.finfo(torch.float64).tiny), 0.0)
    return out.numpy()


def _participation(w: torch.Tensor) -> float:
    """Participation ratio ``(sum w)^2 / sum w^2`` of non-negative weights (1..len)."""
    w = w.double()
    s2 = float((w * w).sum())
    return float(w.sum()) ** 2 / s2 if s2 > 0 else 1.0


def step_rule(config: MagnifierConfig) -> dict:
    """The settings a step calibration (``gamma_per_gain``) holds for: recorded with it
    in the weight file, checked by :class:`Magnifier`."""
    return {
        "step_scale": config.step_scale,
        "focus": config.focus,
        "noise_match": config.noise_match,
        "noise_size": MATCH_SIZES[config.mode] if config.noise_match > 1 else None,
        "smooth": config.smooth,
    }


def _step_rule_changes(calib: dict, config: MagnifierConfig):
    """``(name, calibrated, now)`` for each step-rule setting that differs. Files
    calibrated before a setting existed carry none: the rule of that time (the median
    scale, no focus)."""
    before = {"step_scale": "median", "focus": 0.0, "noise_match": 1.0, "smooth": 0.0}
    # the first noise match sized the change by |X_1| itself
    before["noise_size"] = "abs_x1" if calib.get("noise_match", 1.0) > 1 else None
    if "noise_boost" in calib and "noise_match" not in calib:  # the one-sided rule
        yield "noise_boost", calib["noise_boost"], "noise_match " + str(config.noise_match)
        calib = {**calib, "noise_match": config.noise_match}
    for name, now in step_rule(config).items():
        was = calib.get(name, before[name])
        if was != now:
            yield name, was, now


def load_net(config: MagnifierConfig):
    """The frozen network and its meta for ``config`` (shipped weights by default)."""
    from rtmag.nets import default_weights_path, load_weights

    path = config.weights or default_weights_path(config.mode)
    return load_weights(path, mode=config.mode)


@dataclass
class Analysis:
    """The ascent's result on one batch of frames (:meth:`Magnifier.analyse`).

    Attributes:
        delta: ``(P, ...)`` the changes X_N - X_1 of the ``P`` pairs analysed (pulse:
            ``(P, 36, 36, 3)`` float64; respiration: ``(P, 4, 123, 123)`` float32).
        y: ``(P,)`` the network's reading of each pair.
        gamma: ``(P,)`` the step sizes used.
        boxes: one per frame of the batch: the face box used, or None (whole frame).
        at: ``(P,)`` position in the batch of the frame each pair ends at.
    """

    delta: np.ndarray
    y: np.ndarray
    gamma: np.ndarray
    boxes: list
    at: np.ndarray

    def __iter__(self):  # ``dx, y, gamma, boxes = analysis`` (the pulse path's old tuple)
        return iter((self.delta, self.y, self.gamma, self.boxes))


class Slot:
    """The render state of one frame (log gain or phase offset); ``value`` is None
    until the path knows it (a respiration frame waits for the next analysed frame)."""

    __slots__ = ("value",)

    def __init__(self, value=None):
        self.value = value


class ColourPath:
    """The pulse's representation: 36x36x3 normalised differences and log gains."""

    def __init__(self, net, config: MagnifierConfig, gamma_per_gain: float):
        from rtmag.representations.colour import LogGainIntegrator

        self.config = config
        self.analyser = PairAnalyser(net, config, gamma_per_gain)
        low, high = config.band
        self.integrator = LogGainIntegrator(low, high, config.fps)
        self.signal_rate = config.fps
        self.tracker = None
        self._prev_frame: np.ndarray | None = None
        self.colour_axis = None  # the running colour axis (config.colour_axis)
        if config.colour_axis:
            from rtmag.representations.colour import ColourAxis

            self.colour_axis = ColourAxis(
                COLOUR_AXIS_HALFLIFE_S * config.fps, round(COLOUR_AXIS_WARMUP_S * config.fps)
            )
        if config.region == "face":
            from rtmag.region import FaceTracker

            self.tracker = FaceTracker()

    def group_delay_s(self) -> float:
        return float(self.integrator.group_delay_s())

    def alignment_delay_s(self) -> float:
        return float(self.integrator.alignment_delay_s())

    def lock_delay_s(self, freq_hz: float, frame_delay_s: float = 0.0) -> float:
        """The phase lock's state delay at the heart rate ``freq_hz``
        (:func:`rtmag.filters.lock_delay_s` of the causal band-pass)."""
        from rtmag.filters import lock_delay_s

        bp = self.integrator.bandpass
        return lock_delay_s(bp.sos, freq_hz, bp.fs, frame_delay_s)

    def check_size(self, frame_hw: tuple[int, int]) -> None:
        """Any frame size works here (area downsampling to 36x36)."""

    def reset(self) -> None:
        self.analyser.reset()
        self.integrator.reset()
        self._prev_frame = None
        if self.tracker is not None:
            self.tracker.reset()
        if self.colour_axis is not None:
            self.colour_axis.reset()

    def analyse(self, frames: np.ndarray, times) -> Analysis:
        from rtmag.representations.colour import downsample

        b = len(frames)
        if self.tracker is None:
            dx, y, gamma = self.analyser(downsample(frames))
            return Analysis(dx, y, gamma, [None] * b, np.arange(b - len(dx), b))
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
        return Analysis(dx, y, gamma, boxes, np.arange(b - len(dx), b))

    def causal(self, a: Analysis, times) -> list[Slot]:
        """Log gains of the batch's frames (the first frame of a stream gets none).
        The band-pass follows the frames' timestamps (variable frame rate)."""
        from rtmag.representations.colour import smooth_log_gain

        n = len(a.boxes)
        o = np.zeros((n, SIZE, SIZE, 3))
        if len(a.delta):
            gains = self.integrator(a.delta, times=[times[i] for i in a.at])
            gains = smooth_log_gain(gains, self.config.smooth)
            o[a.at] = gains if self.colour_axis is None else self.colour_axis(gains)
        return [Slot(o[i]) for i in range(n)]

    def flush(self) -> None:
        """Nothing is held back in this path."""

    def offline(self, deltas: np.ndarray, delta_times, frame_times, notes: list):
        """Zero-phase log gain of every frame of a whole clip: a function of frame
        indices (``(k, 36, 36, 3)``). ``notes`` gets a line if the clip is too short
        for the zero-phase filter (the causal one is used). With ``colour_axis`` the
        whole clip has one colour axis."""
        from rtmag.filters import design_bandpass, min_zero_phase_length
        from rtmag.representations.colour import (
            LogGainIntegrator,
            colour_axis,
            offline_log_gain,
            project_on_axis,
            smooth_log_gain,
        )

        cfg = self.config
        n = len(frame_times)
        sos = design_bandpass(cfg.band[0], cfg.band[1], cfg.fps)
        if n >= min_zero_phase_length(sos):
            gain = offline_log_gain(deltas, sos)
        else:
            notes.append(
                f"clip of {n} frames is shorter than the zero-phase filter needs "
                f"({min_zero_phase_length(sos)}); used the causal filter"
            )
            gain = np.zeros((n, SIZE, SIZE, 3))
            if n > 1:
                gain[1:] = LogGainIntegrator(cfg.band[0], cfg.band[1], cfg.fps)(deltas)
        gain = smooth_log_gain(gain, cfg.smooth)
        if cfg.colour_axis:
            gain = project_on_axis(gain, *colour_axis(gain))
        return lambda idx: gain[idx]

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


def make_path(net, config: MagnifierConfig, gamma_per_gain: float):
    """The representation path of ``config.mode``."""
    if config.mode == "respiration":
        from rtmag.motion import MotionPath

        return MotionPath(net, config, gamma_per_gain)
    return ColourPath(net, config, gamma_per_gain)


class Magnifier:
    """Frame-by-frame magnifier of one source (no threads).

    Push RGB ``uint8`` frames ``(H, W, 3)`` with their timestamps; get magnified
    frames back. Causal: the output for frame ``t`` uses frames up to ``t`` only
    (plus the alignment delay with ``config.align``; in respiration mode frames wait
    for the next analysed frame, at most ``decimate - 1`` frames).

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
        from rtmag.vitals import RateTracker

        self.config = config = config or MagnifierConfig()
        if net is None:
            net, meta = load_net(config)
        self.meta = dict(meta or {})
        calib = self.meta.get("calibration") or {}
        self.gamma_per_gain = float(calib.get("gamma_per_gain", DEFAULT_GAMMA_PER_GAIN))
        if calib and config.gamma is None:
            for name, was, now in _step_rule_changes(calib, config):
                warnings.warn(
                    f"the weight file's step calibration was made with {name} {was!r}, "
                    f"not {now!r}: the magnification will not be the gain asked for; "
                    "recalibrate with `rtmag quality --calibrate`",
                    stacklevel=2,
                )
        self.net = net
        self.path = make_path(net, config, self.gamma_per_gain)
        self.group_delay_s = self.path.group_delay_s()
        # align: the delay that puts the band's change in phase, not the group delay
        # (that one showed the pulse inverted: rtmag.filters.alignment_delay_s)
        self.alignment_delay_s = self.path.alignment_delay_s()
        self.delay_frames = int(round(self.alignment_delay_s * config.fps)) if config.align else 0
        # phase lock: the states of the frames shown, one period of the band's low edge
        self._history: collections.deque = collections.deque(
            maxlen=int(math.ceil(config.fps / config.band[0])) + 2 if config.phase_lock else 1
        )
        self.lock_frames = 0
        self.rates = RateTracker(
            window_s=config.rate_window_s,
            fs=self.path.signal_rate,
            band=config.band,
            derivative=True,  # the network's output is a derivative (rtmag.train)
        )
        self._pending: collections.deque = collections.deque()
        self._shape: tuple[int, int] | None = None
        self._index = 0
        self._last_t: float | None = None

    # the pulse path's parts, as before the paths existed
    @property
    def analyser(self) -> PairAnalyser:
        return self.path.analyser

    @property
    def integrator(self):
        return getattr(self.path, "integrator", None)

    @property
    def tracker(self):
        return getattr(self.path, "tracker", None)

    @property
    def lock_delay_s(self) -> float:
        """How much older the magnification shown with each frame is, seconds (the
        phase lock; 0 while it is off or the rate is not yet read with confidence)."""
        return self.lock_frames / self.config.fps

    def _update_lock(self) -> None:
        est = self.rates.current
        if not self.config.phase_lock or est is None or est.freq_hz is None:
            return
        if est.confidence < LOCK_CONFIDENCE:
            return
        tau = self.path.lock_delay_s(est.freq_hz, self.delay_frames / self.config.fps)
        self.lock_frames = min(int(round(tau * self.config.fps)), self._history.maxlen - 1)

    @property
    def latency_s(self) -> float:
        """Added display latency of ``align`` in seconds (0 when not aligned)."""
        return self.delay_frames / self.config.fps

    def reset(self) -> None:
        """Start a new stream (new camera, scene cut); keeps network and settings."""
        self.path.reset()
        self.rates.reset()
        self._history.clear()
        self.lock_frames = 0
        self._pending.clear()
        self._shape = None
        self._index = 0
        self._last_t = None

    def vitals(self) -> dict:
        """Latest rate estimate of the mode's source (None until known).

        Pulse: ``{heart_rate_bpm, heart_rate_confidence}``; respiration:
        ``{breathing_rate_bpm, breathing_rate_confidence}`` (breaths/min)."""
        est = self.rates.current
        rate = None if est is None else est.rate_bpm
        conf = 0.0 if est is None else float(est.confidence)
        name = "heart_rate" if self.config.mode == "pulse" else "breathing_rate"
        return {f"{name}_bpm": rate, f"{name}_confidence": conf}

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
        shape = self._shape
        for f in frames:
            f = check_frame(f, shape)
            shape = f.shape[:2]
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
        if self._shape is None:
            self.path.check_size(shape)
        self._shape = shape
        out: list[MagnifiedFrame] = []
        cap = self.config.max_batch
        for start in range(0, n, cap):
            batch = np.stack(checked[start : start + cap])
            tchunk = times[start : start + cap]
            a = self.path.analyse(batch, tchunk)
            slots = self.path.causal(a, tchunk)
            y_full = np.full(len(batch), np.nan)
            g_full = np.zeros(len(batch))
            y_full[a.at] = a.y
            g_full[a.at] = a.gamma
            for i in range(batch.shape[0]):
                if np.isfinite(y_full[i]):
                    self.rates.push(float(y_full[i]), tchunk[i])
                self._pending.append(
                    (batch[i], slots[i], a.boxes[i], self._index, tchunk[i], y_full[i], g_full[i])
                )
                self._index += 1
            out.extend(self._emit(final=False))
            self._last_t = tchunk[-1]
        return out

    def analyse(self, frames: np.ndarray, times) -> Analysis:
        """Run the ascent on the pairs that end at ``frames`` (stream order).

        Args:
            frames: ``(B, H, W, 3)`` uint8, already checked.
            times: their timestamps in seconds.

        Returns:
            :class:`Analysis` (it unpacks as ``dx, y, gamma, boxes``).
        """
        return self.path.analyse(frames, times)

    def render(self, frames: np.ndarray, states: np.ndarray, boxes) -> np.ndarray:
        """Magnified frames from ``frames`` ``(B, H, W, 3)`` uint8 and their render
        states (pulse: log gains ``(B, 36, 36, 3)``; respiration: phase offsets
        ``(B, 4, 123, 123)``)."""
        return self.path.render(frames, states, boxes)

    def _emit(self, final: bool) -> list[MagnifiedFrame]:
        """Pair each pending frame with the state ``delay_frames`` later and emit it."""
        d = self.delay_frames
        self._update_lock()
        if final:
            self.path.flush()
        ready = []
        while self._pending and self._pending[0][1].value is not None:
            if len(self._pending) > d:
                slot = self._pending[d][1]
            elif final:  # end of stream: the last frames keep the newest state there is
                slot = self._pending[-1][1]
            else:
                break
            if slot.value is None:
                break
            frame, _, box, index, t, y, g = self._pending.popleft()
            state = slot.value
            if self.config.phase_lock:  # float32 copies: a period of respiration's is 47 MB
                self._history.append(np.asarray(state, dtype=np.float32))
                if self.lock_frames:
                    state = self._history[max(len(self._history) - 1 - self.lock_frames, 0)]
            ready.append((frame, state, box, index, t, y, g))
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
        """Emit the frames still held back (alignment delay, frames waiting for the
        next analysed frame) at the end of a stream."""
        return self._emit(final=True)
