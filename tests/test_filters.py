"""rtmag.filters against scipy: causal SOS filtering, chunking, zero-phase, group delay."""

import numpy as np
import pytest
from scipy import signal

from rtmag.errors import FrameError, UserError
from rtmag.filters import (
    RunningSum,
    StreamingBandpass,
    band_centre,
    design_bandpass,
    group_delay_s,
    min_zero_phase_length,
    sosfilt_step,
    steady_state,
    zero_phase,
)

FS = 30.0
LOW, HIGH = 0.7, 2.5


@pytest.fixture
def sos():
    return design_bandpass(LOW, HIGH, FS)


def test_design_is_papers_sixth_order_butterworth(sos):
    assert sos.shape == (3, 6) and sos.dtype == np.float64
    ref = signal.butter(3, [LOW, HIGH], btype="band", fs=FS, output="sos")
    np.testing.assert_allclose(sos, ref, rtol=0, atol=0)
    # -3 dB at both band edges, unit gain at the centre.
    _, h = signal.sosfreqz(sos, worN=[LOW, HIGH, band_centre(LOW, HIGH)], fs=FS)
    np.testing.assert_allclose(np.abs(h[:2]), 1 / np.sqrt(2), rtol=1e-9)
    assert abs(np.abs(h[2]) - 1) < 1e-9
    assert design_bandpass(LOW, HIGH, FS, order=4).shape == (2, 6)


@pytest.mark.parametrize(
    "low, high, fs",
    [
        (0.0, 2.5, 30),
        (-1, 2.5, 30),
        (2.5, 0.7, 30),
        (1.0, 1.0, 30),
        (0.7, 15.0, 30),
        (0.7, 20.0, 30),
        (0.7, 2.5, 0),
        (float("nan"), 2.5, 30),
    ],
)
def test_bad_band_raises_user_error_with_valid_range(low, high, fs):
    with pytest.raises(UserError, match=r"0 < low < high < fs/2|positive"):
        design_bandpass(low, high, fs)


def test_bad_order_raises():
    with pytest.raises(UserError, match="even integer"):
        design_bandpass(LOW, HIGH, FS, order=5)


def test_step_equals_scipy_sosfilt(sos):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((300, 5, 4, 3))
    ref = signal.sosfilt(sos, x, axis=0)
    y, zf = sosfilt_step(sos, x)
    np.testing.assert_allclose(y, ref, rtol=0, atol=1e-12)
    assert zf.shape == (3, 2, 5, 4, 3)
    # the numpy (short chunk) path matches too, including its final state
    for t_len in (1, 2, 4):
        y2, z2 = sosfilt_step(sos, x[:t_len])
        r2, rz = signal.sosfilt(sos, x[:t_len], axis=0, zi=np.zeros((3, 2, 5, 4, 3)))
        np.testing.assert_allclose(y2, r2, rtol=0, atol=1e-12)
        np.testing.assert_allclose(z2, rz, rtol=0, atol=1e-12)


def test_chunking_invariance_random_sizes(sos):
    rng = np.random.default_rng(1)
    x = rng.standard_normal((500, 6, 7, 3))
    ref = signal.sosfilt(sos, x, axis=0)
    sizes = []
    while sum(sizes) < len(x):
        sizes.append(int(rng.choice([1, 1, 2, 3, 5, 17, 64])))
    bp = StreamingBandpass(LOW, HIGH, FS)
    outs, start = [], 0
    for n in sizes:
        outs.append(bp(x[start : start + n]))
        start += n
    np.testing.assert_allclose(np.concatenate(outs), ref, rtol=0, atol=1e-12)
    assert bp.state.shape == (3, 2, 6, 7, 3)
    # one frame at a time
    bp.reset()
    one = np.concatenate([bp(x[t : t + 1]) for t in range(len(x))])
    np.testing.assert_allclose(one, ref, rtol=0, atol=1e-12)
    # an empty chunk passes through and leaves the state alone
    assert bp(np.zeros((0, 6, 7, 3))).shape == (0, 6, 7, 3)


def test_state_is_per_element(sos):
    rng = np.random.default_rng(2)
    x = rng.standard_normal((200, 3, 2))
    y, _ = sosfilt_step(sos, x)
    for i in range(3):
        for j in range(2):
            np.testing.assert_allclose(y[:, i, j], signal.sosfilt(sos, x[:, i, j]), atol=1e-12)
    # an impulse in one element leaves the others at zero
    imp = np.zeros((50, 3, 2))
    imp[0, 1, 1] = 1.0
    y, _ = sosfilt_step(sos, imp)
    mask = np.ones((3, 2), bool)
    mask[1, 1] = False
    assert np.all(y[:, mask] == 0) and np.any(y[:, 1, 1] != 0)


def test_zi_not_modified_and_shape_checked(sos):
    zi = np.random.default_rng(3).standard_normal((3, 2, 4))
    keep = zi.copy()
    sosfilt_step(sos, np.ones((1, 4)), zi)
    sosfilt_step(sos, np.ones((9, 4)), zi)
    np.testing.assert_array_equal(zi, keep)
    with pytest.raises(ValueError, match="expected"):
        sosfilt_step(sos, np.ones((1, 5)), zi)


def test_stream_shape_change_raises_until_reset():
    bp = StreamingBandpass(LOW, HIGH, FS)
    bp(np.zeros((2, 4, 4, 3)))
    with pytest.raises(FrameError, match="reset"):
        bp(np.zeros((1, 5, 4, 3)))
    bp.reset()
    assert bp(np.zeros((1, 5, 4, 3))).shape == (1, 5, 4, 3)


def test_steady_init_removes_offset_transient(sos):
    x = 100.0 + np.zeros((60, 2))
    bp = StreamingBandpass(LOW, HIGH, FS, init="steady")
    assert np.abs(bp(x)).max() < 1e-9
    np.testing.assert_allclose(steady_state(sos, np.ones(2))[..., 0], signal.sosfilt_zi(sos))


def test_zero_phase_matches_sosfiltfilt_and_has_no_delay(sos):
    rng = np.random.default_rng(4)
    x = rng.standard_normal((400, 3))
    np.testing.assert_allclose(
        zero_phase(sos, x, padlen=50), signal.sosfiltfilt(sos, x, axis=0, padlen=50), atol=1e-12
    )
    t = np.arange(600) / FS
    f0 = band_centre(LOW, HIGH)
    s = np.sin(2 * np.pi * f0 * t)
    y = zero_phase(sos, s)
    mid = slice(150, 450)
    np.testing.assert_allclose(y[mid], s[mid], atol=1e-3)  # unit gain, zero phase at centre
    # along another axis
    y2 = zero_phase(sos, np.stack([s, s]), axis=1)
    np.testing.assert_allclose(y2[1], y, atol=1e-12)


def test_zero_phase_short_clip(sos):
    need = min_zero_phase_length(sos)
    with pytest.raises(UserError, match=f"at least {need}"):
        zero_phase(sos, np.zeros(need - 1))
    # documented fallback: shorter than the impulse response still works
    assert np.isfinite(zero_phase(sos, np.random.default_rng(5).standard_normal(need))).all()


def test_group_delay_vs_phase_derivative(sos):
    f = np.linspace(0.5, 5.0, 50)
    gd = group_delay_s(sos, f, FS)
    df = 1e-4
    _, h = signal.sosfreqz(sos, worN=np.concatenate([f - df, f + df]), fs=FS)
    ph = np.angle(h)
    dphi = np.angle(np.exp(1j * (ph[len(f) :] - ph[: len(f)])))
    numeric = -dphi / (2 * np.pi * 2 * df)
    np.testing.assert_allclose(gd, numeric, rtol=1e-5)
    # and against scipy's group_delay of the full transfer function (fine at this order)
    _, gd_ref = signal.group_delay(signal.sos2tf(sos), w=f, fs=FS)
    np.testing.assert_allclose(gd, gd_ref / FS, rtol=1e-6)
    assert isinstance(group_delay_s(sos, 1.0, FS), float)


def test_group_delay_vs_measured_burst_delay(sos):
    f0 = band_centre(LOW, HIGH)
    t = np.arange(int(120 * FS)) / FS
    env = np.exp(-0.5 * ((t - 40.0) / 8.0) ** 2)  # narrow-band burst
    x = env * np.cos(2 * np.pi * f0 * t)
    y = signal.sosfilt(sos, x)
    env_y = np.abs(signal.hilbert(y))
    env_x = np.abs(signal.hilbert(x))
    # envelope delay from centroids
    delay = (np.sum(t * env_y**2) / np.sum(env_y**2)) - (np.sum(t * env_x**2) / np.sum(env_x**2))
    expected = StreamingBandpass(LOW, HIGH, FS).group_delay_s()
    assert expected == pytest.approx(group_delay_s(sos, f0, FS))
    assert delay == pytest.approx(expected, rel=0.03)


def test_band_centre():
    assert band_centre(0.7, 2.5) == pytest.approx(np.sqrt(1.75))


def test_running_sum_chunks():
    rng = np.random.default_rng(6)
    x = rng.standard_normal((100, 2))
    rs = RunningSum()
    out = np.concatenate([rs(x[:1]), rs(x[1:40]), rs(x[40:])])
    np.testing.assert_allclose(out, np.cumsum(x, axis=0), atol=1e-12)
    np.testing.assert_allclose(rs.total, x.sum(0), atol=1e-12)


def test_alignment_delay_puts_the_band_centre_in_phase():
    """A sinusoid at the band centre, filtered causally and shown ``D`` late, sits in
    phase on its frame: D = 0 for rtmag's Butterworth bands (in phase at the centre),
    where the group delay put it 176 degrees out (the pulse shown inverted). For a
    filter that lags at the centre (a low-pass), D is its phase delay."""
    from rtmag.filters import alignment_delay_s, band_centre, design_bandpass, group_delay_s

    def phase_error_deg(sos, f0, fs, delay_s):
        _, h = signal.sosfreqz(sos, worN=[2 * np.pi * f0 / fs])
        e = np.angle(h[0]) + 2 * np.pi * f0 * delay_s
        return abs(np.degrees((e + np.pi) % (2 * np.pi) - np.pi))

    for band, fs in (((0.7, 2.5), 30.0), ((0.16, 0.5), 7.5), ((0.7, 2.5), 15.0)):
        sos = design_bandpass(*band, fs)
        f0 = band_centre(*band)
        d = alignment_delay_s(sos, band, fs)
        assert d == 0.0
        assert phase_error_deg(sos, f0, fs, d) < 5
        # simulated: the filtered sinusoid against the input, shown d or tau late
        t = np.arange(int(40 * fs)) / fs
        x = np.sin(2 * np.pi * f0 * t)
        y = signal.sosfilt(sos, x)
        tau = group_delay_s(sos, f0, fs)
        for delay, sign in ((d, 1), (tau, -1)):
            k = int(round(delay * fs))
            a, b = x[len(x) // 2 : -k or None], y[len(x) // 2 + k :]
            corr = np.corrcoef(a, b)[0, 1]
            assert sign * corr > 0.9, (band, fs, delay, corr)
    lag = signal.butter(2, 1.0, output="sos", fs=30.0)  # lags 90 degrees at 1 Hz
    d = alignment_delay_s(lag, (0.5, 2.0), 30.0)
    assert d > 0.1 and phase_error_deg(lag, band_centre(0.5, 2.0), 30.0, d) < 1e-6
    with pytest.raises(UserError, match="band"):
        alignment_delay_s(lag, (2.0, 1.0), 30.0)


def test_lock_delay_puts_a_rate_off_the_centre_in_phase():
    """The phase lock: a sinusoid away from the band centre, filtered causally, paired
    with the output ``tau`` seconds older, sits in phase on its frame. Reference:
    scipy's causal sosfilt of the sinusoid. Unlocked (tau = 0) the output leads below
    the centre and lags above it; one period of the lowest rate bounds tau."""
    from rtmag.filters import design_bandpass, lock_delay_s

    for band, fs, rates in (
        ((0.7, 2.5), 30.0, (0.8, 1.0, 1.6, 2.2)),  # pulse: 48, 60, 96, 132 bpm
        ((0.16, 0.5), 7.5, (0.17, 0.2, 0.4, 0.47)),  # breathing: 10, 12, 24, 28 /min
    ):
        sos = design_bandpass(*band, fs)
        for f in rates:
            tau = lock_delay_s(sos, f, fs)
            assert 0.0 <= tau < 1.0 / f
            t = np.arange(int(60 / f * fs) // 2 * 2) / fs  # 30 periods
            x = np.sin(2 * np.pi * f * t)
            y = signal.sosfilt(sos, x)
            half = len(x) // 2
            k = int(round(tau * fs))
            locked = np.corrcoef(x[half:], y[half - k : len(y) - k])[0, 1]
            unlocked = np.corrcoef(x[half:], y[half:])[0, 1]
            # within half a sample of in phase (the pair is whole samples apart)
            assert locked > np.cos(np.pi * f / fs) - 0.01, (band, f, tau, locked)
            assert locked > unlocked + 0.1, (band, f, locked, unlocked)
    # near the centre the lock leaves the output alone
    sos = design_bandpass(0.7, 2.5, 30.0)
    assert lock_delay_s(sos, 1.32, 30.0) == 0.0
    # a frame delay (align) counts: the lead it adds back is undone too
    assert lock_delay_s(sos, 1.0, 30.0, frame_delay_s=0.2) != lock_delay_s(sos, 1.0, 30.0)
    with pytest.raises(UserError, match="freq_hz"):
        lock_delay_s(sos, 20.0, 30.0)


def test_ema_rate_halves_the_weight_every_half_life():
    from rtmag.filters import ema_rate

    a = ema_rate(2.0, 0.1)  # 20 updates a half-life
    assert (1 - a) ** 20 == pytest.approx(0.5)
    assert ema_rate(5.0, 1.0) == pytest.approx(1 - 0.5**0.2)
    assert ema_rate(0.0, 0.1) == 1.0 and ema_rate(0.0, 0.0) == 1.0  # no memory
