"""Physiological signals and head trajectories of a synthetic clip (pure functions).

Every function takes times ``t`` in seconds (float64 arrays) and a
:class:`numpy.random.Generator`; none holds state. :func:`make_signals` assembles
all per-frame signals of a resolved :class:`~rtmag.synth.config.SynthConfig`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from rtmag.synth.config import TASK_YAW_SPEED, SynthConfig

#: Largest pulse transit-time difference between skin regions, in seconds.
MAX_PULSE_LAG_S = 0.05
#: Yaw targets of task D in degrees: a 20-degree grid over 120 degrees.
TASK_D_GRID = np.arange(-60.0, 60.1, 20.0)
#: Duration of a task-D re-orientation in seconds.
TASK_D_TRANSITION_S = 0.25
#: Integration step of instantaneous rates, in seconds.
_DT = 1.0 / 400.0


def smooth_drift(t: np.ndarray, rng: np.random.Generator, max_hz: float, n: int = 6) -> np.ndarray:
    """Smooth random signal of unit standard deviation with power below ``max_hz``.

    A sum of ``n`` sinusoids with random frequencies in ``[max_hz/20, max_hz]`` Hz and
    random phases, so it can be evaluated at any time and does not depend on the
    clip length. Returns float64 of ``t``'s shape.
    """
    f = rng.uniform(max_hz / 20.0, max_hz, n)
    ph = rng.uniform(0, 2 * np.pi, n)
    out = np.zeros_like(np.asarray(t, dtype=np.float64))
    for fi, pi in zip(f, ph):
        out += np.sin(2 * np.pi * fi * t + pi)
    return out / np.sqrt(n / 2.0)


def pulse_template(phase: np.ndarray) -> np.ndarray:
    """One photoplethysmogram beat as a function of cardiac phase (cycles).

    Periodic with period 1: a systolic peak at phase 0.18, the dicrotic notch near
    0.36 and a smaller diastolic (reflected) wave at 0.45, built from wrapped
    Gaussians. Normalised to zero mean and peak-to-peak 1 over a beat. It is used
    as ``p(t)`` of Eq. 9 directly (positive: more light reflected along u_p); the
    sign is a convention the magnification does not depend on.
    """
    ph = np.mod(phase, 1.0)
    g = np.zeros_like(ph, dtype=np.float64)
    for k in (-1.0, 0.0, 1.0):
        x = ph + k
        g += 1.00 * np.exp(-0.5 * ((x - 0.18) / 0.070) ** 2)
        g += 0.38 * np.exp(-0.5 * ((x - 0.45) / 0.075) ** 2)
        g += 0.10 * np.exp(-0.5 * ((x - 0.62) / 0.120) ** 2)
    return (g - _TEMPLATE_MEAN) / _TEMPLATE_PP


def _template_stats() -> tuple[float, float]:
    ph = np.linspace(0, 1, 4000, endpoint=False)
    g = np.zeros_like(ph)
    for k in (-1.0, 0.0, 1.0):
        x = ph + k
        g += 1.00 * np.exp(-0.5 * ((x - 0.18) / 0.070) ** 2)
        g += 0.38 * np.exp(-0.5 * ((x - 0.45) / 0.075) ** 2)
        g += 0.10 * np.exp(-0.5 * ((x - 0.62) / 0.120) ** 2)
    return float(g.mean()), float(g.max() - g.min())


_TEMPLATE_MEAN, _TEMPLATE_PP = _template_stats()


def breathing_template(phase: np.ndarray) -> np.ndarray:
    """One breath (chest height) as a function of respiratory phase (cycles).

    Asymmetric: inhale over the first 40 % of the cycle, a slower exhale over the
    rest, each a raised-cosine half. Zero mean, peak-to-peak 1, float64.
    """
    ph = np.mod(phase, 1.0)
    ti = 0.4
    up = 0.5 * (1 - np.cos(np.pi * ph / ti))
    down = 0.5 * (1 + np.cos(np.pi * (ph - ti) / (1 - ti)))
    return np.where(ph < ti, up, down) - 0.5


def integrate_phase(rate_hz: np.ndarray, dt: float, phase0: float) -> np.ndarray:
    """Cumulative phase (cycles) of an instantaneous rate sampled every ``dt`` s."""
    return phase0 + np.concatenate([[0.0], np.cumsum(0.5 * (rate_hz[1:] + rate_hz[:-1]) * dt)])


def triangle_yaw(t: np.ndarray, speed_dps: float, amplitude_deg: float, t0: float) -> np.ndarray:
    """Yaw (deg) sweeping -amplitude..+amplitude at constant ``speed_dps`` (triangle)."""
    period = 4.0 * amplitude_deg / speed_dps
    x = np.mod((t + t0) / period, 1.0)
    return amplitude_deg * (4.0 * np.abs(x - 0.5) - 1.0)


def min_jerk(s: np.ndarray) -> np.ndarray:
    """Minimum-jerk ramp 0 -> 1 over ``s`` in [0, 1] (clipped outside)."""
    s = np.clip(s, 0.0, 1.0)
    return s**3 * (10 - 15 * s + 6 * s**2)


def task_d_yaw(
    t: np.ndarray, rng: np.random.Generator, grid: np.ndarray = TASK_D_GRID
) -> tuple[np.ndarray, np.ndarray]:
    """Task D: a new random yaw target from ``grid`` every second.

    The head moves to the new target over :data:`TASK_D_TRANSITION_S` seconds at the
    start of each second (minimum-jerk). Returns ``(yaw_deg, target_deg)``.
    """
    n_sec = int(np.floor(t.max())) + 2
    targets = np.empty(n_sec)
    targets[0] = rng.choice(grid)
    for k in range(1, n_sec):
        targets[k] = rng.choice(grid[grid != targets[k - 1]])
    k = np.clip(np.floor(t).astype(int), 0, n_sec - 1)
    prev = targets[np.maximum(k - 1, 0)]
    ramp = np.where(k == 0, 1.0, min_jerk((t - k) / TASK_D_TRANSITION_S))
    return prev + (targets[k] - prev) * ramp, targets[k]


@dataclass(frozen=True)
class Signals:
    """Per-frame signals of a clip; every array has shape ``(T,)`` (float64).

    Attributes:
        t: frame times in seconds.
        pulse: relative reflectance change ``a * p(t)`` along u_p at lag 0.
        pulse_late: the same pulse delayed by :data:`MAX_PULSE_LAG_S`.
        heart_rate_bpm_inst: instantaneous heart rate in beats/min.
        respiration: upward chest displacement in pixels at the rendered size.
        breathing_rate_bpm_inst: instantaneous breathing rate in breaths/min.
        illumination: relative illumination change i(t) of Eq. 8-9.
        yaw_deg, pitch_deg, roll_deg: head orientation in degrees (yaw positive
            turns the face to the image's right).
        yaw_target_deg: task D's current target (equals yaw_deg for other tasks).
        head_dx, head_dy: head sway in pixels at the rendered size (not breathing).
        mouth_open: 0..1 mouth opening (talking).
    """

    t: np.ndarray
    pulse: np.ndarray
    pulse_late: np.ndarray
    heart_rate_bpm_inst: np.ndarray
    respiration: np.ndarray
    breathing_rate_bpm_inst: np.ndarray
    illumination: np.ndarray
    yaw_deg: np.ndarray
    pitch_deg: np.ndarray
    roll_deg: np.ndarray
    yaw_target_deg: np.ndarray
    head_dx: np.ndarray
    head_dy: np.ndarray
    mouth_open: np.ndarray


def make_signals(cfg: SynthConfig) -> Signals:
    """All per-frame signals of a resolved config (no ``None`` values left).

    Heart rate: mean ``cfg.heart_rate_bpm`` with a slow drift (2.5 % std, < 0.05 Hz)
    and respiratory sinus arrhythmia (3 %, in phase with breathing); its mean over the
    clip is exactly the configured rate. Breathing rate: mean
    ``cfg.breathing_rate_bpm`` with 6 % slow variability. Pulse amplitude varies
    slowly by about 8 % and with breathing by 5 %.
    """
    ss = np.random.SeedSequence([int(cfg.seed), 0x51C])
    r_hr, r_br, r_amp, r_ill, r_head, r_mouth = (np.random.default_rng(s) for s in ss.spawn(6))
    n = cfg.n_frames
    t = np.arange(n) / float(cfg.fps)
    scale = cfg.size[1] / 480.0
    t_end = t[-1]

    # Fine grid from -MAX_PULSE_LAG_S - 1 s for the rates and phases.
    tg = np.arange(-1.0 - MAX_PULSE_LAG_S, t_end + 2 * _DT, _DT)
    in_clip = (tg >= 0) & (tg <= t_end)

    br_mult = 1.0 + 0.06 * smooth_drift(tg, r_br, 0.03)
    br_mult /= br_mult[in_clip].mean()
    br_hz = cfg.breathing_rate_bpm / 60.0 * br_mult
    br_phase = integrate_phase(br_hz, _DT, r_br.uniform())
    breath = breathing_template(br_phase)

    hr_mult = 1.0 + 0.025 * smooth_drift(tg, r_hr, 0.05) + 0.03 * np.sin(2 * np.pi * br_phase)
    hr_mult /= hr_mult[in_clip].mean()
    hr_hz = cfg.heart_rate_bpm / 60.0 * hr_mult
    hr_phase = integrate_phase(hr_hz, _DT, r_hr.uniform())
    amp = cfg.pulse_amplitude * (1.0 + 0.08 * smooth_drift(tg, r_amp, 0.05) + 0.05 * breath)
    pulse_g = amp * pulse_template(hr_phase)

    def at(x: np.ndarray, times: np.ndarray) -> np.ndarray:
        return np.interp(times, tg, x)

    pulse = at(pulse_g, t)
    pulse_late = at(pulse_g, t - MAX_PULSE_LAG_S)
    hr_inst = 60.0 * at(hr_hz, t)
    br_inst = 60.0 * at(br_hz, t)
    respiration = cfg.breathing_amplitude_px * scale * at(breath, t)

    illum = 0.01 * smooth_drift(t, r_ill, 0.1)
    if cfg.flicker:
        # Light intensity flickers at twice the mains frequency; the camera aliases it.
        f_light = 2.0 * r_ill.choice([50.0, 60.0]) + r_ill.uniform(-0.1, 0.1)
        f_alias = abs(f_light - cfg.fps * round(f_light / cfg.fps))
        illum = illum + 0.015 * np.sin(2 * np.pi * f_alias * t + r_ill.uniform(0, 2 * np.pi))

    pitch = 0.3 * smooth_drift(t, r_head, 0.3)
    roll = 0.2 * smooth_drift(t, r_head, 0.3)
    head_dx = 0.25 * scale * smooth_drift(t, r_head, 0.2)
    head_dy = 0.15 * scale * smooth_drift(t, r_head, 0.2)
    if cfg.task == "A":
        yaw = 0.3 * smooth_drift(t, r_head, 0.3)
        target = yaw.copy()
    elif cfg.task in TASK_YAW_SPEED:
        yaw = triangle_yaw(t, TASK_YAW_SPEED[cfg.task], 60.0, r_head.uniform(0, 24.0))
        target = yaw.copy()
    else:
        yaw, target = task_d_yaw(t, r_head)

    if cfg.talking:
        syll = 0.5 + 0.5 * np.sin(2 * np.pi * 4.0 * t + 2.0 * smooth_drift(t, r_mouth, 1.0))
        phrases = smooth_drift(t, r_mouth, 0.3) > -0.3
        mouth = np.clip(syll * phrases + 0.05 * smooth_drift(t, r_mouth, 2.0), 0.0, 1.0)
        pitch = pitch + 1.2 * smooth_drift(t, r_mouth, 1.5) * phrases
    else:
        mouth = np.zeros_like(t)

    return Signals(
        t=t,
        pulse=pulse,
        pulse_late=pulse_late,
        heart_rate_bpm_inst=hr_inst,
        respiration=respiration,
        breathing_rate_bpm_inst=br_inst,
        illumination=illum,
        yaw_deg=yaw,
        pitch_deg=pitch,
        roll_deg=roll,
        yaw_target_deg=target,
        head_dx=head_dx,
        head_dy=head_dy,
        mouth_open=mouth,
    )
