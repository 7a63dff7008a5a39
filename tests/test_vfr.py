"""Variable frame rate: the time-stepped band-pass against scipy and the continuous
filter, the integrator and magnifier that use it, and rate tracking under jitter."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import signal

from rtmag.errors import FrameError, UserError
from rtmag.filters import VariableRateBandpass, analog_bandpass_ss, design_bandpass
from rtmag.representations.colour import LogGainIntegrator
from rtmag.vitals import RateTracker

FS = 30.0
LOW, HIGH = 0.7, 2.5


def analog_response(f_hz: float, low: float = LOW, high: float = HIGH) -> complex:
    """The ideal continuous Butterworth band-pass (scipy, true cut-offs) at ``f_hz``."""
    b, a = signal.butter(3, 2 * np.pi * np.array([low, high]), btype="band", analog=True)
    s = 2j * np.pi * f_hz
    return complex(np.polyval(b, s) / np.polyval(a, s))


def ss_response(abc, f_hz: float) -> complex:
    a, b, c = abc
    s = 2j * np.pi * f_hz
    return complex(c @ np.linalg.solve(s * np.eye(len(b)) - a, b))


@pytest.mark.parametrize("low, high", [(LOW, HIGH), (0.16, 0.5), (0.2, 6.0)])
def test_state_space_is_scipys_analog_butterworth(low, high):
    abc = analog_bandpass_ss(low, high, FS, prewarp=False)  # (0.2, 6): real pole pairs
    for f in [0.05, low, np.sqrt(low * high), high, 5.0, 14.0]:
        ref = analog_response(f, low, high)
        assert abs(ss_response(abc, f) - ref) <= 1e-9 * max(abs(ref), 1e-6)


def test_uniform_timestamps_equal_scipy_sosfilt_chunk_by_chunk():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(240, 3, 2)).cumsum(axis=0)  # a random walk, like S
    ref = signal.sosfilt(design_bandpass(LOW, HIGH, FS), x, axis=0)
    bp = VariableRateBandpass(LOW, HIGH, FS)
    t = 5.0 + np.arange(240) / FS
    cuts = [0, 1, 2, 9, 40, 41, 240]
    y = np.concatenate([bp(x[a:b], t[a:b]) for a, b in zip(cuts[:-1], cuts[1:])])
    np.testing.assert_allclose(y, ref, rtol=0, atol=1e-10 * np.abs(ref).max())


def sinusoid_errors(t: np.ndarray, f: float) -> dict:
    """Per-sample error (relative to the amplitude) of the time-stepped filter and of
    the fixed-rate filter fed the same samples as if uniform, against the ideal
    continuous answer, plus the fitted amplitude and phase of the time-stepped one."""
    x = np.sin(2 * np.pi * f * t)
    h = analog_response(f)
    ideal = abs(h) * np.sin(2 * np.pi * f * t + np.angle(h))
    vfr = VariableRateBandpass(LOW, HIGH, FS)(x[:, None], t)[:, 0]
    fixed = signal.sosfilt(design_bandpass(LOW, HIGH, FS), x)
    k = t > 12.0  # after the start transient
    m = np.stack([np.sin(2 * np.pi * f * t[k]), np.cos(2 * np.pi * f * t[k])], axis=1)
    c = np.linalg.lstsq(m, vfr[k], rcond=None)[0]

    def rms(y):
        return float(np.sqrt(np.mean((y[k] - ideal[k]) ** 2)) / abs(h))

    return {
        "vfr": rms(vfr),
        "fixed": rms(fixed),
        "amp": float(np.hypot(*c) / abs(h)),
        "phase": float(np.angle(np.exp(1j * (np.arctan2(c[1], c[0]) - np.angle(h))))),
    }


@pytest.mark.parametrize("f", [0.9, 1.3, 2.0])
def test_jittered_sinusoid_follows_the_continuous_filter(f):
    rng = np.random.default_rng(1)
    t = np.arange(900) / FS + np.clip(rng.normal(0, 0.005, 900), -0.012, 0.012)  # 5 ms
    e = sinusoid_errors(t, f)
    assert e["vfr"] < 0.02  # at uniform times the digital filter itself is ~1% off
    assert e["vfr"] < 0.5 * e["fixed"]
    assert e["amp"] == pytest.approx(1.0, abs=0.01)
    assert abs(e["phase"]) < 0.03


def test_dropped_frames_are_bridged():
    rng = np.random.default_rng(2)
    t = np.sort(rng.choice(900, 630, replace=False)) / FS  # 30 % of the frames lost
    e = sinusoid_errors(t, 1.3)
    assert e["vfr"] < 0.04 and e["fixed"] > 0.3


def test_real_clip_with_dropped_frames(shared_clip):
    """The colour change of a real face clip, frames dropped as a loaded webcam does:
    the gains of the frames that remain stay close to those of the full stream."""
    from rtmag.representations.colour import downsample, normalized_difference
    from rtmag.video import read_video

    frames, info = read_video(shared_clip("evm_face.mp4"))
    low = downsample(frames).astype(np.float64)
    t = np.arange(len(low)) / info.fps
    rng = np.random.default_rng(3)
    keep = np.sort(np.concatenate([[0], 1 + rng.choice(len(low) - 1, 200, replace=False)]))

    def gains(idx, times):
        x = normalized_difference(low[idx[:-1]], low[idx[1:]])
        integ = LogGainIntegrator(LOW, HIGH, FS)
        return integ(x) if times is None else integ(x, times=times[1:])

    full = gains(np.arange(len(low)), t)[keep[1:] - 1]
    vfr = gains(keep, t[keep])
    fixed = gains(keep, None)
    late = t[keep[1:]] > 3.0
    scale = np.sqrt(np.mean(full[late] ** 2))
    err_vfr = np.sqrt(np.mean((vfr - full)[late] ** 2)) / scale
    err_fixed = np.sqrt(np.mean((fixed - full)[late] ** 2)) / scale
    assert err_vfr < 0.4 and err_vfr < 0.35 * err_fixed  # the lost frames' noise is lost


def test_gap_longer_than_max_gap_restarts_quietly():
    bp = VariableRateBandpass(LOW, HIGH, FS, max_gap_s=2.0)
    t = np.arange(60) / FS
    bp(np.sin(t)[:, None] * 5 + 100, t)
    y = bp(np.array([[300.0], [300.0]]), [60.0, 60.0 + 1 / FS])
    np.testing.assert_allclose(y, 0.0, atol=1e-9)  # steady state of the new level


def test_bad_timestamps_are_refused_and_consume_nothing():
    bp = VariableRateBandpass(LOW, HIGH, FS)
    bp(np.ones((2, 4)), [0.0, 0.03])
    state = bp.state.copy()
    for times, match in [
        ([0.06, 0.05], "increase"),
        ([0.03, 0.09], "increase"),
        ([0.06, float("nan")], "finite"),
        ([0.06], "2 samples but 1 timestamps"),
    ]:
        with pytest.raises(FrameError, match=match):
            bp(np.ones((2, 4)), times)
    np.testing.assert_array_equal(bp.state, state)
    with pytest.raises(FrameError, match="reset"):
        bp(np.ones((1, 5)), [1.0])
    with pytest.raises(UserError, match="max_gap_s"):
        VariableRateBandpass(LOW, HIGH, FS, max_gap_s=0)


def test_integrator_with_uniform_times_equals_the_fixed_rate_one():
    rng = np.random.default_rng(4)
    dx = rng.normal(0, 1e-3, (90, 6, 6, 3))
    fixed = LogGainIntegrator(LOW, HIGH, FS)(dx)
    timed = LogGainIntegrator(LOW, HIGH, FS)
    t = (1 + np.arange(90)) / FS
    got = np.concatenate([timed(dx[:50], times=t[:50]), timed(dx[50:], times=t[50:])])
    np.testing.assert_allclose(got, fixed, rtol=0, atol=1e-12)
    with pytest.raises(FrameError, match="every chunk"):
        timed(dx[:1])
    total = timed.S.copy()
    with pytest.raises(FrameError, match="increase"):
        timed(dx[:1], times=[0.5])
    np.testing.assert_array_equal(timed.S, total)  # the refused chunk was not summed


def test_magnifier_follows_jittered_timestamps(pulse_net):
    """Uniform timestamps: the same frames as without timestamps; jittered ones change
    the gains slightly and nothing else."""
    from rtmag.magnifier import Magnifier, MagnifierConfig

    rng = np.random.default_rng(5)
    n, h, w = 24, 24, 32
    base = rng.integers(80, 180, (1, h, w, 3)).astype(np.float64)
    t = np.arange(n) / FS + rng.uniform(-0.005, 0.005, n)
    pulse = 3 * np.sin(2 * np.pi * 1.2 * t)[:, None, None, None] * [0.33, 0.77, 0.53]
    frames = np.clip(base + pulse + rng.normal(0, 1, (n, h, w, 3)), 0, 255).astype(np.uint8)
    # per-element change (no smoothing): on a 24x32 frame the smoothing averages the
    # jitter's small differences below one grey level
    cfg = MagnifierConfig(gamma=1.0, n_iter=4, smooth=0.0)

    def run(times):
        mag = Magnifier(cfg, net=pulse_net)
        return mag.push_many(list(frames), times) + mag.flush()

    plain, uniform, jittered = run(None), run(np.arange(n) / FS), run(t)
    for a, b in zip(plain, uniform):
        assert np.abs(a.image.astype(int) - b.image.astype(int)).max() <= 1
    assert [o.time_s for o in jittered] == pytest.approx(list(t))
    diff = np.abs(np.stack([o.image for o in jittered]).astype(int) - [o.image for o in plain])
    assert 0 < diff.max() <= 40


def test_rate_tracker_under_jitter_and_another_real_rate():
    rng = np.random.default_rng(6)
    for true_fps, jitter in [(30.0, 0.005), (24.0, 0.005), (15.0, 0.0)]:
        tr = RateTracker(fs=FS, window_s=10.0)
        n = int(20 * true_fps)
        t = np.arange(n) / true_fps + rng.uniform(-jitter, jitter, n)
        tr.extend(np.sin(2 * np.pi * 1.3 * t) + 0.3 * rng.standard_normal(n), t)
        assert tr.current.rate_bpm == pytest.approx(78.0, abs=1.0), (true_fps, jitter)
        assert tr.current.confidence > 0.6


def test_rate_of_the_real_face_clip_with_jittered_timestamps(shared_clip):
    """The shipped network's reading of evm_face (about 50-60 bpm) gives the same rate
    with 5 ms of timestamp jitter as with exact timestamps."""
    import torch

    from rtmag.nets import default_weights_path, load_weights
    from rtmag.representations.colour import downsample, x_from_sequence
    from rtmag.video import read_video

    net, _ = load_weights(default_weights_path("pulse"), mode="pulse")
    frames, info = read_video(shared_clip("evm_face.mp4"))
    x = x_from_sequence(downsample(frames)).transpose(0, 3, 1, 2)
    with torch.inference_mode():
        y = net(torch.from_numpy(np.ascontiguousarray(x))).numpy()
    t = np.arange(1, len(frames)) / info.fps
    jitter = np.random.default_rng(7).uniform(-0.005, 0.005, len(t))
    rates = []
    for times in (t, t + jitter):
        tr = RateTracker(fs=info.fps, window_s=10.0)
        tr.extend(y, times)
        rates.append(tr.current.rate_bpm)
    assert 45 <= rates[0] <= 65
    assert rates[1] == pytest.approx(rates[0], abs=1.5)
