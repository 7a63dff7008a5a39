"""Choose a baseline magnifier by name: ``register_method`` / ``create_method``.

In the style of timm's ``@register_model`` and ``create_model(name, **kwargs)``: each
baseline module decorates a factory; :func:`create_method` builds one by name and an
unknown name raises :class:`~rtmag.errors.UserError` that lists the known ones.
"""

from __future__ import annotations

from collections.abc import Callable

from rtmag.errors import UserError

__all__ = ["register_method", "create_method", "list_methods"]

_METHODS: dict[str, Callable] = {}


def register_method(name: str) -> Callable[[Callable], Callable]:
    """Decorator: register ``factory`` under ``name`` (lower case, unique)."""

    def deco(factory: Callable) -> Callable:
        if name in _METHODS and _METHODS[name] is not factory:
            raise ValueError(f"baseline method {name!r} is already registered")
        _METHODS[name] = factory
        return factory

    return deco


def list_methods() -> list[str]:
    """Names of the registered baselines, sorted."""
    return sorted(_METHODS)


def create_method(name: str, **kwargs):
    """Build the baseline ``name`` with its keyword arguments (see each factory).

    Raises:
        UserError: ``name`` is not registered (the message lists the known names), or
            a keyword is not one the method takes.
    """
    key = str(name).lower()
    if key not in _METHODS:
        raise UserError(
            f"unknown magnification method {name!r}; known baselines: "
            f"{', '.join(list_methods())} (DeepMag itself is 'deepmag')"
        )
    try:
        return _METHODS[key](**kwargs)
    except TypeError as exc:
        raise UserError(f"method {key!r}: {exc}") from exc
