"""Motion baselines (rtmag.baselines.phase, VAMPhase): the gain of a sub-pixel sinusoidal
translation of a textured image, in band and out of band, causal streaming, and that
a colour change is not what they magnify."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import signal

from rtmag.baselines import PhaseMagnifier, VAMPhase, create_method, dog_response
from rtmag.errors import FrameError, UserError

FPS = 30.0
BAND = (0.7, 2.5)
N = 64


def _freqs():
    fy = np.fft.fftfreq(N)[:, None] * np.ones((1, N))
    fx = np.fft.fftfreq(N)[None, :] * np.ones((N, 1))
    return fx, fy


def texture_spectrum(seed=0):
    """Spectrum of a band-limited random texture (0.02-0.18 cycles/pixel), std 1/8."""
    fx, fy = _freqs()
    r = np.hypot(fx, fy)
    spec = np.fft.fft2(np.random.default_rng(seed).standard_normal((N, N)))
    spec *= (r > 0.02) & (r < 0.18)
    return spec / (np.real(np.fft.ifft2(spec)).std() * 8)


def translated(spec, dx):
    """The texture moved right by ``dx`` pixels (exact, periodic: a Fourier shift)."""
    fx, _ = _freqs()
    return np.real(np.fft.ifft2(spec * np.exp(-2j * np.pi * fx * dx)))


def moving_clip(freqs_amps, t=150, seed=0):
    """Grey RGB float clip of the texture translated by ``sum a sin(2 pi f t)`` pixels."""
    spec = texture_spectrum(seed)
    tt = np.arange(t) / FPS
    d = sum(a * np.sin(2 * np.pi * f * tt) for f, a in freqs_amps)
    frames = np.stack([0.5 + translated(spec, x) for x in d])
    return np.repeat(frames[..., None], 3, axis=-1), spec, tt


def shift_of(frames, spec):
    """Horizontal shift (pixels) of each frame against the texture: the weighted least-
    squares slope of the cross-spectrum's phase over 0.03-0.15 cycles/pixel."""
    fx, fy = _freqs()
    sel = (np.hypot(fx, fy) > 0.03) & (np.hypot(fx, fy) < 0.15)
    a = np.stack([-2 * np.pi * fx[sel], -2 * np.pi * fy[sel]], axis=1)
    out = []
    for f in np.asarray(frames, np.float64):
        g = f.mean(axis=-1)
        c = np.fft.fft2(g - g.mean())[sel] * np.conj(spec[sel])
        w = np.abs(c)
        out.append(np.linalg.lstsq(a * w[:, None], np.angle(c) * w, rcond=None)[0][0])
    return np.array(out)


def amplitudes(x, freqs, tt, sl=slice(None)):
    """Amplitudes of the given frequencies in ``x``, fitted jointly (with a constant)."""
    t = tt[sl]
    cols = [np.ones_like(t)] + [g(2 * np.pi * f * t) for f in freqs for g in (np.sin, np.cos)]
    c = np.linalg.lstsq(np.stack(cols, axis=1), x[sl], rcond=None)[0][1:]
    return np.hypot(c[0::2], c[1::2])


def motion_gain(out, inp, spec, freqs, tt, sl=slice(30, -30)):
    return amplitudes(shift_of(out, spec), freqs, tt, sl) / amplitudes(
        shift_of(inp * 255.0, spec), freqs, tt, sl
    )


def test_shift_estimator_reads_the_true_motion():
    x, spec, tt = moving_clip([(1.2, 0.1)])
    np.testing.assert_allclose(
        shift_of(x * 255.0, spec), 0.1 * np.sin(2 * np.pi * 1.2 * tt), atol=1e-9
    )


@pytest.mark.parametrize("flt", ["ideal", "butter"])
@pytest.mark.parametrize("alpha", [5.0, 20.0])
def test_phase_in_band_gain_is_one_plus_alpha(flt, alpha):
    x, spec, tt = moving_clip([(1.2, 0.1)])
    out = PhaseMagnifier(FPS, BAND, alpha, filter=flt)(x)
    assert out.dtype == np.uint8 and out.shape == x.shape
    (g,) = motion_gain(out, x, spec, (1.2,), tt)
    assert g == pytest.approx(1 + alpha, rel=0.10)


def test_phase_leaves_out_of_band_motion_alone():
    x, spec, tt = moving_clip([(0.2, 0.3), (6.0, 0.3)], t=300)
    for flt in ("ideal", "butter"):
        out = PhaseMagnifier(FPS, BAND, 10.0, filter=flt)(x)
        g = motion_gain(out, x, spec, (0.2, 6.0), tt, sl=slice(60, -60))
        np.testing.assert_allclose(g, 1.0, atol=0.03, err_msg=flt)


def test_phase_causal_gain_as_its_filter_predicts():
    x, spec, tt = moving_clip([(1.2, 0.1)])
    m = PhaseMagnifier(FPS, BAND, 10.0, causal=True)
    (g,) = motion_gain(m(x), x, spec, (1.2,), tt, sl=slice(60, None))
    _, h = signal.sosfreqz(m.sos, worN=[1.2], fs=FPS)
    assert g == pytest.approx(abs(1 + 10.0 * h[0]), rel=0.10)


def test_vam_motion_gain_as_its_filter_predicts():
    x, spec, tt = moving_clip([(1.2, 0.1), (0.2, 0.3)])
    out = VAMPhase(FPS, BAND, 10.0)(x)
    centre = np.sqrt(BAND[0] * BAND[1])
    predicted = 1 + 10.0 * dog_response(np.array([1.2, 0.2]), FPS, centre)
    np.testing.assert_allclose(motion_gain(out, x, spec, (1.2, 0.2), tt), predicted, rtol=0.10)


@pytest.mark.parametrize("cls", [PhaseMagnifier, VAMPhase])
def test_motion_streaming_in_chunks_equals_causal_at_once(cls):
    x, _, _ = moving_clip([(1.2, 0.2)], t=40)
    whole = cls(FPS, BAND, 10.0, causal=True)(x)
    m = cls(FPS, BAND, 10.0)
    parts, i = [], 0
    for n in (1, 9, 2, 28):
        parts.append(m.push(x[i : i + n]))
        i += n
    np.testing.assert_array_equal(np.concatenate(parts), whole)


def test_phase_does_not_magnify_a_colour_change():
    """A multiplicative in-band brightness change (the pulse's kind) keeps every phase:
    the output's change is the input's (why phase is a motion-only baseline)."""
    x, spec, tt = moving_clip([(1.2, 0.0)])
    x = x * (1 + 0.01 * np.sin(2 * np.pi * 1.2 * tt))[:, None, None, None]
    out = PhaseMagnifier(FPS, BAND, 20.0)(x).astype(np.float64)
    (g,) = amplitudes(out.mean(axis=(1, 2, 3)), (1.2,), tt) / amplitudes(
        x.mean(axis=(1, 2, 3)) * 255.0, (1.2,), tt
    )
    assert g == pytest.approx(1.0, abs=0.05)


def test_phase_bad_settings_and_frames_are_clear_errors():
    with pytest.raises(UserError, match="band"):
        create_method("phase", band=(2.5, 0.7))
    with pytest.raises(UserError, match="filter"):
        create_method("phase", filter="box")
    with pytest.raises(FrameError, match="at most"):
        PhaseMagnifier(num_scales=9)(np.zeros((4, 64, 64, 3), np.uint8))
    with pytest.raises(FrameError, match="shape"):
        PhaseMagnifier()(np.zeros((4, 64, 64), np.uint8))
    with pytest.raises(UserError, match="--causal"):
        PhaseMagnifier(max_memory_gb=1e-4)(np.zeros((40, 64, 64, 3), np.uint8))
