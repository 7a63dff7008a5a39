"""``onnx`` engine: the adjoint ascent exported to ONNX, run by ONNX Runtime.

The model file is cached as ``<cache>/onnx/<hash>.onnx``, the hash taken over the
network's weights, ``n_iter``, the precision, the opset and the torch version, so a
new weight file or a new torch exports again and an unchanged one loads in
milliseconds (export takes ~20 s for N = 20 on a loaded 2-core CPU).
"""

from __future__ import annotations

import os
import pathlib
import tempfile
import warnings

import torch
from torch import nn

from rtmag.engines._common import build_ascent_module, cache_dir, module_hash
from rtmag.engines.registry import EngineFn, register_engine
from rtmag.errors import UserError

__all__ = ["export_onnx", "onnx_model_path", "OPSET"]

OPSET = 18
_MAX_BATCH = 4096


def _import_ort():
    try:
        import onnxruntime
    except ImportError as e:
        raise UserError("engine 'onnx' needs ONNX Runtime and onnx: pip install rtmag[onnx]") from e
    return onnxruntime


def onnx_model_path(net: nn.Module, n_iter: int, precision: str = "fp32") -> pathlib.Path:
    """Where the exported model of ``net`` is (or would be) cached."""
    module = build_ascent_module(net, n_iter, precision, "cpu")
    key = module_hash(module, "onnx", n_iter, precision, OPSET, torch.__version__)
    return cache_dir("onnx") / f"{key}.onnx"


def export_onnx(module: nn.Module, example: tuple[torch.Tensor, torch.Tensor], path) -> None:
    """Export ``module(x1, gamma)`` with a dynamic batch to ``path`` (written atomically).

    Uses the dynamo exporter (``torch.onnx.export(..., dynamo=True)``, needs onnx and
    onnxscript); the graph has forward ops only because the module is the hand-written
    adjoint.
    """
    path = pathlib.Path(path)
    batch = torch.export.Dim("batch", min=1, max=_MAX_BATCH)
    with warnings.catch_warnings(), torch.inference_mode(False):
        warnings.simplefilter("ignore")
        program = torch.onnx.export(
            module,
            example,
            dynamo=True,
            dynamic_shapes=({0: batch}, {0: batch}),
            input_names=["x1", "gamma"],
            output_names=["delta"],
            opset_version=OPSET,
            verbose=False,
        )
    fd, tmp = tempfile.mkstemp(suffix=".onnx", dir=path.parent)
    os.close(fd)
    try:
        program.save(tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


@register_engine("onnx", precisions=("fp32",))
def _onnx(
    net: nn.Module,
    n_iter: int,
    device: str,
    precision: str = "fp32",
    *,
    threads: int | None = None,
) -> EngineFn:
    """ONNX Runtime on the exported adjoint ascent (CPU; CUDA provider when ``device`` is
    CUDA and onnxruntime-gpu is installed). fp32 only: ONNX Runtime's CPU provider has no
    fast bf16 convolutions."""
    ort = _import_ort()
    try:
        import onnx  # noqa: F401  (the exporter needs it)
    except ImportError as e:
        raise UserError("engine 'onnx' needs onnx to export: pip install rtmag[onnx]") from e
    cuda = str(device).startswith("cuda")
    providers = ["CPUExecutionProvider"]
    if cuda:
        if "CUDAExecutionProvider" not in ort.get_available_providers():
            raise UserError(
                "engine 'onnx' on CUDA needs onnxruntime-gpu (pip install onnxruntime-gpu); "
                f"providers here: {', '.join(ort.get_available_providers())}"
            )
        providers.insert(0, "CUDAExecutionProvider")
    path = onnx_model_path(net, n_iter, precision)
    exported = False
    if not path.is_file():
        module = build_ascent_module(net, n_iter, precision, "cpu")
        c, h, w = net.in_channels, net.in_size, net.in_size
        example = (torch.randn(2, c, h, w) * 0.01, torch.full((2,), 1e-3))
        export_onnx(module, example, path)
        exported = True
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads if threads is not None else torch.get_num_threads()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    session = ort.InferenceSession(str(path), opts, providers=providers)

    def run(x1: torch.Tensor, gamma: torch.Tensor) -> torch.Tensor:
        x = x1.detach().to("cpu", torch.float32).contiguous().numpy()
        g = gamma.detach().to("cpu", torch.float32).reshape(-1).expand(x.shape[0])
        (out,) = session.run(None, {"x1": x, "gamma": g.contiguous().numpy()})
        return torch.from_numpy(out).to(device)

    return EngineFn(run, "onnx", precision, device, info={"model": str(path), "exported": exported})
