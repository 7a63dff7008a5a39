"""Throughput and latency of the gradient ascent per engine x batch.

Rules: a frozen random-init network of the mode (same arithmetic as the trained one,
so the same cost), inputs made before timing, ``N = --n-iter`` (20, the paper's).
Each engine is built and called once untimed (export/compile happen there: that time
is reported as ``build_s``), then per batch ``--warmup`` untimed calls and ``--runs``
timed calls, with a CUDA synchronise inside the timed region on a GPU. Reported per
case: ms per call (median, p95), frames/s (batch / median), and the "limit": the
ascent's FLOPs per frame (forward + adjoint of every conv and dense layer, N - 1
times; 1.96 GFLOP for the pulse ascent) against a matmul rate measured in the same
run, same threads and precision (``limit_fps = rate / FLOPs``; ``of_limit`` = fps /
limit_fps). The 1-minute load average is recorded before and after each engine: a
load above the cores in use means the numbers were taken under load and say so.

An engine that cannot run here is listed with its reason, not faked.

Run: ``python bench/bench_engines.py [--engines adjoint compile:bf16] [--batches 1 8 32]
[--threads 1] [--runs 7]``. Writes ``bench/results/engines-<date>.json`` and prints a
markdown table. ``bench/gpu_engines.py`` runs the same on a CUDA device.
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # before torch starts its pool

import argparse  # noqa: E402
import datetime as dt  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import torch  # noqa: E402
from _machine import cpu_model, git_revision  # noqa: E402
from torch import nn  # noqa: E402

import rtmag  # noqa: E402
from rtmag.engines import PRECISIONS, create_engine  # noqa: E402
from rtmag.engines.registry import split_name  # noqa: E402
from rtmag.errors import UserError  # noqa: E402
from rtmag.nets import create_net  # noqa: E402

CPU_ENGINES = ["eager", "adjoint", "adjoint:bf16", "compile", "compile:bf16", "onnx"]


def versions() -> dict:
    out = {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "rtmag": rtmag.__version__,
    }
    for mod in ("onnx", "onnxruntime", "onnxscript", "triton", "torch_tensorrt"):
        try:
            out[mod] = __import__(mod).__version__
        except Exception:  # absent or broken: say so
            out[mod] = None
    return out


def ascent_flops_per_frame(net: nn.Module, n_iter: int) -> float:
    """FLOPs of ``N - 1`` forward + adjoint passes for one frame (2 per multiply-add;
    the adjoint of a conv or dense layer costs what its forward costs)."""
    flops = 0.0
    h = w = net.in_size
    for layer in net.body:
        if isinstance(layer, nn.Conv2d):
            kh, kw = layer.kernel_size
            h = (h + 2 * layer.padding[0] - kh) // layer.stride[0] + 1
            w = (w + 2 * layer.padding[1] - kw) // layer.stride[1] + 1
            flops += 2.0 * layer.in_channels * layer.out_channels * kh * kw * h * w
        elif isinstance(layer, nn.AvgPool2d):
            k = layer.kernel_size if isinstance(layer.kernel_size, int) else layer.kernel_size[0]
            h, w = h // k, w // k
        elif isinstance(layer, nn.Linear):
            flops += 2.0 * layer.in_features * layer.out_features
    return flops * 2 * (n_iter - 1)


def matmul_rate(dtype: torch.dtype, device: str, seconds: float = 1.0, n: int = 1024) -> float:
    """Measured FLOP/s of an ``n x n`` matmul in ``dtype`` (best of repeated calls)."""
    a = torch.randn(n, n, device=device).to(dtype)
    b = torch.randn(n, n, device=device).to(dtype)
    best = float("inf")
    t_end = time.perf_counter() + seconds
    while time.perf_counter() < t_end:
        t0 = time.perf_counter()
        torch.mm(a, b)
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        best = min(best, time.perf_counter() - t0)
    return 2.0 * n**3 / best


def p95(xs: list[float]) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(0.95 * (len(xs) - 1))))]


def bench_engine(name, net, n_iter, device, batches, warmup, runs) -> dict:
    load0 = os.getloadavg()[0]
    t0 = time.perf_counter()
    c, s = net.in_channels, net.in_size
    gen = torch.Generator().manual_seed(0)
    inputs = {
        b: (torch.randn(b, c, s, s, generator=gen) * 0.01, torch.full((b,), 1e-3)) for b in batches
    }
    try:
        engine = create_engine(name, net, n_iter, device)
        engine(*inputs[batches[0]])
    except UserError as e:
        return {"engine": name, "skipped": str(e)}
    build_s = time.perf_counter() - t0
    cases = []
    for b in batches:
        x, g = inputs[b]
        if device.startswith("cuda"):
            x, g = x.to(device), g.to(device)
        for _ in range(warmup):
            engine(x, g)
        times = []
        for _ in range(runs):
            t = time.perf_counter()
            out = engine(x, g)
            if out.is_cuda:
                torch.cuda.synchronize(out.device)
            times.append(time.perf_counter() - t)
        med = statistics.median(times)
        cases.append(
            {
                "batch": b,
                "ms_median": 1000 * med,
                "ms_p95": 1000 * p95(times),
                "fps": b / med,
                "runs": runs,
            }
        )
    return {
        "engine": name,
        "precision": engine.precision,
        "build_s": build_s,
        "info": {k: v for k, v in engine.info.items() if isinstance(v, (str, int, float, bool))},
        "load_average_before": load0,
        "load_average_after": os.getloadavg()[0],
        "cases": cases,
    }


def table(result: dict) -> str:
    lines = [
        f"pulse ascent, N = {result['n_iter']}, {result['flops_per_frame'] / 1e9:.2f} GFLOP/frame, "
        f"{result['device']} ({result['machine']['cpu']}), torch threads {result['threads']}, "
        f"load average {result['machine']['load_average'][0]:.2f}"
        + (" (UNDER LOAD)" if result["under_load"] else ""),
        "",
        "| engine | batch | ms median | ms p95 | frames/s | limit fps | of limit | build s |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in result["engines"]:
        if "skipped" in r:
            lines.append(f"| {r['engine']} | - | - | - | - | - | - | skipped: {r['skipped']} |")
            continue
        lim = result["limit_fps"][r["precision"]]
        for c in r["cases"]:
            lines.append(
                f"| {r['engine']} | {c['batch']} | {c['ms_median']:.1f} | {c['ms_p95']:.1f} | "
                f"{c['fps']:.1f} | {lim:.0f} | {100 * c['fps'] / lim:.0f}% | {r['build_s']:.1f} |"
            )
    return "\n".join(lines)


def main(argv=None, *, default_engines=None, default_batches=(1, 8, 32), prefix="engines") -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--engines", nargs="+", default=default_engines or CPU_ENGINES)
    p.add_argument("--batches", nargs="+", type=int, default=list(default_batches))
    p.add_argument("--mode", default="pulse", choices=["pulse", "respiration"])
    p.add_argument("--n-iter", type=int, default=20)
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int, default=None, help="torch intra-op threads")
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--runs", type=int, default=7)
    p.add_argument("--out", default=None, help="JSON path (default bench/results/...)")
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    net = create_net(args.mode).eval()
    for q in net.parameters():
        q.requires_grad_(False)
    flops = ascent_flops_per_frame(net, args.n_iter)
    precisions = sorted({split_name(e)[1] for e in args.engines})
    rates = {pr: matmul_rate(PRECISIONS[pr], args.device) for pr in precisions}
    load = list(os.getloadavg())
    ncpu = torch.get_num_threads()
    result = {
        "date": dt.datetime.now().isoformat(timespec="seconds"),
        "git_revision": git_revision(),
        "mode": args.mode,
        "n_iter": args.n_iter,
        "device": args.device,
        "threads": ncpu,
        "flops_per_frame": flops,
        "matmul_flops_per_s": rates,
        "limit_fps": {pr: rates[pr] / flops for pr in precisions},
        "machine": {
            "cpu": cpu_model(),
            "cores": os.cpu_count(),
            "platform": platform.platform(),
            "gpu": torch.cuda.get_device_name() if args.device.startswith("cuda") else None,
            "load_average": load,
        },
        "versions": versions(),
        "engines": [],
    }
    for name in args.engines:
        print(f"... {name}", file=sys.stderr, flush=True)
        r = bench_engine(name, net, args.n_iter, args.device, args.batches, args.warmup, args.runs)
        result["engines"].append(r)
    loads = [load[0]] + [r.get("load_average_after", 0.0) for r in result["engines"]]
    result["under_load"] = bool(
        args.device == "cpu" and max(loads) > 0.5 + (os.cpu_count() or 1) - ncpu
    )
    out = (
        Path(args.out)
        if args.out
        else (
            Path(__file__).resolve().parent
            / "results"
            / f"{prefix}-{dt.date.today().isoformat()}.json"
        )
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1))
    print(table(result))
    print(f"\nwritten {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
