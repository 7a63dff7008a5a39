"""``rtmag webcam``: live magnification from a camera, stream or file."""

from __future__ import annotations

import contextlib
import json
import os
import pathlib
import sys

from rtmag.commands.common import quiet_threads
from rtmag.commands.magnify import add_magnifier_arguments, magnifier_config


def add_live_arguments(p) -> None:
    """Options of the live pipeline shared by ``webcam`` and ``demo``."""
    p.add_argument("--headless", action="store_true", help="no window: write --out instead")
    p.add_argument("--out", default=None, metavar="FILE.mp4", help="output video of --headless")
    p.add_argument(
        "--duration", type=float, default=None, metavar="S", help="stop after S seconds of stream"
    )
    p.add_argument(
        "--align",
        action="store_true",
        help="delay frames so that the magnified change is in phase with them",
    )
    p.add_argument(
        "--ring", type=int, default=None, help="capture ring size in frames (live 8, file 16)"
    )
    p.add_argument(
        "--threads",
        type=int,
        default=None,
        help="torch threads for the ascent (default 1: the capture and display threads need the other core)",
    )
    p.add_argument(
        "--snapshots", default=".", metavar="DIR", help="folder for s/r snapshots and recordings"
    )
    p.add_argument("--force", action="store_true", help="overwrite --out if it exists")
    p.add_argument(
        "--vitals-out",
        default=None,
        metavar="FILE|-",
        help="write each new rate estimate as a JSON line to FILE (- for stdout; the "
        "command's own messages then go to stderr)",
    )


def add_arguments(p) -> None:
    add_magnifier_arguments(p)
    p.add_argument(
        "--source",
        default="0",
        help="camera index (default 0), video file, or rtsp:// / http:// stream URL",
    )
    add_live_arguments(p)
    p.add_argument("--no-pace", action="store_true", help="read a file source as fast as possible")


class VitalsWriter:
    """Write vitals events as JSON lines (one object per line, flushed) to a file or
    stdout (``"-"``); the callable ``on_vitals`` of the live pipeline."""

    def __init__(self, target: str):
        self.target = target
        self.stream = sys.stdout if target == "-" else open(target, "w", encoding="utf-8")  # noqa: SIM115
        self.lines = 0

    def __call__(self, event: dict) -> None:
        self.stream.write(json.dumps(event, allow_nan=False) + "\n")
        self.stream.flush()
        self.lines += 1

    def close(self) -> None:
        if self.stream is not sys.stdout:
            self.stream.close()


def run_live(args, source, magnifier) -> int:
    """Run the live pipeline on ``source`` with a window or headless (shared with demo)."""
    target = getattr(args, "vitals_out", None)
    writer = VitalsWriter(target) if target else None
    try:
        if target == "-":  # stdout carries the JSON lines only
            with contextlib.redirect_stdout(sys.stderr):
                return _run_live(args, source, magnifier, writer)
        return _run_live(args, source, magnifier, writer)
    finally:
        if writer is not None:
            writer.close()


def _run_live(args, source, magnifier, on_vitals) -> int:
    from rtmag.live.pipeline import DEFAULT_TORCH_THREADS, LivePipeline

    pipeline = LivePipeline(
        source,
        magnifier,
        ring_size=args.ring,
        pace=not getattr(args, "no_pace", False),
        torch_threads=args.threads or DEFAULT_TORCH_THREADS,
        max_frames=None,
        on_vitals=on_vitals,
    )
    if magnifier.delay_frames:
        print(
            f"aligned: frames shown {magnifier.latency_s * 1000:.0f} ms late "
            "(the change in phase with them)"
        )
    try:
        return _run(args, source, magnifier, pipeline)
    finally:
        # stop() gives the threads 2 s; an ascent batch may take longer (respiration on
        # a slow CPU). Let it end here: a thread inside torch at interpreter exit aborts.
        if pipeline.processor.is_alive():
            pipeline.processor.join()


def _run(args, source, magnifier, pipeline) -> int:
    from rtmag.live.display import LiveWindow
    from rtmag.live.record import run_headless

    if args.headless:
        res = run_headless(pipeline, args.out, duration_s=args.duration, overwrite=args.force)
        from rtmag.commands.magnify import rate_line

        lat = sorted(res.latencies_s)
        # a file read without pacing queues behind the processing: no latency to speak of
        latency = (
            f", median latency {lat[len(lat) // 2] * 1000:.0f} ms" if lat and source.live else ""
        )
        print(
            f"wrote {res.output}: {res.frames} frames in {res.seconds:.1f} s, "
            f"{res.dropped} dropped{latency}"
        )
        rate = "heart_rate" if magnifier.config.mode == "pulse" else "breathing_rate"
        rep = {
            "mode": magnifier.config.mode,
            f"{rate}_bpm": res.heart_rate_bpm,
            f"{rate}_confidence": res.heart_rate_confidence,
        }
        print(rate_line(rep))
        if res.interrupted:
            print("stopped by Ctrl-C; the file is complete up to there", file=sys.stderr)
        if pipeline.capture.lost:
            print(f"note: {res.end_reason}; the file is complete up to there", file=sys.stderr)
        return 0
    window = LiveWindow(out_dir=args.snapshots)
    window.run(pipeline)
    if pipeline.capture.lost:
        print(f"note: {pipeline.end_reason}", file=sys.stderr)
    return 0


def run(args) -> int:
    quiet_threads()
    from rtmag.errors import UserError
    from rtmag.live.capture import open_source
    from rtmag.live.display import require_display
    from rtmag.magnifier import Magnifier

    if args.headless:
        if not args.out:
            raise UserError("--headless needs --out FILE.mp4 (where to write the magnified video)")
        if pathlib.Path(args.out).exists() and not args.force:
            raise UserError(f"{args.out} exists; pass --force to overwrite it")
    else:
        require_display()
        os.makedirs(args.snapshots, exist_ok=True)
    source = open_source(args.source)
    if args.headless and source.live and args.duration is None:
        print("note: no --duration; press Ctrl-C to stop (the file is finalised)", file=sys.stderr)
    try:
        magnifier = Magnifier(magnifier_config(args, fps=source.fps))
    except BaseException:
        source.close()
        raise
    return run_live(args, source, magnifier)
