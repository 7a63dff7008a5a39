"""The engines' throughput on a CUDA GPU at batch 1-64, prepared for one short run.

Run on a machine with CUDA (and, for the tensorrt rows, ``pip install rtmag[tensorrt]``;
for onnx on the GPU, onnxruntime-gpu)::

    python bench/gpu_engines.py [--out $OUT/engines-gpu.json]

It is ``bench/bench_engines.py`` with CUDA defaults: engines eager, adjoint,
adjoint:fp16, compile, compile:fp16, tensorrt, tensorrt:fp16, onnx; batches 1, 2, 4,
8, 16, 32, 64; N = 20; 3 warm-up and 10 timed calls with a synchronise inside the
timed region. Engines that cannot run (no torch-tensorrt, no CUDA provider) are listed
with the reason. Goal from issue 7: the pulse ascent >= 2000 frames/s at batch 64.
Budget: cold torch.compile and TensorRT builds dominate (a few minutes in all).
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_engines  # noqa: E402

GPU_ENGINES = [
    "eager",
    "adjoint",
    "adjoint:fp16",
    "compile",
    "compile:fp16",
    "tensorrt",
    "tensorrt:fp16",
    "onnx",
]

if __name__ == "__main__":
    import torch

    if not torch.cuda.is_available():
        sys.exit("gpu_engines.py needs a CUDA device (torch.cuda.is_available() is False)")
    argv = sys.argv[1:]
    if "--device" not in argv:
        argv = ["--device", "cuda", "--warmup", "3", "--runs", "10", *argv]
    sys.exit(
        bench_engines.main(
            argv,
            default_engines=GPU_ENGINES,
            default_batches=(1, 2, 4, 8, 16, 32, 64),
            prefix="engines-gpu",
        )
    )
