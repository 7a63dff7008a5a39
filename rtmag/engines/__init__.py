"""Where the gradient ascent runs, chosen by name.

An engine is built from a frozen network and ``n_iter`` and is called as
``engine(x1, gamma) -> x_N - x1`` with ``x1`` a ``(B, C, H, W)`` float32 tensor and
``gamma`` a ``(B,)`` tensor of step sizes. It returns the change itself, accumulated
step by step (``return_delta``): in float32 ``X_N - X_1`` computed after the fact loses
most of its digits to the rounding of ``X``. Every engine computes the same thing as
:func:`rtmag.ascent.gradient_ascent` (the eager autograd reference); tests hold each
one to it with a stated tolerance.

* ``eager``: torch autograd, the reference;
* ``adjoint``: :class:`rtmag.ascent.AdjointAscent`, the hand-written adjoint as one
  pure-inference module (no autograd graph), the default on CPU.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from rtmag.ascent import AdjointAscent, gradient_ascent
from rtmag.errors import UserError

Engine = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
_ENGINES: dict[str, Callable[..., Engine]] = {}


def register_engine(name: str):
    """Decorator: register an engine factory ``factory(net, n_iter, device) -> Engine``."""

    def deco(factory):
        _ENGINES[name] = factory
        return factory

    return deco


def list_engines() -> list[str]:
    """Names of the registered engines."""
    return sorted(_ENGINES)


def create_engine(name: str, net: nn.Module, n_iter: int, device: str = "cpu") -> Engine:
    """Build engine ``name`` for ``net``; raises ``UserError`` listing the known names."""
    if name == "auto":
        name = "adjoint"
    if name not in _ENGINES:
        raise UserError(
            f"unknown engine {name!r}; known engines: {', '.join(list_engines())} (or auto)"
        )
    return _ENGINES[name](net, n_iter, device)


@register_engine("eager")
def _eager(net: nn.Module, n_iter: int, device: str) -> Engine:
    net = net.to(device).eval()

    def run(x1: torch.Tensor, gamma: torch.Tensor) -> torch.Tensor:
        return gradient_ascent(net, x1.to(device), gamma.to(device), n_iter, return_delta=True)

    run.name = "eager"
    return run


@register_engine("adjoint")
def _adjoint(net: nn.Module, n_iter: int, device: str) -> Engine:
    module = AdjointAscent(net, n_iter, return_delta=True).to(device).eval()

    def run(x1: torch.Tensor, gamma: torch.Tensor) -> torch.Tensor:
        with torch.inference_mode():
            return module(x1.to(device), gamma.to(device))

    run.name = "adjoint"
    return run
