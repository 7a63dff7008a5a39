"""Training configuration and data of both modes (the real runs are outside CI)."""

import json

import numpy as np
import pytest

from rtmag.errors import UserError
from rtmag.train import RESPIRATION_DEFAULTS, TrainConfig, clip_config, respiration_examples


def test_for_mode_defaults_and_overrides():
    p = TrainConfig.for_mode("pulse")
    assert p.render_size == (160, 120) and p.fps == 30.0
    r = TrainConfig.for_mode("respiration", epochs=2, lr=None)
    assert r.fps == RESPIRATION_DEFAULTS["fps"] == 7.5
    assert r.render_size == (320, 240) and r.epochs == 2
    assert r.lr == RESPIRATION_DEFAULTS["lr"]  # None keeps the mode's default
    assert r.out.endswith("respiration.pt")
    with pytest.raises(UserError, match="unknown training mode"):
        TrainConfig(mode="heartbeat")


def test_respiration_clip_config_draws_breathing_amplitude():
    c = clip_config(3, 0, 10.0, 7.5, (128, 96), val=False, amplitude=(1.0, 5.0), mode="respiration")
    assert c.mode == "respiration" and 1.0 <= c.breathing_amplitude_px <= 5.0
    assert c.pulse_amplitude is None
    v = clip_config(3, 0, 10.0, 7.5, (128, 96), val=True, amplitude=(1.0, 5.0), mode="respiration")
    assert v.breathing_amplitude_px is None and v.seed != c.seed  # held-out, default amplitude


def test_respiration_examples_shapes_and_target():
    c = clip_config(0, 0, 9.0, 7.5, (128, 96), val=False, amplitude=(2.0, 4.0), mode="respiration")
    [(x, y)] = respiration_examples(c)
    t = round(9.0 * 7.5)
    assert x.shape == (t - 1, 4, 123, 123) and x.dtype == np.float16
    assert y.shape == (t - 1,) and abs(y.mean()) < 1e-5 and y.std() == pytest.approx(1, abs=1e-3)
    assert np.abs(x).max() <= np.pi + 1e-2  # wrapped phase differences


def test_train_respiration_smoke(tmp_path):
    """A seconds-long run writes a loadable BreathNet with its metadata and curve."""
    from rtmag.nets import BreathNet, load_weights
    from rtmag.train import train

    out = tmp_path / "resp.pt"
    cfg = TrainConfig.for_mode(
        "respiration",
        clips=2,
        val_clips=4,
        seconds=9.0,
        render_size=(128, 96),
        epochs=1,
        batch=32,
        workers=1,
        curriculum_epochs=0,
        out=str(out),
    )
    train(cfg, log=lambda *_: None)
    net, meta = load_weights(out, mode="respiration")
    assert isinstance(net, BreathNet)
    assert meta["representation"]["kind"] == "phase_difference"
    assert meta["band_hz"] == [0.16, 0.5] and meta["fps"] == 7.5
    assert out.with_suffix(".loss.png").stat().st_size > 0
    hist = json.loads(out.with_suffix(".history.json").read_text())
    assert np.isfinite(hist[0]["val"]["all"])
