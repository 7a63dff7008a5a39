"""Shared fixtures: small frozen networks, weight files and paths to the real clips."""

from __future__ import annotations

import os
import pathlib

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import pytest  # noqa: E402
import torch  # noqa: E402

REPO = pathlib.Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"


def frozen(net):
    net.eval()
    for p in net.parameters():
        p.requires_grad_(False)
    return net


@pytest.fixture
def pulse_net():
    """A random-initialised, frozen PulseNet (the trained weights are not needed)."""
    from rtmag.nets import PulseNet

    torch.manual_seed(0)
    return frozen(PulseNet(x_scale=50.0))


@pytest.fixture
def pulse_weights(tmp_path, pulse_net):
    """A weight file of the random network, with a calibration in its meta."""
    from rtmag.nets import save_weights

    path = tmp_path / "pulse.pt"
    save_weights(
        path,
        pulse_net,
        {"calibration": {"gamma_per_gain": 0.002, "step_scale": "attention", "focus": 2.0}},
    )
    return path


@pytest.fixture
def shared_clip():
    def get(name: str) -> pathlib.Path:
        path = SHARED_DATA / name
        if not path.is_file():
            pytest.skip(f"real clip {path} not present (shared/data is beside the repo)")
        return path

    return get
