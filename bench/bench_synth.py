"""Benchmark of the synthetic clip renderer (rtmag.synth), single process.

Rules: build the renderer (static scene) outside the timed region, render a few
warm-up frames, then time ``repeats`` runs of ``frames`` frames each (input and
ideal together, as training consumes them) and report the median and p95 of the
per-run frames per second, plus the process CPU time per frame (OpenCV may use more
than one thread; on a shared machine the CPU time is the steadier number). Writes
``bench/results/synth-<date>.json`` and prints a markdown table.

Run: ``python bench/bench_synth.py [--repeats 7] [--frames 60]``
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

import cv2
import numpy as np
from _machine import git_revision

import rtmag
from rtmag.synth import Renderer, SynthConfig

CASES = [
    ("144x144 pulse D", dict(size=(144, 144), task="D", mode="pulse", alpha=20.0)),
    ("144x144 respiration B", dict(size=(144, 144), task="B", mode="respiration", alpha=10.0)),
    ("640x480 pulse D", dict(size=(640, 480), task="D", mode="pulse", alpha=20.0)),
    ("640x480 respiration B", dict(size=(640, 480), task="B", mode="respiration", alpha=10.0)),
]


def bench_case(kwargs: dict, frames: int, repeats: int, warmup: int = 5) -> dict:
    """Median and p95 frames/s (and ms/frame) of rendering ``frames`` frames, ``repeats`` x."""
    total = warmup + frames * repeats
    cfg = SynthConfig(seconds=total / 30.0 + 0.1, fps=30.0, seed=1, **kwargs)
    r = Renderer(cfg)
    for k in range(warmup):
        r.layers(k)
    k = warmup
    fps_runs, cpu_ms = [], []
    for _ in range(repeats):
        t0, c0 = time.perf_counter(), time.process_time()
        for _ in range(frames):
            r.layers(k)
            k += 1
        fps_runs.append(frames / (time.perf_counter() - t0))
        cpu_ms.append(1000.0 * (time.process_time() - c0) / frames)
    fps_runs = np.asarray(fps_runs)
    ms = 1000.0 / fps_runs
    return {
        "fps_median": float(np.median(fps_runs)),
        "fps_p5": float(np.percentile(fps_runs, 5)),
        "ms_per_frame_median": float(np.median(ms)),
        "ms_per_frame_p95": float(np.percentile(ms, 95)),
        "cpu_ms_per_frame_median": float(np.median(cpu_ms)),
        "runs": repeats,
        "frames_per_run": frames,
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--frames", type=int, default=60)
    ap.add_argument("--out-dir", default=str(Path(__file__).resolve().parent / "results"))
    args = ap.parse_args(argv)
    results = {}
    for name, kwargs in CASES:
        results[name] = bench_case(kwargs, args.frames, args.repeats)
    record = {
        "benchmark": "synth",
        "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "machine": {
            "platform": platform.platform(),
            "processor": platform.processor() or platform.machine(),
            "cpu_count": os.cpu_count(),
            "load_average": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
            "omp_num_threads": os.environ.get("OMP_NUM_THREADS"),
            "cv2_threads": cv2.getNumThreads(),
        },
        "versions": {
            "python": sys.version.split()[0],
            "numpy": np.__version__,
            "cv2": cv2.__version__,
            "rtmag": rtmag.__version__,
        },
        "git_revision": git_revision(),
        "results": results,
    }
    out_dir = Path(args.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"synth-{dt.date.today().isoformat()}.json"
    path.write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    print(
        "| case | frames/s (median) | frames/s (p5) | ms/frame (median) | ms/frame (p95) "
        "| CPU ms/frame |"
    )
    print("|---|---|---|---|---|---|")
    for name, r in results.items():
        print(
            f"| {name} | {r['fps_median']:.0f} | {r['fps_p5']:.0f} | "
            f"{r['ms_per_frame_median']:.2f} | {r['ms_per_frame_p95']:.2f} | "
            f"{r['cpu_ms_per_frame_median']:.2f} |"
        )
    print(f"\nload average {record['machine']['load_average']}, wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
