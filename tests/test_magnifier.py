"""The streaming Magnifier: validation of frames, batching, alignment, edge cases."""

from __future__ import annotations

import numpy as np
import pytest

from rtmag.errors import FrameError, UserError
from rtmag.magnifier import Magnifier, MagnifierConfig


def clip(t=40, h=48, w=64, seed=0):
    """A small clip: a smooth bright image with a weak 1.2 Hz colour pulse and noise."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w]
    base = 120 + 40 * np.sin(xx / 9.0)[..., None] + 20 * np.cos(yy / 7.0)[..., None]
    pulse = 1.5 * np.sin(2 * np.pi * 1.2 * np.arange(t) / 30.0)
    frames = base[None] + pulse[:, None, None, None] * np.array([0.33, 0.77, 0.53])
    frames = frames + rng.normal(0, 1.0, frames.shape)
    return np.clip(np.rint(frames), 0, 255).astype(np.uint8)


def run(mag, frames, batch):
    outs = []
    for i in range(0, len(frames), batch):
        outs += mag.push_many(list(frames[i : i + batch]))
    return outs + mag.flush()


def test_config_validation_names_the_range():
    with pytest.raises(UserError, match="magnification"):
        MagnifierConfig(magnification=0.5)
    with pytest.raises(UserError, match="half the frame rate"):
        MagnifierConfig(band=(0.7, 20.0), fps=30.0)
    with pytest.raises(UserError, match="known modes"):
        MagnifierConfig(mode="heartbeat")


def test_magnification_one_leaves_frames_unchanged(pulse_net):
    frames = clip()
    outs = run(Magnifier(MagnifierConfig(magnification=1.0), net=pulse_net), frames, 8)
    assert [o.index for o in outs] == list(range(len(frames)))
    for o, f in zip(outs, frames):
        np.testing.assert_array_equal(o.image, f)


def test_output_changes_and_is_finite(pulse_net):
    frames = clip(t=60)
    outs = run(Magnifier(MagnifierConfig(gamma=1.0), net=pulse_net), frames, 16)
    diff = np.abs(np.stack([o.image for o in outs]).astype(int) - frames.astype(int))
    assert diff[0].max() == 0  # the first frame has no pair yet
    assert diff[30:].max() > 0
    assert all(np.isfinite(o.signal) for o in outs[1:])
    assert np.isnan(outs[0].signal)


@pytest.mark.parametrize("gamma", [2e-3, None])
def test_batching_does_not_change_the_output(pulse_net, gamma):
    frames = clip(t=50)
    # magnification 11: with this random network the attention step changes the
    # frames by up to ~40 grey levels (as the median step did at 20)
    cfg = MagnifierConfig(gamma=gamma, magnification=11.0)
    one = run(Magnifier(cfg, net=pulse_net), frames, 1)
    many = run(Magnifier(cfg, net=pulse_net), frames, 16)
    for a, b in zip(one, many):
        # float32 sums differ with the batch size, and the change (up to 40 grey levels
        # here) amplifies that: a grey level or two on a few percent of the pixels
        d = np.abs(a.image.astype(int) - b.image.astype(int))
        change = np.abs(a.image.astype(int) - a.original).mean()
        assert d.max() <= 2 and d.mean() <= 0.05 * change + 0.01
        assert a.gamma == pytest.approx(b.gamma, rel=1e-5)


def test_align_delay_is_the_phase_delay_and_holds_frames_back(pulse_net):
    """``align`` delays by :func:`rtmag.filters.alignment_delay_s` (0 at the pulse
    band: the filter is in phase at its centre), not by the group delay (0.35 s, which
    showed the change inverted); a delay holds frames back and the flush emits them
    all, in order, each with its own original."""
    frames = clip(t=40)
    mag = Magnifier(MagnifierConfig(gamma=2e-3, align=True), net=pulse_net)
    assert mag.delay_frames == round(mag.alignment_delay_s * 30) == 0
    assert 0.3 < mag.group_delay_s < 0.4
    mag.delay_frames = 7  # the mechanism, with a delay a filter with lag would give
    assert mag.latency_s == pytest.approx(7 / 30)
    first = mag.push_many(list(frames[:20]))
    assert len(first) == 20 - mag.delay_frames
    outs = first + mag.push_many(list(frames[20:])) + mag.flush()
    assert [o.index for o in outs] == list(range(40))
    for o, f in zip(outs, frames):
        np.testing.assert_array_equal(o.original, f)


def test_black_and_saturated_pixels_give_no_nan(pulse_net):
    frames = clip(t=30)
    frames[:, :10] = 0
    frames[:, -10:] = 255
    outs = run(Magnifier(MagnifierConfig(gamma=1.0), net=pulse_net), frames, 8)
    out = np.stack([o.image for o in outs])
    assert (out[:, :10] == 0).all()  # multiplicative: black stays black
    assert all(np.isfinite(o.signal) for o in outs[1:])


def test_all_black_stream(pulse_net):
    frames = np.zeros((12, 20, 24, 3), np.uint8)
    outs = run(Magnifier(MagnifierConfig(), net=pulse_net), frames, 4)
    assert len(outs) == 12 and all((o.image == 0).all() for o in outs)


def test_odd_and_tiny_sizes(pulse_net):
    for h, w in [(37, 53), (5, 7), (1, 1)]:
        frames = clip(t=10, h=h, w=w)
        outs = run(Magnifier(MagnifierConfig(gamma=1e-3), net=pulse_net), frames, 4)
        assert outs[-1].image.shape == (h, w, 3)


def test_bad_frames_are_refused_with_advice(pulse_net):
    mag = Magnifier(MagnifierConfig(), net=pulse_net)
    with pytest.raises(FrameError, match="COLOR_GRAY2RGB"):
        mag.push(np.zeros((20, 20), np.uint8))
    with pytest.raises(FrameError, match="zero-size.*skip it"):
        mag.push(np.zeros((0, 20, 3), np.uint8))
    with pytest.raises(FrameError, match="uint8"):
        mag.push(np.zeros((20, 20, 3), np.float32))
    with pytest.raises(FrameError, match="numpy array"):
        mag.push([[1, 2, 3]])
    # a refused frame loses nothing: the stream goes on and every good frame comes out
    rng = np.random.default_rng(0)
    good = [rng.integers(0, 256, (24, 32, 3), dtype=np.uint8) for _ in range(12)]
    outs, stream = [], Magnifier(MagnifierConfig(), net=pulse_net)
    for i, f in enumerate(good):
        outs += stream.push(f)
        if i == 5:
            with pytest.raises(FrameError, match="zero-size"):
                stream.push(np.zeros((0, 0, 3), np.uint8))
    outs += stream.flush()
    assert [o.index for o in outs] == list(range(12))
    mag.push(np.zeros((20, 20, 3), np.uint8), t=0.0)
    with pytest.raises(FrameError, match="size changed"):
        mag.push(np.zeros((21, 20, 3), np.uint8), t=0.1)
    with pytest.raises(FrameError, match="increase"):
        mag.push(np.zeros((20, 20, 3), np.uint8), t=0.0)
    # a refused frame loses nothing: the stream goes on
    assert len(mag.push(np.zeros((20, 20, 3), np.uint8), t=0.2)) == 1


def test_rgba_frames_are_accepted(pulse_net):
    mag = Magnifier(MagnifierConfig(), net=pulse_net)
    out = mag.push(np.full((8, 8, 4), 100, np.uint8))
    assert out[0].image.shape == (8, 8, 3)


def test_missing_weights_give_a_clear_error(tmp_path):
    from rtmag.errors import WeightsError

    with pytest.raises(WeightsError, match="nope.pt"):
        Magnifier(MagnifierConfig(weights=str(tmp_path / "nope.pt")))


def test_engines_agree(pulse_net):
    import torch

    from rtmag.engines import create_engine

    x = torch.randn(6, 3, 36, 36) * 0.01
    gamma = torch.full((6,), 1e-3)
    ref = create_engine("eager", pulse_net, 20)(x, gamma)
    adj = create_engine("adjoint", pulse_net, 20)(x, gamma)
    torch.testing.assert_close(adj, ref, rtol=1e-4, atol=1e-9)
    assert ref.abs().sum() > 0  # a change, not X_N
    with pytest.raises(UserError, match="known engines"):
        create_engine("warp", pulse_net, 20)


def test_face_region_magnifies_inside_the_box_only(pulse_net, shared_clip):
    from rtmag.video import read_video

    frames, info = read_video(shared_clip("evm_face.mp4"), max_frames=40)
    frames = np.ascontiguousarray(frames[:, ::2, ::2])  # 264x296: quicker
    mag = Magnifier(MagnifierConfig(gamma=1.0, region="face", fps=info.fps), net=pulse_net)
    outs = run(mag, frames, 16)
    assert sum(o.box is not None for o in outs) > 30
    changed = 0
    for o, f in zip(outs, frames):
        diff = np.abs(o.image.astype(int) - f)
        if o.box is None:
            continue
        x0, y0, x1, y1 = o.box.to_int()
        changed += diff[y0:y1, x0:x1].max() > 0
        diff[max(y0 - 1, 0) : y1 + 1, max(x0 - 1, 0) : x1 + 1] = 0
        assert diff.max() == 0  # nothing changes outside the face box
    assert changed > 10


def test_region_must_be_known():
    with pytest.raises(UserError, match="region"):
        MagnifierConfig(region="hands")


def test_step_is_not_zero_when_a_codec_copies_still_blocks(pulse_net):
    """H.264 copies still blocks exactly, so most of X_1 is 0 on a still scene; the
    step's scale is the median of the non-zero |X_1|, so such a clip is magnified."""
    from rtmag.magnifier import Magnifier, MagnifierConfig

    t = np.arange(60) / 30.0
    frames = np.full((60, 72, 72, 3), 120, np.uint8)
    # a quarter of the frame breathes with a 1.2 Hz colour change; the rest is copied
    wave = np.rint(3 * np.sin(2 * np.pi * 1.2 * t)).astype(int)
    frames[:, :36, :36, 1] = (120 + wave)[:, None, None]
    mag = Magnifier(MagnifierConfig(fps=30.0, magnification=20), net=pulse_net, meta={})
    outs = mag.push_many(list(frames)) + mag.flush()
    gammas = np.array([o.gamma for o in outs[1:]])
    assert (gammas[np.abs(np.diff(wave)) > 0] > 0).all()
    assert any(np.abs(o.image.astype(int) - o.original).max() > 0 for o in outs)


def test_attention_scale_is_the_weighted_mean_where_x_changed():
    """The pulse's step scale: mean of |X_1| weighted by |G_1| over non-zero elements,
    against a float64 computation; where the gradient is 0 the size of X is ignored
    (a moving background does not change the step), exact zeros are left out."""
    import torch

    from rtmag.magnifier import _attention_mean

    rng = np.random.default_rng(3)
    a = np.abs(rng.normal(size=(3, 50)))
    g = np.abs(rng.normal(size=(3, 50)))
    a[1, :20] = 0.0  # a codec copied these blocks
    g[2] = 0.0  # no gradient at all
    got = _attention_mean(torch.from_numpy(a).float(), torch.from_numpy(g).float())
    for i in range(2):
        nz = a[i] != 0
        want = (g[i] * a[i]).sum() / g[i][nz].sum()
        assert got[i] == pytest.approx(want, rel=1e-6)
    assert got[2] == 0.0
    # the size of X where the network does not look does not count...
    g2 = g[:1].copy()
    g2[0, 25:] = 0.0
    a2 = a[:1].copy()
    base = _attention_mean(torch.from_numpy(a2), torch.from_numpy(g2))
    a2[0, 25:] *= 100.0
    assert _attention_mean(torch.from_numpy(a2), torch.from_numpy(g2)) == pytest.approx(base)
    # ...and where it looks, the scale follows X
    a2[0, :25] *= 3.0
    assert _attention_mean(torch.from_numpy(a2), torch.from_numpy(g2)) == pytest.approx(3 * base)


def test_step_scale_setting_and_calibration_mismatch(pulse_net):
    from rtmag.magnifier import Magnifier, MagnifierConfig

    assert MagnifierConfig().step_scale == "attention"
    assert MagnifierConfig(mode="respiration").step_scale == "median"
    with pytest.raises(UserError, match="step_scale"):
        MagnifierConfig(step_scale="mean")
    # a file calibrated with the old rule (no step_scale recorded) warns under the new one
    with pytest.warns(UserWarning, match="recalibrate"):
        Magnifier(MagnifierConfig(), net=pulse_net, meta={"calibration": {"gamma_per_gain": 0.3}})
    meta = {
        "calibration": {
            "gamma_per_gain": 0.3,
            "step_scale": "attention",
            "focus": 2.0,
            "noise_match": 4.0,
            "noise_size": "x1_second_difference_median",
            "smooth": 1.5,
        }
    }
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        Magnifier(MagnifierConfig(), net=pulse_net, meta=meta)
        Magnifier(MagnifierConfig(step_scale="median"), net=pulse_net, meta={})
    # a file calibrated before focus existed (none recorded) warns under focus 2
    old = {"calibration": {"gamma_per_gain": 0.3, "step_scale": "attention"}}
    with pytest.warns(UserWarning, match="focus"):
        Magnifier(MagnifierConfig(), net=pulse_net, meta=old)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        Magnifier(MagnifierConfig(focus=0.0, noise_match=1.0, smooth=0.0), net=pulse_net, meta=old)
    # ... and one from before the noise match (none recorded) under the match
    older = {"calibration": {"gamma_per_gain": 0.3, "step_scale": "attention", "focus": 2.0}}
    with pytest.warns(UserWarning, match="noise_match"):
        Magnifier(MagnifierConfig(), net=pulse_net, meta=older)
    # ... and one made under the one-sided noise boost that came before it
    boosted = {"calibration": {**older["calibration"], "noise_boost": 4.0}}
    with pytest.warns(UserWarning, match="noise_boost"):
        Magnifier(MagnifierConfig(), net=pulse_net, meta=boosted)
    # ... and one made when the match sized the change by |X_1| itself
    first = {"calibration": {**meta["calibration"]}}
    del first["calibration"]["noise_size"]
    with pytest.warns(UserWarning, match="noise_size 'abs_x1'"):
        Magnifier(MagnifierConfig(), net=pulse_net, meta=first)
    # ... or by a running mean of its second difference
    second = {"calibration": {**meta["calibration"], "noise_size": "x1_second_difference"}}
    with pytest.warns(UserWarning, match="noise_size 'x1_second_difference'"):
        Magnifier(MagnifierConfig(), net=pulse_net, meta=second)
    # ... and one from before the smoothing (none recorded: the per-element change)
    unsmoothed = {"calibration": {**meta["calibration"]}}
    del unsmoothed["calibration"]["smooth"]
    with pytest.warns(UserWarning, match="smooth 0.0, not 1.5"):
        Magnifier(MagnifierConfig(), net=pulse_net, meta=unsmoothed)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        Magnifier(MagnifierConfig(smooth=0.0), net=pulse_net, meta=unsmoothed)
    # the colour axis is shown after the calibrated step: not part of the step rule
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        Magnifier(MagnifierConfig(colour_axis=True), net=pulse_net, meta=meta)


def _running(mean, a, alpha, warm=True):
    if mean is None:
        return a.copy()
    v = np.where(a == 0, mean, np.minimum(a, 3 * mean) if warm else a)
    v = np.where(mean == 0, a, v)
    return mean + alpha * (v - mean)


def test_noise_weights_against_a_direct_computation(pulse_net):
    """min(kappa N / D, B), kappa = c (A - 1) 10: N the running size of the noise of
    X_1, |X_1(t) - X_1(t-1)| / sqrt(3) (|X_1| on a stream's first pair): a running
    median (steps of exp(+-g), g from 1 down to alpha) in units of a normal's mean |x|;
    D the running mean of the ascent's change |X_N - X_1|
    per element (after the first 1/alpha frames each value winsorised at 3 times the
    mean); exact zeros leave both alone; 0 where D is 0; in float64, the same one by
    one or in a batch; reset forgets N, D and X_1."""
    import torch

    from rtmag.filters import ema_rate
    from rtmag.magnifier import NOISE_MATCH_SCALE, MagnifierConfig, PairAnalyser

    cfg = MagnifierConfig(fps=30.0, noise_match=1.2, scale_halflife_s=1 / 30)
    rng = np.random.default_rng(11)
    x = rng.normal(scale=0.01, size=(5, 3, 6, 6))
    x[:, 0, :2] *= 6.0  # a noisy patch (dark skin): its change is raised
    x[3, 1, 3:] = 0.0  # blocks a codec copied
    x[4, 2, 0, 0] = 1.0  # one burst: winsorised
    d = np.abs(rng.normal(scale=0.02, size=x.shape)) * np.sign(x)
    d[:, 2] *= 10.0  # where the gradient pushed hardest: lowered
    d[:, 1, 0, 0] = 0.0  # never moved
    kappa = 0.002 * (cfg.magnification - 1.0) * NOISE_MATCH_SCALE
    alpha = ema_rate(cfg.scale_halflife_s, 1 / cfg.fps)
    mean_over_median = np.sqrt(2 / np.pi) / 0.6744897501960817  # of |x|, x normal
    n = dm = None
    want = []
    for i in range(5):
        if i == 0:
            a = np.abs(x[i])
        else:  # a codec's 0 on either side: no noise seen
            a = np.where(x[i] * x[i - 1] == 0, 0.0, np.abs(x[i] - x[i - 1]) / np.sqrt(3.0))
        if n is None:  # a running median, steps shrinking from 1 to alpha
            n = a * mean_over_median
        else:
            step = np.where(a == 0, 0.0, np.sign(a * mean_over_median - n))
            g = max(alpha, 1.0 / (i + 1))
            n = np.where(n == 0, a * mean_over_median, n * np.exp(g * step))
        dm = _running(dm, np.abs(d[i]), alpha, warm=i >= 2)
        r = np.where(dm > 0, n / np.where(dm > 0, dm, 1.0), 0.0)
        want.append(np.minimum(kappa * r, 1.2))
    xt, dt = torch.from_numpy(x), torch.from_numpy(d)
    batch = PairAnalyser(pulse_net, cfg, 0.002)
    got = batch.noise_weights(xt, dt)
    np.testing.assert_allclose(got.numpy(), np.stack(want), rtol=1e-12)
    assert got.max() == 1.2 and (got[:, 1, 0, 0] == 0).all()
    assert got[:, 0, :2].mean() > 2 * got[:, 0, 2:].mean()
    assert got[:, 2].mean() < got[:, 1].mean()
    one = PairAnalyser(pulse_net, cfg, 0.002)
    singles = [one.noise_weights(xt[i : i + 1], dt[i : i + 1]) for i in range(5)]
    np.testing.assert_allclose(torch.cat(singles).numpy(), got.numpy(), rtol=1e-12)
    one.reset()
    n2 = np.abs(x[2]) * mean_over_median
    r = np.where(d[2] != 0, n2 / np.where(d[2] != 0, np.abs(d[2]), 1.0), 0.0)
    np.testing.assert_allclose(
        one.noise_weights(xt[2:3], dt[2:3]).numpy()[0], np.minimum(kappa * r, 1.2), rtol=1e-12
    )


def test_noise_match_makes_the_change_follow_each_elements_own_size(pulse_net):
    """The point of the weights: on a steady stream the weighted change of each
    element is kappa times its own running size |X_1| (so the sign-corrected gain,
    about 0.64 |change| / sigma, is the same everywhere), whatever size the gradient
    gave it; kappa grows with the magnification asked."""
    import torch

    from rtmag.magnifier import MagnifierConfig, PairAnalyser

    rng = np.random.default_rng(5)
    sigma = np.exp(rng.uniform(-1, 1, size=(3, 8, 8))) * 0.01  # noise per element
    size = np.exp(rng.uniform(-1, 1, size=(3, 8, 8))) * 0.05  # the ascent's change
    ratios = {}
    for a in (5.0, 20.0):
        an = PairAnalyser(pulse_net, MagnifierConfig(magnification=a, noise_match=64.0), 0.2)
        for _ in range(300):
            x = rng.normal(size=(1, 3, 8, 8)) * sigma
            dt = torch.from_numpy(size * np.sign(x))
            w = an.noise_weights(torch.from_numpy(x), dt)
        out = (w * dt.abs())[0].numpy()
        ratio = out / an.noise.reshape(out.shape).numpy()
        assert ratio.std() / ratio.mean() < 1e-9
        ratios[a] = ratio.mean()
        an.reset()
        assert an.noise is None and an.dsize is None
    assert ratios[20.0] / ratios[5.0] == pytest.approx(19.0 / 4.0)


def test_noise_match_measures_the_noise_of_x1_not_its_motion(pulse_net):
    """N, the size the change is matched to, is the frame noise in X_1: on a still
    stream (X_1 the difference of white frame noise) it is the mean |X_1|; on a moving
    one it stays the noise's where the mean |X_1| grows several-fold, so motion does
    not raise the change: a head turning at a varying speed (it cancels in the second
    difference), or one that snaps to a new pose once a second (4 frames in 30 with
    changes 10-20 times the noise: the running median follows them little, where a
    running mean of the same sizes rose by a third)."""
    import torch

    from rtmag.magnifier import MagnifierConfig, PairAnalyser

    rng = np.random.default_rng(8)
    t = np.arange(1201) / 30.0
    e = rng.normal(scale=0.01, size=(len(t), 3, 4, 4))
    still = e[1:] - e[:-1]  # X_1 of a still element under white frame noise
    phase = rng.uniform(0, 2 * np.pi, size=(3, 4, 4))
    # a turning head: steady motion (X_1 a constant) that speeds up and slows down
    motion = 0.05 + 0.03 * np.sin(2 * np.pi * 0.3 * t[1:, None, None, None] + phase)
    noise_size = np.sqrt(2.0) * 0.01 * np.sqrt(2.0 / np.pi)  # E|e(t+1) - e(t)|
    # a head that snaps to a new pose once a second, over 4 frames
    snap = np.zeros(len(t) - 1)
    for k in range(0, len(snap) - 4, 30):
        snap[k : k + 4] = (0.1, 0.2, 0.2, 0.1)
    bursts = snap[:, None, None, None] * np.ones((1, 3, 4, 4))
    cases = (
        (still, (0.95, 1.05), 0.1),
        (still + motion, (3.0, 6.0), 0.1),
        (still + bursts, (1.8, 20.0), 0.3),
    )
    for x, abs_ratio, tol in cases:
        an = PairAnalyser(pulse_net, MagnifierConfig(noise_match=4.0), 0.2)
        xt = torch.from_numpy(x)
        d = torch.full_like(xt, 0.01)
        for i in range(0, len(x), 64):  # batches of 64 pairs, in stream order
            an.noise_weights(xt[i : i + 64], d[i : i + 64])
        n = an.noise.reshape(3, 4, 4).numpy()
        assert n.mean() == pytest.approx(noise_size, rel=tol)
        lo, hi = abs_ratio
        assert lo < np.abs(x[-300:]).mean() / n.mean() < hi
    # the snaps would have raised a running mean of the same sizes (winsorised at 3x) far
    # more (5 frames in 30 at 3 times the mean)
    a = np.abs(np.diff(x, axis=0)) / np.sqrt(3.0)
    m = None
    for i in range(len(a)):
        m = _running(m, a[i], an._alpha, warm=i > 100)
    assert m.mean() > 1.3 * noise_size and n.mean() < 1.2 * noise_size


def test_respiration_matches_the_size_of_the_motion_itself(pulse_net):
    """Respiration's N is the running mean of |X_1| (the breath is the signal there):
    on elements whose phase difference follows a breath of three sizes it is the mean
    |X_1| of each, so the change kappa N grows with the breath and the gain does not
    fall as the breath grows (with a change of one size it did: 10.8 for a small
    breath, 5.3 for a large one). The pulse's N on the same elements is their noise."""
    import torch

    from rtmag.magnifier import MagnifierConfig, PairAnalyser

    rng = np.random.default_rng(5)
    t = np.arange(601) / 7.5  # the respiration pair rate
    sizes = np.array([0.02, 0.06, 0.18])[:, None, None]
    breath = np.cos(2 * np.pi * 0.25 * t)[:, None, None, None] * sizes  # (T, 3, 1, 1)
    x = breath + rng.normal(scale=0.002, size=(len(t), 3, 4, 4))
    xt = torch.from_numpy(x)
    d = torch.full_like(xt, 0.01)
    resp = PairAnalyser(pulse_net, MagnifierConfig(mode="respiration"), 0.001, pair_rate=7.5)
    pulse = PairAnalyser(pulse_net, MagnifierConfig(noise_match=4.0), 0.2, pair_rate=7.5)
    w = resp.noise_weights(xt, d)
    pulse.noise_weights(xt, d)
    n = resp.noise.reshape(3, 4, 4).numpy().mean(axis=(1, 2))
    mean_abs = np.abs(x[-150:]).mean(axis=(0, 2, 3))
    np.testing.assert_allclose(n, mean_abs, rtol=0.15)
    np.testing.assert_allclose(n[1:] / n[:-1], 3.0, rtol=0.1)
    # the weights follow N where the cap does not bind
    kappa = 0.001 * (resp.config.magnification - 1.0) * 10.0
    expect = np.minimum(kappa * resp.noise.numpy() / 0.01, 2.0).reshape(3, 4, 4)
    np.testing.assert_allclose(w[-1].numpy(), expect)
    assert 0.05 < expect.min() and expect.max() < 2.0
    # the pulse's N: the noise, in which the slow breath mostly cancels
    pn = pulse.noise.reshape(3, 4, 4).numpy().mean(axis=(1, 2))
    assert (pn < 0.3 * n).all()


def test_noise_size_starts_fast_from_a_small_first_value(pulse_net):
    """The running median's steps shrink from 1 to alpha over the first frames, so an
    element whose first |X_1| happened to be a tenth of its noise reaches its noise
    level within 2 s (with steps of alpha from the start it took about 7 s)."""
    import torch

    from rtmag.magnifier import MagnifierConfig, PairAnalyser

    rng = np.random.default_rng(4)
    e = rng.normal(scale=0.01, size=(61, 3, 4, 4))
    x = e[1:] - e[:-1]
    noise_size = np.sqrt(2.0) * 0.01 * np.sqrt(2.0 / np.pi)  # mean |x|
    x[0] = 0.1 * noise_size  # the first pair: a tenth of the noise everywhere
    an = PairAnalyser(pulse_net, MagnifierConfig(noise_match=4.0), 0.2)
    assert an._alpha < 0.02  # 2 s half-life at 30 fps
    xt = torch.from_numpy(x)
    an.noise_weights(xt, torch.full_like(xt, 0.01))
    assert an.noise.mean().item() == pytest.approx(noise_size, rel=0.3)


def test_noise_match_setting_and_its_place_in_the_ascent(pulse_net):
    """Both modes match by default; 1 is off, and so is a fixed gamma
    (the paper's step as given); the weights multiply the change with the focus
    weights, and are computed from the change before either."""
    import torch

    from rtmag.magnifier import MagnifierConfig, PairAnalyser

    assert MagnifierConfig().noise_match == 4.0
    assert MagnifierConfig(mode="respiration").noise_match == 2.0
    for bad in (0.5, float("nan"), 65.0):
        with pytest.raises(UserError, match="noise_match"):
            MagnifierConfig(noise_match=bad)
    rng = np.random.default_rng(3)
    x1 = torch.from_numpy(rng.normal(scale=0.01, size=(4, 3, 36, 36))).float()
    x1[:, 1, :10] *= 8.0
    on = PairAnalyser(pulse_net, MagnifierConfig(), 0.2)
    off = PairAnalyser(pulse_net, MagnifierConfig(noise_match=1.0), 0.2)
    raw = PairAnalyser(pulse_net, MagnifierConfig(focus=0.0, noise_match=1.0), 0.2)
    d_on, _, g_on = on.ascend(x1)
    d_off, _, g_off = off.ascend(x1)
    d_raw, _, _ = raw.ascend(x1)
    np.testing.assert_allclose(g_on, g_off)
    ref = PairAnalyser(pulse_net, MagnifierConfig(), 0.2)
    w = ref.noise_weights(x1, d_raw).float()
    torch.testing.assert_close(d_on, d_off * w, rtol=1e-5, atol=1e-12)
    assert (w > 1).any() and (w < 1).any() and w.max() <= 4.0
    fixed = PairAnalyser(pulse_net, MagnifierConfig(gamma=0.05), 0.2)
    plain = PairAnalyser(pulse_net, MagnifierConfig(gamma=0.05, noise_match=1), 0.2)
    torch.testing.assert_close(fixed.ascend(x1)[0], plain.ascend(x1)[0])


def test_focus_setting():
    from rtmag.magnifier import MagnifierConfig

    assert MagnifierConfig().focus == 2.0
    assert MagnifierConfig(mode="respiration").focus == 0.0
    for bad in (-1.0, float("nan"), 9.0):
        with pytest.raises(UserError, match="focus"):
            MagnifierConfig(focus=bad)


def test_focus_weights_against_a_direct_computation(pulse_net):
    """min(1, A / A_ref) ** q with A the running mean of |G_1| (stream order, same
    smoothing as the step scale) and A_ref 0.4 of A's 99th percentile, in float64
    (numpy's percentile); the same whether the frames come one by one or in a batch;
    reset forgets A."""
    import torch

    from rtmag.filters import ema_rate
    from rtmag.magnifier import MagnifierConfig, PairAnalyser

    cfg = MagnifierConfig(fps=30.0, focus=2.0)
    rng = np.random.default_rng(5)
    g = torch.from_numpy(np.abs(rng.normal(size=(4, 3, 6, 6))) ** 3)
    g[2, :, :3] = 0.0
    a = ema_rate(cfg.scale_halflife_s, 1 / 30.0)
    want, att = [], None
    for gi in g.numpy():
        att = gi.copy() if att is None else att + a * (gi - att)
        ref = 0.4 * np.percentile(att, 99)
        want.append(np.minimum(att / ref, 1.0) ** 2)
    batch = PairAnalyser(pulse_net, cfg, 0.2).focus_weights(g)
    np.testing.assert_allclose(batch.numpy(), np.stack(want), rtol=1e-12)
    one = PairAnalyser(pulse_net, cfg, 0.2)
    singles = torch.cat([one.focus_weights(g[i : i + 1]) for i in range(4)])
    np.testing.assert_allclose(singles.numpy(), batch.numpy(), rtol=1e-12)
    assert (batch <= 1).all() and (batch >= 0).all() and (batch == 1).any()
    one.reset()  # the next frame starts a new map
    g1 = g[1].numpy()
    first = np.minimum(g1 / (0.4 * np.percentile(g1, 99)), 1.0) ** 2
    np.testing.assert_allclose(one.focus_weights(g[1:2]).numpy()[0], first, rtol=1e-12)
    # an all-zero gradient (a repeated frame at the start) leaves the change alone
    z = PairAnalyser(pulse_net, cfg, 0.2).focus_weights(torch.zeros(1, 3, 6, 6))
    assert (z == 1).all()


def test_focus_scales_the_ascent_change_and_zero_is_the_paper(pulse_net):
    """With focus 0 the change is X_N - X_1 of the paper's ascent (the eager
    reference, although the analyser takes the first step from its own gradient and
    the engine the rest); its reading is the network's output on X_1. With focus q it
    is that change times the focus weights, element by element."""
    import torch

    from rtmag.ascent import gradient_ascent
    from rtmag.magnifier import MagnifierConfig, PairAnalyser

    rng = np.random.default_rng(8)
    x1 = torch.from_numpy(rng.normal(scale=0.01, size=(3, 3, 36, 36))).float()
    plain = PairAnalyser(pulse_net, MagnifierConfig(focus=0.0, gamma=0.05), 0.2)
    d0, y0, _ = plain.ascend(x1)
    direct = gradient_ascent(pulse_net, x1, torch.full((3,), 0.05), 20, return_delta=True)
    torch.testing.assert_close(d0, direct, rtol=1e-5, atol=1e-9)
    with torch.no_grad():
        np.testing.assert_allclose(y0, pulse_net(x1).double().numpy(), rtol=1e-6)
    for n in (2, 3):  # the split at its edges: the first step only, one more
        short = PairAnalyser(pulse_net, MagnifierConfig(focus=0.0, gamma=0.05, n_iter=n), 0.2)
        want = gradient_ascent(pulse_net, x1, torch.full((3,), 0.05), n, return_delta=True)
        torch.testing.assert_close(short.ascend(x1)[0], want, rtol=1e-5, atol=1e-9)
    focused = PairAnalyser(pulse_net, MagnifierConfig(focus=1.0, gamma=0.05), 0.2)
    d1, _, _ = focused.ascend(x1)
    from rtmag.ascent import input_gradient_autograd

    w = PairAnalyser(pulse_net, MagnifierConfig(focus=1.0), 0.2).focus_weights(
        input_gradient_autograd(pulse_net, x1).abs()
    )
    torch.testing.assert_close(d1, direct * w.float())
    assert d1.abs().sum() < d0.abs().sum()


def test_step_rule_options_on_the_command_line():
    """--focus, --noise-match and --smooth reach the MagnifierConfig of magnify, webcam
    and demo; left out, the mode's defaults."""
    import argparse
    import importlib

    from rtmag.commands.magnify import magnifier_config

    def parse(argv):
        p = argparse.ArgumentParser()
        importlib.import_module(f"rtmag.commands.{argv[0]}").add_arguments(p)
        return p.parse_args(argv[1:])

    for cmd in (["magnify", "in.mp4", "-o", "out.mp4"], ["webcam"], ["demo"]):
        argv = cmd + ["--focus", "1", "--noise-match", "2.5", "--smooth", "0"]
        cfg = magnifier_config(parse(argv))
        assert (cfg.focus, cfg.noise_match, cfg.smooth) == (1.0, 2.5, 0.0)
        cfg = magnifier_config(parse(cmd))
        assert (cfg.focus, cfg.noise_match, cfg.smooth) == (2.0, 4.0, 1.5)
    args = parse(["magnify", "in.mp4", "-o", "o.mp4", "--noise-match", "0.5"])
    with pytest.raises(UserError, match="noise_match"):
        magnifier_config(args)
    for bad in ("-1", "nan", "40"):
        with pytest.raises(UserError, match="smooth must be between 0 and 18"):
            magnifier_config(parse(["magnify", "in.mp4", "-o", "o.mp4", "--smooth", bad]))
    args = parse(["magnify", "in.mp4", "-o", "o.mp4", "--mode", "respiration", "--smooth", "1"])
    with pytest.raises(UserError, match="smooth is for the pulse"):
        magnifier_config(args)
    assert magnifier_config(parse(["demo", "--mode", "respiration"])).smooth == 0.0
    for cmd in (["magnify", "in.mp4", "-o", "out.mp4", "--causal"], ["webcam"], ["demo"]):
        assert magnifier_config(parse(cmd)).phase_lock is True
        assert magnifier_config(parse(cmd + ["--no-phase-lock"])).phase_lock is False
        assert magnifier_config(parse(cmd)).colour_axis is True
        assert magnifier_config(parse(cmd + ["--no-colour-axis"])).colour_axis is False
    assert magnifier_config(parse(["demo", "--mode", "respiration"])).colour_axis is False
    args = parse(["demo", "--mode", "respiration", "--colour-axis"])
    with pytest.raises(UserError, match="colour_axis is for the pulse"):
        magnifier_config(args)


def test_ascent_workers_split_the_batch_and_give_the_same_change(pulse_net):
    """workers > 1 runs the engine on parts of the batch in threads at once: the same
    change, reading and steps as one worker (frames are independent); the first call
    runs whole (an engine that builds on first use builds once)."""
    import threading

    import torch

    from rtmag.magnifier import MagnifierConfig, PairAnalyser

    rng = np.random.default_rng(12)
    xs = [torch.from_numpy(rng.normal(scale=0.01, size=(7, 3, 36, 36))).float() for _ in range(3)]
    # a step size at which 19 float32 steps stay tame: at 0.2 (changes 50 times the
    # noise) one batch's change differed by 0.27 between the whole batch and its
    # halves on one machine (0.004 at 0.01): float32 rounding of the kernels chosen
    # for each batch size, flipping a ReLU near 0 and grown through the steps
    one = PairAnalyser(pulse_net, MagnifierConfig(workers=1), 0.002)
    two = PairAnalyser(pulse_net, MagnifierConfig(workers=2), 0.002)
    seen = []
    engine = two.engine

    def spy(x, gamma):
        seen.append((threading.current_thread().name, len(x)))
        return engine(x, gamma)

    two.engine = spy
    for x in xs:
        d1, y1, g1 = one.ascend(x)
        d2, y2, g2 = two.ascend(x)
        torch.testing.assert_close(d2, d1, rtol=1e-5, atol=1e-10)
        np.testing.assert_array_equal(y2, y1)
        np.testing.assert_array_equal(g2, g1)
    assert seen[0] == (threading.main_thread().name, 7)  # the first call: whole
    later = seen[1:]
    assert sorted(n for _, n in later) == [3, 3, 4, 4]
    assert all(name.startswith("rtmag-ascent") for name, _ in later)
    with pytest.raises(UserError, match="workers"):
        MagnifierConfig(workers=0)


def test_phase_lock_follows_a_confident_rate_and_forgets_on_reset(pulse_net):
    """The lock takes the rate reading only from LOCK_CONFIDENCE on, keeps at most one
    period of the band's low edge of states, and starts again with a new stream."""
    from rtmag.filters import lock_delay_s
    from rtmag.magnifier import LOCK_CONFIDENCE, Magnifier, MagnifierConfig
    from rtmag.vitals import RateEstimate

    mag = Magnifier(MagnifierConfig(), net=pulse_net, meta={})
    assert mag._history.maxlen == int(np.ceil(30.0 / 0.7)) + 2
    mag.rates.current = RateEstimate(50.0, LOCK_CONFIDENCE - 0.01, 50.0 / 60)
    mag._update_lock()
    assert mag.lock_frames == 0  # not confident enough
    mag.rates.current = RateEstimate(50.0, 0.9, 50.0 / 60)
    mag._update_lock()
    bp = mag.integrator.bandpass
    assert mag.lock_frames == round(30 * lock_delay_s(bp.sos, 50.0 / 60, 30.0)) > 0
    rng = np.random.default_rng(0)
    frames = rng.integers(60, 200, (60, 24, 32, 3), dtype=np.uint8)
    out = mag.push_many(list(frames[:30])) + mag.push_many(list(frames[30:]))
    assert len(out) == 60 and len(mag._history) <= mag._history.maxlen
    mag.reset()
    assert mag.lock_frames == 0 and len(mag._history) == 0
    off = Magnifier(MagnifierConfig(phase_lock=False), net=pulse_net, meta={})
    assert off._history.maxlen == 1 and off.lock_delay_s == 0.0


def test_colour_axis_projects_the_change_live_and_offline(pulse_net):
    """colour_axis: each frame's log gain is the unprojected one with its part across
    the colour axis scaled by 1 - reliability: the running axis live (after the warm-up),
    the clip's one axis on the files' zero-phase path. Respiration refuses it."""
    from rtmag.magnifier import COLOUR_AXIS_WARMUP_S
    from rtmag.representations.colour import colour_axis, project_on_axis

    frames = clip(t=120, seed=5)
    states = {}
    for on in (True, False):
        mag = Magnifier(MagnifierConfig(gamma=2e-3, colour_axis=on), net=pulse_net, meta={})
        run(mag, frames, 16)
        states[on] = list(mag._history)  # the last frames' log gains (the lock's history)
        assert len(states[on]) > 20 and 120 - len(states[on]) > 30 * COLOUR_AXIS_WARMUP_S
        if on:
            axis, rel = mag.path.colour_axis.axis
    assert 0.0 < rel <= 1.0
    want = project_on_axis(states[False][-1].astype(np.float64), axis, rel)
    np.testing.assert_allclose(states[True][-1], want, rtol=1e-4, atol=1e-9)
    assert not np.allclose(states[True][-1], states[False][-1], rtol=1e-3, atol=0)
    # the files' path: one axis for the whole clip, the colour of its common change
    rng = np.random.default_rng(1)
    v0 = np.array([0.2, 1.0, 0.5]) / np.linalg.norm([0.2, 1.0, 0.5])
    deltas = 1e-3 * rng.standard_normal((119, 36, 36, 3))
    deltas += 1e-3 * np.sin(np.arange(119) / 4.0)[:, None, None, None] * v0
    times = np.arange(120) / 30.0
    gains = {}
    for on in (True, False):
        mag = Magnifier(MagnifierConfig(colour_axis=on), net=pulse_net, meta={})
        gains[on] = mag.path.offline(deltas, times[1:], times, [])(np.arange(120))
    axis, rel = colour_axis(gains[False])
    assert abs(axis @ v0) > 0.99 and rel > 0.9
    np.testing.assert_allclose(gains[True], project_on_axis(gains[False], axis, rel), rtol=1e-12)
    with pytest.raises(UserError, match="colour_axis is for the pulse"):
        MagnifierConfig(mode="respiration", colour_axis=True)
    assert MagnifierConfig(mode="respiration").colour_axis is False
    assert MagnifierConfig().colour_axis is True
