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
    assert -1.0 <= r["corr_pos"] <= 1.0 and -1.0 <= r["corr_linear"] <= 1.0


def test_classical_readings_find_a_strong_still_pulse(pulse_net):
    """The reference readings quality reports beside the network's (POS and the fixed
    linear projection on the true skin) read a strong pulse on a still, noise-free
    clip (0.8-0.9: task A's head still sways and its light drifts), with the true
    derivative's sign."""
    from rtmag.magnifier import MagnifierConfig
    from rtmag.quality import measure_clip
    from rtmag.synth import SynthConfig

    base = dict(task="A", seconds=8, size=(96, 72), seed=5, sensor_noise=0.0)
    r = measure_clip(
        SynthConfig(pulse_amplitude=0.03, **base), MagnifierConfig(magnification=1.0), pulse_net, {}
    )
    assert r["corr_pos"] > 0.7 and r["corr_linear"] > 0.7  # task A still moves a little


def _texture_frames(shifts, h=64, w=96, seed=0):
    rng = np.random.default_rng(seed)
    spec = np.fft.fft2(rng.normal(size=(h, w)))
    fy, fx = np.meshgrid(np.fft.fftfreq(h), np.fft.fftfreq(w), indexing="ij")
    base = np.real(np.fft.ifft2(spec * np.exp(-((fx**2 + fy**2) / (2 * 0.1**2)))))
    base = 128 + 80 * base / np.abs(base).max()
    out = []
    for d in shifts:
        f = np.real(np.fft.ifft2(np.fft.fft2(base) * np.exp(-2j * np.pi * fy * d)))
        out.append(np.clip(np.rint(f), 0, 255).astype(np.uint8))
    return np.stack(out)


def test_vertical_displacement_of_a_known_shift():
    """Proportional to the shift (what gains need), and near it in pixels: the band's
    centre wavelength converts phase to pixels, so a texture whose energy sits off
    the centre reads a few percent off."""
    shifts = np.array([0.0, 0.5, 1.0, -0.75, 2.0])
    frames = _texture_frames(shifts)
    d = metrics.vertical_displacement(frames, (8, 56, 8, 88), scale=2)
    np.testing.assert_allclose(d, shifts, atol=0.1 * np.abs(shifts).max())
    ratio = d[1:] / shifts[1:]
    assert ratio.max() / ratio.min() < 1.02
    rgb = np.repeat(frames[..., None], 3, axis=3)
    np.testing.assert_allclose(
        metrics.vertical_displacement(rgb, (8, 56, 8, 88), scale=2), d, atol=0.02
    )
    with pytest.raises(ValueError, match="mask is empty"):
        metrics.vertical_displacement(frames, (8, 56, 8, 88), np.zeros((64, 96), bool))


def test_displacement_gain_is_the_ratio_of_projections():
    t = np.arange(600) / 30.0
    r = np.sin(2 * np.pi * 0.3 * t)
    rng = np.random.default_rng(0)
    d_in = 0.5 * r + 0.05 * rng.normal(size=t.size)
    d_out = 4.0 * 0.5 * r + 3.0 * np.sin(2 * np.pi * 2.0 * t)  # out-of-band motion ignored
    assert metrics.displacement_gain(d_out, d_in, r, 30.0) == pytest.approx(4.0, rel=0.05)
    assert metrics.displacement_gain(d_in, d_in, r, 30.0) == pytest.approx(1.0)


def test_masked_psnr_by_hand():
    a = np.zeros((2, 2, 2, 3))
    b = a.copy()
    b[0, 0, 0] = 10.0  # inside the mask: 3 values off by 10 among 2*3 masked values
    b[1, 1, 1] = 99.0  # outside the mask: ignored
    m = np.zeros((2, 2, 2), bool)
    m[0, 0, 0] = m[1, 0, 0] = True
    want = 10 * math.log10(255**2 / (3 * 100 / 6))
    assert metrics.masked_psnr(b, a, m) == pytest.approx(want)
    assert metrics.masked_psnr(a, a, m) == 100.0


def test_shoulder_boxes_avoid_the_head():
    torso = np.zeros((2, 100, 200), bool)
    torso[:, 60:, 20:180] = True
    head = np.zeros((2, 100, 200), bool)
    head[0, 10:70, 80:120] = True
    head[1, 10:70, 90:130] = True  # the head moved: both positions are avoided
    boxes = metrics.shoulder_boxes(torso, head)
    assert len(boxes) == 2
    (y0, y1, lx0, lx1), (_, _, rx0, rx1) = boxes
    assert y0 == 50 and y1 == 80
    assert lx0 == 20 and lx1 <= 80 and rx0 > 130 and rx1 == 180
    with pytest.raises(ValueError, match="torso mask is empty"):
        metrics.shoulder_boxes(np.zeros_like(torso), head)


def test_ssim_by_hand_and_against_a_direct_sum():
    a = np.full((2, 16, 16, 3), 100.0)
    b = np.full((2, 16, 16, 3), 120.0)
    c1 = (0.01 * 255) ** 2  # constant frames: variances 0, SSIM = luminance term
    assert metrics.ssim(a, b) == pytest.approx((2 * 100 * 120 + c1) / (100**2 + 120**2 + c1))
    rng = np.random.default_rng(0)
    x = rng.uniform(0, 255, (13, 12, 1))
    y = np.clip(x + rng.normal(0, 20, x.shape), 0, 255)
    assert metrics.ssim(x, x) == pytest.approx(1.0)
    # reference: the SSIM map at the interior pixels by explicit weighted sums
    g = np.exp(-0.5 * (np.arange(-5, 6) / 1.5) ** 2)
    w = np.outer(g, g) / np.outer(g, g).sum()
    c2 = (0.03 * 255) ** 2
    vals = []
    for i in range(5, 13 - 5):
        for j in range(5, 12 - 5):
            px, py = x[i - 5 : i + 6, j - 5 : j + 6, 0], y[i - 5 : i + 6, j - 5 : j + 6, 0]
            mx, my = (w * px).sum(), (w * py).sum()
            vx, vy = (w * px * px).sum() - mx**2, (w * py * py).sum() - my**2
            cxy = (w * px * py).sum() - mx * my
            vals.append(
                (2 * mx * my + c1) * (2 * cxy + c2) / ((mx**2 + my**2 + c1) * (vx + vy + c2))
            )
    assert metrics.ssim(x, y) == pytest.approx(np.mean(vals), rel=1e-9)
    with pytest.raises(ValueError, match="11x11"):
        metrics.ssim(x[:8], y[:8])


def test_artifact_db_by_hand():
    fps, t = 30.0, 300
    tt = np.arange(t) / fps
    inp = np.full((t, 8, 8, 3), 100.0)
    src = np.zeros((t, 8, 8), bool)
    src[:, :, :4] = True  # left half is the source in every frame
    assert metrics.artifact_db(inp, inp, src, fps) == -100.0
    out = inp.copy()
    out[:, :, 4:] += 2.0  # off the source: all of it counts; half of the values
    assert metrics.artifact_db(out, inp, src, fps) == pytest.approx(10 * math.log10(2.0))
    centre = math.sqrt(0.7 * 2.5)  # the band's centre: |H|^2 = 1 there
    out = inp.copy()
    out[:, :, :4] += 10 * np.sin(2 * np.pi * centre * tt)[:, None, None, None]
    # in band on the source: left out but for the filter's edge transients (-1.8 dB)
    assert metrics.artifact_db(out, inp, src, fps) < 17.0 - 15.0
    out = inp.copy()
    out[:, :, :4] += 10 * np.sin(2 * np.pi * 6.0 * tt)[:, None, None, None]
    # out of band on the source: power 50 on half of the values
    assert metrics.artifact_db(out, inp, src, fps) == pytest.approx(10 * math.log10(25), abs=0.1)


def test_paired_gain_cancels_what_the_clip_holds_besides_the_source():
    fps = 30.0
    t = np.arange(300) / fps
    rng = np.random.default_rng(1)
    p = np.outer(np.sin(2 * np.pi * 1.2 * t), [0.33, 0.77, 0.53])
    # in-band motion that correlates with p: biases a projection of one output
    motion = 3 * np.outer(np.sin(2 * np.pi * 1.2 * t + 0.5), [1, 1, 1])
    base = 100 + motion + rng.normal(0, 0.05, p.shape)
    inp, inp0 = base + p, base
    out, out0 = 5 * motion + 7 * p, 5 * motion  # the method amplifies the motion too
    assert metrics.paired_gain(out, out0, p, fps) == pytest.approx(7.0, rel=1e-9)
    assert metrics.paired_gain(inp, inp0, p, fps) == pytest.approx(1.0, rel=1e-9)
    assert abs(metrics.pulse_gain(out, inp, p, fps) - 7.0) > 1.0


def test_pulse_gain_of_the_ideal_is_exact_under_in_band_motion():
    """The ideal clip (input + (A - 1) p) reads exactly A, even when the input holds
    in-band motion that correlates with p and is four times its size (synthetic task
    D); the first form, <F out, F p> / <F in, F p>, read far less."""
    fps = 30.0
    t = np.arange(300) / fps
    p = np.outer(np.sin(2 * np.pi * 1.2 * t), [0.33, 0.77, 0.53])
    motion = 4 * np.outer(np.sin(2 * np.pi * 1.2 * t + 0.3), [0.5, 0.5, 0.5])
    inp = 100 + motion + p
    ideal = inp + 19 * p
    assert metrics.pulse_gain(ideal, inp, p, fps) == pytest.approx(20.0, rel=1e-9)
    assert metrics.pulse_gain(inp, inp, p, fps) == 1.0
    assert metrics._projection_ratio(ideal, inp, p, fps, (0.7, 2.5)) < 10.0
    # with the input as its own truth (a real clip), the two forms agree
    out = inp + 2 * motion
    assert metrics.pulse_gain(out, inp, inp, fps) == pytest.approx(
        metrics._projection_ratio(out, inp, inp, fps, (0.7, 2.5)), rel=1e-9
    )


def test_measure_respiration_clip_of_an_unchanged_video():
    """magnification 1: the output is the input, so the shoulders' gain is 1, the head
    PSNR is 100 dB and the instrument's own reading of the ideal is finite."""
    from rtmag.magnifier import MagnifierConfig
    from rtmag.quality import (
        markdown_respiration,
        measure_respiration_clip,
        summarise_respiration,
    )
    from rtmag.synth import SynthConfig
    from tests.test_motion import QuadNet

    scfg = SynthConfig(task="A", seconds=8.0, size=(128, 96), seed=3, breathing_amplitude_px=3.0)
    mcfg = MagnifierConfig(mode="respiration", magnification=1.0, engine="eager")
    row = measure_respiration_clip(scfg, mcfg, QuadNet().eval(), {})
    assert row["psnr_input"] == 100.0 and row["psnr_head"] == 100.0
    assert row["gain_raw"] == pytest.approx(1.0)
    assert np.isfinite(row["gain_ideal_raw"]) and row["decimate"] == 4
    # the output is the input, so its head against the ideal's is the input's
    assert row["psnr_head_vs_ideal"] == pytest.approx(row["psnr_head_ideal"])
    summary = summarise_respiration([row])
    assert summary["A"]["clips"] == 1
    assert summary["A"]["psnr_head_vs_ideal"] == pytest.approx(row["psnr_head_vs_ideal"])
    hv = summary["A"]["psnr_head_vs_ideal"]
    assert f"| 100.0 / {hv:.1f} |" in markdown_respiration(summary)


def test_calibration_is_saved_with_its_step_rule(pulse_weights):
    """`rtmag quality --calibrate` stores the fitted constant with the step rule it was
    fitted under, so that a Magnifier using another rule warns."""
    import warnings

    from rtmag.commands.quality import _save_calibration
    from rtmag.magnifier import Magnifier, MagnifierConfig
    from rtmag.nets import load_weights

    net, meta = load_weights(pulse_weights, mode="pulse")
    mcfg = MagnifierConfig(step_scale="median")
    _save_calibration(pulse_weights, net, meta, 0.25, mcfg, "task A, test", 11.0)
    _, saved = load_weights(pulse_weights, mode="pulse")
    assert saved["calibration"] == {
        "gamma_per_gain": 0.25,
        "step_scale": "median",
        "focus": 2.0,
        "noise_match": 4.0,
        "noise_size": "x1_second_difference_median",
        "smooth": 1.5,
        "clips": "task A, test",
        "magnification": 11.0,
    }
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        Magnifier(mcfg, net=net, meta=saved)
    with pytest.warns(UserWarning, match="recalibrate"):
        Magnifier(MagnifierConfig(), net=net, meta=saved)


def test_pulse_calibrate_command_fits_every_tone_at_the_magnification_asked(
    pulse_weights, monkeypatch, capsys
):
    """`rtmag quality --calibrate` (pulse) fits on task-A clips of every tone at both
    pulse strengths, on scenes the --tones sweep does not use, at the magnification
    asked, and writes the constant with that magnification into the weight file."""
    import rtmag.quality as quality
    from rtmag.cli import main
    from rtmag.nets import load_weights
    from rtmag.quality import TONE_AMPLITUDES, tone_clips

    seen = {}

    def fake_calibrate(net, meta, clips, magnification=11.0, mcfg=None, **kw):
        seen.update(clips=clips, magnification=magnification, noise_match=mcfg.noise_match)
        return 0.321

    monkeypatch.setattr(quality, "calibrate", fake_calibrate)
    argv = ["quality", "--calibrate", "--tones", "--per-task", "1", "--weights"]
    argv += [str(pulse_weights), "--magnification", "15", "--seconds", "1"]
    argv += ["--size", "64x48", "--engine", "adjoint"]
    assert main(argv) == 0
    clips = seen["clips"]
    assert {(c.skin_tone, c.pulse_amplitude) for c in clips} == {
        (t, a) for a in TONE_AMPLITUDES for t in range(1, 7)
    }
    assert {c.task for c in clips} == {"A"}
    swept = {c.seed for c in tone_clips(10.0, (320, 240), seeds=3)}
    assert not {c.seed for c in clips} & swept
    assert seen["magnification"] == 15.0 and seen["noise_match"] == 4.0
    _, saved = load_weights(pulse_weights, mode="pulse")
    assert saved["calibration"]["gamma_per_gain"] == 0.321
    assert saved["calibration"]["magnification"] == 15.0
    assert "calibrated: gamma_per_gain = 0.321" in capsys.readouterr().out


def test_tone_sweep_clips_and_command(pulse_weights, tmp_path, capsys):
    """`rtmag quality --tones`: task-A scenes at every skin tone and two pulse
    strengths (only the tone and the strength vary within a scene), a table row per
    strength of the mean gain over the scenes, how far it strays from the gain asked,
    JSON."""
    import json

    from rtmag.cli import main
    from rtmag.quality import TONE_AMPLITUDES, tone_clips
    from rtmag.synth.render import Renderer

    clips = tone_clips(2.0, (64, 48))
    assert [(c.skin_tone, c.pulse_amplitude) for c in clips] == [
        (t, a) for a in TONE_AMPLITUDES for t in range(1, 7)
    ]
    assert {(c.task, c.seed, c.size) for c in clips} == {("A", clips[0].seed, (64, 48))}
    assert Renderer(clips[0]).meta()["config"]["skin_tone"] == 1
    two = tone_clips(2.0, (64, 48), seeds=2)
    assert len(two) == 24 and two[:12] == clips
    assert len({c.seed for c in two}) == 2
    assert not {c.seed for c in tone_clips(2.0, (64, 48), seed_offset=100)} & {c.seed for c in two}
    out = tmp_path / "tones.json"
    argv = ["quality", "--tones", "--weights", str(pulse_weights), "--noise-match", "1"]
    argv += ["--per-task", "1"]
    argv += ["--seconds", "1", "--size", "64x48", "--engine", "adjoint", "--json", str(out)]
    assert main(argv) == 0
    table = capsys.readouterr().out
    assert "tone 6" in table and table.count("| 0.004 |") == 1 and "| 0.01 |" in table
    saved = json.loads(out.read_text())
    assert len(saved["rows"]) == 12
    assert sorted(saved["summary"]) == ["0.004", "0.01", "clips_within_30pct", "range"]
    means = [g for a in ("0.004", "0.01") for g in saved["summary"][a]["gain"].values()]
    assert saved["summary"]["range"]["low"] == pytest.approx(min(means) / 20.0 - 1.0)
    inside = sum(abs(r["gain"] / 20.0 - 1.0) <= 0.3 for r in saved["rows"])
    assert saved["summary"]["clips_within_30pct"] == [inside, 12]
    assert f"of the gain asked; {inside} of 12 clips within ±30%" in table
    assert "uncertain" in table  # one scene a tone is too few to judge a dark tone's mean


def test_calibrate_iterates_until_the_gain_is_met(monkeypatch):
    """The gain is not linear in the step constant: from a start far off (a new
    network, no constant in its file) the fit keeps rescaling until a measured round
    is within the tolerance, and returns that measured constant."""
    import rtmag.quality as quality
    from rtmag.magnifier import MagnifierConfig

    def fake_measure(clip, mcfg, net, meta):  # saturating-then-steep, like the real one
        c = meta["calibration"]["gamma_per_gain"]
        return {"gain": 1.0 + 60.0 * (c / 0.4) ** 1.6}

    monkeypatch.setattr(quality, "measure_clip", fake_measure)
    logs = []
    c = quality.calibrate(
        None, {}, [None] * 3, magnification=20.0, log=logs.append, mcfg=MagnifierConfig()
    )
    gain = fake_measure(None, None, None, {"calibration": {"gamma_per_gain": c}})["gain"]
    assert abs(gain - 20.0) <= 0.05 * 20.0
    assert f"gamma_per_gain {c:.4g} -> gains" in logs[-1]  # the constant returned was measured
    assert 2 <= len(logs) <= 5

    logs.clear()
    c1 = quality.calibrate(
        None, {}, [None], magnification=20.0, rounds=1, log=logs.append, mcfg=MagnifierConfig()
    )
    assert "unmeasured" in logs[-1] and c1 != quality_default()


def quality_default():
    from rtmag.magnifier import DEFAULT_GAMMA_PER_GAIN

    return DEFAULT_GAMMA_PER_GAIN
