"""rtmag.ascent: Eq. 3 step properties, autograd reference vs finite differences,
hand-written adjoint vs autograd (float64 and float32), batching, torch.export."""

import pytest
import torch
from torch import nn

from rtmag.ascent import (
    AdjointAscent,
    ascent_step,
    ascent_update,
    gradient_ascent,
    input_gradient_autograd,
    output_and_gradient,
)
from rtmag.nets import create_net

SHAPES = {"pulse": (3, 36, 36), "respiration": (4, 123, 123)}


def _net(mode, dtype=torch.float64, seed=0, **kw):
    torch.manual_seed(seed)
    kw = {"x_scale": 50.0, "y_scale": 0.3, **kw}
    return create_net(mode, **kw).to(dtype).eval()


def _x(mode, b, dtype=torch.float64, seed=1, scale=0.02):
    g = torch.Generator().manual_seed(seed)
    return (torch.randn((b,) + SHAPES[mode], generator=g, dtype=torch.float64) * scale).to(dtype)


def _rel(a, b):
    return ((a - b).abs().max() / b.abs().max()).item()


# ---------------------------------------------------------------- ascent_update
def test_update_l1_step_is_gamma_and_signs_hold():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(4, 3, 5, 5, generator=g, dtype=torch.float64)
    grad = torch.randn(4, 3, 5, 5, generator=g, dtype=torch.float64) * torch.tensor(
        [1e-8, 1.0, 1e3, 7.0], dtype=torch.float64
    ).view(4, 1, 1, 1)
    gamma = torch.tensor([0.1, 0.2, 0.3, 0.4], dtype=torch.float64)
    x2 = ascent_update(x, grad, gamma)
    step_l1 = (x2 - x).abs().flatten(1).sum(1)
    torch.testing.assert_close(step_l1, gamma, rtol=1e-13, atol=0)
    assert torch.equal(torch.sign(x2), torch.sign(x))
    assert ((x2.abs() - x.abs()) >= 0).all()  # the step always moves away from zero
    # a scalar gamma is the same step for all frames
    x3 = ascent_update(x, grad, 0.25)
    torch.testing.assert_close((x3 - x).abs().flatten(1).sum(1), torch.full((4,), 0.25).double())
    # Eq. 3 written literally
    gn = grad / grad.abs().flatten(1).sum(1).view(4, 1, 1, 1)
    literal = x + gamma.view(4, 1, 1, 1) * gn * torch.sign(x * gn)
    torch.testing.assert_close(x2, literal, rtol=1e-15, atol=1e-15)


def test_update_zero_gradient_frame_and_zero_elements_do_not_move():
    x = torch.randn(3, 2, 4, 4)
    x[2, 0, 0, 0] = 0.0
    grad = torch.randn(3, 2, 4, 4)
    grad[1] = 0.0
    x2 = ascent_update(x, grad, torch.tensor([1.0, 1.0, 1.0]))
    assert torch.isfinite(x2).all()
    assert torch.equal(x2[1], x[1])
    assert x2[2, 0, 0, 0] == 0.0
    with pytest.raises(ValueError, match="shape"):
        ascent_update(x, grad[:2], 1.0)


# ---------------------------------------------------------------- autograd reference
def test_autograd_gradient_matches_finite_differences():
    net = _net("pulse")
    x = _x("pulse", 2)
    grad = input_gradient_autograd(net, x)
    g = torch.Generator().manual_seed(3)
    eps = 1e-7
    for _ in range(6):
        idx = tuple(int(torch.randint(0, n, (1,), generator=g)) for n in x.shape)
        xp, xm = x.clone(), x.clone()
        xp[idx] += eps
        xm[idx] -= eps
        fd = (net(xp).abs() - net(xm).abs()).sum().item() / (2 * eps)
        assert fd == pytest.approx(grad[idx].item(), rel=1e-5, abs=1e-9 * grad.abs().max().item())


def test_autograd_computes_no_weight_gradients_and_needs_eval():
    torch.manual_seed(0)
    net = create_net("pulse").double()
    assert all(p.requires_grad for p in net.parameters())
    with pytest.raises(ValueError, match="eval"):
        input_gradient_autograd(net, _x("pulse", 1))
    net.eval()
    x = _x("pulse", 2).requires_grad_(True)
    with torch.no_grad():  # works inside no_grad too
        grad = input_gradient_autograd(net, x)
    assert grad.shape == x.shape and not grad.requires_grad
    assert all(p.grad is None for p in net.parameters()) and x.grad is None


def test_zero_output_gives_zero_gradient_and_no_step():
    net = _net("pulse")
    nn.init.zeros_(net.body[-1].weight)
    nn.init.zeros_(net.body[-1].bias)
    x = _x("pulse", 2)
    assert (net(x) == 0).all()
    assert (input_gradient_autograd(net, x) == 0).all()
    adj = AdjointAscent(net, 5)
    assert (adj.input_gradient_adjoint(x) == 0).all()
    assert torch.equal(gradient_ascent(net, x, 0.1, 5), x)
    assert torch.equal(adj(x, 0.1), x)


# ---------------------------------------------------------------- adjoint vs autograd
@pytest.mark.parametrize("mode,batch", [("pulse", 3), ("respiration", 2)])
def test_adjoint_gradient_equals_autograd_float64(mode, batch):
    net = _net(mode)
    x = _x(mode, batch)
    ref = input_gradient_autograd(net, x)
    got = AdjointAscent(net).input_gradient_adjoint(x)
    assert ref.abs().max() > 0
    assert _rel(got, ref) < 1e-10
    # the reading from the same pass (what the magnifier takes instead of a forward)
    y_ref, g_ref = output_and_gradient(net, x)
    y, g = AdjointAscent(net).output_and_gradient(x)
    torch.testing.assert_close(y_ref, net(x).detach(), rtol=0, atol=0)
    torch.testing.assert_close(y, y_ref, rtol=1e-12, atol=1e-15)
    assert _rel(g, g_ref) < 1e-10 and torch.equal(g_ref, ref)


@pytest.mark.parametrize("mode,batch,tol", [("pulse", 4, 1e-5), ("respiration", 1, 1e-4)])
def test_adjoint_gradient_equals_autograd_float32(mode, batch, tol):
    net = _net(mode, torch.float32)
    x = _x(mode, batch, torch.float32)
    ref = input_gradient_autograd(net, x)
    got = AdjointAscent(net).input_gradient_adjoint(x)
    assert got.dtype == torch.float32
    assert _rel(got, ref) < tol  # measured: 0 (pulse), 5e-7 (respiration)


def test_whole_ascent_equals_reference_float64():
    net = _net("pulse")
    x = _x("pulse", 3)
    gamma = torch.tensor([1e-3, 5e-3, 2e-2], dtype=torch.float64)
    ref = gradient_ascent(net, x, gamma, n_iter=20)
    got = AdjointAscent(net, n_iter=20)(x, gamma)
    assert _rel(got - x, ref - x) < 1e-9
    # 19 steps of L1 size gamma each, the signs unchanged
    steps = (ref - x).abs().flatten(1).sum(1)
    torch.testing.assert_close(steps, 19 * gamma, rtol=1e-12, atol=0)
    assert torch.equal(torch.sign(ref), torch.sign(x))


def test_whole_ascent_respiration_equals_reference_float64():
    net = _net("respiration")
    x = _x("respiration", 1, scale=0.3)
    ref = gradient_ascent(net, x, 3.6e-3, n_iter=3)
    got = AdjointAscent(net, n_iter=3)(x, torch.tensor(3.6e-3, dtype=torch.float64))
    assert _rel(got - x, ref - x) < 1e-9


def test_delta_mode_equals_difference_float64():
    net = _net("pulse")
    x = _x("pulse", 3)
    gamma = torch.tensor([1e-3, 5e-3, 2e-2], dtype=torch.float64)
    diff = gradient_ascent(net, x, gamma, n_iter=8) - x
    delta = gradient_ascent(net, x, gamma, n_iter=8, return_delta=True)
    assert _rel(delta, diff) < 1e-12
    adj = AdjointAscent(net, n_iter=8, return_delta=True)(x, gamma)
    assert _rel(adj, diff) < 1e-9
    torch.testing.assert_close(ascent_update(x, x * 2, 0.1), x + ascent_step(x, x * 2, 0.1))


def test_delta_mode_is_more_accurate_in_float32():
    """At paper scale (|X| ~ 5e-3, gamma 6e-5) X_N - X_1 in float32 loses digits to
    the rounding of X; accumulating the change itself keeps them."""
    net = _net("pulse", x_scale=200.0)
    x = _x("pulse", 4, scale=0.005)
    ref = gradient_ascent(net, x, 6e-5, n_iter=20, return_delta=True)
    adj = AdjointAscent(net.float(), n_iter=20)
    sub = (adj(x.float(), 6e-5) - x.float()).double()
    adj.return_delta = True
    delta = adj(x.float(), 6e-5).double()

    def rms(a):
        return ((a - ref).norm() / ref.norm()).item()

    assert rms(delta) < 2e-3 and rms(delta) < 0.25 * rms(sub)  # measured 3e-4 vs 6e-3


def test_n_iter_one_is_identity_and_validated():
    net = _net("pulse")
    x = _x("pulse", 2)
    assert torch.equal(gradient_ascent(net, x, 0.1, n_iter=1), x)
    assert torch.equal(AdjointAscent(net, n_iter=1)(x, 0.1), x)
    for bad in (0, -1, 2.5, True):
        with pytest.raises(ValueError, match="n_iter"):
            AdjointAscent(net, n_iter=bad)


# ---------------------------------------------------------------- batching
def test_batch_equals_single_frames_of_very_different_magnitude():
    net = _net("pulse")
    x = _x("pulse", 4) * torch.tensor([1e-6, 1.0, 1e3, 0.02], dtype=torch.float64).view(4, 1, 1, 1)
    gamma = torch.tensor([1e-8, 1e-2, 10.0, 5e-3], dtype=torch.float64)
    adj = AdjointAscent(net, n_iter=6)
    batched_ref = gradient_ascent(net, x, gamma, n_iter=6)
    batched_adj = adj(x, gamma)
    for b in range(4):
        single = gradient_ascent(net, x[b : b + 1], gamma[b : b + 1], n_iter=6)
        torch.testing.assert_close(batched_ref[b : b + 1], single, rtol=1e-12, atol=0)
        single = adj(x[b : b + 1], gamma[b])
        torch.testing.assert_close(batched_adj[b : b + 1], single, rtol=1e-12, atol=0)
        # each frame moved by its own 5 * gamma, whatever its magnitude
        step = (batched_adj[b] - x[b]).abs().sum()
        assert step.item() == pytest.approx(5 * gamma[b].item(), rel=1e-10)


# ---------------------------------------------------------------- generic adjoint
class _Tiny(nn.Module):
    """Odd sizes, stride 2, dilation and a 3x3 pool: the corner cases of the adjoint."""

    def __init__(self):
        super().__init__()
        self.register_buffer("x_scale", torch.tensor(2.0))
        self.register_buffer("y_scale", torch.tensor(0.7))
        self.body = nn.Sequential(
            nn.Conv2d(2, 3, 3, stride=2, padding=1),  # 14 -> 7: needs output_padding 1
            nn.SELU(),
            nn.Conv2d(3, 4, 3, padding=2, dilation=2),  # 7 -> 7
            nn.ReLU(),
            nn.AvgPool2d(3),  # 7 -> 2: one floored row and column
            nn.Dropout(0.3),
            nn.Flatten(),
            nn.Linear(16, 5),
            nn.ReLU(),
            nn.Identity(),
            nn.Linear(5, 1),
        )

    def forward(self, x):
        return self.body(x * self.x_scale)[:, 0] * self.y_scale


def test_generic_adjoint_on_odd_sizes_stride_and_dilation():
    torch.manual_seed(0)
    net = _Tiny().double().eval()
    x = torch.randn(3, 2, 14, 14, dtype=torch.float64)
    ref = input_gradient_autograd(net, x)
    got = AdjointAscent(net).input_gradient_adjoint(x)
    assert _rel(got, ref) < 1e-10
    # a pool on an odd size: the floored last row and column get exactly zero gradient
    net.body = nn.Sequential(nn.AvgPool2d(2), nn.Flatten(), nn.Linear(2 * 3 * 3, 1)).double()
    x = torch.randn(2, 2, 7, 7, dtype=torch.float64)
    ref = input_gradient_autograd(net, x)
    got = AdjointAscent(net).input_gradient_adjoint(x)
    assert _rel(got, ref) < 1e-14
    assert (got[:, :, 6, :] == 0).all() and (got[:, :, :, 6] == 0).all()
    assert (got[:, :, :6, :6] != 0).all()


def test_unsupported_layer_is_refused_by_name():
    net = _Tiny()
    net.body[3] = nn.BatchNorm2d(4)
    with pytest.raises(TypeError, match=r"body\[3\] \(BatchNorm2d\).*supported.*Conv2d"):
        AdjointAscent(net)
    net = _Tiny()
    net.body[4] = nn.AvgPool2d(3, stride=1)
    with pytest.raises(TypeError, match="stride == kernel_size"):
        AdjointAscent(net)
    with pytest.raises(TypeError, match="body"):
        AdjointAscent(nn.Linear(2, 1))


# ---------------------------------------------------------------- pure inference, export
def test_adjoint_is_pure_inference():
    net = _net("pulse", torch.float32)
    adj = AdjointAscent(net, n_iter=3)
    assert not list(adj.parameters())  # weights are buffers: nothing to differentiate
    x = _x("pulse", 2, torch.float32).requires_grad_(True)
    out = adj(x, 1e-3)
    assert not out.requires_grad and out.grad_fn is None
    with torch.inference_mode():
        out2 = adj(x.detach(), 1e-3)
    torch.testing.assert_close(out, out2, rtol=0, atol=0)


@pytest.mark.parametrize("return_delta", [False, True])
def test_torch_export_round_trip_dynamic_batch(return_delta):
    net = _net("pulse", torch.float32)
    adj = AdjointAscent(net, n_iter=4, return_delta=return_delta)
    x = _x("pulse", 3, torch.float32)
    gamma = torch.tensor([1e-3, 2e-3, 3e-3])
    batch = torch.export.Dim("batch", min=1, max=1024)
    ep = torch.export.export(adj, (x, gamma), dynamic_shapes=({0: batch}, {0: batch}))
    calls = [str(n.target) for n in ep.graph.nodes if n.op == "call_function"]
    assert calls.count("aten.conv2d.default") == 3 * 8  # per step: 4 forward, 4 adjoint
    ops = set(calls)
    assert not any("backward" in op for op in ops), ops  # forward ops only
    run = ep.module()
    with torch.inference_mode():
        torch.testing.assert_close(run(x, gamma), adj(x, gamma), rtol=1e-6, atol=1e-9)
        x5 = _x("pulse", 5, torch.float32, seed=7)
        g5 = torch.full((5,), 2e-3)
        torch.testing.assert_close(run(x5, g5), adj(x5, g5), rtol=1e-6, atol=1e-9)


def test_torch_export_respiration():
    net = _net("respiration", torch.float32)
    adj = AdjointAscent(net, n_iter=2)
    x = _x("respiration", 1, torch.float32, scale=0.3)
    gamma = torch.tensor(3.6e-3)
    ep = torch.export.export(adj, (x, gamma))
    with torch.inference_mode():
        torch.testing.assert_close(ep.module()(x, gamma), adj(x, gamma), rtol=1e-6, atol=1e-9)
