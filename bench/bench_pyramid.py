"""Benchmark of the complex steerable pyramid and the phase representation (640x480 grey).

Rules: one grey frame ``(1, 1, 480, 640)`` of random values (the cost does not depend
on the content; the phase offsets are zero or given, as the case says), float32 unless stated, torch threads as given (default 1). Each case
runs ``warmup`` times untimed, then ``repeats`` times, each timed by wall clock and by
process CPU time; the median and p95 of the wall times and the median CPU time are
reported in milliseconds per frame. On a shared machine the CPU time is the steadier
number (the wall time includes waiting for a core); the load average is recorded
before and after. Libraries that are not installed (plenoptic, pyrtools) are reported
with the reason and skipped; nothing is installed. Writes
``bench/results/pyramid-<date>.json`` and prints a markdown table.

Run: ``python bench/bench_pyramid.py [--repeats 30] [--threads 1] [--note TEXT]``
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np
import torch
from _machine import git_revision

import rtmag
from rtmag.representations.phase import (
    apply_phase_offsets,
    choose_r0,
    phase_difference,
    render_change,
)
from rtmag.representations.pyramid import build, build_scale, reconstruct

H, W = 480, 640


def timed(fn, repeats: int, warmup: int = 3) -> dict:
    for _ in range(warmup):
        fn()
    wall, cpu = [], []
    for _ in range(repeats):
        t0, c0 = time.perf_counter(), time.process_time()
        fn()
        wall.append(1000.0 * (time.perf_counter() - t0))
        cpu.append(1000.0 * (time.process_time() - c0))
    return {
        "ms_median": float(np.median(wall)),
        "ms_p95": float(np.percentile(wall, 95)),
        "cpu_ms_median": float(np.median(cpu)),
        "runs": repeats,
    }


def cases(dtype: torch.dtype) -> dict:
    g = torch.Generator().manual_seed(0)
    x0 = torch.rand(1, 1, H, W, generator=g, dtype=dtype) * 255
    x1 = torch.roll(x0, 1, dims=-1)
    r0 = choose_r0((H, W))
    pyr = build(x0, 4)
    b0 = build_scale(x0, r0)
    offsets = torch.zeros(1, 4, 123, 123, dtype=dtype)
    # smooth offsets of up to 3 rad at r0: 12 at the finest scale, where the gate acts
    coarse = torch.randn(1, 4, 8, 8, generator=g, dtype=dtype)
    moving = torch.nn.functional.interpolate(coarse, size=(123, 123), mode="bilinear")
    moving = 3.0 * moving / moving.abs().amax()
    return {
        "build 4 scales": lambda: build(x0, 4),
        "reconstruct 4 scales": lambda: reconstruct(pyr),
        "build+reconstruct 4 scales": lambda: reconstruct(build(x0, 4)),
        f"one scale (r0={r0}) build_scale": lambda: build_scale(x1, r0),
        f"representation per frame (build_scale r0={r0} + phase difference to 123x123)": (
            lambda: phase_difference(b0, build_scale(x1, r0), r0, size=123)
        ),
        "inverse per frame (build 4 + apply_phase_offsets + reconstruct)": (
            lambda: reconstruct(apply_phase_offsets(build(x0, 4), offsets, r0))
        ),
        "inverse per frame, offsets up to 3 rad (the same)": (
            lambda: reconstruct(apply_phase_offsets(build(x0, 4), moving, r0))
        ),
        "change per frame, offsets up to 3 rad (render_change, what MotionPath.render runs)": (
            lambda: render_change(x0, moving, r0, 4)
        ),
    }


def libraries() -> dict:
    """Other implementations, timed only where installed (never installed here)."""
    out = {}
    try:
        from plenoptic.simulate import SteerablePyramidFreq  # noqa: F401
    except Exception as exc:  # ImportError or a broken install
        out["plenoptic"] = f"not run: {type(exc).__name__}: {exc}"
    else:  # pragma: no cover - not installed on the project machine
        out["plenoptic"] = "installed but not timed by this script yet"
    try:
        import pyrtools  # noqa: F401
    except Exception as exc:
        out["pyrtools"] = f"not run: {type(exc).__name__}: {exc}"
    else:  # pragma: no cover
        out["pyrtools"] = "installed but not timed by this script yet"
    out["planning figures (issue 4, same size, 4 scales, decompose+reconstruct)"] = {
        "pyrtools_ms": 226,
        "plenoptic_float32_ms": 58,
        "naive torch full-size bands_ms": 744,
        "torch per-band resolution (planning)_ms": 29,
    }
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=30)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--float64", action="store_true", help="also time build+reconstruct in float64")
    ap.add_argument("--note", default="", help="free text stored with the result (machine load)")
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args(argv)

    torch.set_num_threads(args.threads)
    load_before = os.getloadavg()
    results = {name: timed(fn, args.repeats) for name, fn in cases(torch.float32).items()}
    if args.float64:
        x = torch.rand(1, 1, H, W, dtype=torch.float64)
        results["build+reconstruct 4 scales float64"] = timed(
            lambda: reconstruct(build(x, 4)), args.repeats
        )
    load_after = os.getloadavg()

    now = dt.datetime.now(dt.timezone.utc)
    record = {
        "benchmark": "pyramid",
        "date": now.isoformat(timespec="seconds"),
        "frame": f"{W}x{H} grey, batch 1, float32",
        "note": args.note,
        "machine": {
            "platform": platform.platform(),
            "processor": platform.processor(),
            "cpu_count": os.cpu_count(),
            "load_average_before": list(load_before),
            "load_average_after": list(load_after),
            "torch_threads": torch.get_num_threads(),
            "omp_num_threads": os.environ.get("OMP_NUM_THREADS"),
        },
        "versions": {
            "python": platform.python_version(),
            "torch": torch.__version__,
            "numpy": np.__version__,
            "rtmag": getattr(rtmag, "__version__", "unknown"),
        },
        "git_revision": git_revision(),
        "results": results,
        "other_implementations": libraries(),
    }
    out = args.out or Path(__file__).resolve().parent / "results" / f"pyramid-{now:%Y-%m-%d}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(record, indent=2) + "\n")

    print(f"| case ({W}x{H} grey, {args.threads} thread(s)) | ms median | ms p95 | CPU ms |")
    print("|---|---|---|---|")
    for name, r in results.items():
        print(f"| {name} | {r['ms_median']:.1f} | {r['ms_p95']:.1f} | {r['cpu_ms_median']:.1f} |")
    print(f"load average before {load_before[0]:.2f}, after {load_after[0]:.2f}; wrote {out}")
    for name, why in record["other_implementations"].items():
        if isinstance(why, str):
            print(f"{name}: {why}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
