"""Quality metrics against hand-computed values, and the measurement pipeline."""

from __future__ import annotations

import math

import numpy as np
import pytest

from rtmag import metrics


def test_psnr_by_hand():
    a = np.zeros((2, 2, 2, 3))
    b = a.copy()
    b[0, 0, 0, 0] = 10.0  # frame 0: mse = 100 / 12
    expected = np.mean([10 * math.log10(255**2 / (100 / 12)), 100.0])
    assert metrics.psnr(a, b) == pytest.approx(expected)
    with pytest.raises(ValueError, match="shapes"):
        metrics.psnr(a, b[:1])


def test_masked_mean():
    f = np.arange(2 * 2 * 2 * 3, dtype=float).reshape(2, 2, 2, 3)
    m = np.zeros((2, 2, 2), bool)
    m[0, 0, 0] = m[0, 1, 1] = True
    m[1, 1, 0] = True
    got = metrics.masked_mean(f, m)
    np.testing.assert_allclose(got[0], (f[0, 0, 0] + f[0, 1, 1]) / 2)
    np.testing.assert_allclose(got[1], f[1, 1, 0])


def test_pulse_gain_of_a_known_magnification():
    fps = 30.0
    t = np.arange(300) / fps
    rng = np.random.default_rng(0)
    p = np.outer(np.sin(2 * np.pi * 1.2 * t), [0.33, 0.77, 0.53])
    nuisance = np.outer(np.sin(2 * np.pi * 0.2 * t), [1, 1, 1]) + rng.normal(0, 0.3, p.shape)
    inp = 100 + p + nuisance
    out = 100 + 7 * p + nuisance
    assert metrics.pulse_gain(out, inp, p, fps) == pytest.approx(7.0, rel=0.05)
    assert metrics.pulse_gain(inp, inp, p, fps) == pytest.approx(1.0)
    # the nuisance outside the band is unchanged
    assert abs(metrics.out_of_band_change_db(out, inp, fps)) < 0.5


def test_offskin_change_db():
    rng = np.random.default_rng(0)
    inp = rng.normal(100, 1, (50, 4, 4, 3))
    skin = np.zeros((50, 4, 4), bool)
    skin[:, :2] = True
    out = inp.copy()
    out[:, :2] *= 3  # on skin: not counted
    assert metrics.offskin_change_db(out, inp, skin) == pytest.approx(0.0)
    out[:, 2:] = 100 + (inp[:, 2:] - 100) * 2  # std x2 off skin: +6 dB
    assert metrics.offskin_change_db(out, inp, skin) == pytest.approx(20 * math.log10(2))


def test_measure_clip_of_an_unchanged_video(pulse_net):
    from rtmag.magnifier import MagnifierConfig
    from rtmag.quality import measure_clip
    from rtmag.synth import SynthConfig

    scfg = SynthConfig(task="A", seconds=4, size=(96, 72), seed=3)
    r = measure_clip(scfg, MagnifierConfig(magnification=1.0), pulse_net, {})
    assert r["gain"] == pytest.approx(1.0)
    assert r["psnr_input"] == 100.0
    assert r["psnr_ideal"] == pytest.approx(r["psnr_input_vs_ideal"])
    assert r["offskin_db"] == 0.0
