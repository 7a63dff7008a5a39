"""Rate estimation: synthetic signals with known rates, scipy periodogram as reference."""

import numpy as np
import pytest
from scipy import signal

from rtmag.errors import UserError
from rtmag.vitals import RESPIRATION_BAND, RateEstimate, RateTracker, estimate_rate

FS = 30.0


def _sine(bpm, seconds, fs=FS, noise=0.0, seed=0, phase=0.3):
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * fs)) / fs
    return t, np.sin(2 * np.pi * bpm / 60 * t + phase) + noise * rng.standard_normal(len(t))


def test_sinusoid_72_bpm_with_noise():
    for seed in range(3):
        _, x = _sine(72.0, 20, noise=0.5, seed=seed)
        est = estimate_rate(x + 3.0, FS)  # an offset does not matter
        assert isinstance(est, RateEstimate)
        assert est.rate_bpm == pytest.approx(72.0, abs=1.0)
        assert est.freq_hz == pytest.approx(est.rate_bpm / 60)
        assert est.confidence > 0.8


def test_off_bin_rate_is_interpolated():
    # a clean tone between FFT bins: parabolic interpolation is far finer than 1 bpm
    for bpm in (50.3, 72.0, 97.77, 140.1):
        _, x = _sine(bpm, 15)
        est = estimate_rate(x, FS)
        assert est.rate_bpm == pytest.approx(bpm, abs=0.1)
        assert est.confidence > 0.9


def test_white_noise_has_low_confidence():
    rng = np.random.default_rng(1)
    conf = [estimate_rate(rng.standard_normal(int(30 * FS)), FS).confidence for _ in range(10)]
    assert np.mean(conf) < 0.4 and max(conf) < 0.6
    assert all(0.0 <= c <= 1.0 for c in conf)


def test_matches_scipy_periodogram_peak():
    for seed in range(5):
        _, x = _sine(60 + 12 * seed, 20, noise=1.0, seed=seed)
        est = estimate_rate(x, FS, bandpass=False)
        nfft = 8192
        f, p = signal.periodogram(x, FS, window="hann", nfft=nfft, detrend="linear")
        band = (f >= 0.7) & (f <= 2.5)
        f_ref = f[band][np.argmax(p[band])]
        assert abs(est.freq_hz - f_ref) <= FS / nfft
        # the band-pass does not move the peak by more than ~0.5 bpm
        assert estimate_rate(x, FS).rate_bpm == pytest.approx(est.rate_bpm, abs=0.5)


def test_derivative_reads_the_differenced_signal_s_rate():
    """The networks output a first difference; ``derivative=True`` reads the rate of the
    signal it differences. Reference: the same peak search on a float64 periodogram of
    the undifferenced wave (scipy)."""
    for bpm, h2 in ((60.0, 0.7), (55.0, 0.6), (70.0, 0.8)):
        t = np.arange(int(10 * FS)) / FS  # the demo's 10 s window
        f0 = bpm / 60
        wave = np.sin(2 * np.pi * f0 * t) + h2 * np.sin(4 * np.pi * f0 * t + 1.0)
        d = np.diff(wave)
        # differencing doubles the harmonic's amplitude: read plainly it wins
        assert estimate_rate(d, FS).rate_bpm == pytest.approx(2 * bpm, abs=1.5)
        est = estimate_rate(d, FS, derivative=True)
        assert est.rate_bpm == pytest.approx(bpm, abs=1.0)
        f, p = signal.periodogram(wave, FS, window="hann", nfft=8192, detrend="linear")
        band = (f >= 0.7) & (f <= 2.5)
        assert est.freq_hz == pytest.approx(f[band][np.argmax(p[band])], abs=0.02)
    # the weight is the difference's own response: a pure tone reads the same either way
    for bpm in (45.0, 72.0, 140.0):
        _, x = _sine(bpm, 15)
        assert estimate_rate(np.diff(x), FS, derivative=True).rate_bpm == pytest.approx(
            bpm, abs=0.1
        )
    # white noise in the derivative (a random walk): the running sum's spectrum falls
    # as 1/f^2, so it scores higher than white noise read plainly, but mostly under 0.55
    rng = np.random.default_rng(3)
    noise = [rng.standard_normal(int(10 * FS)) for _ in range(20)]
    conf = [estimate_rate(x, FS, derivative=True).confidence for x in noise]
    plain = [estimate_rate(x, FS).confidence for x in noise]
    assert np.mean(plain) < np.mean(conf) < 0.5


def test_jittered_timestamps():
    rng = np.random.default_rng(2)
    n = int(20 * FS)
    t = np.arange(n) / FS + rng.uniform(-0.005, 0.005, n)  # 5 ms jitter
    x = np.sin(2 * np.pi * 1.2 * t) + 0.2 * rng.standard_normal(n)
    est = estimate_rate(x, FS, t=t)
    assert est.rate_bpm == pytest.approx(72.0, abs=1.0) and est.confidence > 0.8
    # variable frame rate: 20-40 fps, fs taken from the median spacing
    dt = rng.uniform(1 / 40, 1 / 20, 800)
    t = np.cumsum(dt)
    est = estimate_rate(np.sin(2 * np.pi * 1.5 * t), t=t)
    assert est.rate_bpm == pytest.approx(90.0, abs=1.0)
    with pytest.raises(UserError, match="increasing"):
        estimate_rate(x[:3], FS, t=np.array([0.0, 0.0, 1.0]))


def test_short_input_gives_none():
    _, x = _sine(72, 2.5)  # < 2 periods of 0.7 Hz
    assert estimate_rate(x, FS) == RateEstimate(None, 0.0, None)
    assert estimate_rate(np.zeros(0), FS).rate_bpm is None
    assert estimate_rate(np.ones(1), t=np.zeros(1)).rate_bpm is None
    assert estimate_rate(np.zeros(int(10 * FS)), FS).rate_bpm is None  # no power
    _, x = _sine(72, 3.0)  # just over two periods: an answer, however rough
    assert estimate_rate(x, FS).rate_bpm is not None


def test_bad_arguments():
    with pytest.raises(UserError, match="fs"):
        estimate_rate(np.zeros(100))
    with pytest.raises(UserError, match="fs/2"):
        estimate_rate(np.zeros(100), fs=4.0)  # 2.5 Hz is above Nyquist
    with pytest.raises(UserError):
        RateTracker(FS, window_s=0)


def test_respiration_band():
    _, x = _sine(15, 60, fs=10.0, noise=0.3)
    est = estimate_rate(x, 10.0, band=RESPIRATION_BAND)
    assert est.rate_bpm == pytest.approx(15.0, abs=0.5)


def test_tracker_follows_a_changing_rate():
    seconds = 60.0
    t = np.arange(int(seconds * FS)) / FS
    f = 1.0 + 0.5 * t / seconds  # 60 -> 90 bpm
    phase = 2 * np.pi * np.cumsum(f) / FS
    x = np.sin(phase) + 0.2 * np.random.default_rng(3).standard_normal(len(t))
    tr = RateTracker(FS, window_s=10.0, update_every_s=1.0)
    seen = []
    for i, v in enumerate(x):
        est = tr.push(v)
        if tr.updated_at == t[i] and est.rate_bpm is not None:
            centre = max(t[i] - 5.0, 0.0)
            seen.append((t[i], est.rate_bpm, 60 * (1.0 + 0.5 * centre / seconds)))
    seen = np.array(seen)
    assert len(seen) >= 50  # one estimate a second once the window has 2 periods
    assert seen[0, 0] < 4.0
    late = seen[seen[:, 0] >= 10]
    np.testing.assert_allclose(late[:, 1], late[:, 2], atol=1.5)
    assert tr.current.rate_bpm > 85


def test_tracker_with_timestamps_and_extend():
    rng = np.random.default_rng(4)
    n = int(30 * FS)
    t = 100.0 + np.arange(n) / FS + rng.uniform(-0.005, 0.005, n)
    x = np.sin(2 * np.pi * 1.2 * t)
    tr = RateTracker(FS)
    est = tr.extend(x, t)
    assert est.rate_bpm == pytest.approx(72.0, abs=1.0)
    with pytest.raises(UserError, match="not after"):
        tr.push(0.0, t[-1])
    with pytest.raises(UserError, match="every sample or for none"):
        tr.push(0.0)
    tr.reset()
    assert tr.current.rate_bpm is None
    tr.extend(x)  # no timestamps after a reset is fine
    assert tr.current.rate_bpm == pytest.approx(72.0, abs=1.0)


def test_pos_reads_the_pulse_of_a_synthetic_skin_patch():
    from rtmag.vitals import pos_pulse

    fps, hr = 30.0, 66.0
    t = np.arange(int(20 * fps)) / fps
    rng = np.random.default_rng(1)
    pulse = np.sin(2 * np.pi * hr / 60 * t)
    light = 1 + 0.02 * np.sin(2 * np.pi * 0.2 * t)  # illumination change: all channels
    skin = np.array([180.0, 130.0, 110.0])
    rgb = light[:, None] * (skin + 0.4 * pulse[:, None] * np.array([0.33, 0.77, 0.53]))
    rgb += rng.normal(0, 0.05, rgb.shape)
    est = estimate_rate(pos_pulse(rgb, fps), fs=fps)
    assert abs(est.rate_bpm - hr) < 1.5
    # the illumination change is removed: the green channel alone is dominated by it
    assert abs(estimate_rate(rgb[:, 1], fs=fps, band=(0.1, 2.5)).rate_bpm - 12) < 2


def test_the_printed_rate_says_when_it_is_unreliable():
    """`rtmag magnify` / `webcam` / `demo` print the rate with its confidence; under 0.55
    (what the network's reading of a pulse-free clip can score) the line says the
    reading is unreliable."""
    from rtmag.commands.magnify import rate_line

    good = {"mode": "pulse", "heart_rate_bpm": 72.04, "heart_rate_confidence": 0.81}
    assert rate_line(good) == "heart rate: 72.0 bpm (confidence 0.81)"
    weak = {"mode": "pulse", "heart_rate_bpm": 142.7, "heart_rate_confidence": 0.28}
    assert rate_line(weak).startswith("heart rate: 142.7 bpm (confidence 0.28): unreliable")
    resp = {"mode": "respiration", "breathing_rate_bpm": None, "breathing_rate_confidence": 0}
    assert rate_line(resp) == "breathing rate: unknown (confidence 0.00)"
    edge = {"mode": "pulse", "heart_rate_bpm": 60.0, "heart_rate_confidence": 0.52}
    assert "unreliable (under 0.55" in rate_line(edge)
