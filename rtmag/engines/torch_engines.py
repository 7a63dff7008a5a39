"""Engines that need only torch: ``eager`` (the reference), ``adjoint`` and ``compile``."""

from __future__ import annotations

import contextlib
import os

import torch
from torch import nn

from rtmag.ascent import gradient_ascent
from rtmag.engines._common import (
    PRECISIONS,
    ascent_key,
    build_ascent_module,
    cache_dir,
    machine_id,
)
from rtmag.engines.registry import EngineFn, register_engine

__all__ = ["keep_compile_cache_warm", "compiled_marker"]


@register_engine("eager", precisions=("fp32", "bf16", "fp16"))
def _eager(net: nn.Module, n_iter: int, device: str, precision: str = "fp32") -> EngineFn:
    """``torch.autograd`` on the input (:func:`rtmag.ascent.gradient_ascent`).

    Reduced precision runs the network under ``torch.autocast``; the step itself
    (L1 norm, sign, accumulation) stays float32.
    """
    net = net.to(device).eval()
    dev_type = torch.device(device).type

    def run(x1: torch.Tensor, gamma: torch.Tensor) -> torch.Tensor:
        ctx = (
            torch.autocast(dev_type, dtype=PRECISIONS[precision])
            if precision != "fp32"
            else contextlib.nullcontext()
        )
        with ctx:
            return gradient_ascent(net, x1.to(device), gamma.to(device), n_iter, return_delta=True)

    return EngineFn(run, "eager", precision, device)


@register_engine("adjoint", precisions=("fp32", "bf16", "fp16"))
def _adjoint(net: nn.Module, n_iter: int, device: str, precision: str = "fp32") -> EngineFn:
    """:class:`rtmag.ascent.AdjointAscent` run eagerly (no autograd graph).

    ``bf16``/``fp16``: the gradient passes in that dtype, the steps in float32
    (:class:`rtmag.engines.MixedAscent`).

    On a CPU the convolutions run channels-last (NHWC, oneDNN's preferred layout):
    the pulse ascent at batch 8 on one thread here went from 32-34 to 40-45 frames/s
    (the same sums in another order: float32 rounding only).
    """
    module = build_ascent_module(net, n_iter, precision, device)
    nhwc = torch.device(device).type == "cpu"
    if nhwc:
        module = module.to(memory_format=torch.channels_last)

    def run(x1: torch.Tensor, gamma: torch.Tensor) -> torch.Tensor:
        x1 = x1.to(device)
        if nhwc and x1.dim() == 4:
            x1 = x1.contiguous(memory_format=torch.channels_last)
        with torch.inference_mode():
            return module(x1, gamma.to(device))

    return EngineFn(run, "adjoint", precision, device)


def keep_compile_cache_warm() -> str:
    """Point inductor's on-disk caches at ``<rtmag cache>/inductor`` unless the user chose.

    torch.compile's FX graph cache and autograd cache (on by default in torch >= 2.5)
    live under ``TORCHINDUCTOR_CACHE_DIR``, by default ``/tmp/torchinductor_<user>``,
    which a reboot or a tmp cleaner empties. Pointing it into the rtmag cache keeps the
    compiled kernels between runs: measured here (2 loaded cores) the pulse ascent
    compiles cold in minutes and loads warm in seconds (see bench/results). An existing
    ``TORCHINDUCTOR_CACHE_DIR`` other than inductor's default is left alone. Sets the
    variable for the whole process (inductor reads it at each use). Returns the folder.
    """
    current = os.environ.get("TORCHINDUCTOR_CACHE_DIR")
    try:  # inductor writes its default into the environment on first use
        from torch._inductor.runtime.cache_dir_utils import default_cache_dir

        default = os.path.abspath(default_cache_dir())
    except ImportError:  # private API moved: only an unset variable counts as unset
        default = None
    if not current or os.path.abspath(current) == default:
        os.environ["TORCHINDUCTOR_CACHE_DIR"] = str(cache_dir("inductor"))
    return os.environ["TORCHINDUCTOR_CACHE_DIR"]


@register_engine("compile", precisions=("fp32", "bf16", "fp16"))
def _compile(
    net: nn.Module,
    n_iter: int,
    device: str,
    precision: str = "fp32",
    *,
    mode: str | None = None,
) -> EngineFn:
    """``torch.compile`` (inductor) of the adjoint module, one graph for the whole ascent.

    The batch dimension is compiled dynamic (``torch._dynamo.mark_dynamic``), so the
    magnifier's varying batches do not recompile; a batch of one is padded to two
    (a zero frame takes a zero step) because dynamo specialises size 1. The first call
    compiles (minutes cold on a small CPU, seconds with a warm cache, see
    :func:`keep_compile_cache_warm`).
    """
    keep_compile_cache_warm()
    module = build_ascent_module(net, n_iter, precision, device)
    compiled = torch.compile(module, mode=mode, fullgraph=True)
    marker = compiled_marker(net, n_iter, precision, device)
    done = []

    def run(x1: torch.Tensor, gamma: torch.Tensor) -> torch.Tensor:
        x1 = x1.to(device)
        gamma = gamma.to(device=device, dtype=x1.dtype).reshape(-1).expand(x1.shape[0])
        b = x1.shape[0]
        if b == 1:
            x1 = torch.cat([x1, torch.zeros_like(x1)])
            gamma = torch.cat([gamma, gamma])
        x1 = x1.contiguous()
        gamma = gamma.contiguous()
        torch._dynamo.mark_dynamic(x1, 0)
        torch._dynamo.mark_dynamic(gamma, 0)
        with torch.inference_mode():
            out = compiled(x1, gamma)
        if not done:  # compiled: its kernels are in the cache, so ``auto`` may try it
            done.append(True)
            try:
                marker.touch()
            except OSError:
                pass
        return out[:b]

    return EngineFn(run, "compile", precision, device, info={"marker": str(marker)})


def compiled_marker(net: nn.Module, n_iter: int, precision: str, device: str):
    """The file whose presence says that ``compile`` has compiled this network's ascent
    (``n_iter``, ``precision``) on this machine, so its kernels load from the cache in
    seconds: then ``auto`` includes ``compile`` among its CPU candidates
    (:func:`rtmag.engines.auto.default_candidates`)."""
    key = ascent_key(net, n_iter, precision)
    return cache_dir("compiled") / f"{machine_id(device)}-{key}-{device}".replace("/", "_")
