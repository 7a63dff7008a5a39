"""``tensorrt`` engine: torch-tensorrt compiling the exported adjoint ascent on CUDA.

``torch_tensorrt`` is imported only when this engine is chosen. The same module that
``torch.export`` takes (:class:`rtmag.ascent.AdjointAscent`, or
:class:`rtmag.engines.MixedAscent` for fp16, explicitly typed) is exported with a
dynamic batch ``1..max_batch`` and compiled by ``torch_tensorrt.dynamo.compile``; the
result is saved with ``torch_tensorrt.save`` as
``<cache>/tensorrt/<hash>.ep`` (hash over the weights, ``n_iter``, precision,
``max_batch``, GPU name and versions) and later loaded with ``torch.export.load``.
"""

from __future__ import annotations

import torch
from torch import nn

from rtmag.engines._common import build_ascent_module, cache_dir, module_hash
from rtmag.engines.registry import EngineFn, register_engine
from rtmag.errors import UserError

__all__ = ["require_tensorrt"]


def require_tensorrt(device: str):
    """Return the ``torch_tensorrt`` module, or raise ``UserError`` saying what is missing."""
    if not str(device).startswith("cuda"):
        raise UserError(
            f"engine 'tensorrt' runs on a CUDA device, not {device!r}; pass device='cuda' "
            "(--device cuda) or choose another engine (rtmag env lists them)"
        )
    if not torch.cuda.is_available():
        raise UserError(
            "engine 'tensorrt' needs CUDA, and this torch has none "
            f"(torch {torch.__version__}, torch.version.cuda={torch.version.cuda}); "
            "install a CUDA build of torch and pip install rtmag[tensorrt]"
        )
    try:
        import torch_tensorrt
    except ImportError as e:
        raise UserError(
            "engine 'tensorrt' needs torch-tensorrt: pip install rtmag[tensorrt] "
            f"(its version must match torch {torch.__version__})"
        ) from e
    return torch_tensorrt


@register_engine("tensorrt", precisions=("fp32", "fp16"))
def _tensorrt(
    net: nn.Module,
    n_iter: int,
    device: str,
    precision: str = "fp32",
    *,
    max_batch: int = 64,
    opt_batch: int = 16,
) -> EngineFn:
    """TensorRT engine of the whole ascent for batches ``1..max_batch``.

    ``fp16``: the network's passes in float16, the steps in float32 (explicit casts,
    which TensorRT's strong typing keeps). A larger batch raises ``ValueError``; split
    it or build with a larger ``max_batch``.
    """
    trt = require_tensorrt(device)
    module = build_ascent_module(net, n_iter, precision, device)
    c, h, w = net.in_channels, net.in_size, net.in_size
    key = module_hash(
        module,
        "tensorrt",
        n_iter,
        precision,
        max_batch,
        opt_batch,
        torch.cuda.get_device_name(torch.device(device)),
        torch.__version__,
        trt.__version__,
    )
    path = cache_dir("tensorrt") / f"{key}.ep"
    opt = max(1, min(opt_batch, max_batch))
    example = (
        torch.randn(opt, c, h, w, device=device) * 0.01,
        torch.full((opt,), 1e-3, device=device),
    )
    built = False
    if path.is_file():
        compiled = torch.export.load(str(path)).module()
    else:
        batch = torch.export.Dim("batch", min=1, max=max_batch)
        program = torch.export.export(module, example, dynamic_shapes=({0: batch}, {0: batch}))
        inputs = [
            trt.Input(
                min_shape=(1, c, h, w),
                opt_shape=(opt, c, h, w),
                max_shape=(max_batch, c, h, w),
                dtype=torch.float32,
            ),
            trt.Input(
                min_shape=(1,), opt_shape=(opt,), max_shape=(max_batch,), dtype=torch.float32
            ),
        ]
        compiled = trt.dynamo.compile(program, arg_inputs=inputs, min_block_size=1)
        shapes = ({0: batch}, {0: batch})
        try:  # torch-tensorrt >= 2.9 keeps the dynamic batch given dynamic_shapes
            trt.save(compiled, str(path), arg_inputs=list(example), dynamic_shapes=shapes)
        except TypeError:  # older: dynamic dims come from the compiled module itself
            trt.save(compiled, str(path), arg_inputs=list(example))
        built = True

    def run(x1: torch.Tensor, gamma: torch.Tensor) -> torch.Tensor:
        b = x1.shape[0]
        if b > max_batch:
            raise ValueError(f"batch {b} > max_batch {max_batch} of this TensorRT engine")
        x = x1.to(device=device, dtype=torch.float32).contiguous()
        g = gamma.to(device=device, dtype=torch.float32).reshape(-1).expand(b).contiguous()
        with torch.inference_mode():
            return compiled(x, g)

    return EngineFn(
        run, "tensorrt", precision, device, info={"engine_file": str(path), "built": built}
    )
