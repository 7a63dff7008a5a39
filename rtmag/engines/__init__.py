"""Where the gradient ascent runs, chosen by name.

An engine is built from a frozen network and ``n_iter`` and is called as
``engine(x1, gamma) -> X_N - X_1`` with ``x1`` a ``(B, C, H, W)`` float32 tensor and
``gamma`` a ``(B,)`` tensor of step sizes. It returns the change itself, accumulated
step by step (``return_delta``): in float32 ``X_N - X_1`` computed after the fact loses
most of its digits to the rounding of ``X``. Every engine computes the same thing as
:func:`rtmag.ascent.gradient_ascent` (the eager autograd reference); tests hold each
one to it with a stated tolerance (``tests/test_engines.py``).

* ``eager``: torch autograd, the reference;
* ``adjoint``: :class:`rtmag.ascent.AdjointAscent`, the hand-written adjoint as one
  pure-inference module (no autograd graph);
* ``compile``: ``torch.compile`` (inductor) of the adjoint module; the compile cache
  is kept under the rtmag cache folder;
* ``onnx``: the adjoint module exported to ONNX and run by ONNX Runtime, the model
  cached by weight hash (``pip install rtmag[onnx]``);
* ``tensorrt``: torch-tensorrt on CUDA, the engine cached on disk
  (``pip install rtmag[tensorrt]``);
* ``auto``: the fastest of those that run here, by a short measured probe cached per
  machine and network (the default of the command line).

Precision: a suffix ``name:bf16`` / ``name:fp16`` or ``precision=``; reduced precision
runs the network's passes in that dtype and keeps the steps float32.

The cache folder is ``$RTMAG_CACHE_DIR``, else ``~/.cache/rtmag``.
"""

from __future__ import annotations

from rtmag.engines import onnx as _onnx  # noqa: F401  (registers; imports onnxruntime lazily)
from rtmag.engines import tensorrt as _tensorrt  # noqa: F401  (idem, torch_tensorrt)
from rtmag.engines import torch_engines as _torch_engines  # noqa: F401
from rtmag.engines._common import PRECISIONS, MixedAscent, cache_dir
from rtmag.engines.registry import (
    EngineFn,
    create_engine,
    engine_precisions,
    list_engines,
    register_engine,
)

Engine = EngineFn

__all__ = [
    "Engine",
    "EngineFn",
    "PRECISIONS",
    "MixedAscent",
    "cache_dir",
    "create_engine",
    "engine_precisions",
    "list_engines",
    "register_engine",
]
