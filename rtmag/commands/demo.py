"""``rtmag demo``: the live pipeline on a built-in synthetic person (no camera needed).

The person's pulse (or, with ``--mode respiration``, their breathing) is hidden under
task-D head motion (a new head orientation once a second, paper section 4). With a display the live window opens; without one a short
clip is written to a file and the command says where.
"""

from __future__ import annotations

import os
import pathlib
import sys

from rtmag.commands.common import parse_size, quiet_threads
from rtmag.commands.magnify import add_magnifier_arguments, magnifier_config
from rtmag.commands.webcam import add_live_arguments, run_live

DEFAULT_OUT = "rtmag-demo.mp4"
HEADLESS_SECONDS = 10.0
DEMO_BREATHING_RATE = 15.0  # breaths/min


def add_arguments(p) -> None:
    add_magnifier_arguments(p)
    add_live_arguments(p)
    p.add_argument(
        "--size", type=parse_size, default=(320, 240), help="frame size WxH (default 320x240)"
    )
    p.add_argument("--heart-rate", type=float, default=72.0, help="the person's heart rate in bpm")
    p.add_argument("--seed", type=int, default=3, help="seed of the synthetic person (default 3)")
    p.set_defaults(no_pace=False)


def synthetic_source(
    size,
    heart_rate: float,
    seed: int,
    seconds: float,
    fps: float = 30.0,
    live: bool = True,
    mode: str = "pulse",
):
    """The demo's source: a person rendered frame by frame (task D, patterned
    background), with a faint pulse, and breathing that moves the shoulders by about
    a pixel (640x480 scale)."""
    from rtmag.live.capture import IteratorSource
    from rtmag.synth import SynthConfig, iter_render

    cfg = SynthConfig(
        task="D",
        seconds=seconds,
        fps=fps,
        size=tuple(size),
        seed=seed,
        heart_rate_bpm=heart_rate,
        pulse_amplitude=0.006,
        breathing_rate_bpm=DEMO_BREATHING_RATE,
        breathing_amplitude_px=1.2,
        mode=mode,
    )

    def frames():
        for frame, _ideal, _truth in iter_render(cfg):
            yield frame

    src = IteratorSource(frames(), fps=fps, live=live, description="synthetic person (task D)")
    src.open()
    return src


def run(args) -> int:
    quiet_threads()
    from rtmag.errors import UserError
    from rtmag.live.display import display_available
    from rtmag.magnifier import Magnifier

    headless = args.headless or not display_available()
    say = sys.stderr if args.vitals_out == "-" else sys.stdout  # stdout: JSON lines only
    if headless:
        if not args.headless:
            print(
                "no display found (DISPLAY/WAYLAND_DISPLAY unset): writing a clip instead of opening a window",
                file=say,
            )
        if args.out is None:  # the demo's own file is replaced on every run
            args.out, args.force = DEFAULT_OUT, True
        elif pathlib.Path(args.out).exists() and not args.force:
            raise UserError(f"{args.out} exists; pass --force to overwrite it")
        args.headless = True
        seconds = args.duration or HEADLESS_SECONDS
        args.duration = seconds
        args.no_pace = True  # a clip: render as fast as the CPU allows, drop nothing
        source = synthetic_source(
            args.size, args.heart_rate, args.seed, seconds + 1, live=False, mode=args.mode
        )
    else:
        os.makedirs(args.snapshots, exist_ok=True)
        source = synthetic_source(
            args.size, args.heart_rate, args.seed, args.duration or 3600.0, mode=args.mode
        )
    try:
        magnifier = Magnifier(magnifier_config(args, fps=source.fps))
    except BaseException:
        source.close()
        raise
    code = run_live(args, source, magnifier)
    if headless:
        truth = (
            f"{args.heart_rate:.1f} bpm"
            if args.mode == "pulse"
            else f"{DEMO_BREATHING_RATE:.1f} breaths/min"
        )
        print(f"the synthetic person's rate: {truth} (its mean; it drifts a little)", file=say)
        print(
            f"demo clip: {os.path.abspath(args.out)} (magnified frames; open it with any video player)",
            file=say,
        )
    return code
