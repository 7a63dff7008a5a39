"""``auto``: the fastest engine that runs here, chosen by a short measured probe.

The probe builds each candidate engine, runs it once (export or compile happen
here), then times a few batches of ``probe_batch`` frames and keeps the lowest median
time per frame. The choice is cached in ``<cache>/auto.json`` under a key made of
the machine (CPU model, cores, torch threads, GPU), the network's weights, ``n_iter``,
the precision, the device, the candidates and which of their packages are missing, so
a second start only builds the chosen engine, and installing an engine's extra later
makes a new probe. The choice is printed once per process and key (stderr).

An engine that cannot run here (its extra missing, no CUDA) is skipped with its
reason, which the probe records.
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import tempfile
import threading
import time

import torch
from torch import nn

from rtmag.engines._common import PRECISIONS, ascent_key, cache_dir, machine_id
from rtmag.engines.registry import EngineFn, create_engine, engine_precisions, list_engines
from rtmag.errors import UserError

__all__ = ["create_auto", "probe_engines", "default_candidates"]

_printed: set[str] = set()
_lock = threading.Lock()


def default_candidates(
    device: str, net: nn.Module | None = None, n_iter: int = 20, precision: str = "fp32"
) -> list[str]:
    """Engines ``auto`` tries, in order of preference on a tie.

    CPU: adjoint, onnx, and compile once it has compiled ``net``'s ascent on this
    machine. CUDA: tensorrt, compile, adjoint, onnx. ``eager`` is the reference, never
    faster than ``adjoint``, so it is not probed. On CPU a cold ``compile`` takes
    minutes on 2 cores, which a first ``rtmag demo`` should not pay; after one run
    with ``--engine compile`` (or ``python bench/bench_engines.py``) its kernels load
    from the cache in seconds, and a marker (:func:`rtmag.engines.torch_engines.compiled_marker`) lets ``auto``
    measure it too. ``$RTMAG_AUTO_ENGINES`` (comma-separated names) replaces the list.
    """
    env = os.environ.get("RTMAG_AUTO_ENGINES", "").strip()
    if env:
        return [name.strip() for name in env.split(",") if name.strip()]
    if str(device).startswith("cuda"):
        return ["tensorrt", "compile", "adjoint", "onnx"]
    names = ["adjoint", "onnx"]
    if net is not None:
        from rtmag.engines.torch_engines import compiled_marker

        if compiled_marker(net, n_iter, precision, device).exists():
            names.append("compile")
    return names


def probe_engines(
    net: nn.Module,
    n_iter: int,
    device: str,
    precision: str,
    candidates: list[str],
    probe_batch: int = 8,
    repeats: int = 3,
) -> dict:
    """Time each candidate; returns ``{"choice", "ms_per_frame": {name: ms}, "skipped":
    {name: reason}, "build_s": {name: s}, "_engine": the chosen EngineFn}``. Raises ``UserError`` if none runs."""
    c, h, w = net.in_channels, net.in_size, net.in_size
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(probe_batch, c, h, w, generator=gen) * 0.01
    gamma = torch.full((probe_batch,), 1e-3)
    ms: dict[str, float] = {}
    built: dict[str, EngineFn] = {}
    skipped: dict[str, str] = {}
    build: dict[str, float] = {}
    for name in candidates:
        if precision not in engine_precisions(name):
            skipped[name] = f"does not run {precision}"
            continue
        try:
            t0 = time.perf_counter()
            engine = create_engine(name, net, n_iter, device, precision=precision)
            engine(x, gamma)  # export/compile/warm-up
            build[name] = time.perf_counter() - t0
        except UserError as e:
            skipped[name] = str(e)
            continue
        times = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            out = engine(x, gamma)
            if out.is_cuda:
                torch.cuda.synchronize(out.device)
            times.append(time.perf_counter() - t0)
        ms[name] = 1000.0 * statistics.median(times) / probe_batch
        built[name] = engine
    if not ms:
        raise UserError(
            "no engine runs here: " + "; ".join(f"{k}: {v}" for k, v in skipped.items())
        )
    choice = min(ms, key=lambda k: ms[k])
    return {
        "choice": choice,
        "ms_per_frame": ms,
        "skipped": skipped,
        "build_s": build,
        "_engine": built[choice],
    }


#: Python packages an engine needs beyond torch (``auto``'s cache key notes those missing).
_PACKAGES = {"onnx": ("onnxruntime", "onnx", "onnxscript"), "tensorrt": ("torch_tensorrt",)}


def _importable(module: str) -> bool:
    """Whether ``module`` can be imported, without importing it."""
    import importlib.util

    if module in sys.modules:
        return sys.modules[module] is not None
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def _load(path) -> dict:
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
        return data if isinstance(data, dict) else {}
    except (OSError, ValueError):
        return {}


def _store(path, key: str, record: dict) -> None:
    data = _load(path)
    data[key] = record
    fd, tmp = tempfile.mkstemp(suffix=".json", dir=path.parent)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        json.dump(data, f, indent=1, sort_keys=True)
    os.replace(tmp, path)


def create_auto(
    net: nn.Module,
    n_iter: int,
    device: str,
    precision: str = "fp32",
    *,
    candidates: list[str] | None = None,
    reprobe: bool = False,
    probe_batch: int = 8,
) -> EngineFn:
    """Build the engine ``auto`` chooses (see the module docstring)."""
    if precision not in PRECISIONS:
        raise UserError(f"unknown precision {precision!r}; known: {', '.join(PRECISIONS)}")
    candidates = list(candidates or default_candidates(device, net, n_iter, precision))
    unknown = [c for c in candidates if c not in list_engines()]
    if unknown:
        raise UserError(f"unknown engines {unknown}; known: {', '.join(list_engines())}")

    net_key = ascent_key(net, n_iter)
    key = f"{machine_id(device)}-{net_key}-{precision}-{device}-{','.join(candidates)}"
    # which candidates' packages import here: installing one (pip install rtmag[onnx])
    # after a probe that skipped it makes a new key, so it is measured (always in the
    # key, so that records from before this note are probed again once too)
    missing = [c for c in candidates if not all(map(_importable, _PACKAGES.get(c, ())))]
    key += "-missing:" + (",".join(missing) or "none")
    path = cache_dir() / "auto.json"
    record = None if reprobe else _load(path).get(key)
    probed = record is None or record.get("choice") not in candidates
    engine = None
    if probed:
        slow = "; a cold torch.compile can take minutes" if "compile" in candidates else ""
        print(
            f"rtmag: engine auto: probing {', '.join(candidates)} (once per machine and "
            f"network{slow})",
            file=sys.stderr,
        )
        record = probe_engines(net, n_iter, device, precision, candidates, probe_batch)
        engine = record.pop("_engine")
        record["when"] = time.strftime("%Y-%m-%dT%H:%M:%S")
        _store(path, key, record)
    choice = record["choice"]
    with _lock:
        if key not in _printed:
            _printed.add(key)
            how = "measured" if probed else f"cached in {path}"
            speeds = ", ".join(f"{k} {v:.2f}" for k, v in sorted(record["ms_per_frame"].items()))
            print(
                f"rtmag: engine auto -> {choice}:{precision} ({how}; ms/frame: {speeds})",
                file=sys.stderr,
            )
    if engine is None:
        try:
            engine = create_engine(choice, net, n_iter, device, precision=precision)
        except UserError:  # the cached choice is not installed here (another env): re-probe
            if reprobe:
                raise
            return create_auto(
                net,
                n_iter,
                device,
                precision,
                candidates=candidates,
                reprobe=True,
                probe_batch=probe_batch,
            )
    engine.info["auto"] = record
    return engine
