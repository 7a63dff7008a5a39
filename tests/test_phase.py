"""Complex steerable pyramid and the respiration (phase) representation.

Synthetic textures only: band-limited noise, shifted by sub-pixel amounts with an exact
FFT phase ramp (the pyramid's boundaries are circular, so the shift is exact too).
"""

from __future__ import annotations

import inspect
import math

import pytest
import torch
from scipy.optimize import minimize_scalar

from rtmag.errors import FrameError
from rtmag.representations.phase import (
    REPRESENTATION_SIZE,
    amplitude_weight,
    apply_phase_offsets,
    choose_r0,
    clip_offsets,
    phase_difference,
    phase_representation,
    render_change,
    representation_size,
    scale_offsets,
    to_band,
    weighted_phase_difference,
    wrapped_phase_difference,
)
from rtmag.representations.pyramid import (
    ORIENTATIONS,
    SteerablePyramid,
    band_shape,
    build,
    build_scale,
    centre_wavelength,
    min_frame_side,
    reconstruct,
)


def _freqs(h, w, dtype):
    return (
        torch.fft.fftfreq(h, dtype=dtype)[:, None],
        torch.fft.fftfreq(w, dtype=dtype)[None, :],
    )


def texture(h, w, profile, seed=0, dtype=torch.float64):
    """White noise filtered by ``profile(f)`` (f in cycles/pixel), unit standard deviation."""
    g = torch.Generator().manual_seed(seed)
    noise = torch.randn(h, w, generator=g, dtype=dtype)
    fy, fx = _freqs(h, w, dtype)
    mask = profile(torch.sqrt(fx**2 + fy**2))
    t = torch.fft.ifft2(torch.fft.fft2(noise) * mask).real
    return t / t.std()


def ring(h, w, fc, octaves=0.1, seed=0, dtype=torch.float64):
    """Isotropic texture concentrated at ``fc`` cycles/pixel (log-Gaussian ring)."""
    return texture(
        h,
        w,
        lambda f: torch.exp(-0.5 * (torch.log2(f.clamp_min(1e-9) / fc) / octaves) ** 2),
        seed,
        dtype,
    )


def band_texture(h, w, lo, hi, seed=0, dtype=torch.float64):
    return texture(h, w, lambda f: ((f >= lo) & (f <= hi)).to(dtype), seed, dtype)


def shift(img, dx, dy):
    """``img`` moved by ``(dx, dy)`` pixels (x right, y down), exactly, circularly."""
    h, w = img.shape[-2:]
    fy, fx = _freqs(h, w, img.dtype)
    ramp = torch.exp(-2j * math.pi * (fx * dx + fy * dy))
    return torch.fft.ifft2(torch.fft.fft2(img) * ramp).real


def rel_db(a, b):
    return 20 * math.log10(float((a - b).norm() / b.norm()))


# ---------------------------------------------------------------------------- pyramid


@pytest.mark.parametrize("dtype, limit_db", [(torch.float32, -40.0), (torch.float64, -200.0)])
@pytest.mark.parametrize("hw", [(96, 128), (97, 131)])
def test_round_trip(dtype, limit_db, hw):
    torch.manual_seed(0)
    x = torch.rand(2, 3, *hw, dtype=dtype) * 255
    pyr = build(x, 4)
    assert pyr.bands[0].dtype == (torch.complex64 if dtype == torch.float32 else torch.complex128)
    y = reconstruct(pyr)
    assert y.dtype == dtype and y.shape == x.shape
    err = rel_db(y.double(), x.double())
    assert err < limit_db, err
    if dtype == torch.float32:
        assert err < -120.0  # far better than the -40 dB asked for: ~1e-7


def test_shapes_and_class():
    x = torch.rand(1, 1, 480, 640)
    spyr = SteerablePyramid(4)
    pyr = spyr.build(x)
    assert [tuple(b.shape) for b in pyr.bands] == [
        (1, 4, 480, 640),
        (1, 4, 240, 320),
        (1, 4, 120, 160),
        (1, 4, 60, 80),
    ]
    assert pyr.highpass.shape == (1, 1, 480, 640) and pyr.lowpass.shape == (1, 1, 30, 40)
    assert band_shape((97, 131), 2) == (25, 33)
    assert spyr.reconstruct(pyr).shape == x.shape


def test_build_scale_equals_band_of_full_pyramid():
    x = torch.rand(2, 1, 100, 132, dtype=torch.float64)
    pyr = build(x, 4)
    for r in range(4):
        torch.testing.assert_close(build_scale(x, r), pyr.bands[r], rtol=0, atol=1e-12)


def test_batch_equals_singles():
    torch.manual_seed(1)
    x = torch.rand(3, 2, 64, 80, dtype=torch.float64)
    pyr = build(x, 3)
    y = reconstruct(pyr)
    for i in range(3):
        one = build(x[i : i + 1], 3)
        for a, b in zip(one.bands, pyr.bands):
            torch.testing.assert_close(a, b[i : i + 1], rtol=0, atol=1e-12)
        torch.testing.assert_close(reconstruct(one), y[i : i + 1], rtol=0, atol=1e-12)
    X = phase_difference(pyr, build(x.flip(0), 3), 1)
    X1 = phase_difference(build(x[:1], 3), build(x[2:3], 3), 1)
    torch.testing.assert_close(X[:1], X1, rtol=0, atol=1e-12)


def test_tiny_frame_is_a_clear_error():
    assert min_frame_side(4) == 64
    with pytest.raises(FrameError, match=r"40x90.*at least 64x64.*at most 3 scales"):
        build(torch.rand(1, 1, 40, 90), 4)
    with pytest.raises(FrameError, match="too small for the respiration representation"):
        representation_size((50, 50))
    with pytest.raises(FrameError, match="too small"):
        phase_representation(torch.rand(3, 1, 32, 32))
    with pytest.raises(FrameError, match=r"frame\[None, None\]"):
        build(torch.rand(64, 64))


# ---------------------------------------------------------------------------- forward


@pytest.mark.parametrize("r", [1, 2])
@pytest.mark.parametrize("dx, dy", [(0.2, 0.0), (0.0, 0.2), (-0.15, 0.0)])
def test_shift_gives_expected_phase_per_orientation(r, dx, dy):
    fc = 1.0 / centre_wavelength(r)
    i0 = ring(128, 128, fc)
    i1 = shift(i0, dx, dy)
    p0, p1 = build(i0[None, None], 4), build(i1[None, None], 4)
    X = phase_difference(p0, p1, r)[0]
    assert X.shape == (4, *band_shape((128, 128), r))
    assert float(X.abs().max()) <= math.pi
    # amplitude-weighted global estimate, and the plain per-pixel median
    z = (p1.bands[r] * p0.bands[r].conj()).mean(dim=(-2, -1))[0]
    est = torch.angle(z)
    med = X.flatten(1).median(dim=1).values
    # orientation k sees frequencies around u_k; the cos^6-weighted mean of cos is 0.93
    for k in range(ORIENTATIONS):
        u = (math.cos(k * math.pi / 4), math.sin(k * math.pi / 4))
        expected = -2 * math.pi * fc * (dx * u[0] + dy * u[1]) * 0.93
        tol = 0.1 * 2 * math.pi * fc * 0.2
        assert abs(float(est[k]) - expected) < tol, (k, float(est[k]), expected)
        assert abs(float(med[k]) - expected) < 1.5 * tol, (k, float(med[k]), expected)
    strongest = int(est.abs().argmax())
    assert strongest == (0 if dx else 2)


def test_phase_difference_is_wrapped_angle():
    c0 = torch.polar(torch.ones(5), torch.tensor([3.0, -3.0, 0.1, 1.0, 2.0]))
    c1 = torch.polar(torch.ones(5), torch.tensor([-3.0, 3.0, 0.3, 1.0, -2.0]))
    X = wrapped_phase_difference(c0, c1)
    expected = torch.tensor([2 * math.pi - 6.0, 6.0 - 2 * math.pi, 0.2, 0.0, 2 * math.pi - 4.0])
    torch.testing.assert_close(X, expected, rtol=0, atol=1e-6)


def test_weighted_phase_difference_agrees_on_uniform_shift():
    i0 = ring(96, 96, 1 / 8)
    p0, p1 = build(i0[None, None], 3), build(shift(i0, 0.1, 0)[None, None], 3)
    plain = phase_difference(p0, p1, 1)
    w = weighted_phase_difference(p0, p1, 1, sigma=2.0)
    torch.testing.assert_close(weighted_phase_difference(p0, p1, 1, sigma=0), plain)
    # smoothing removes the scatter of the per-pixel estimate but keeps its centre
    assert float(w[0, 0].std()) < float(plain[0, 0].std())
    assert abs(float(w[0, 0].median() - plain[0, 0].median())) < 0.01


# ---------------------------------------------------------------------------- geometry


@pytest.mark.parametrize(
    "hw, r0, band",
    [
        ((480, 640), 2, (120, 160)),
        ((720, 1280), 3, (90, 160)),
        ((1080, 1920), 3, (135, 240)),
        ((240, 320), 1, (120, 160)),
        ((640, 480), 2, (160, 120)),  # portrait
        ((246, 246), 1, (123, 123)),
        ((492, 492), 2, (123, 123)),
    ],
)
def test_representation_geometry(hw, r0, band):
    assert choose_r0(hw) == r0
    geo = representation_size(hw)
    assert (geo.r0, geo.band_hw, geo.shape) == (r0, band, (4, 123, 123))
    crop = representation_size(hw, fit="crop").crop
    s = min(band)
    assert crop[2:] == (s, s) and crop[0] == (band[0] - s) // 2 and crop[1] == (band[1] - s) // 2


def test_phase_representation_of_a_clip():
    i0 = ring(240, 320, 1 / centre_wavelength(1), octaves=0.3)
    frames = torch.stack([shift(i0, 0.1 * t, 0) for t in range(3)])[:, None].float()
    X = phase_representation(frames)
    assert X.shape == (2, 4, REPRESENTATION_SIZE, REPRESENTATION_SIZE) and X.dtype == torch.float32
    assert choose_r0((240, 320)) == 1
    Xc = phase_representation(frames, fit="crop")
    assert Xc.shape == X.shape
    # rightward motion: orientation 0 negative, 135 positive, both pairs alike
    assert float(X[:, 0].median()) < -0.05 and float(X[:, 3].median()) > 0.03
    torch.testing.assert_close(X[0], X[1], rtol=0, atol=0.05)


def test_to_band_crop_places_centre_square():
    o = torch.ones(1, 4, 123, 123)
    out = to_band(o, (120, 160), "crop")
    assert out.shape == (1, 4, 120, 160)
    assert float(out[..., :, 20:140].min()) == pytest.approx(1.0)
    assert float(out[..., :, :20].abs().max()) == 0 and float(out[..., :, 140:].abs().max()) == 0
    assert to_band(o, (120, 160)).shape == (1, 4, 120, 160)


# ---------------------------------------------------------------------------- inverse


def _measured_shift(out, ref):
    """Shift s (pixels, x) that best explains ``out`` as ``ref`` moved by s."""
    res = minimize_scalar(
        lambda s: float(((out - shift(ref, s, 0)) ** 2).mean()), bounds=(-3, 3), method="bounded"
    )
    return res.x


def test_phase_offsets_magnify_a_shift():
    i0 = band_texture(128, 128, 1 / 24, 1 / 6)
    d, alpha = 0.1, 4.0
    i1 = shift(i0, d, 0)
    p0, p1 = build(i0[None, None], 4), build(i1[None, None], 4)
    # alpha times the measured phase difference at every scale
    bands = [
        b1 * torch.polar(torch.ones(()).double(), alpha * wrapped_phase_difference(b0, b1))
        for b0, b1 in zip(p0.bands, p1.bands)
    ]
    out = reconstruct(p1.with_bands(bands))[0, 0]
    assert _measured_shift(out, i1) == pytest.approx(alpha * d, rel=0.15)
    # Eq. 22: measured at r0 only, other scales by 0.5^(r - r0), with and without weighting
    for r0 in (1, 2):
        X = phase_difference(p0, p1, r0)
        for sigma in (None, 1.0):
            q = apply_phase_offsets(p1, alpha * X, r0, amplitude_sigma=sigma)
            out = reconstruct(q)[0, 0]
            assert _measured_shift(out, i1) == pytest.approx(alpha * d, rel=0.15), (r0, sigma)


def test_zero_offsets_change_nothing_and_colour_broadcast():
    x = torch.rand(2, 3, 64, 96, dtype=torch.float64)
    pyr = build(x, 3)
    same = reconstruct(apply_phase_offsets(pyr, torch.zeros(2, 4, 123, 123), 1))
    torch.testing.assert_close(same, x, rtol=0, atol=1e-12)
    o = torch.rand(2, 4, 32, 48, dtype=torch.float64)
    a = apply_phase_offsets(pyr, o, 1, amplitude_sigma=None)
    b = apply_phase_offsets(pyr, o.repeat(1, 3, 1, 1), 1, amplitude_sigma=None)
    for u, v in zip(a.bands, b.bands):
        torch.testing.assert_close(u, v)
    with pytest.raises(ValueError, match="do not fit"):
        apply_phase_offsets(pyr, torch.zeros(2, 5, 32, 48), 1)
    with pytest.raises(ValueError, match="r0 must be"):
        apply_phase_offsets(pyr, o, 3)


@pytest.mark.parametrize("mode", ["gate", "clamp"])
def test_clipping_never_exceeds_bound(mode):
    torch.manual_seed(2)
    o = 12.0 * torch.randn(2, 4, 30, 40, dtype=torch.float64)
    shapes = [band_shape((120, 160), r) for r in range(4)]
    r0 = 2
    per_scale = scale_offsets(o, shapes, r0, clip=True, mode=mode)
    for r, o_r in enumerate(per_scale):
        assert o_r.shape[-2:] == shapes[r]
        assert float(o_r.abs().max()) <= 2 * math.pi * min(1.0, 0.5 ** (r - r0)) + 1e-12
    # at r0 itself: values under the bound are untouched (gate) or equal (clamp)
    small = o.abs() < 2 * math.pi
    torch.testing.assert_close(per_scale[r0][small], o[small])
    if mode == "gate":
        assert float(per_scale[r0][~small].abs().max()) == 0.0
        # coarser scales are gated where r0 is (the paper's factor before scaling)
        assert float(per_scale[3].abs().max()) <= math.pi
    unclipped = scale_offsets(o, shapes, r0, clip=False)
    torch.testing.assert_close(
        unclipped[3],
        torch.nn.functional.interpolate(
            o, size=shapes[3], mode="bilinear", align_corners=False, antialias=True
        )
        * 0.5,
    )
    assert (
        float(
            clip_offsets(torch.tensor([7.0, -7.0, 1.0], dtype=torch.float64), mode=mode).abs().max()
        )
        <= 2 * math.pi
    )
    # through apply_phase_offsets too: the applied phase change per band stays in bound
    x = torch.rand(2, 1, 120, 160, dtype=torch.float64)
    pyr = build(x, 4)
    q = apply_phase_offsets(pyr, o, r0, mode=mode, amplitude_sigma=None)
    for r, (b0, b1) in enumerate(zip(pyr.bands, q.bands)):
        change = wrapped_phase_difference(b0, b1).abs()
        assert float(change.max()) <= min(math.pi, 2 * math.pi * min(1.0, 0.5 ** (r - r0))) + 1e-9


def test_amplitude_weighting_silences_flat_regions():
    h, w = 64, 128
    img = band_texture(h, w, 1 / 16, 1 / 4)
    mask = torch.zeros(h, w, dtype=torch.float64)
    mask[:, 16:48] = 1.0  # textured stripe; the rest flat plus faint noise
    g = torch.Generator().manual_seed(3)
    img = img * mask + 1e-3 * torch.randn(h, w, generator=g, dtype=torch.float64)
    pyr = build(img[None, None], 3)
    r0 = 0
    amp = pyr.bands[r0].abs()
    o = torch.ones_like(amp)
    wo = amplitude_weight(o, amp, sigma=1.0, floor=0.1)
    assert float(wo[..., 24:40].median()) > 0.95
    assert float(wo[..., 72:108].abs().max()) < 0.05
    # and apply_phase_offsets uses it: the flat part's phases are untouched
    q = apply_phase_offsets(pyr, o[:, :4], r0, amplitude_sigma=1.0, clip=False)
    flat_change = wrapped_phase_difference(pyr.bands[r0], q.bands[r0])[..., 72:108].abs()
    assert float(flat_change.max()) < 0.05


# ---------------------------------------------------------------------------- fast path


def _offsets(b, k, scale, seed):
    """Smooth random offsets ``(b, k, 123, 123)`` reaching about ``scale`` radians."""
    g = torch.Generator().manual_seed(seed)
    coarse = torch.randn(b, k, 9, 9, generator=g, dtype=torch.float64)
    o = torch.nn.functional.interpolate(coarse, size=(123, 123), mode="bilinear")
    return (scale * o / o.abs().amax()).float()


# At 4x the r0 offset the finest scale passes the 2 pi bound (gated or clamped there).
@pytest.mark.parametrize("mode", ["gate", "clamp"])
@pytest.mark.parametrize("sigma", [None, 1.0])
@pytest.mark.parametrize("fit", ["resize", "crop"])
def test_render_change_equals_reference(mode, sigma, fit):
    """``render_change`` = ``reconstruct(apply_phase_offsets(build(y))) - y``: max
    abs difference <= 1e-3 on 0-255 luma in float32 (both are within ~2e-4 of the
    float64 result), 1e-9 in float64; odd frame sizes, colour broadcast or per colour."""
    cases = [((97, 130), 1, 4, 1, 4), ((97, 130), 3, 4, 1, 3), ((96, 131), 3, 12, 0, 3)]
    for (h, w), c, k, r0, scales in cases:
        g = torch.Generator().manual_seed(h + c)
        y = 255 * torch.rand(2, c, h, w, generator=g, dtype=torch.float64)
        o = _offsets(2, k, 3.0, seed=c).double()
        kw = dict(mode=mode, amplitude_sigma=sigma, fit=fit)
        for dtype, tol in ((torch.float32, 1e-3), (torch.float64, 1e-9)):
            yd, od = y.to(dtype), o.to(dtype)
            want = reconstruct(apply_phase_offsets(build(yd, scales), od, r0, **kw)) - yd
            got = render_change(yd, od, r0, scales, **kw)
            assert got.dtype == dtype and got.shape == yd.shape
            assert float(want.abs().max()) > 1.0  # the offsets do change the frames
            err = float((got - want).abs().max())
            assert err <= tol, ((h, w), c, k, dtype, err)


def test_render_change_zero_offsets_and_mixed_batch():
    y = 255 * torch.rand(3, 1, 97, 130)
    zero = render_change(y, torch.zeros(3, 4, 123, 123), 1, 3)
    assert torch.equal(y + zero, y) and not zero.any()  # output = input exactly
    o = _offsets(3, 4, 1.0, seed=5)
    o[1] = 0.0  # a frame without offset in a batch of moving ones
    got = render_change(y, o, 1, 3)
    assert not got[1].any() and got[0].abs().max() > 0.1
    want = reconstruct(apply_phase_offsets(build(y, 3), o, 1)) - y
    assert float((got - want).abs().max()) <= 1e-3
    # no clipping at all, and the checks of apply_phase_offsets
    want = reconstruct(apply_phase_offsets(build(y, 3), 4 * o, 1, clip=False)) - y
    assert float((render_change(y, 4 * o, 1, 3, clip=False) - want).abs().max()) <= 1e-3
    with pytest.raises(ValueError, match="do not fit"):
        render_change(y, torch.zeros(3, 5, 123, 123), 1, 3)
    with pytest.raises(ValueError, match="r0 must be"):
        render_change(y, o, 3, 3)
    with pytest.raises(ValueError, match="mode must be"):
        render_change(y, o, 1, 3, mode="wrap")


def test_render_change_defaults_follow_apply_phase_offsets():
    """The fast path and the reference must not drift apart when a default changes."""
    fast = inspect.signature(render_change).parameters
    ref = inspect.signature(apply_phase_offsets).parameters
    for name in ("clip", "bound", "mode", "amplitude_sigma", "amplitude_floor", "fit"):
        assert fast[name].default == ref[name].default, name
    assert fast["num_scales"].default == inspect.signature(build).parameters["num_scales"].default


@pytest.mark.parametrize("mode", ["gate", "clamp"])
def test_scale_offsets_equals_its_definition(mode):
    """``scale_offsets`` skips the clipping where no value can reach the bound and clips
    in place otherwise: the values are those of ``clip_offsets(resample(o) * f)``."""
    shapes = [band_shape((120, 160), r) for r in range(4)]
    for peak in (0.5, 1.0, 3.0, 12.0):  # 0.5: nothing clipped; 12: clipped at r0 too
        o = _offsets(2, 4, peak, seed=7)[..., :30, :40].contiguous()
        o[0, 0, 3, 4] = -peak  # a negative extreme
        for r, got in enumerate(scale_offsets(o, shapes, 2, mode=mode)):
            f = 0.5 ** (r - 2)
            resampled = torch.nn.functional.interpolate(
                o, size=shapes[r], mode="bilinear", align_corners=False, antialias=r > 2
            )
            want = clip_offsets(resampled * f, 2 * math.pi * min(1.0, f), mode)
            assert torch.equal(got, want), (peak, r)
    # a non-finite offset takes the reference path: a gated NaN becomes 0
    o[0, 0, 0, 0] = float("nan")
    fine = scale_offsets(o, shapes, 2, mode="gate")[0]
    assert not fine.isnan().any()
    with pytest.raises(ValueError, match="bound must be"):
        scale_offsets(o, shapes, 2, bound=0.0)
