"""Fused ascent update as a Triton kernel; reference :func:`rtmag.ascent.ascent_step`.

One program per frame: a first sweep over the frame's ``n = C*H*W`` elements sums
``|G|`` (the L1 norm), a second writes ``D + gamma * |G| / ||G||_1 * sgn(X)`` (the
sign-corrected step, Eq. 3, in the accumulated-change form of
``AdjointAscent(return_delta=True)``). Reading ``G`` twice and ``X``, ``D`` once, it
replaces the five to seven passes over memory of the unfused torch ops. A frame whose
gradient is all zero takes a zero step, as in the reference.

Triton compiles for CUDA (and other GPU back-ends); on a CPU it runs only in the
interpreter (``TRITON_INTERPRET=1``, set before ``import triton``), which is for tests,
not for speed. ``triton`` is imported when a function here is first called.
"""

from __future__ import annotations

import functools

import torch

__all__ = ["fused_ascent_update", "fused_ascent_update_reference", "triton_available"]


def triton_available() -> tuple[bool, str]:
    """``(True, "")`` when the Triton kernel can run here, else ``(False, reason)``."""
    import os

    try:
        import triton  # noqa: F401
    except ImportError:
        return False, "triton is not installed (pip install rtmag[triton])"
    if os.environ.get("TRITON_INTERPRET") == "1" or torch.cuda.is_available():
        return True, ""
    return (
        False,
        "no CUDA device, and TRITON_INTERPRET=1 is not set (CPU runs need the interpreter)",
    )


def fused_ascent_update_reference(
    d: torch.Tensor, x: torch.Tensor, g: torch.Tensor, gamma: torch.Tensor
) -> torch.Tensor:
    """The torch reference: ``d + rtmag.ascent.ascent_step(x, g, gamma)``."""
    from rtmag.ascent import ascent_step

    return d + ascent_step(x, g, gamma)


@functools.cache
def _kernel():
    import triton
    import triton.language as tl

    @triton.jit
    def ascent_update_kernel(d_ptr, x_ptr, g_ptr, gamma_ptr, out_ptr, n, BLOCK: tl.constexpr):
        row = tl.program_id(0)
        base = row.to(tl.int64) * n
        acc = tl.zeros([BLOCK], dtype=tl.float32)
        for start in range(0, n, BLOCK):
            offs = start + tl.arange(0, BLOCK)
            m = offs < n
            gv = tl.load(g_ptr + base + offs, mask=m, other=0.0).to(tl.float32)
            acc += tl.abs(gv)
        l1 = tl.sum(acc, axis=0)
        l1 = tl.where(l1 > 0, l1, 1.0)
        scale = tl.load(gamma_ptr + row).to(tl.float32) / l1
        for start in range(0, n, BLOCK):
            offs = start + tl.arange(0, BLOCK)
            m = offs < n
            gv = tl.load(g_ptr + base + offs, mask=m, other=0.0).to(tl.float32)
            xv = tl.load(x_ptr + base + offs, mask=m, other=0.0).to(tl.float32)
            dv = tl.load(d_ptr + base + offs, mask=m, other=0.0).to(tl.float32)
            sx = tl.where(xv > 0, 1.0, tl.where(xv < 0, -1.0, 0.0))
            tl.store(out_ptr + base + offs, dv + scale * tl.abs(gv) * sx, mask=m)

    return ascent_update_kernel


def fused_ascent_update(
    d: torch.Tensor,
    x: torch.Tensor,
    g: torch.Tensor,
    gamma: torch.Tensor | float,
    *,
    out: torch.Tensor | None = None,
    block: int = 1024,
) -> torch.Tensor:
    """``d + gamma * (|G| / ||G||_1) * sgn(X)`` per frame, fused (Eq. 3, delta form).

    Args:
        d: ``(B, ...)`` float32 accumulated change ``D_n``.
        x: like ``d``, the representation whose signs the step takes (``X_1``, whose
            signs ``X_n`` keeps).
        g: like ``d``, float32/bf16/fp16, the gradient ``grad |y(X_n)|``.
        gamma: float or ``(B,)`` tensor, step size per frame (units of ``X``).
        out: optional output (may be ``d`` itself: each element is read before written).
        block: elements per program step (a power of two).

    Returns:
        ``D_{n+1}``, float32, like ``d``; equals
        :func:`fused_ascent_update_reference` to float32 rounding (the L1 sum is taken
        in a different order).
    """
    if not (d.shape == x.shape == g.shape):
        raise ValueError(
            f"shapes differ: d {tuple(d.shape)}, x {tuple(x.shape)}, g {tuple(g.shape)}"
        )
    if d.dtype != torch.float32:
        raise ValueError(f"d must be float32, got {d.dtype}")
    b = d.shape[0]
    n = d[0].numel() if b else 0
    gam = torch.as_tensor(gamma, dtype=torch.float32, device=d.device).reshape(-1)
    gam = gam.expand(b).contiguous()
    out = torch.empty_like(d) if out is None else out
    if b == 0:
        return out
    d_, x_, g_ = d.contiguous(), x.contiguous(), g.contiguous()
    _kernel()[(b,)](d_, x_, g_, gam, out, n, BLOCK=block)
    return out
