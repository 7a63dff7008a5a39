"""End-to-end benchmark of the live pipeline (``rtmag webcam``) at 640x480.

Rules: a simulated 30 fps camera (task-D synthetic frames rendered *before* timing
and replayed by the capture thread at 30 fps with the live ring policy, so rendering
costs nothing inside the run), the real capture and processing threads, and a
display stand-in on the main thread that composes the window picture for every frame
(``rtmag.live.display.compose``; ``cv2.imshow`` too when ``--show`` and a display
exist). Each case warms up for ``--warmup`` seconds, then runs ``--seconds``.
Reported: frames shown per second, capture-to-display latency (median, p95) measured
from the capture thread's ``perf_counter`` stamp to the moment the picture is
composed, frames dropped by the rings, mean ascent batch size. Cases: torch with one
and with two intra-op threads (``OMP_WAIT_POLICY=PASSIVE`` set before torch is
imported) and capture rings of 8, 4 and 2 frames (the ring is also the batch cap:
smaller batches, lower latency, less throughput under load). The 1-minute load average is recorded before and after each case: on a
shared machine it says how much CPU the pipeline did not have.

Without ``--weights`` the network is a frozen random-init PulseNet with a fixed step
(the same architecture and arithmetic as the trained one: the cost is the same).

Run: ``python bench/bench_live.py [--seconds 15] [--cases 1:8 2:8 1:4] [--weights FILE]``
Writes ``bench/results/live-<date>.json`` and prints a markdown table.
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # before torch starts its pool

import argparse  # noqa: E402
import datetime as dt  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import cv2  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
from _machine import cpu_model, git_revision  # noqa: E402

import rtmag  # noqa: E402
import rtmag.nets  # noqa: E402
from rtmag.live.capture import IteratorSource  # noqa: E402
from rtmag.live.display import DisplayState, compose, display_available  # noqa: E402
from rtmag.live.pipeline import LivePipeline  # noqa: E402
from rtmag.magnifier import Magnifier, MagnifierConfig  # noqa: E402
from rtmag.synth import SynthConfig, iter_render  # noqa: E402

FPS = 30.0
SIZE = (640, 480)


def camera_frames(seconds: float) -> list[np.ndarray]:
    cfg = SynthConfig(task="D", seconds=seconds, fps=FPS, size=SIZE, seed=3, heart_rate_bpm=72.0)
    return [f for f, _i, _t in iter_render(cfg)]


def replay(frames):
    i = 0
    while True:
        yield frames[i % len(frames)]
        i += 1


def make_magnifier(weights: str | None) -> Magnifier:
    if weights:
        return Magnifier(MagnifierConfig(fps=FPS, weights=weights, engine="auto"))
    torch.manual_seed(0)
    net = rtmag.nets.PulseNet().eval()
    for p in net.parameters():
        p.requires_grad_(False)
    return Magnifier(MagnifierConfig(fps=FPS, gamma=0.5, engine="auto"), net=net)


def run_case(
    frames, threads: int, seconds: float, warmup: float, weights, show: bool, ring: int
) -> dict:
    """One run: ``threads`` torch threads, a live ring of ``ring`` frames (the batch cap)."""
    src = IteratorSource(replay(frames), fps=FPS, live=True, description="simulated 30 fps camera")
    src.open()
    pipe = LivePipeline(src, make_magnifier(weights), torch_threads=threads, ring_size=ring)
    state = DisplayState()
    lat, shown_t, batches = [], [], []
    load0 = os.getloadavg()
    cpu0 = time.process_time()
    pipe.start()
    t_start = time.perf_counter()
    t_measure = t_start + warmup
    t_end = t_measure + seconds
    drop0 = None
    try:
        while time.perf_counter() < t_end:
            item = pipe.get(timeout=1.0)
            if item is None:
                break
            if item is False:
                continue
            state.signal.append(item.frame.signal)
            canvas = compose(item, state)
            if show:
                cv2.imshow("rtmag bench", canvas)
                cv2.waitKey(1)
            now = time.perf_counter()
            if now >= t_measure:
                if drop0 is None:
                    drop0 = pipe.dropped
                    cap0 = pipe.capture.frames
                lat.append(now - item.captured_wall)
                shown_t.append(now)
                batches.append(item.batch_size)
    finally:
        alive = pipe.stop()
    pipe.raise_if_failed()
    cpu = time.process_time() - cpu0
    load1 = os.getloadavg()
    lat_ms = np.asarray(lat) * 1000
    captured = pipe.capture.frames - cap0 if drop0 is not None else 0
    span = shown_t[-1] - shown_t[0] if len(shown_t) > 1 else float("nan")
    return {
        "torch_threads": threads,
        "ring": ring,
        "frames_shown": len(shown_t),
        "frames_captured": captured,
        "fps_shown": (len(shown_t) - 1) / span if len(shown_t) > 1 else 0.0,
        "latency_ms_median": float(np.median(lat_ms)) if len(lat_ms) else None,
        "latency_ms_p95": float(np.percentile(lat_ms, 95)) if len(lat_ms) else None,
        "dropped": (pipe.dropped - drop0) if drop0 is not None else None,
        "mean_batch": float(np.mean(batches)) if batches else None,
        "process_ms_per_frame": 1000 * pipe.process_seconds / max(pipe.frames_out, 1),
        "cpu_seconds": cpu,
        "load_average_before": list(load0),
        "load_average_after": list(load1),
        "threads_alive_after_stop": alive,
    }


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=15.0)
    ap.add_argument("--warmup", type=float, default=3.0)
    ap.add_argument(
        "--cases",
        nargs="+",
        default=["1:8", "2:8", "1:4", "2:4", "1:2"],
        help="THREADS:RING pairs: torch threads and capture ring size (= batch cap)",
    )
    ap.add_argument("--weights", default=None)
    ap.add_argument("--show", action="store_true", help="cv2.imshow too (needs a display)")
    ap.add_argument("--out", default=None)
    args = ap.parse_args(argv)
    show = args.show and display_available()
    frames = camera_frames(4.0)
    results = {}
    for case in args.cases:
        n, ring = (int(v) for v in case.split(":"))
        results[f"pulse, {n} torch thread{'s' if n > 1 else ''}, ring {ring}"] = run_case(
            frames, n, args.seconds, args.warmup, args.weights, show, ring
        )
    record = {
        "benchmark": "live",
        "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "machine": {
            "platform": platform.platform(),
            "cpu": cpu_model(),
            "cpu_count": os.cpu_count(),
            "load_average": list(os.getloadavg()),
            "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY"),
            "omp_num_threads": os.environ.get("OMP_NUM_THREADS"),
        },
        "versions": {
            "python": platform.python_version(),
            "torch": torch.__version__,
            "numpy": np.__version__,
            "cv2": cv2.__version__,
            "rtmag": rtmag.__version__,
        },
        "git_revision": git_revision(),
        "setup": {
            "size": list(SIZE),
            "camera_fps": FPS,
            "weights": args.weights or "random-init PulseNet, fixed gamma (same cost)",
            "display": "cv2.imshow" if show else "compose only (no window)",
            "seconds": args.seconds,
            "warmup": args.warmup,
        },
        "results": results,
        "not_run": {
            "respiration": "respiration: see bench/bench_e2e.py (its cost is the decimated ascent, not the live threads)"
        },
    }
    out = Path(args.out or f"bench/results/live-{dt.date.today().isoformat()}.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(record, indent=2) + "\n")
    print(
        "| case | fps shown | latency median (ms) | latency p95 (ms) | dropped | mean batch | ms/frame (process) | load avg before -> after |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for name, r in results.items():
        print(
            f"| {name} | {r['fps_shown']:.1f} | {r['latency_ms_median']:.0f} | {r['latency_ms_p95']:.0f} | "
            f"{r['dropped']} | {r['mean_batch']:.1f} | {r['process_ms_per_frame']:.0f} | "
            f"{r['load_average_before'][0]:.2f} -> {r['load_average_after'][0]:.2f} |"
        )
    print(f"respiration: not run ({record['not_run']['respiration']})")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
