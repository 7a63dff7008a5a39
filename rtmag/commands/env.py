"""``rtmag env``: what a bug report needs: versions, encoders, engines, weight files."""

from __future__ import annotations

import importlib
import os
import platform


def add_arguments(p) -> None:
    p.add_argument("--json", action="store_true", help="print JSON instead of text")


def _version(module: str) -> str:
    try:
        return getattr(importlib.import_module(module), "__version__", "installed")
    except Exception as exc:  # noqa: BLE001 - report whatever broke the import
        return f"not available ({type(exc).__name__}: {exc})"


def collect() -> dict:
    """Everything ``rtmag env`` prints, as a dict."""
    import torch

    from rtmag import __version__
    from rtmag.engines import list_engines
    from rtmag.errors import WeightsError
    from rtmag.nets import NETS, default_weights_path, load_weights
    from rtmag.video import available_encoders

    weights = {}
    for mode in NETS:
        path = default_weights_path(mode)
        try:
            _, meta = load_weights(path, mode=mode)
            calib = (meta.get("calibration") or {}).get("gamma_per_gain")
            weights[mode] = {"path": str(path), "ok": True, "calibrated": calib is not None}
        except WeightsError as exc:
            weights[mode] = {"path": str(path), "ok": False, "error": str(exc)}
    return {
        "rtmag": __version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "cuda": torch.cuda.is_available(),
        "numpy": _version("numpy"),
        "scipy": _version("scipy"),
        "opencv": _version("cv2"),
        "pyav": _version("av"),
        "onnxruntime": _version("onnxruntime"),
        "torch_tensorrt": _version("torch_tensorrt"),
        "triton": _version("triton"),
        "kernels": _kernels(),
        "encoders": available_encoders(),
        "engines": list_engines(),
        "weights": weights,
    }


def _kernels() -> str:
    """Whether rtmag.kernels' Triton kernels run here, and if not why."""
    import torch

    from rtmag.kernels.ascent_step import triton_available

    ok, why = triton_available()
    return "run (CUDA)" if ok and torch.cuda.is_available() else ("run" if ok else why)


def run(args) -> int:
    import json

    info = collect()
    if args.json:
        print(json.dumps(info, indent=2))
        return 0
    for key, value in info.items():
        if isinstance(value, dict):
            print(f"{key}:")
            for k, v in value.items():
                print(f"  {k}: {v}")
        else:
            print(f"{key}: {value}")
    return 0
