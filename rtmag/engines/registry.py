"""The engine registry: engines chosen by name, as timm chooses models."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from torch import nn

from rtmag.engines._common import PRECISIONS, check_precision
from rtmag.errors import UserError

__all__ = ["EngineFn", "register_engine", "list_engines", "create_engine", "split_name"]


@dataclass
class EngineFn:
    """A built engine: ``engine(x1, gamma) -> X_N - X_1``.

    Args of the call: ``x1`` a ``(B, C, H, W)`` float32 tensor, ``gamma`` a ``(B,)``
    tensor of step sizes (units of ``X``). Returns a float32 ``(B, C, H, W)`` tensor on
    the engine's device. ``name``, ``precision`` and ``device`` say what runs;
    ``info`` holds engine-specific facts (cache file, compile time...).
    """

    fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
    name: str
    precision: str
    device: str
    info: dict = field(default_factory=dict)

    def __call__(self, x1: torch.Tensor, gamma: torch.Tensor) -> torch.Tensor:
        return self.fn(x1, gamma)


@dataclass(frozen=True)
class _Entry:
    factory: Callable[..., EngineFn]
    precisions: tuple[str, ...]


_ENGINES: dict[str, _Entry] = {}


def register_engine(name: str, precisions: tuple[str, ...] = ("fp32",)):
    """Decorator: register ``factory(net, n_iter, device, precision, **options) -> EngineFn``
    under ``name``, for the precisions it runs."""
    if ":" in name or name == "auto":
        raise ValueError(f"engine name {name!r} is reserved")

    def deco(factory):
        _ENGINES[name] = _Entry(factory, tuple(precisions))
        return factory

    return deco


def list_engines() -> list[str]:
    """Names of the registered engines (``auto`` chooses among them)."""
    return sorted(_ENGINES)


def engine_precisions(name: str) -> tuple[str, ...]:
    """Precisions engine ``name`` runs."""
    return _entry(name).precisions


def split_name(name: str, precision: str | None = None) -> tuple[str, str]:
    """``"compile:bf16"`` -> ``("compile", "bf16")``; a ``precision`` given as well must agree."""
    base, _, suffix = name.partition(":")
    if suffix and precision and suffix != precision:
        raise UserError(f"engine {name!r} names precision {suffix!r} but precision={precision!r}")
    prec = suffix or precision or "fp32"
    if prec not in PRECISIONS:
        raise UserError(f"unknown precision {prec!r} in {name!r}; known: {', '.join(PRECISIONS)}")
    return base, prec


def _entry(name: str) -> _Entry:
    if name not in _ENGINES:
        raise UserError(
            f"unknown engine {name!r}; known engines: {', '.join(list_engines())} (or auto)"
        )
    return _ENGINES[name]


def create_engine(
    name: str,
    net: nn.Module,
    n_iter: int,
    device: str = "cpu",
    *,
    precision: str | None = None,
    **options,
) -> EngineFn:
    """Build engine ``name`` for the frozen ``net`` (``N = n_iter``) on ``device``.

    Args:
        name: a registered engine, ``"auto"`` (the fastest here, by a short measured
            probe, cached; see :mod:`rtmag.engines.auto`), optionally with a
            precision suffix: ``"compile:bf16"``, ``"tensorrt:fp16"``.
        precision: ``"fp32"`` (default), ``"bf16"`` (CPU) or ``"fp16"`` (CUDA); the
            same as the suffix.
        options: passed to the engine's factory (e.g. ``max_batch`` for tensorrt,
            ``candidates`` for auto).

    Raises ``UserError`` for an unknown name (listing the known ones), a precision the
    engine does not run, or an engine that cannot run here (naming what to install).
    """
    base, prec = split_name(name, precision)
    if base == "auto":
        from rtmag.engines.auto import create_auto

        return create_auto(net, n_iter, device, prec, **options)
    entry = _entry(base)
    check_precision(prec, device, entry.precisions, base)
    return entry.factory(net, n_iter, device, prec, **options)
