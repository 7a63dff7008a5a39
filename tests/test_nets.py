"""rtmag.nets: shapes, registry, scale buffers and weight files with every failure mode."""

import math
import pickle

import pytest
import torch
from torch import nn

from rtmag.errors import UserError, WeightsError
from rtmag.nets import (
    NETS,
    WEIGHTS_FORMAT,
    BreathNet,
    PulseNet,
    create_net,
    default_weights_path,
    load_weights,
    save_weights,
)

META = {"fps": 30.0, "band": [0.7, 2.5], "seed": 1, "recipe": {"lr": 1e-3}, "note": None}


@pytest.fixture(scope="module")
def pulse():
    torch.manual_seed(0)
    return create_net("pulse", x_scale=250.0, y_scale=0.1).eval()


def test_shapes_and_registry():
    assert NETS == {"pulse": PulseNet, "respiration": BreathNet}
    torch.manual_seed(0)
    p = create_net("pulse").eval()
    assert p(torch.randn(4, 3, 36, 36)).shape == (4,)
    b = create_net("respiration").eval()
    assert b(torch.randn(1, 4, 123, 123)).shape == (1,)
    assert any(isinstance(m, nn.SELU) for m in b.body)
    assert any(isinstance(m, nn.ReLU) for m in p.body)
    with pytest.raises(ValueError, match=r"\(B, 3, 36, 36\)"):
        p(torch.randn(2, 3, 32, 32))


def test_unknown_mode_lists_known():
    with pytest.raises(UserError, match="pulse.*respiration"):
        create_net("heartbeat")
    with pytest.raises(UserError, match="known modes"):
        default_weights_path("heartbeat")


def test_scales_mean_input_times_x_scale_and_output_times_y_scale():
    torch.manual_seed(0)
    a = create_net("pulse").eval()
    b = create_net("pulse", x_scale=4.0, y_scale=0.5).eval()
    b.body.load_state_dict(a.body.state_dict())
    x = torch.randn(2, 3, 36, 36)
    torch.testing.assert_close(b(x), a(x * 4.0) * 0.5)
    with pytest.raises(ValueError, match="x_scale"):
        create_net("pulse", x_scale=0.0)


def test_default_weights_path():
    p = default_weights_path("respiration")
    assert p.name == "respiration.pt" and p.parent.name == "weights"
    assert p.parent.parent.name == "rtmag"


def test_round_trip_weights_only(tmp_path, pulse):
    path = save_weights(tmp_path / "p.pt", pulse, {**META, "shape": (36, 36)})
    raw = torch.load(path, weights_only=True)
    assert raw["format"] == WEIGHTS_FORMAT and raw["format_version"] == 1
    assert raw["mode"] == "pulse" and raw["arch"] == "PulseNet"
    assert raw["meta"]["shape"] == [36, 36]
    net, meta = load_weights(path, mode="pulse")
    assert isinstance(net, PulseNet) and not net.training
    assert not any(p.requires_grad for p in net.parameters())
    assert meta["recipe"] == {"lr": 1e-3} and meta["band"] == [0.7, 2.5]
    assert float(net.x_scale) == 250.0 and float(net.y_scale) == pytest.approx(0.1)
    x = torch.randn(3, 3, 36, 36) * 1e-3
    torch.testing.assert_close(net(x), pulse(x), rtol=0, atol=0)
    net2, _ = load_weights(str(path))  # mode taken from the file
    assert isinstance(net2, PulseNet)
    assert not list(tmp_path.glob("*.tmp"))  # the atomic write left nothing behind


def test_save_rejects_bad_meta_and_foreign_net(tmp_path, pulse):
    with pytest.raises(TypeError, match="JSON"):
        save_weights(tmp_path / "a.pt", pulse, {"x": torch.zeros(1)})
    with pytest.raises(TypeError, match="JSON"):
        save_weights(tmp_path / "a.pt", pulse, {"x": math.nan})
    with pytest.raises(TypeError, match="PulseNet"):
        save_weights(tmp_path / "a.pt", nn.Linear(2, 2), {})


def _bad(path, match, mode=None):
    with pytest.raises(WeightsError, match=match) as info:
        load_weights(path, mode=mode)
    assert path.name in str(info.value)
    return str(info.value)


def test_missing_file_names_default_location(tmp_path):
    msg = _bad(tmp_path / "nope.pt", "does not exist", mode="pulse")
    assert str(default_weights_path("pulse")) in msg
    _bad(tmp_path / "nope.pt", "does not exist")
    (tmp_path / "dir.pt").mkdir()
    _bad(tmp_path / "dir.pt", "folder")


def test_unreadable_files(tmp_path, pulse):
    good = save_weights(tmp_path / "good.pt", pulse, META)
    data = good.read_bytes()
    trunc = tmp_path / "trunc.pt"
    trunc.write_bytes(data[: len(data) // 2])
    _bad(trunc, "truncated")
    text = tmp_path / "text.pt"
    text.write_text("hello, not a torch file\n")
    _bad(text, "cannot be read")
    empty = tmp_path / "empty.pt"
    empty.write_bytes(b"")
    _bad(empty, "cannot be read")
    pickled = tmp_path / "model.pt"
    torch.save(pulse, pickled)  # a whole pickled module: refused by weights_only
    _bad(pickled, "pickled Python objects")
    plain = tmp_path / "plain.pkl"
    plain.write_bytes(pickle.dumps({"a": 1}))  # a bare pickle, not a torch file
    _bad(plain, "cannot be read")


def test_wrong_format_and_version(tmp_path, pulse):
    sd = tmp_path / "sd.pt"
    torch.save(pulse.state_dict(), sd)
    _bad(sd, "not an rtmag weight file")
    raw = torch.load(save_weights(tmp_path / "g.pt", pulse, META), weights_only=True)
    newer = tmp_path / "newer.pt"
    torch.save({**raw, "format_version": 99}, newer)
    _bad(newer, "format_version 99")


def test_mode_mismatch(tmp_path):
    torch.manual_seed(0)
    path = save_weights(tmp_path / "breath.pt", create_net("respiration"), META)
    msg = _bad(path, "holds respiration weights, but pulse", mode="pulse")
    assert "pulse.pt" in msg
    with pytest.raises(UserError, match="known modes"):
        load_weights(path, mode="heart")


def test_arch_and_shape_mismatch(tmp_path, pulse):
    raw = torch.load(save_weights(tmp_path / "g.pt", pulse, META), weights_only=True)
    arch = tmp_path / "arch.pt"
    torch.save({**raw, "arch": "BreathNet"}, arch)
    _bad(arch, "architecture 'BreathNet'")
    sd = dict(raw["state_dict"])
    sd["body.13.weight"] = torch.zeros(128, 100)
    shape = tmp_path / "shape.pt"
    torch.save({**raw, "state_dict": sd}, shape)
    _bad(shape, r"body.13.weight has shape \(128, 100\)")
    sd = dict(raw["state_dict"])
    del sd["body.0.bias"]
    sd["extra"] = torch.zeros(1)
    keys = tmp_path / "keys.pt"
    torch.save({**raw, "state_dict": sd}, keys)
    msg = _bad(keys, "missing tensors")
    assert "body.0.bias" in msg and "extra" in msg


def test_nan_and_bad_scale(tmp_path, pulse):
    raw = torch.load(save_weights(tmp_path / "g.pt", pulse, META), weights_only=True)
    sd = dict(raw["state_dict"])
    sd["body.2.weight"] = sd["body.2.weight"].clone()
    sd["body.2.weight"][0, 0, 0, 0] = math.nan
    nan = tmp_path / "nan.pt"
    torch.save({**raw, "state_dict": sd}, nan)
    _bad(nan, r"NaN.*body\.2\.weight")
    sd = dict(raw["state_dict"], y_scale=torch.tensor(-1.0))
    neg = tmp_path / "neg.pt"
    torch.save({**raw, "state_dict": sd}, neg)
    _bad(neg, "y_scale")
