"""The frozen CNNs of DeepMag, their registry and their weight files.

Two networks predict the derivative ``y(t)`` of a physiological signal from one
motion representation ``X(t)`` (Chen & McDuff 2020, section 3 and Fig. 3):

* :class:`PulseNet` (mode ``"pulse"``): ``X`` is the normalised frame difference
  of 36x36 RGB frames, shape ``(B, 3, 36, 36)``; the DeepPhys motion branch, ReLU.
* :class:`BreathNet` (mode ``"respiration"``): ``X`` is the phase difference of a
  complex steerable pyramid at one scale, 4 orientations, shape ``(B, 4, 123, 123)``;
  one more conv block than PulseNet, SELU (paper section 3.3).

Both hold their layers in one ``nn.Sequential`` named ``body`` made only of layer
types that :class:`rtmag.ascent.AdjointAscent` can differentiate by hand
(``Conv2d``, ``ReLU``, ``SELU``, ``AvgPool2d``, ``Flatten``, ``Linear`` and dropouts,
which are the identity in eval mode). The body ends in ``Linear(128, 1)``.

Normalisation lives inside the module as two scalar buffers, so a weight file
carries it and the gradient ascent works in the paper's units of ``X``::

    y = body(X * x_scale)[:, 0] * y_scale

* ``x_scale``: multiplies the input; typically ``1 / std(X)`` over the training
  data, so the layers see inputs of unit spread while callers pass ``X`` as the
  representation produces it.
* ``y_scale``: multiplies the body's output; typically ``std(y)`` of the training
  labels, so the body is trained on standardised labels and ``forward`` returns ``y``
  in the labels' units. Both must be positive and finite (a positive ``y_scale``
  leaves the sign of ``y``, and so the ascent direction, unchanged).

Weight files (:func:`save_weights`, :func:`load_weights`) are ``torch.save``
dictionaries of tensors and JSON-able values only, loadable with
``torch.load(path, weights_only=True)``::

    {"format": "rtmag-weights", "format_version": 1, "mode": "pulse",
     "arch": "PulseNet", "state_dict": {...}, "meta": {...}}
"""

from __future__ import annotations

import json
import math
import os
import pathlib
import tempfile
import warnings
from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from rtmag.errors import UserError, WeightsError

__all__ = [
    "PulseNet",
    "BreathNet",
    "NETS",
    "create_net",
    "default_weights_path",
    "save_weights",
    "load_weights",
    "WEIGHTS_FORMAT",
    "WEIGHTS_FORMAT_VERSION",
]

WEIGHTS_FORMAT = "rtmag-weights"
WEIGHTS_FORMAT_VERSION = 1


class _ScaledNet(nn.Module):
    """Common part of the two networks: the scale buffers and ``forward``.

    Subclasses set ``self.body`` (an ``nn.Sequential`` ending in ``Linear(_, 1)``)
    and the class attributes ``mode``, ``in_channels`` and ``in_size``.
    """

    mode: str = ""
    in_channels: int = 0
    in_size: int = 0
    body: nn.Sequential

    def __init__(self, x_scale: float = 1.0, y_scale: float = 1.0) -> None:
        super().__init__()
        for name, value in (("x_scale", x_scale), ("y_scale", y_scale)):
            if not (math.isfinite(float(value)) and float(value) > 0):
                raise ValueError(f"{name} must be a finite number > 0, got {value!r}")
        self.register_buffer("x_scale", torch.tensor(float(x_scale)))
        self.register_buffer("y_scale", torch.tensor(float(y_scale)))

    @property
    def input_shape(self) -> tuple[int, int, int]:
        """Shape ``(C, H, W)`` of one input frame."""
        return (self.in_channels, self.in_size, self.in_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Predict the source derivative of each frame.

        Args:
            x: ``(B, C, H, W)`` floating tensor, ``(C, H, W) == self.input_shape``,
                in the representation's own units.

        Returns:
            ``(B,)`` tensor of the same dtype: ``body(x * x_scale)[:, 0] * y_scale``.
        """
        if x.dim() != 4 or tuple(x.shape[1:]) != self.input_shape:
            c, h, w = self.input_shape
            raise ValueError(
                f"{type(self).__name__} takes input of shape (B, {c}, {h}, {w}),"
                f" got {tuple(x.shape)}"
            )
        return self.body(x * self.x_scale)[:, 0] * self.y_scale


class PulseNet(_ScaledNet):
    """Pulse CNN: the DeepPhys motion branch (paper Fig. 3(a)).

    Input ``(B, 3, 36, 36)`` float (channels R, G, B: the normalised frame difference
    of Eq. 14); output ``(B,)`` the predicted pulse derivative. Layers::

        conv3x3 3->32 pad 1, ReLU, conv3x3 32->32 pad 0, ReLU, avgpool 2, dropout
        conv3x3 32->64 pad 1, ReLU, conv3x3 64->64 pad 0, ReLU, avgpool 2, dropout
        flatten, linear 7*7*64 -> 128, ReLU, dropout, linear 128 -> 1

    Spatial sizes 36 -> 36 -> 34 -> 17 -> 17 -> 15 -> 7.

    Args:
        x_scale, y_scale: see the module docstring.
        dropout_conv, dropout_dense: dropout rates used while training (identity in
            eval mode, and ignored by the adjoint).
    """

    mode = "pulse"
    in_channels = 3
    in_size = 36

    def __init__(
        self,
        x_scale: float = 1.0,
        y_scale: float = 1.0,
        dropout_conv: float = 0.25,
        dropout_dense: float = 0.5,
    ) -> None:
        super().__init__(x_scale, y_scale)
        self.body = nn.Sequential(
            nn.Conv2d(3, 32, 3, padding=1),
            nn.ReLU(),
            nn.Conv2d(32, 32, 3, padding=0),
            nn.ReLU(),
            nn.AvgPool2d(2),
            nn.Dropout(dropout_conv),
            nn.Conv2d(32, 64, 3, padding=1),
            nn.ReLU(),
            nn.Conv2d(64, 64, 3, padding=0),
            nn.ReLU(),
            nn.AvgPool2d(2),
            nn.Dropout(dropout_conv),
            nn.Flatten(),
            nn.Linear(7 * 7 * 64, 128),
            nn.ReLU(),
            nn.Dropout(dropout_dense),
            nn.Linear(128, 1),
        )


class BreathNet(_ScaledNet):
    """Respiration CNN: PulseNet with one more conv block, and SELU (paper 3.3).

    Input ``(B, 4, 123, 123)`` float (phase differences of 4 pyramid orientations at
    scale r0, Eq. 19); output ``(B,)`` the predicted breathing derivative. Layers::

        conv3x3 4->32 pad 1, SELU, conv3x3 32->32 pad 0, SELU, avgpool 2, alpha-dropout
        conv3x3 32->64 pad 1, SELU, conv3x3 64->64 pad 0, SELU, avgpool 2, alpha-dropout
        conv3x3 64->128 pad 1, SELU, conv3x3 128->128 pad 0, SELU, avgpool 2, alpha-dropout
        flatten, linear 13*13*128 -> 128, SELU, alpha-dropout, linear 128 -> 1

    Spatial sizes 123 -> 123 -> 121 -> 60 -> 60 -> 58 -> 29 -> 29 -> 27 -> 13 (the
    pools floor odd sizes: the last row and column of a 121 or 27 map are dropped).
    Weights start from LeCun-normal initialisation, as SELU expects.
    """

    mode = "respiration"
    in_channels = 4
    in_size = 123

    def __init__(
        self,
        x_scale: float = 1.0,
        y_scale: float = 1.0,
        dropout_conv: float = 0.1,
        dropout_dense: float = 0.25,
    ) -> None:
        super().__init__(x_scale, y_scale)
        layers: list[nn.Module] = []
        chans = [(4, 32), (32, 64), (64, 128)]
        for c_in, c_out in chans:
            layers += [
                nn.Conv2d(c_in, c_out, 3, padding=1),
                nn.SELU(),
                nn.Conv2d(c_out, c_out, 3, padding=0),
                nn.SELU(),
                nn.AvgPool2d(2),
                nn.AlphaDropout(dropout_conv),
            ]
        layers += [
            nn.Flatten(),
            nn.Linear(13 * 13 * 128, 128),
            nn.SELU(),
            nn.AlphaDropout(dropout_dense),
            nn.Linear(128, 1),
        ]
        self.body = nn.Sequential(*layers)
        for m in self.body:
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                nn.init.kaiming_normal_(m.weight, nonlinearity="linear")  # LeCun normal
                nn.init.zeros_(m.bias)


NETS: dict[str, type[_ScaledNet]] = {"pulse": PulseNet, "respiration": BreathNet}


def _check_mode(mode: str) -> type[_ScaledNet]:
    try:
        return NETS[mode]
    except (KeyError, TypeError):
        raise UserError(f"unknown mode {mode!r}; known modes: {', '.join(sorted(NETS))}") from None


def create_net(mode: str, **kwargs: Any) -> _ScaledNet:
    """Build the network of ``mode`` (``"pulse"`` or ``"respiration"``), randomly
    initialised, in training mode. ``kwargs`` go to the class (``x_scale``,
    ``y_scale``, dropout rates). An unknown mode raises ``UserError`` listing the
    known ones."""
    return _check_mode(mode)(**kwargs)


def default_weights_path(mode: str) -> pathlib.Path:
    """Where the shipped weights of ``mode`` live: ``rtmag/weights/<mode>.pt`` inside
    the installed package. The file may not exist (``rtmag train`` writes it)."""
    _check_mode(mode)
    return pathlib.Path(__file__).resolve().parent / "weights" / f"{mode}.pt"


def _mode_of(net: nn.Module) -> str:
    for mode, cls in NETS.items():
        if type(net) is cls:
            return mode
    raise TypeError(
        f"save_weights takes one of {', '.join(c.__name__ for c in NETS.values())},"
        f" got {type(net).__name__}"
    )


def save_weights(path: str | os.PathLike, net: nn.Module, meta: Mapping[str, Any]) -> pathlib.Path:
    """Write ``net``'s weights and ``meta`` to ``path`` (atomically: a temporary file
    in the same folder, then a rename).

    Args:
        path: destination file, conventionally ``*.pt``; its folder must exist.
        net: a :class:`PulseNet` or :class:`BreathNet` (any dtype/device; stored as
            CPU float32).
        meta: JSON-able values only (str, int, float, bool, None, lists, dicts with
            str keys): representation settings, normalisation, band, fps, training
            recipe and seed, rtmag version. Tuples are stored as lists.

    Returns:
        The path written. Raises ``TypeError`` for a non-JSON-able ``meta`` or an
        unknown network class.
    """
    mode = _mode_of(net)
    try:
        meta_json = json.loads(json.dumps(dict(meta), allow_nan=False))
    except (TypeError, ValueError) as exc:
        raise TypeError(f"meta must hold JSON-able values only: {exc}") from exc
    state = {
        k: v.detach().to("cpu", torch.float32 if v.is_floating_point() else v.dtype).clone()
        for k, v in net.state_dict().items()
    }
    payload = {
        "format": WEIGHTS_FORMAT,
        "format_version": WEIGHTS_FORMAT_VERSION,
        "mode": mode,
        "arch": type(net).__name__,
        "state_dict": state,
        "meta": meta_json,
    }
    path = pathlib.Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save(payload, f)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path


def _fail(path: pathlib.Path, what: str, todo: str) -> WeightsError:
    return WeightsError(f"weight file {str(path)!r}: {what}; {todo}")


def load_weights(
    path: str | os.PathLike, mode: str | None = None
) -> tuple[_ScaledNet, dict[str, Any]]:
    """Load a weight file written by :func:`save_weights`.

    Args:
        path: the ``.pt`` file.
        mode: the mode the caller needs (``"pulse"``/``"respiration"``), or ``None``
            to accept the file's own mode.

    Returns:
        ``(net, meta)``: the network on CPU in float32, in eval mode with
        ``requires_grad`` False on every parameter, and the file's meta dict.

    Raises:
        WeightsError: naming the file, what is wrong and what to do, for a missing
        file, a file that is not a readable torch file (corrupt, truncated, or holding
        pickled Python objects), a wrong ``format`` key or newer ``format_version``,
        weights of another mode, an architecture or tensor-shape mismatch, or NaN/inf
        or non-positive scales in the weights.
        UserError: for an unknown ``mode`` argument.
    """
    if mode is not None:
        _check_mode(mode)
    path = pathlib.Path(path)
    if not path.is_file():
        where = (
            f"the default {mode} weights live at {default_weights_path(mode)}"
            if mode is not None
            else "default weights live in "
            + str(pathlib.Path(__file__).resolve().parent / "weights")
            + " as <mode>.pt"
        )
        what = "is a folder, not a file" if path.is_dir() else "does not exist"
        raise _fail(
            path, what, f"pass an existing weight file ({where}; `rtmag train` writes them)"
        )
    try:
        with warnings.catch_warnings():  # e.g. "Detected pickle protocol 4": we report errors
            warnings.simplefilter("ignore", UserWarning)
            obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for bad files
        text = str(exc).strip()
        if "Weights only load failed" in text:
            # torch's own text advises weights_only=False, which would run pickled code
            why = "holds pickled Python objects or unsupported pickle data, refused for safety"
        else:
            why = f"{type(exc).__name__}: {text.splitlines()[0][:200] if text else '-'}"
        raise _fail(
            path,
            f"cannot be read as a torch weight file ({why});"
            " it may be truncated, corrupt, not a torch file, or a whole pickled model",
            "re-copy or re-train it (`rtmag train`) and write it with rtmag.nets.save_weights",
        ) from exc
    if not isinstance(obj, dict) or obj.get("format") != WEIGHTS_FORMAT:
        found = obj.get("format") if isinstance(obj, dict) else type(obj).__name__
        raise _fail(
            path,
            f"is not an rtmag weight file (format {found!r}, expected {WEIGHTS_FORMAT!r};"
            " a bare state_dict or a whole pickled model is not accepted)",
            "write weights with rtmag.nets.save_weights or `rtmag train`",
        )
    version = obj.get("format_version")
    if not isinstance(version, int) or version > WEIGHTS_FORMAT_VERSION or version < 1:
        raise _fail(
            path,
            f"has format_version {version!r}; this rtmag reads version {WEIGHTS_FORMAT_VERSION}",
            "upgrade rtmag or re-train the weights with this version",
        )
    file_mode = obj.get("mode")
    if file_mode not in NETS:
        raise _fail(
            path,
            f"names an unknown mode {file_mode!r} (known: {', '.join(sorted(NETS))})",
            "re-train the weights with `rtmag train`",
        )
    if mode is not None and file_mode != mode:
        raise _fail(
            path,
            f"holds {file_mode} weights, but {mode} weights are needed",
            f"pass a {mode} weight file (default: {default_weights_path(mode)})",
        )
    cls = NETS[file_mode]
    if obj.get("arch") != cls.__name__:
        raise _fail(
            path,
            f"has architecture {obj.get('arch')!r}, but mode {file_mode} uses {cls.__name__}",
            "re-train the weights with this version of rtmag",
        )
    state = obj.get("state_dict")
    meta = obj.get("meta", {})
    if not isinstance(state, dict) or not isinstance(meta, dict):
        raise _fail(path, "has no state_dict or meta dict", "re-train the weights")
    net = cls()
    expected = net.state_dict()
    problems = []
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    if missing:
        problems.append(f"missing tensors {missing[:5]}")
    if unexpected:
        problems.append(f"unexpected tensors {unexpected[:5]}")
    for key in sorted(set(expected) & set(state)):
        value = state[key]
        if not isinstance(value, torch.Tensor):
            problems.append(f"{key} is a {type(value).__name__}, not a tensor")
        elif value.shape != expected[key].shape:
            problems.append(
                f"{key} has shape {tuple(value.shape)}, expected {tuple(expected[key].shape)}"
            )
    if problems:
        raise _fail(
            path,
            f"does not match the {cls.__name__} architecture: " + "; ".join(problems[:6]),
            "the file was written by another network version; re-train it with `rtmag train`",
        )
    bad = [k for k, v in state.items() if v.is_floating_point() and not torch.isfinite(v).all()]
    if bad:
        raise _fail(
            path,
            f"has NaN or infinite values in {bad[:5]} (training diverged?)",
            "re-train with a lower learning rate or use another checkpoint",
        )
    for key in ("x_scale", "y_scale"):
        if float(state[key]) <= 0:
            raise _fail(
                path,
                f"has {key} = {float(state[key])!r}; it must be > 0",
                "re-train the weights",
            )
    net.load_state_dict(state, strict=True)
    net.eval()
    net.requires_grad_(False)
    return net, meta
