"""Pulse representation (Eq. 14) and its log-domain inverse (Eq. 15-17, streaming form)."""

import cv2
import numpy as np
import pytest
import torch

from rtmag.errors import FrameError, UserError
from rtmag.filters import band_centre, design_bandpass
from rtmag.representations.colour import (
    SIZE,
    LogGainIntegrator,
    apply_log_gain,
    downsample,
    log_increment,
    log_ratio_from_x,
    normalized_difference,
    offline_log_gain,
    x_from_sequence,
)

FS = 30.0


def _frames(b=2, h=48, w=64, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (b, h, w, 3), dtype=np.uint8)


# ---------------------------------------------------------------- forward


def test_downsample_is_area_mean():
    f = _frames(1, 72, 108)[0]
    d = downsample(f, size=36)
    assert d.shape == (36, 36, 3) and d.dtype == np.float32
    # integer factors 2 x 3: exact block means
    ref = f.astype(np.float64).reshape(36, 2, 36, 3, 3).mean(axis=(1, 3))
    np.testing.assert_allclose(d, ref, atol=1e-4)
    batch = downsample(_frames(3, 480, 640), dtype=np.float64)
    assert batch.shape == (3, 36, 36, 3) and batch.dtype == np.float64
    # the mean brightness is preserved by area averaging for any factor
    odd = _frames(1, 37, 53)[0]
    assert downsample(odd).shape == (36, 36, 3)
    assert downsample(odd, size=5).mean() == pytest.approx(odd.mean(), rel=1e-4)


@pytest.mark.parametrize(
    "shape, hint",
    [
        ((48, 64), "COLOR_GRAY2RGB"),
        ((48, 64, 1), "COLOR_GRAY2RGB"),
        ((2, 48, 64, 1), "COLOR_GRAY2RGB"),
        ((48, 64, 4), "COLOR_RGBA2RGB"),
        ((5, 48, 64), r"\(B, H, W\)"),
        ((64,), r"\(H, W, 3\)"),
    ],
)
def test_wrong_shape_raises_frame_error_with_hint(shape, hint):
    bad = np.zeros(shape, np.uint8)
    with pytest.raises(FrameError, match=r"\(H, W, 3\) or \(B, H, W, 3\)") as e:
        downsample(bad)
    assert e.match(hint)
    with pytest.raises(FrameError):
        apply_log_gain(bad, np.zeros((4, 4, 3)))


def test_zero_size_and_bad_dtype_raise():
    for shape in [(0, 64, 3), (48, 0, 3), (2, 0, 0, 3)]:
        with pytest.raises(FrameError, match="zero size"):
            downsample(np.zeros(shape, np.uint8))
    with pytest.raises(FrameError, match="uint8"):
        downsample(np.zeros((8, 8, 3), np.int16))
    with pytest.raises(FrameError, match="uint8"):
        apply_log_gain(np.zeros((8, 8, 3), np.float32), np.zeros((4, 4, 3)))
    with pytest.raises(UserError):
        downsample(np.zeros((8, 8, 3), np.uint8), size=0)


def test_normalized_difference_eq14_and_black_pixels():
    c0 = np.array([[10.0, 0.0, 0.0, 255.0, 100.0]])
    c1 = np.array([[30.0, 0.0, 5.0, 255.0, 50.0]])
    x = normalized_difference(c0, c1)
    np.testing.assert_allclose(x, [[0.5, 0.0, 1.0, 0.0, -1 / 3]])
    assert x.dtype == np.float64
    # uint8 inputs: no wrap-around in the subtraction
    xu = normalized_difference(np.array([200], np.uint8), np.array([100], np.uint8))
    assert xu.dtype == np.float32 and xu[0] == pytest.approx(-1 / 3)
    # torch, same values, zero where black
    xt = normalized_difference(torch.tensor(c0), torch.tensor(c1))
    assert isinstance(xt, torch.Tensor)
    np.testing.assert_allclose(xt.numpy(), x)
    xt8 = normalized_difference(
        torch.zeros(3, dtype=torch.uint8), torch.zeros(3, dtype=torch.uint8)
    )
    assert torch.isfinite(xt8).all() and (xt8 == 0).all()
    seq = np.random.default_rng(0).uniform(1, 255, (5, 4, 4, 3))
    np.testing.assert_allclose(x_from_sequence(seq)[2], normalized_difference(seq[2], seq[3]))


def test_log_ratio_identity_exact():
    rng = np.random.default_rng(1)
    c0 = rng.uniform(1, 255, 1000)
    c1 = rng.uniform(1, 255, 1000)
    x = normalized_difference(c0, c1)
    np.testing.assert_allclose((1 + x) / (1 - x), c1 / c0, rtol=1e-12)
    np.testing.assert_allclose(log_ratio_from_x(x), np.log(c1 / c0), rtol=1e-10, atol=1e-12)
    assert np.isfinite(log_ratio_from_x(np.array([-1.0, 1.0]))).all()
    xt = torch.tensor(x)
    np.testing.assert_allclose(log_ratio_from_x(xt).numpy(), np.log(c1 / c0), rtol=1e-10)


def test_log_increment_equals_running_product_eq16():
    """Unfiltered, the log-domain rebuild equals the paper's running product exactly."""
    rng = np.random.default_rng(2)
    c = rng.uniform(50, 200, (40, 3, 3, 3))
    x1 = x_from_sequence(c)
    xn = np.clip(x1 * 3 + 1e-3 * rng.standard_normal(x1.shape), -0.9, 0.9)
    ct = [c[0]]
    for t in range(len(x1)):  # Eq. 16 with X~ = X_N
        ct.append((1 + xn[t]) / (1 - xn[t]) * ct[-1])
    ct = np.stack(ct)
    s = np.concatenate([np.zeros((1, 3, 3, 3)), np.cumsum(log_increment(x1, xn), axis=0)])
    np.testing.assert_allclose(np.log(ct / c), 2 * s, atol=1e-9)


# ---------------------------------------------------------------- inverse


def test_inverse_exact_when_no_change():
    frames = _frames(4, 37, 53)
    integ = LogGainIntegrator(fs=FS)
    o = integ(np.zeros((4, 36, 36, 3)))
    assert np.all(o == 0)
    for mode in ("multiplicative", "additive"):
        out = apply_log_gain(frames, o, mode=mode)
        np.testing.assert_array_equal(out, frames)
        assert out.dtype == np.uint8
    sos = design_bandpass(0.7, 2.5, FS)
    o_off = offline_log_gain(np.zeros((99, 6, 6, 3)), sos)
    assert o_off.shape == (100, 6, 6, 3) and np.all(o_off == 0)


def test_apply_log_gain_scales_correctly():
    rng = np.random.default_rng(3)
    frame = np.full((96, 128, 3), 100, np.uint8)
    frame[..., 1] = 50
    g = np.log(1.2)
    o = np.full((36, 36, 3), g)
    out = apply_log_gain(frame, o)
    np.testing.assert_array_equal(out[..., 0], 120)
    np.testing.assert_array_equal(out[..., 1], 60)
    # additive Eq. 17 on a flat frame gives the same result
    np.testing.assert_array_equal(apply_log_gain(frame, o, mode="additive"), out)
    # a spatially varying gain: a smooth low-res map is reproduced at full resolution
    ii, jj = np.meshgrid(np.arange(8), np.arange(8), indexing="ij")
    lo = np.stack([0.02 * ii - 0.01 * jj, 0.015 * jj, -0.01 * ii], axis=-1)  # smooth map
    frames = rng.integers(60, 120, (2, 64, 64, 3), dtype=np.uint8)
    out = apply_log_gain(frames, np.stack([lo, -lo]))
    up = cv2.resize(np.exp(lo).astype(np.float32), (64, 64), interpolation=cv2.INTER_LINEAR)
    np.testing.assert_allclose(out[0], np.clip(np.rint(frames[0] * up), 0, 255), atol=1)
    # on average the low-res mean log change is recovered
    ratio = downsample(out[1], size=8, dtype=np.float64) / downsample(frames[1], 8, np.float64)
    assert np.abs(np.log(ratio) - (-lo)).max() < 0.01


def test_black_and_saturated_pixels():
    frame = np.zeros((40, 60, 3), np.uint8)
    frame[:, 30:] = 255
    for o_val in (np.log(3.0), -np.log(3.0), 50.0, -50.0):
        o = np.full((36, 36, 3), o_val)
        for mode in ("multiplicative", "additive"):
            out = apply_log_gain(frame, o, mode=mode)
            assert out.dtype == np.uint8
        mult = apply_log_gain(frame, o)
        assert np.all(mult[:, :20] == 0)  # black stays black
        assert np.all(mult[:, 40:] == (255 if o_val > 0 else round(255 * np.exp(max(o_val, -8)))))
    # the representation of black and saturated pixels is finite
    x = normalized_difference(downsample(frame), downsample(frame))
    assert np.isfinite(x).all()
    with pytest.raises(ValueError, match="NaN"):
        apply_log_gain(frame, np.full((36, 36, 3), np.nan))
    with pytest.raises(FrameError, match="does not fit"):
        apply_log_gain(frame[None].repeat(2, 0), np.zeros((3, 36, 36, 3)))


def _sinusoid_clip(f0, a=0.01, seconds=40.0, shape=(3, 3, 3), seed=4):
    """Low-res colours with a known in-band log-colour sinusoid of amplitude ``a``."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * FS)) / FS
    base = rng.uniform(60, 200, shape)
    logc = a * np.sin(2 * np.pi * f0 * t)
    c = base * np.exp(logc)[:, None, None, None]
    return t, c


def _amplitude(t, y, f0):
    """Least-squares amplitude of the f0 component of y (T, ...) along time."""
    m = np.stack([np.sin(2 * np.pi * f0 * t), np.cos(2 * np.pi * f0 * t), np.ones_like(t)], 1)
    coef, *_ = np.linalg.lstsq(m, y.reshape(len(t), -1), rcond=None)
    return np.hypot(coef[0], coef[1])


@pytest.mark.parametrize("gain", [5.0, 20.0])
def test_known_in_band_gain_offline_and_causal(gain):
    f0 = band_centre(0.7, 2.5)
    t, c = _sinusoid_clip(f0)
    x1 = x_from_sequence(c)
    dx = (gain - 1) * x1
    logc = np.log(c)
    sos = design_bandpass(0.7, 2.5, FS)
    # offline, zero-phase: whole clip
    o = offline_log_gain(dx, sos)
    amp = _amplitude(t, logc + o, f0) / _amplitude(t, logc, f0)
    np.testing.assert_allclose(amp, gain, rtol=0.03)
    # causal, after a 10 s transient
    integ = LogGainIntegrator(0.7, 2.5, FS)
    oc = np.concatenate([np.zeros((1,) + dx.shape[1:]), integ(dx[:7]), integ(dx[7:])])
    keep = t > 10
    amp_c = _amplitude(t[keep], (logc + oc)[keep], f0) / _amplitude(t[keep], logc[keep], f0)
    np.testing.assert_allclose(amp_c, gain, rtol=0.10)
    # off-centre (1.0 Hz) the offline form still gives the gain
    t, c = _sinusoid_clip(1.0)
    o = offline_log_gain((gain - 1) * x_from_sequence(c), sos)
    amp = _amplitude(t, np.log(c) + o, 1.0) / _amplitude(t, np.log(c), 1.0)
    np.testing.assert_allclose(amp, gain, rtol=0.03)


def test_smooth_log_gain_is_a_gaussian_over_the_grid_only():
    """Reference: the sampled Gaussian, normalised, built directly in float64."""
    from rtmag.representations.colour import smooth_log_gain

    sigma = 1.5
    g = np.zeros((2, SIZE, SIZE, 3))
    g[0, 18, 17, 1] = 1.0  # an impulse in green on frame 0
    out = smooth_log_gain(g, sigma)
    r = int(4 * sigma + 0.5)
    x = np.arange(-r, r + 1)
    k = np.exp(-(x**2) / (2 * sigma**2))
    k /= k.sum()
    expect = np.zeros((SIZE, SIZE))
    expect[18 - r : 18 + r + 1, 17 - r : 17 + r + 1] = np.outer(k, k)
    np.testing.assert_allclose(out[0, ..., 1], expect, atol=1e-12)
    # not across colour or time
    assert not out[0, ..., 0].any() and not out[0, ..., 2].any() and not out[1].any()
    # a uniform change (the pulse over a whole skin) is left as it is, borders too
    u = np.full((3, SIZE, SIZE, 3), 0.01) * np.array([1.0, -2.0, 0.5])
    np.testing.assert_allclose(smooth_log_gain(u, sigma), u, rtol=1e-12)
    # independent element noise shrinks by about 1 / (2 sqrt(pi) sigma)
    rng = np.random.default_rng(0)
    n = rng.standard_normal((4, SIZE, SIZE, 3))
    ratio = smooth_log_gain(n, sigma)[:, 8:-8, 8:-8].std() / n.std()
    assert ratio == pytest.approx(1 / (2 * np.sqrt(np.pi) * sigma), rel=0.15)
    assert smooth_log_gain(g, 0.0) is g
    assert smooth_log_gain(g.astype(np.float32), sigma).dtype == np.float32


def test_causal_equals_offline_causal_reference():
    """Chunked streaming integrator == 2 * sosfilt(cumsum) computed at once."""
    from scipy import signal

    rng = np.random.default_rng(5)
    dx = 1e-3 * rng.standard_normal((300, 2, 2, 3))
    integ = LogGainIntegrator(fs=FS)
    out = np.concatenate([integ(dx[i : i + 13]) for i in range(0, 300, 13)])
    ref = 2 * signal.sosfilt(design_bandpass(0.7, 2.5, FS), np.cumsum(dx, 0), axis=0)
    np.testing.assert_allclose(out, ref, atol=1e-13)
    np.testing.assert_allclose(integ.S, dx.sum(0), atol=1e-12)
    assert integ.group_delay_s() == pytest.approx(0.3515, abs=1e-3)
    integ.reset()
    assert integ.S is None


def test_one_hour_stream_does_not_drift():
    n = int(3600 * FS)  # 108,000 frames
    rng = np.random.default_rng(6)
    dx = 1e-3 * rng.standard_normal((n, 4, 4, 3)) + 2e-4  # random walk + bias in S
    integ = LogGainIntegrator(fs=FS)
    chunk = 4000
    o = np.concatenate([integ(dx[i : i + chunk]) for i in range(0, n, chunk)])
    assert np.isfinite(o).all()
    minute = int(60 * FS)
    early = np.sqrt(np.mean(o[minute : 10 * minute] ** 2))
    late = np.sqrt(np.mean(o[-10 * minute :] ** 2))
    assert late <= 1.5 * early and early <= 1.5 * late
    # bounded: the raw sum S has wandered far, the log gain has not
    assert np.abs(integ.S).max() > 10
    assert np.abs(o).max() < 20 * early


def test_odd_sizes_round_trip():
    frames = _frames(3, 37, 53, seed=7)
    lo = downsample(frames)
    x = x_from_sequence(lo)
    integ = LogGainIntegrator(fs=FS)
    o = integ(2.0 * x)
    out = apply_log_gain(frames[1:], o)
    assert out.shape == (2, 37, 53, 3) and out.dtype == np.uint8
    out = apply_log_gain(frames[1:], o, mode="additive", lowres=lo[1:])
    assert out.shape == (2, 37, 53, 3)


def _common_change(rng, axis, t=300, noise=1.0):
    """Log gains ``(t, L, L, 3)``: one colour change ``axis * s(t)`` on every element
    (s a 1.2 Hz sinusoid at 30 fps) plus independent element noise of sd ``noise``."""
    s = np.sin(2 * np.pi * 1.2 * np.arange(t) / 30.0)
    return s[:, None, None, None] * np.asarray(axis) + noise * rng.standard_normal(
        (t, SIZE, SIZE, 3)
    )


def test_colour_axis_and_the_projection_on_it():
    """Reference: a change whose colour is known, under element noise 10 times its size;
    the reliability against the moment's eigenvalues from numpy in float64; the
    projection against g - (1 - r) (g - (g . v) v) computed directly."""
    from rtmag.representations.colour import colour_axis, project_on_axis

    rng = np.random.default_rng(3)
    v0 = np.array([0.2, 1.0, 0.6])
    v0 /= np.linalg.norm(v0)
    g = 0.01 * _common_change(rng, v0, noise=10.0)
    v, rel = colour_axis(g)
    assert np.linalg.norm(v) == pytest.approx(1.0)
    assert abs(v @ v0) > 0.995
    m = g.reshape(len(g), -1, 3).mean(1)
    lam = np.linalg.eigvalsh(m.T @ m)
    assert rel == pytest.approx((lam[2] - lam[1]) / lam[2], rel=1e-9)
    # the signal's power 0.5 against the mean's noise, (10 / 36)^2 = 0.077 per channel
    assert rel == pytest.approx(0.5 / (0.5 + (10 / 36) ** 2), abs=0.03)
    # noise alone: nearly as much power across any axis as along it
    assert colour_axis(0.01 * _common_change(rng, v0 * 0, noise=10.0))[1] < 0.25
    z = colour_axis(np.zeros((5, SIZE, SIZE, 3)))
    np.testing.assert_array_equal(z[0], [0.0, 1.0, 0.0])
    assert z[1] == 0.0
    along = np.einsum("...c,c->...", g, v)[..., None] * v
    p = project_on_axis(g, v)  # reliability 1: the component along the axis only
    np.testing.assert_allclose(p, along, rtol=1e-9, atol=1e-15)
    np.testing.assert_allclose(project_on_axis(p, v), p, rtol=1e-9, atol=1e-15)  # idempotent
    np.testing.assert_allclose(
        project_on_axis(g, v, 0.25), along + 0.75 * (g - along), rtol=1e-9, atol=1e-15
    )
    np.testing.assert_allclose(project_on_axis(g, v, 0.0), g, rtol=1e-9, atol=1e-15)
    # the common change is kept; the element noise keeps a third of its energy
    clean = 0.01 * _common_change(rng, v0, noise=0.0)
    assert np.linalg.norm(project_on_axis(clean, v)) / np.linalg.norm(clean) > 0.995
    noise = g - clean
    assert (project_on_axis(noise, v).var() / noise.var()) == pytest.approx(1 / 3, rel=0.05)
    across = np.cross(g, v)  # orthogonal to v everywhere: removed
    assert np.abs(project_on_axis(across, v)).max() < 1e-12
    assert project_on_axis(g.astype(np.float32), v).dtype == np.float32


def test_running_colour_axis_converges_waits_and_does_not_depend_on_chunking():
    """The stream's axis: frames before the warm-up pass unchanged, later ones are
    projected on the running axis with its reliability, which finds the known colour;
    frame by frame and in chunks give the same output; the running moment against a
    float64 computation."""
    from rtmag.representations.colour import ColourAxis, project_on_axis

    rng = np.random.default_rng(4)
    v0 = np.array([-0.1, 1.0, 0.4])
    v0 /= np.linalg.norm(v0)
    g = 0.01 * _common_change(rng, v0, t=240, noise=5.0)
    a = ColourAxis(halflife_frames=150.0, warmup=60)
    out = a(g)
    np.testing.assert_array_equal(out[:60], g[:60])
    axis, rel = a.axis
    assert abs(axis @ v0) > 0.995 and rel > 0.9
    np.testing.assert_allclose(out[-1], project_on_axis(g[-1], axis, rel), rtol=1e-12)
    b = ColourAxis(halflife_frames=150.0, warmup=60)
    chunks = [b(g[i : i + 37]) for i in range(0, len(g), 37)]
    np.testing.assert_array_equal(np.concatenate(chunks), out)
    # equal weights over the first 1 / rate frames, then forgetting with the half-life
    ref = np.zeros((3, 3))
    for k, gk in enumerate(g, start=1):
        m = gk.reshape(-1, 3).mean(0)
        step = max(1 - 0.5 ** (1 / 150.0), 1.0 / k)
        ref += step * (np.outer(m, m) - ref)
    np.testing.assert_allclose(b.moment, ref, rtol=1e-12)
    b.reset()
    assert b.frames == 0 and not b.moment.any()
    with pytest.raises(ValueError, match="halflife"):
        ColourAxis(halflife_frames=0.0, warmup=1)
