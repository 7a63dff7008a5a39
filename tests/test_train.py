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


def _pulse_cfg(tmp_path, name, **kw):
    base = dict(
        clips=2,
        val_clips=4,
        seconds=3.0,
        render_size=(80, 60),
        crops_per_clip=1,
        epochs=1,
        batch=64,
        workers=1,
        curriculum_epochs=0,
        out=str(tmp_path / name),
    )
    base.update(kw)
    return TrainConfig.for_mode("pulse", **base)


def test_train_pulse_smoke_then_fine_tune(tmp_path):
    """A seconds-long pulse run writes a loadable PulseNet; a fine-tuning run from it
    keeps its input scale, records where it started, and writes nothing when no epoch
    beats the starting weights."""
    import hashlib

    import torch

    from rtmag.nets import PulseNet, load_weights
    from rtmag.train import train

    first = _pulse_cfg(tmp_path, "a.pt", pulse_amplitude=(0.01, 0.02))
    train(first, log=lambda *_: None)
    net_a, meta_a = load_weights(first.out, mode="pulse")
    assert isinstance(net_a, PulseNet) and meta_a["recipe"]["init"] is None
    assert meta_a["recipe"]["pulse_amplitude"] == [0.01, 0.02]

    tuned = _pulse_cfg(tmp_path, "b.pt", init=first.out, seed=7, epochs=2, lr=1e-3)
    lines = []
    _, hist = train(tuned, log=lines.append)
    assert hist[0]["epoch"] == 0 and hist[0]["train_loss"] is None  # the starting score
    assert hist[0]["val"]["all"] == pytest.approx(meta_a["validation"]["val"]["all"], abs=0.5)
    if (tmp_path / "b.pt").exists():
        net_b, meta_b = load_weights(tuned.out, mode="pulse")
        parent = meta_b["recipe"]["init"]
        assert parent["sha256"] == hashlib.sha256((tmp_path / "a.pt").read_bytes()).hexdigest()
        assert parent["recipe"]["seed"] == 0
        assert float(net_b.x_scale) == float(net_a.x_scale)
        assert not torch.equal(net_b.body[0].weight, net_a.body[0].weight)
        assert meta_b["validation"]["epoch"] >= 1
    else:
        assert "nothing written" in lines[-1]

    still = _pulse_cfg(tmp_path, "c.pt", init=first.out, lr=1e-12)
    lines = []
    train(still, log=lines.append)
    assert not (tmp_path / "c.pt").exists()
    assert "no epoch beat the starting weights" in lines[-1] and "nothing written" in lines[-1]


def test_fine_tune_refuses_weights_of_the_other_mode(tmp_path):
    from rtmag.errors import WeightsError
    from rtmag.nets import default_weights_path
    from rtmag.train import train

    cfg = _pulse_cfg(tmp_path, "x.pt", init=str(default_weights_path("respiration")))
    with pytest.raises(WeightsError, match="respiration weights, but pulse weights are needed"):
        train(cfg, log=lambda *_: None)


@pytest.mark.parametrize(
    "kw, match",
    [
        ({"curriculum_epochs": -1}, "curriculum_epochs must be >= 0"),
        ({"pulse_amplitude": (0.02, 0.01)}, "pulse_amplitude must be"),
        ({"pulse_amplitude": (0.0, 0.01)}, "pulse_amplitude must be"),
    ],
)
def test_train_config_rejects_bad_settings(kw, match):
    with pytest.raises(UserError, match=match):
        TrainConfig.for_mode("pulse", **kw)


@pytest.mark.parametrize(
    "mode, field", [("pulse", "pulse_amplitude"), ("respiration", "breathing_amplitude")]
)
def test_train_command_passes_init_amplitude_and_curriculum(monkeypatch, mode, field):
    """`rtmag train --init W --amplitude LO HI --curriculum-epochs K` reaches the run's
    config: the amplitude to the mode's own field, the other left at its default."""
    import rtmag.train
    from rtmag.cli import main

    seen = {}
    monkeypatch.setattr(rtmag.train, "train", lambda cfg: seen.setdefault("cfg", cfg))
    argv = ["train", "--mode", mode, "--init", "w.pt", "--amplitude", "0.5", "2"]
    assert main(argv + ["--curriculum-epochs", "0"]) == 0
    cfg = seen["cfg"]
    assert cfg.init == "w.pt" and cfg.curriculum_epochs == 0
    assert getattr(cfg, field) == (0.5, 2.0)
    other = "breathing_amplitude" if field == "pulse_amplitude" else "pulse_amplitude"
    assert getattr(cfg, other) == getattr(TrainConfig(), other)
    seen.clear()
    assert main(["train", "--mode", mode]) == 0  # defaults when the flags are left out
    assert seen["cfg"].init is None
    assert getattr(seen["cfg"], field) == getattr(TrainConfig.for_mode(mode), field)
