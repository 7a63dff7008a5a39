"""What the engines share: precisions, the on-disk cache, weight hashes, the mixed module.

Nothing here imports an optional dependency.
"""

from __future__ import annotations

import hashlib
import os
import pathlib
import platform

import torch
from torch import nn

from rtmag.ascent import AdjointAscent, ascent_step
from rtmag.errors import UserError

__all__ = [
    "PRECISIONS",
    "check_precision",
    "cache_dir",
    "module_hash",
    "ascent_key",
    "machine_id",
    "MixedAscent",
    "build_ascent_module",
]

#: precision name -> dtype the network's convolutions run in. ``fp32`` is exact to
#: float32 rounding; ``bf16`` is for CPUs (fast with AMX/AVX512-BF16); ``fp16`` for CUDA.
PRECISIONS: dict[str, torch.dtype] = {
    "fp32": torch.float32,
    "bf16": torch.bfloat16,
    "fp16": torch.float16,
}


def check_precision(precision: str, device: str, supported: tuple[str, ...], engine: str) -> None:
    """Raise ``UserError`` unless ``engine`` runs ``precision`` on ``device``."""
    if precision not in PRECISIONS:
        raise UserError(f"unknown precision {precision!r}; known: {', '.join(PRECISIONS)}")
    if precision not in supported:
        raise UserError(
            f"engine {engine!r} does not run precision {precision!r}; it runs: "
            + ", ".join(supported)
        )
    if precision == "fp16" and not str(device).startswith("cuda"):
        raise UserError("precision fp16 is for CUDA devices; on a CPU use bf16")


def cache_dir(sub: str = "") -> pathlib.Path:
    """The rtmag cache folder (created): ``$RTMAG_CACHE_DIR``, else
    ``$XDG_CACHE_HOME/rtmag``, else ``~/.cache/rtmag``; ``sub`` is a folder inside it."""
    root = os.environ.get("RTMAG_CACHE_DIR")
    if not root:
        xdg = os.environ.get("XDG_CACHE_HOME") or str(pathlib.Path.home() / ".cache")
        root = str(pathlib.Path(xdg) / "rtmag")
    path = pathlib.Path(root) / sub if sub else pathlib.Path(root)
    path.mkdir(parents=True, exist_ok=True)
    return path


def module_hash(module: nn.Module, *extra: object) -> str:
    """A 16-hex-digit sha256 of ``module``'s buffers and parameters (names, dtypes,
    shapes and bytes) and of ``extra`` (n_iter, precision, versions...)."""
    h = hashlib.sha256()
    for name, t in sorted(
        list(module.named_buffers()) + list(module.named_parameters()), key=lambda kv: kv[0]
    ):
        t = t.detach().cpu().contiguous().reshape(-1)
        h.update(f"{name}|{t.dtype}|{tuple(t.shape)}|".encode())
        h.update(t.view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    h.update(repr(extra).encode())
    h.update(type(module).__name__.encode())
    return h.hexdigest()[:16]


def ascent_key(net: nn.Module, n_iter: int, *extra: object) -> str:
    """:func:`module_hash` of ``net``'s float32 ascent with ``n_iter`` (and ``extra``):
    what a record about this network's ascent on this machine is keyed by (``auto``'s
    choice, ``compile``'s marker)."""
    return module_hash(build_ascent_module(net, n_iter, "fp32", "cpu"), n_iter, *extra)


def machine_id(device: str) -> str:
    """What an engine's speed depends on besides the network: CPU, cores, GPU, torch."""
    parts = [platform.machine(), platform.processor() or "", str(os.cpu_count()), torch.__version__]
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    parts.append(line.split(":", 1)[1].strip())
                    break
    except OSError:
        pass
    if str(device).startswith("cuda") and torch.cuda.is_available():
        parts.append(torch.cuda.get_device_name(torch.device(device)))
    parts.append(str(torch.get_num_threads()))
    return hashlib.sha256("|".join(parts).encode()).hexdigest()[:16]


class MixedAscent(nn.Module):
    """The ascent with the network's gradient in a low precision, the steps in float32.

    The input gradient (the forward and adjoint passes, where all the FLOPs are) runs
    in ``dtype`` (bf16 or fp16) on a cast copy of :class:`~rtmag.ascent.AdjointAscent`;
    the L1 normalisation, the sign correction and the accumulated change stay in
    float32 (:func:`rtmag.ascent.ascent_step`), so the small change does not drown in
    the rounding of a 8- or 11-bit mantissa. Explicitly typed, so ``torch.export``,
    ONNX and TensorRT (``use_explicit_typing``) see the same casts.

    ``forward(x1, gamma) -> X_N - X_1`` (float32, ``(B, C, H, W)``), like
    ``AdjointAscent(net, n_iter, return_delta=True)``.
    """

    def __init__(self, net: nn.Module, n_iter: int, dtype: torch.dtype) -> None:
        super().__init__()
        self.adjoint = AdjointAscent(net, n_iter, return_delta=True).to(dtype)
        self.n_iter = n_iter
        self.dtype = dtype

    def forward(self, x1: torch.Tensor, gamma: torch.Tensor) -> torch.Tensor:
        d = torch.zeros_like(x1)
        for _ in range(self.n_iter - 1):
            g = self.adjoint.input_gradient_adjoint((x1 + d).to(self.dtype)).to(x1.dtype)
            d = d + ascent_step(x1, g, gamma)
        return d


def build_ascent_module(net: nn.Module, n_iter: int, precision: str, device: str) -> nn.Module:
    """``AdjointAscent(return_delta=True)`` (fp32) or :class:`MixedAscent`, in eval mode
    on ``device``; no autograd graph is built (buffers only)."""
    if precision == "fp32":
        module = AdjointAscent(net, n_iter, return_delta=True)
    else:
        module = MixedAscent(net, n_iter, PRECISIONS[precision])
    return module.to(device).eval()
