"""Causal biquad (second-order-section) cascade as a Triton kernel;
reference :func:`rtmag.filters.sosfilt_step`.

Each element of the ``(T, *shape)`` chunk is an independent IIR stream with its own
state (the band-pass on ``X_N - X_1`` runs over every pixel and channel). One program
filters ``BLOCK`` elements through all ``T`` frames and all sections (direct form II
transposed, the recurrence and order of scipy's ``sosfilt``), so the chunk is read
once and written once, where the numpy loop makes ``T * n_sections`` passes.

Like the kernel of :mod:`rtmag.kernels.ascent_step`, it is for CUDA; on the CPU it runs
only in Triton's interpreter (``TRITON_INTERPRET=1``), for tests.
"""

from __future__ import annotations

import functools

import numpy as np
import torch

__all__ = ["sosfilt_step_triton"]


@functools.cache
def _kernel():
    import triton
    import triton.language as tl

    @triton.jit
    def sos_kernel(sos_ptr, x_ptr, z_ptr, y_ptr, T, M, S: tl.constexpr, BLOCK: tl.constexpr):
        pid = tl.program_id(0)
        offs = pid.to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
        m = offs < M
        for t in range(T):
            row = t * M  # T * M < 2**31: a chunk of frames, not a clip
            cur = tl.load(x_ptr + row + offs, mask=m, other=0.0)
            for s in tl.static_range(S):
                b0 = tl.load(sos_ptr + s * 6 + 0)
                b1 = tl.load(sos_ptr + s * 6 + 1)
                b2 = tl.load(sos_ptr + s * 6 + 2)
                a1 = tl.load(sos_ptr + s * 6 + 4)
                a2 = tl.load(sos_ptr + s * 6 + 5)
                z0 = tl.load(z_ptr + (2 * s) * M + offs, mask=m, other=0.0)
                z1 = tl.load(z_ptr + (2 * s + 1) * M + offs, mask=m, other=0.0)
                new = b0 * cur + z0
                tl.store(z_ptr + (2 * s) * M + offs, b1 * cur - a1 * new + z1, mask=m)
                tl.store(z_ptr + (2 * s + 1) * M + offs, b2 * cur - a2 * new, mask=m)
                cur = new
            tl.store(y_ptr + row + offs, cur, mask=m)

    return sos_kernel


def sosfilt_step_triton(
    sos, x: torch.Tensor, zi: torch.Tensor | None = None, *, block: int = 256
) -> tuple[torch.Tensor, torch.Tensor]:
    """:func:`rtmag.filters.sosfilt_step` on torch tensors, fused.

    Args:
        sos: ``(n_sections, 6)`` array or tensor, ``a0 == 1`` in every section.
        x: ``(T, *shape)`` tensor, time on axis 0; float64 (as the reference) or
            float32 (the state then carries float32 rounding).
        zi: ``(n_sections, 2, *shape)`` state like ``x``, or ``None`` (at rest). Not
            modified.
        block: elements per program (a power of two).

    Returns:
        ``(y, zf)``: ``y`` like ``x``, ``zf`` the new state, dtype of ``x``.
    """
    if x.dim() < 1:
        raise ValueError("x must have a time axis 0: shape (T, *shape)")
    sos_t = torch.as_tensor(np.asarray(sos, dtype=np.float64), device=x.device).to(x.dtype)
    if sos_t.dim() != 2 or sos_t.shape[1] != 6 or sos_t.shape[0] < 1:
        raise ValueError(f"sos must have shape (n_sections, 6), got {tuple(sos_t.shape)}")
    if not bool((sos_t[:, 3] == 1).all()):
        raise ValueError("sos[:, 3] (a0 of every section) must be 1")
    n_sec = sos_t.shape[0]
    state_shape = (n_sec, 2) + tuple(x.shape[1:])
    if zi is None:
        z = torch.zeros(state_shape, dtype=x.dtype, device=x.device)
    else:
        if tuple(zi.shape) != state_shape:
            raise ValueError(f"state zi has shape {tuple(zi.shape)}, expected {state_shape}")
        z = zi.to(x.dtype).clone().contiguous()
    x = x.contiguous()
    y = torch.empty_like(x)
    n_t = x.shape[0]
    m = x[0].numel() if n_t else int(np.prod(x.shape[1:]))
    if n_t and m:
        grid = (triton_cdiv(m, block),)
        _kernel()[grid](sos_t.contiguous(), x, z, y, n_t, m, S=n_sec, BLOCK=block)
    return y, z


def triton_cdiv(a: int, b: int) -> int:
    return -(-a // b)
