"""Configuration of a synthetic physiology clip.

:class:`SynthConfig` holds every render parameter. Values left as ``None`` are drawn
from ``seed`` by :func:`resolve_config`, so a config and its seed always give the same
clip. A bad value raises :class:`rtmag.errors.UserError` naming the valid range.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from rtmag.errors import UserError

TASKS = ("A", "B", "C", "D")
MODES = ("pulse", "respiration")
BACKGROUNDS = ("patterned", "plain")
#: Paper, section 4: tasks A and D in front of a patterned background, B and C plain.
TASK_BACKGROUND = {"A": "patterned", "B": "plain", "C": "plain", "D": "patterned"}
#: Head yaw speed of the sweep tasks in degrees per second (paper, section 4).
TASK_YAW_SPEED = {"B": 10.0, "C": 30.0}

HEART_RATE_RANGE = (42.0, 150.0)  # bpm, the pulse band 0.7-2.5 Hz
HEART_RATE_DRAW = (50.0, 110.0)
BREATHING_RATE_RANGE = (8.0, 30.0)  # breaths/min
BREATHING_RATE_DRAW = (10.0, 24.0)
PULSE_AMPLITUDE_RANGE = (0.0, 0.2)
#: Default pulse amplitude (relative peak-to-peak reflectance change at the strongest
#: skin) is drawn log-uniformly here. On Fitzpatrick II skin a unit of it gives about
#: 80 (median skin pixel) to 170 (cheeks, forehead) grey levels in green, so the
#: pulse is 0.25-2 grey levels peak-to-peak: invisible. Less on darker skin.
PULSE_AMPLITUDE_DRAW = (0.003, 0.012)
BREATHING_AMPLITUDE_RANGE = (0.0, 20.0)  # px at 480 rows
BREATHING_AMPLITUDE_DRAW = (0.6, 2.5)


def _check_range(name: str, value: float, lo: float, hi: float) -> None:
    if not (lo <= value <= hi) or value != value:
        raise UserError(f"{name}={value!r} is out of range: use a value in [{lo:g}, {hi:g}]")


def _check_choice(name: str, value: object, choices: tuple) -> None:
    if value not in choices:
        raise UserError(
            f"{name}={value!r} is not valid: choose one of {', '.join(map(str, choices))}"
        )


def _check_size(name: str, value: object, lo: int, hi: int) -> tuple[int, int]:
    try:
        w, h = (int(v) for v in value)  # type: ignore[union-attr]
    except (TypeError, ValueError):
        raise UserError(f"{name}={value!r} must be a (width, height) pair of integers") from None
    if not (lo <= w <= hi and lo <= h <= hi):
        raise UserError(f"{name}={value!r}: width and height must each be in [{lo}, {hi}] pixels")
    return w, h


@dataclass(frozen=True)
class SynthConfig:
    """Every parameter of a synthetic clip. Sizes are ``(width, height)`` in pixels.

    Attributes:
        task: motion task of the paper, "A" still, "B" 10 deg/s yaw sweep over
            -60..+60 deg, "C" the same at 30 deg/s, "D" a new random yaw target on a
            20-degree grid once per second.
        mode: the source the ideal output magnifies, "pulse" or "respiration".
        seconds: clip length in seconds, (0, 3600].
        fps: frame rate in frames per second, [5, 240].
        size: rendered frame size (W, H), each in [16, 4096].
        alpha: magnification of the source in the ideal output (1.0: ideal == input),
            [0, 1000].
        seed: seed of every random draw (signals, scene, noise).
        heart_rate_bpm: mean heart rate in beats/min, [42, 150]; None draws 50-110.
        breathing_rate_bpm: mean breathing rate in breaths/min, [8, 30]; None draws 10-24.
        pulse_amplitude: relative peak-to-peak change of skin reflectance along u_p
            (Eq. 9) at the strongest skin, [0, 0.2]; None draws 0.003-0.012
            (0.3-1.5 grey levels peak-to-peak in green on typical skin: invisible).
        breathing_amplitude_px: peak upward chest displacement in pixels at a
            480-row frame (scaled with the rendered height), [0, 20]; None draws 0.6-2.5.
        skin_tone: Fitzpatrick type 1..6; None draws one.
        background: "patterned" or "plain"; None takes the task's (A, D patterned;
            B, C plain).
        glasses, talking, flicker, specular: scene options (flicker is aliased mains
            flicker of the light, specular adds Eq. 9's u_s s(t) highlights).
        camera_size: resolution (W, H) of the reference camera whose noise the clip
            imitates; a smaller render has the noise of that camera after area
            downsampling.
        sensor_noise: Gaussian sensor noise std in grey levels at camera_size, [0, 50].
        quantize: round to 8 bit like a camera (True, the default). False keeps the
            frames float32 in [0, 255] (noise and pulse below one grey level intact, as
            in an average of many camera pixels); write_clip still rounds the files.
        compress: None, or an x264 CRF in [0, 51]: encode and decode both clips
            through libx264 yuv420p to add compression artefacts (W, H must be even).
    """

    task: str = "A"
    mode: str = "pulse"
    seconds: float = 10.0
    fps: float = 30.0
    size: tuple[int, int] = (640, 480)
    alpha: float = 1.0
    seed: int = 0
    heart_rate_bpm: float | None = None
    breathing_rate_bpm: float | None = None
    pulse_amplitude: float | None = None
    breathing_amplitude_px: float | None = None
    skin_tone: int | None = None
    background: str | None = None
    glasses: bool = False
    talking: bool = False
    flicker: bool = False
    specular: bool = True
    camera_size: tuple[int, int] = (640, 480)
    sensor_noise: float = 1.75
    quantize: bool = True
    compress: int | None = None

    def __post_init__(self) -> None:
        _check_choice("task", self.task, TASKS)
        _check_choice("mode", self.mode, MODES)
        _check_range("seconds", float(self.seconds), 1e-6, 3600.0)
        _check_range("fps", float(self.fps), 5.0, 240.0)
        object.__setattr__(self, "size", _check_size("size", self.size, 16, 4096))
        object.__setattr__(
            self, "camera_size", _check_size("camera_size", self.camera_size, 16, 8192)
        )
        _check_range("alpha", float(self.alpha), 0.0, 1000.0)
        if not isinstance(self.seed, (int, np.integer)) or self.seed < 0:
            raise UserError(f"seed={self.seed!r} must be a non-negative integer")
        if self.heart_rate_bpm is not None:
            _check_range("heart_rate_bpm", float(self.heart_rate_bpm), *HEART_RATE_RANGE)
        if self.breathing_rate_bpm is not None:
            _check_range(
                "breathing_rate_bpm", float(self.breathing_rate_bpm), *BREATHING_RATE_RANGE
            )
        if self.pulse_amplitude is not None:
            _check_range("pulse_amplitude", float(self.pulse_amplitude), *PULSE_AMPLITUDE_RANGE)
        if self.breathing_amplitude_px is not None:
            _check_range(
                "breathing_amplitude_px",
                float(self.breathing_amplitude_px),
                *BREATHING_AMPLITUDE_RANGE,
            )
        if self.skin_tone is not None:
            if self.skin_tone not in (1, 2, 3, 4, 5, 6):
                raise UserError(
                    f"skin_tone={self.skin_tone!r} is not valid: use a Fitzpatrick type 1..6"
                )
        if self.background is not None:
            _check_choice("background", self.background, BACKGROUNDS)
        _check_range("sensor_noise", float(self.sensor_noise), 0.0, 50.0)
        if self.compress is not None:
            if not isinstance(self.compress, (int, np.integer)) or not 0 <= self.compress <= 51:
                raise UserError(
                    f"compress={self.compress!r} is not valid: use None or an x264 CRF in [0, 51]"
                )
            if not self.quantize:
                raise UserError("compress needs 8-bit frames: set quantize=True")
            w, h = self.size
            if w % 2 or h % 2:
                raise UserError(f"compress needs an even frame size for yuv420p, got {w}x{h}")
        if self.n_frames < 2:
            raise UserError(f"seconds*fps = {self.seconds}*{self.fps} gives fewer than 2 frames")

    @property
    def n_frames(self) -> int:
        """Number of frames, ``round(seconds * fps)``."""
        return int(round(float(self.seconds) * float(self.fps)))

    @property
    def area_factor(self) -> float:
        """Camera pixels averaged into one rendered pixel, ``>= 1``."""
        cw, ch = self.camera_size
        w, h = self.size
        return max(1.0, (cw * ch) / (w * h))

    @property
    def noise_std(self) -> float:
        """Per-pixel, per-channel noise std at the rendered size, in grey levels."""
        return float(self.sensor_noise) / float(np.sqrt(self.area_factor))

    def to_dict(self) -> dict:
        """The config as plain JSON-able values."""
        d = dataclasses.asdict(self)
        d["size"] = list(self.size)
        d["camera_size"] = list(self.camera_size)
        return d


def resolve_config(cfg: SynthConfig) -> SynthConfig:
    """Return ``cfg`` with every ``None`` drawn from ``cfg.seed`` (deterministic).

    The draws use their own generator stream, so they do not depend on which of the
    values were given.
    """
    ss = np.random.SeedSequence([int(cfg.seed), 0x5EED])
    r = [np.random.default_rng(s) for s in ss.spawn(6)]
    hr = cfg.heart_rate_bpm
    if hr is None:
        hr = float(r[0].uniform(*HEART_RATE_DRAW))
    br = cfg.breathing_rate_bpm
    if br is None:
        br = float(r[1].uniform(*BREATHING_RATE_DRAW))
    pa = cfg.pulse_amplitude
    if pa is None:
        lo, hi = PULSE_AMPLITUDE_DRAW
        pa = float(np.exp(r[2].uniform(np.log(lo), np.log(hi))))
    ba = cfg.breathing_amplitude_px
    if ba is None:
        ba = float(r[3].uniform(*BREATHING_AMPLITUDE_DRAW))
    tone = cfg.skin_tone
    if tone is None:
        tone = int(r[4].integers(1, 7))
    bg = cfg.background or TASK_BACKGROUND[cfg.task]
    return dataclasses.replace(
        cfg,
        heart_rate_bpm=float(hr),
        breathing_rate_bpm=float(br),
        pulse_amplitude=float(pa),
        breathing_amplitude_px=float(ba),
        skin_tone=int(tone),
        background=bg,
    )
