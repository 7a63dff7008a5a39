"""Physics tests of the synthetic physiology renderer (rtmag.synth).

Clips are small and short; each test checks a physical property (rates, colour
direction, masks, magnification, noise), not only shapes.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from scipy.signal import butter, sosfiltfilt

from rtmag.errors import UserError
from rtmag.synth import (
    Renderer,
    SynthConfig,
    iter_render,
    make_signals,
    read_clip,
    render,
    resolve_config,
    write_clip,
)
from rtmag.synth.scene import U_P
from rtmag.synth.signals import TASK_D_GRID, breathing_template, pulse_template


def bandpass(x: np.ndarray, fps: float, lo: float = 0.7, hi: float = 2.5) -> np.ndarray:
    sos = butter(3, [lo, hi], btype="bandpass", fs=fps, output="sos")
    return sosfiltfilt(sos, x, axis=0)


def peak_bpm(x: np.ndarray, fps: float) -> float:
    n = 16 * len(x)
    spec = np.abs(np.fft.rfft(x - x.mean(), n=n))
    f = np.fft.rfftfreq(n, 1 / fps)
    band = (f >= 0.7) & (f <= 2.5)
    return 60.0 * f[band][np.argmax(spec[band])]


@pytest.fixture(scope="module")
def still_clip():
    """12 s still clip at 96x96 with a known heart rate, magnified x10."""
    cfg = SynthConfig(
        task="A",
        seconds=12,
        fps=30,
        size=(96, 96),
        seed=4,
        alpha=10.0,
        heart_rate_bpm=72.0,
        skin_tone=2,
        pulse_amplitude=0.008,
    )
    return cfg, render(cfg)


def test_pulse_rate_and_colour_direction(still_clip):
    cfg, clip = still_clip
    skin = clip.truth["skin_mask"].all(axis=0)  # skin in every frame
    assert skin.sum() > 200
    trace = clip.frames[:, skin].astype(np.float64).mean(axis=1)  # (T, 3)
    bp = bandpass(trace, cfg.fps)[15:-15]
    assert abs(peak_bpm(bp[:, 1], cfg.fps) - 72.0) < 2.0
    assert abs(clip.meta["heart_rate_bpm"] - 72.0) < 0.5
    amp = bp.std(axis=0)
    cos = amp @ U_P / np.linalg.norm(amp)
    assert cos > 0.95, (amp, cos)
    # Invisible: about 0.3-1.5 grey levels peak-to-peak in green on the skin.
    assert 0.2 < 2 * np.sqrt(2) * amp[1] < 2.0


def test_background_carries_no_pulse(still_clip):
    cfg, clip = still_clip
    body = clip.truth["head_mask"] | clip.truth["torso_mask"]
    diff = clip.ideal.astype(np.int16) - clip.frames.astype(np.int16)
    assert np.all(diff[~body] == 0)
    assert np.abs(diff[clip.truth["skin_mask"]]).mean() > 0.3  # magnified on skin
    bg = ~body.any(axis=0)
    skin = clip.truth["skin_mask"].all(axis=0)
    bg_trace = bandpass(clip.frames[:, bg].astype(np.float64).mean(axis=1), cfg.fps)[15:-15]
    skin_trace = bandpass(clip.frames[:, skin].astype(np.float64).mean(axis=1), cfg.fps)[15:-15]
    # At noise level: std of a mean of N noisy, quantised pixels (band-passed: less).
    noise_of_mean = np.sqrt(cfg.noise_std**2 + 1 / 12) / np.sqrt(bg.sum())
    assert bg_trace.std(axis=0).max() < 2 * noise_of_mean
    assert skin_trace[:, 1].std() > 20 * bg_trace[:, 1].std()


def test_ideal_minus_input_is_alpha_minus_one_pulse_terms():
    cfg = SynthConfig(task="B", seconds=1, size=(80, 64), seed=2, alpha=12.0, pulse_amplitude=0.01)
    r = Renderer(cfg)
    for k in range(r.n_frames):
        lay = r.layers(k)
        diff = lay.ideal.astype(np.float32) - lay.frame.astype(np.float32)
        want = (cfg.alpha - 1) * lay.pulse_term
        ok = (lay.ideal_float > 0.5) & (lay.ideal_float < 254.5)
        ok &= (lay.frame_float > 0.5) & (lay.frame_float < 254.5)
        assert np.all(np.abs(diff - want)[ok] <= 1.0 + 1e-4)
        off = ~(lay.truth["head_mask"] | lay.truth["torso_mask"])
        assert np.all(lay.pulse_term[off] == 0)
        np.testing.assert_allclose(lay.ideal_pulse_term, cfg.alpha * lay.pulse_term, rtol=1e-6)
    # Eq. 9: the pulse term points along u_p everywhere.
    pt = lay.pulse_term[lay.truth["skin_mask"]]
    cos = np.abs(pt @ U_P) / (np.linalg.norm(pt, axis=1) + 1e-12)  # p(t) has either sign
    assert np.all(cos[np.linalg.norm(pt, axis=1) > 1e-6] > 0.9999)


def test_alpha_one_ideal_equals_input():
    clip = render(SynthConfig(task="D", seconds=0.5, size=(48, 48), seed=1))
    assert np.array_equal(clip.frames, clip.ideal)


@pytest.mark.parametrize("task,speed", [("B", 10.0), ("C", 30.0)])
def test_sweep_yaw_speed(task, speed):
    s = make_signals(resolve_config(SynthConfig(task=task, seconds=30, fps=30, seed=5)))
    rate = np.abs(np.diff(s.yaw_deg)) * 30
    assert abs(np.median(rate) / speed - 1) < 0.1
    assert s.yaw_deg.min() >= -60.01 and s.yaw_deg.max() <= 60.01
    assert s.yaw_deg.max() - s.yaw_deg.min() > 100  # the whole 120-degree sweep


def test_yaw_turns_the_rendered_face():
    """Positive yaw moves the visible skin to the right of the head's centre."""
    cfg = SynthConfig(task="C", seconds=4, fps=15, size=(96, 96), seed=7)
    clip = render(cfg)
    yaw = clip.truth["yaw_deg"]
    cx = []
    for k in range(len(yaw)):
        head = clip.truth["head_mask"][k, :50]  # above the neck
        skin = clip.truth["skin_mask"][k, :50]
        cols = np.nonzero(head)[1]
        cx.append(np.nonzero(skin)[1].mean() - 0.5 * (cols.min() + cols.max()))
    corr = np.corrcoef(yaw, cx)[0, 1]
    assert corr > 0.9


def test_task_d_reorients_once_a_second_on_the_grid():
    s = make_signals(resolve_config(SynthConfig(task="D", seconds=20, fps=30, seed=9)))
    target = s.yaw_target_deg
    assert np.all(np.isin(target, TASK_D_GRID))
    changes = np.nonzero(np.diff(target))[0] + 1
    np.testing.assert_allclose(s.t[changes], np.arange(1, 20), atol=1e-9)
    # The head reaches each target within 0.3 s and stays there.
    settled = (s.t % 1.0) > 0.3
    np.testing.assert_allclose(s.yaw_deg[settled], target[settled], atol=1e-6)


def test_same_seed_same_clip_other_seed_other_clip():
    cfg = SynthConfig(task="D", seconds=0.7, size=(48, 40), seed=11, alpha=5, talking=True)
    a, b = render(cfg), render(cfg)
    assert np.array_equal(a.frames, b.frames) and np.array_equal(a.ideal, b.ideal)
    for key in a.truth:
        assert np.array_equal(a.truth[key], b.truth[key])
    c = render(SynthConfig(task="D", seconds=0.7, size=(48, 40), seed=12, alpha=5, talking=True))
    assert not np.array_equal(a.frames, c.frames)
    # iter_render yields the same clip frame by frame.
    frames = np.stack([f for f, _i, _t in iter_render(cfg)])
    assert np.array_equal(frames, a.frames)


def test_respiration_ideal_moves_shoulders_alpha_times():
    alpha = 5.0
    cfg = SynthConfig(
        task="A",
        mode="respiration",
        seconds=8,
        fps=10,
        size=(160, 120),
        seed=3,
        alpha=alpha,
        breathing_rate_bpm=15.0,
        breathing_amplitude_px=4.0,
    )
    r = Renderer(cfg)
    col = int(80 + 110 * 120 / 480)  # over a shoulder, clear of the neck
    cov_in, cov_id, rows_in, rows_id = [], [], [], []
    for k in range(r.n_frames):
        lay = r.layers(k)
        cov_in.append(lay.torso_cover[:, col].sum())
        cov_id.append(lay.ideal_torso_cover[:, col].sum())
        rows_in.append(np.argmax(lay.truth["torso_mask"][:, col]))
        rows_id.append(np.argmax(lay.ideal_torso_cover[:, col] > 0))
    truth = r.signals.respiration
    # Coverage of a column grows by exactly the upward displacement of its edge (px).
    d_in = np.asarray(cov_in) - np.mean(cov_in)
    d_id = np.asarray(cov_id) - np.mean(cov_id)
    d_true = truth - truth.mean()
    assert np.ptp(d_true) == pytest.approx(4.0 * 120 / 480, rel=0.05)
    # Within 5 %: the chest also widens slightly, which moves the curved shoulder top.
    assert abs(np.polyfit(d_true, d_in, 1)[0] - 1) < 0.05
    assert abs(np.polyfit(d_in, d_id, 1)[0] / alpha - 1) < 0.02
    assert np.corrcoef(d_in, d_id)[0, 1] > 0.999
    # Sub-pixel in the input, several pixels in the ideal.
    assert np.ptp(rows_in) <= 2 and np.ptp(rows_id) >= 4


@pytest.mark.parametrize("quantize", [False, True])
def test_small_render_noise_matches_downsampled_camera(quantize):
    cfg = SynthConfig(
        task="B",
        background="plain",
        seconds=1,
        size=(160, 120),
        seed=1,
        camera_size=(640, 480),
        sensor_noise=1.75,
        quantize=quantize,
    )
    clip = render(cfg)
    sigma = 1.75 / np.sqrt(16.0)
    assert cfg.noise_std == pytest.approx(sigma)
    body = (clip.truth["head_mask"] | clip.truth["torso_mask"]).any(axis=0)
    d = np.diff(clip.frames.astype(np.float64), axis=0)[:, ~body]
    measured = d.std() / np.sqrt(2)
    expected = sigma if not quantize else np.sqrt(sigma**2 + 1 / 12)
    assert measured == pytest.approx(expected, rel=0.08)


def test_write_clip_round_trip(tmp_path):
    clip = render(SynthConfig(task="D", seconds=0.5, size=(64, 48), seed=2, alpha=8))
    out = write_clip(clip, tmp_path / "clip")
    frames, ideal, truth, meta = read_clip(out)
    assert np.array_equal(frames, clip.frames) and np.array_equal(ideal, clip.ideal)
    assert np.array_equal(truth["skin_mask"], clip.truth["skin_mask"])
    np.testing.assert_array_equal(truth["pulse"], clip.truth["pulse"])
    assert meta["lossless"] and meta["codec"] in ("libx264rgb", "ffv1")
    assert meta["config"]["alpha"] == 8 and meta["task"] == "D"
    assert not any(p.name.endswith(".part") for p in out.iterdir())
    with pytest.raises(UserError, match="already holds a clip"):
        write_clip(clip, out)
    write_clip(clip, out, force=True)


def test_compression_adds_artefacts():
    def err(crf):
        comp = render(SynthConfig(task="A", seconds=0.4, size=(64, 48), seed=3, compress=crf))
        assert comp.frames.shape == raw.frames.shape
        d = comp.frames.astype(float) - raw.frames.astype(float)
        if crf == 0:
            assert np.all(np.abs(d.mean(axis=(0, 1, 2))) < 0.6)  # no colour bias
        return np.abs(d).mean()

    raw = render(SynthConfig(task="A", seconds=0.4, size=(64, 48), seed=3))
    e0, e35 = err(0), err(35)
    assert 0.5 < e0 < e35 - 1.0  # 4:2:0 chroma loss at crf 0, more at crf 35


def test_cli_synth_end_to_end(tmp_path, capsys):
    from rtmag.cli import main

    out = tmp_path / "c"
    argv = [
        "synth",
        "--task",
        "B",
        "--seconds",
        "0.5",
        "--size",
        "64x48",
        "--alpha",
        "20",
        "--seed",
        "3",
        "--heart-rate",
        "80",
        "--out",
        str(out),
    ]
    assert main(argv) == 0
    assert "80.0 bpm" in capsys.readouterr().out
    meta = json.loads((out / "meta.json").read_text())
    assert meta["config"]["heart_rate_bpm"] == 80.0 and meta["size"] == [64, 48]
    assert main(argv) == 2  # exists, no --force
    assert "--force" in capsys.readouterr().err
    assert main(["synth", "--heart-rate", "200", "--out", str(tmp_path / "x")]) == 2
    assert "[42, 150]" in capsys.readouterr().err
    assert main(["synth", "--size", "big", "--out", str(tmp_path / "x")]) == 2


def test_waveforms_have_physiological_shape_and_variability():
    ph = np.linspace(0, 1, 2000, endpoint=False)
    g = pulse_template(ph)
    assert abs(g.mean()) < 1e-6 and np.ptp(g) == pytest.approx(1.0, abs=1e-3)
    # Systolic peak, then the dicrotic notch (a local minimum), then a smaller peak.
    maxima = np.nonzero((g > np.roll(g, 1)) & (g > np.roll(g, -1)))[0]
    minima = np.nonzero((g < np.roll(g, 1)) & (g < np.roll(g, -1)))[0]
    assert len(maxima) == 2 and ph[maxima[0]] < 0.25 and g[maxima[1]] < g[maxima[0]]
    assert any(ph[maxima[0]] < ph[m] < ph[maxima[1]] for m in minima)
    b = breathing_template(ph)
    assert ph[np.argmax(b)] == pytest.approx(0.4, abs=0.01)  # inhale shorter than exhale
    s = make_signals(
        resolve_config(SynthConfig(seconds=60, heart_rate_bpm=70, breathing_rate_bpm=15, seed=2))
    )
    assert s.heart_rate_bpm_inst.mean() == pytest.approx(70, abs=0.3)
    assert 0.5 < s.heart_rate_bpm_inst.std() < 6  # drift + respiratory sinus arrhythmia
    assert s.breathing_rate_bpm_inst.mean() == pytest.approx(15, abs=0.2)
    assert s.breathing_rate_bpm_inst.std() > 0.2


def test_flicker_adds_bounded_light_modulation():
    base = dict(seconds=20, fps=30, seed=8)
    calm = make_signals(resolve_config(SynthConfig(**base)))
    flick = make_signals(resolve_config(SynthConfig(flicker=True, **base)))
    d = flick.illumination - calm.illumination  # same drift draws, plus the flicker
    assert 0.005 < np.abs(d).max() <= 0.015 + 1e-9
    assert np.abs(calm.illumination).max() < 0.05  # slow drift of a few percent at most


def test_darker_skin_reflects_less_and_pulses_less():
    def skin_stats(tone):
        cfg = SynthConfig(
            task="A", seconds=0.4, size=(64, 64), seed=5, skin_tone=tone, pulse_amplitude=0.01
        )
        r = Renderer(cfg)
        lay = r.layers(0)
        skin = lay.truth["skin_mask"]
        return lay.frame[skin].mean(), np.abs(lay.pulse_term[skin][:, 1]).max() / abs(
            r.signals.pulse[0]
        )

    (lum1, p1), (lum6, p6) = skin_stats(1), skin_stats(6)
    assert lum6 < 0.5 * lum1 and p6 < 0.5 * p1


def test_contact_sheet(tmp_path):
    from rtmag.cli import main

    out = tmp_path / "sheet.png"
    assert main(["contact-sheet", "--out", str(out), "--tile", "64x48"]) == 0
    import cv2

    img = cv2.imread(str(out))
    assert img.shape[1] == 5 * 64 and img.shape[0] > 4 * 48  # 4 task rows + skin tones


@pytest.mark.parametrize(
    "kwargs,match",
    [
        (dict(task="E"), "choose one of A, B, C, D"),
        (dict(mode="colour"), "pulse, respiration"),
        (dict(heart_rate_bpm=30), r"\[42, 150\]"),
        (dict(breathing_rate_bpm=40), r"\[8, 30\]"),
        (dict(skin_tone=7), "1..6"),
        (dict(size=(8, 8)), r"\[16, 4096\]"),
        (dict(compress=60), r"\[0, 51\]"),
        (dict(compress=23, size=(63, 48)), "even"),
        (dict(compress=23, quantize=False), "quantize"),
        (dict(background="stripes"), "patterned, plain"),
    ],
)
def test_bad_config_raises_user_error(kwargs, match):
    with pytest.raises(UserError, match=match):
        SynthConfig(**kwargs)
