"""Kernels in kernels/ (rtmag.kernels) against their torch references.

The Triton kernels run here on the CPU through Triton's interpreter; this file sets
``TRITON_INTERPRET=1`` unless a CUDA device is present.
"""

from __future__ import annotations

import os

import pytest
import torch

if not torch.cuda.is_available():
    os.environ.setdefault("TRITON_INTERPRET", "1")

from rtmag.kernels.ascent_step import (  # noqa: E402
    fused_ascent_update,
    fused_ascent_update_reference,
    triton_available,
)

ok, why = triton_available()
pytestmark = pytest.mark.skipif(not ok, reason=why)
DEVICE = "cuda" if torch.cuda.is_available() else "cpu"


def _case(batch=4, shape=(3, 36, 36), g_dtype=torch.float32, seed=0):
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(batch, *shape, generator=gen) * 0.01
    x[0, 0, 0, :5] = 0.0  # zeros in X do not move
    g = torch.randn(batch, *shape, generator=gen).to(g_dtype)
    g[-1] = 0  # an all-zero gradient: zero step, no division by zero
    d = torch.randn(batch, *shape, generator=gen) * 1e-5
    gamma = torch.linspace(1e-3, 4e-3, batch)
    return [t.to(DEVICE) for t in (d, x, g, gamma)]


@pytest.mark.parametrize("block", [256, 1024])
def test_fused_update_equals_reference(block):
    d, x, g, gamma = _case()
    got = fused_ascent_update(d, x, g, gamma, block=block)
    ref = fused_ascent_update_reference(d, x, g, gamma)
    torch.testing.assert_close(got, ref, rtol=1e-6, atol=1e-12)
    torch.testing.assert_close(got[-1], d[-1], rtol=0, atol=0)


def test_fused_update_odd_size_bf16_gradient_in_place():
    d, x, g, gamma = _case(batch=3, shape=(4, 7, 5), g_dtype=torch.bfloat16, seed=1)
    ref = fused_ascent_update_reference(d, x, g.float(), gamma)
    got = fused_ascent_update(d, x, g, gamma, out=d, block=64)
    assert got.data_ptr() == d.data_ptr()
    torch.testing.assert_close(got, ref, rtol=1e-6, atol=1e-12)


def test_fused_update_scalar_gamma_and_shape_check():
    d, x, g, _ = _case(batch=2, shape=(2, 8, 8))
    got = fused_ascent_update(d, x, g, 2e-3, block=64)
    torch.testing.assert_close(
        got, fused_ascent_update_reference(d, x, g, 2e-3), rtol=1e-6, atol=1e-12
    )
    with pytest.raises(ValueError, match="shapes differ"):
        fused_ascent_update(d, x[:1], g, 2e-3)


@pytest.mark.parametrize("chunks", [[7], [1, 1, 3, 2]])
def test_biquad_cascade_equals_sosfilt_step(chunks):
    import numpy as np
    from rtmag.kernels.biquad import sosfilt_step_triton

    from rtmag.filters import design_bandpass, sosfilt_step

    sos = design_bandpass(0.7, 2.5, 30.0)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((sum(chunks), 3, 5, 6))
    ref, zref = sosfilt_step(sos, x)
    xt = torch.from_numpy(x).to(DEVICE)
    z, ys, t0 = None, [], 0
    for n in chunks:  # chunked = at once, state carried
        y, z = sosfilt_step_triton(sos, xt[t0 : t0 + n], z, block=64)
        ys.append(y)
        t0 += n
    torch.testing.assert_close(torch.cat(ys).cpu(), torch.from_numpy(ref), rtol=1e-12, atol=1e-14)
    torch.testing.assert_close(z.cpu(), torch.from_numpy(zref), rtol=1e-12, atol=1e-14)
