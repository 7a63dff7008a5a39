"""``rtmag magnify IN -o OUT``: magnify a video file."""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import sys

from rtmag.commands.common import quiet_threads
from rtmag.vitals import RELIABLE_CONFIDENCE


def add_magnifier_arguments(p) -> None:
    """Options shared by every command that builds a Magnifier."""
    p.add_argument(
        "--mode",
        default="pulse",
        choices=["pulse", "respiration"],
        help="source to magnify: pulse (skin colour) or respiration (body motion)",
    )
    p.add_argument(
        "--magnification",
        "-a",
        type=float,
        default=None,
        help="in-band gain of the source: of the pulse on skin (default 20) or of the "
        "breathing displacement (default 10)",
    )
    p.add_argument(
        "--gamma",
        type=float,
        default=None,
        help="fixed ascent step size in units of X (overrides --magnification)",
    )
    p.add_argument("--iterations", "-n", type=int, default=20, help="ascent iterations N")
    p.add_argument(
        "--band",
        type=float,
        nargs=2,
        metavar=("LOW", "HIGH"),
        default=None,
        help="band-pass in Hz (pulse default 0.7 2.5, respiration 0.16 0.5; an infant "
        "breathes faster: about 0.4 3)",
    )
    p.add_argument(
        "--decimate",
        type=int,
        default=None,
        metavar="K",
        help="respiration: run the ascent on every K-th frame (default: pairs at about "
        "7.5 Hz, K=4 at 30 fps)",
    )
    p.add_argument(
        "--focus",
        type=float,
        default=None,
        metavar="Q",
        help="keep the step where the network looks: scale each element's change by "
        "min(1, attention / (0.4 x its 99th percentile))^Q (pulse default 2, respiration "
        "0; 0 = the paper's ascent as it is)",
    )
    p.add_argument(
        "--noise-match",
        type=float,
        default=None,
        metavar="B",
        help="size each element's change by its own noise (pulse) or motion "
        "(respiration), raised at most B times, so the gain is the same on dark and "
        "bright skin, small and large breaths (pulse default 4, respiration 2; 1 = off)",
    )
    p.add_argument(
        "--smooth",
        type=float,
        default=None,
        metavar="SIGMA",
        help="pulse: smooth the colour change over the 36x36 grid with a Gaussian of SIGMA "
        "elements, cancelling the ascent's element-to-element noise (default 1.5; 0 = "
        "the paper's per-element change)",
    )
    p.add_argument(
        "--colour-axis",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="pulse: keep the colour change along the one colour the whole change moves "
        "in, dropping the noise across it as far as that colour is clear (about 2 dB "
        "nearer the ideal on synthetic clips at the same gain; default on)",
    )
    p.add_argument(
        "--phase-lock",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="live and --causal paths: show each frame with the magnification of up to one "
        "period earlier, so that at the rate read the causal band-pass's phase is undone "
        "(no latency; default on)",
    )
    p.add_argument(
        "--workers",
        type=int,
        default=None,
        metavar="N",
        help="threads the ascent's batch is split over, torch then running "
        "cores/N threads each (magnify: default min(cores, 4); webcam, demo: 1)",
    )
    p.add_argument("--engine", default="auto", help="where the ascent runs (rtmag env lists)")
    p.add_argument("--weights", default=None, help="weight file (default: the shipped one)")
    p.add_argument("--batch", type=int, default=32, help="frames per ascent batch")
    p.add_argument(
        "--region",
        default="frame",
        choices=["frame", "face"],
        help="representation from the whole frame (the paper; the default, and nearer the"
        " ideal on every synthetic task) or a tracked face box (on a turning head it can"
        " lose the pulse)",
    )


def auto_workers() -> int:
    """``rtmag magnify``'s default ``--workers``: one per core, at most 4."""
    return max(1, min(os.cpu_count() or 1, 4))


def use_workers(workers: int) -> None:
    """Give each of ``workers`` ascent threads its share of the cores: torch's
    intra-op threads become cores // workers (at least 1), so that the threads do not
    oversubscribe the cores (on 2 cores, 2 workers x 2 torch threads would be 4)."""
    if workers > 1:
        import torch

        torch.set_num_threads(max(1, (os.cpu_count() or 1) // workers))


def magnifier_config(args, fps: float = 30.0):
    from rtmag.magnifier import MagnifierConfig

    return MagnifierConfig(
        mode=args.mode,
        magnification=args.magnification,
        gamma=args.gamma,
        n_iter=args.iterations,
        band=None if args.band is None else tuple(args.band),
        engine=args.engine,
        weights=args.weights,
        max_batch=args.batch,
        fps=fps,
        align=getattr(args, "align", False),
        region=args.region,
        decimate=args.decimate,
        focus=getattr(args, "focus", None),
        noise_match=getattr(args, "noise_match", None),
        smooth=getattr(args, "smooth", None),
        colour_axis=getattr(args, "colour_axis", None),
        phase_lock=getattr(args, "phase_lock", None),
        workers=getattr(args, "workers", None) or 1,
    )


def add_arguments(p) -> None:
    p.add_argument("input", help="input video (anything PyAV/FFmpeg reads)")
    p.add_argument("-o", "--output", required=True, help="output video (.mp4: H.264)")
    p.add_argument(
        "--method",
        default="deepmag",
        choices=["deepmag", "evm", "vam", "phase", "vam-motion"],
        help="DeepMag (default) or a baseline: evm (Wu et al. 2012, colour), "
        "vam (Zhang et al. 2017, colour), phase (Wadhwa et al. 2013, motion), "
        "vam-motion (Zhang et al. 2017 on pyramid phase, motion)",
    )
    add_magnifier_arguments(p)
    g = p.add_argument_group("baselines (--method evm|vam|phase|vam-motion)")
    g.add_argument(
        "--alpha",
        type=float,
        default=None,
        help="amplification; in-band gain is 1 + alpha (default: --magnification - 1)",
    )
    g.add_argument(
        "--level", type=int, default=4, help="evm, vam: Gaussian pyramid level (default 4)"
    )
    g.add_argument(
        "--chrom-attenuation",
        type=float,
        default=1.0,
        help="factor on the I, Q (chrominance) amplification, 0..1 (default 1)",
    )
    g.add_argument(
        "--temporal-filter",
        default="ideal",
        choices=["ideal", "butter"],
        help="evm, phase offline: ideal FFT band-pass or zero-phase Butterworth "
        "(--causal: causal Butterworth)",
    )
    g.add_argument(
        "--scales",
        type=int,
        default=None,
        help="phase, vam-motion: steerable pyramid scales (default: all the frame allows)",
    )
    g.add_argument(
        "--sigma",
        type=float,
        default=2.0,
        help="phase, vam-motion: amplitude-weighted phase smoothing in band pixels (default 2)",
    )
    p.add_argument(
        "--causal",
        action="store_true",
        help="causal filter: exactly what the live path shows (default: zero-phase)",
    )
    p.add_argument(
        "--align",
        action="store_true",
        help="with --causal: delay frames so that the magnified change is in phase with them",
    )
    p.add_argument("--report", default=None, metavar="FILE.json", help="write a JSON report")
    p.add_argument(
        "--lossless",
        action="store_true",
        help="lossless output (RGB H.264 qp 0; large files, fewer players)",
    )
    p.add_argument("--force", action="store_true", help="overwrite OUTPUT if it exists")
    p.add_argument("--quiet", action="store_true", help="no progress bar")


def run(args) -> int:
    quiet_threads()
    from tqdm import tqdm

    from rtmag.errors import UserError
    from rtmag.process import magnify_file
    from rtmag.video import probe

    if args.align and not args.causal:
        raise UserError("--align only applies with --causal (the zero-phase filter has no delay)")
    if pathlib.Path(args.output).exists() and not args.force:
        raise UserError(f"{args.output} exists; pass --force to overwrite it")
    if args.method != "deepmag":
        if args.mode != "pulse" and args.method in ("evm", "vam"):
            raise UserError(
                f"--method {args.method} magnifies colour (pulse); for respiration use "
                "--method deepmag, phase or vam-motion"
            )
        return _run_baseline(args)
    info = probe(args.input)
    if args.workers is None:
        args.workers = auto_workers()
    use_workers(args.workers)
    config = magnifier_config(args, fps=float(info.fps))
    with tqdm(total=info.frames, unit="frame", desc="magnifying", disable=args.quiet) as bar:
        result = magnify_file(
            args.input,
            args.output,
            config,
            causal=args.causal,
            overwrite=args.force,
            progress=bar.update,
            lossless=args.lossless,
        )
    rep = _report(args, result)
    print(
        f"wrote {args.output}: {rep['frames']} frames at {rep['fps']:.2f} fps, "
        f"{rep['codec']}, {rep['seconds']:.1f} s ({rep['frames_per_second_processed']:.1f} "
        f"frames/s)"
    )
    print(rate_line(rep))
    _print_notes(rep)
    return 0


UNRELIABLE_BELOW = RELIABLE_CONFIDENCE  # below it, noise could have made the reading


def rate_line(rep: dict) -> str:
    """``heart rate: 72.0 bpm (confidence 0.80)`` or the breathing rate, from a report;
    a rate whose confidence is under :data:`UNRELIABLE_BELOW` is marked unreliable."""
    key, what, unit = ("breathing_rate", "breathing rate", "breaths/min")
    if rep.get("mode", "pulse") == "pulse":
        key, what, unit = ("heart_rate", "heart rate", "bpm")
    rate = rep.get(f"{key}_bpm")
    conf = float(rep.get(f"{key}_confidence") or 0.0)
    text = "unknown" if rate is None else f"{rate:.1f} {unit}"
    line = f"{what}: {text} (confidence {conf:.2f})"
    if rate is not None and conf < UNRELIABLE_BELOW:
        line += (
            f": unreliable (under {UNRELIABLE_BELOW}; a longer clip or a stiller subject "
            "gives a steadier reading)"
        )
    return line


def _report(args, result) -> dict:
    """The run's report, written to ``--report`` when asked."""
    rep = result.report()
    if args.report:
        pathlib.Path(args.report).write_text(json.dumps(rep, indent=2) + "\n")
    return rep


def _print_notes(rep: dict) -> None:
    for note in rep["notes"]:
        print(f"note: {note}", file=sys.stderr)


def _run_baseline(args) -> int:
    """``--method evm|vam|phase|vam-motion``: the baselines (rtmag.baselines)."""
    from tqdm import tqdm

    from rtmag.baselines.file import magnify_file_with_method
    from rtmag.errors import UserError
    from rtmag.video import probe

    if args.align:
        raise UserError("--align applies to DeepMag only")
    from rtmag.magnifier import DEFAULT_BANDS, DEFAULT_MAGNIFICATION

    magnification = args.magnification or DEFAULT_MAGNIFICATION[args.mode]
    alpha = magnification - 1.0 if args.alpha is None else args.alpha
    band = DEFAULT_BANDS[args.mode] if args.band is None else tuple(args.band)
    kwargs = dict(band=band, alpha=alpha)
    if args.method in ("evm", "vam"):
        kwargs.update(level=args.level, chrom_attenuation=args.chrom_attenuation)
    else:
        kwargs.update(num_scales=args.scales, sigma=args.sigma)
    if args.method in ("evm", "phase"):
        kwargs["filter"] = args.temporal_filter
    info = probe(args.input)
    with tqdm(total=info.frames, unit="frame", desc=args.method, disable=args.quiet) as bar:
        result = magnify_file_with_method(
            args.input,
            args.output,
            args.method,
            causal=args.causal,
            overwrite=args.force,
            progress=bar.update,
            lossless=args.lossless,
            **kwargs,
        )
    rep = _report(args, result)
    print(
        f"wrote {args.output}: {rep['frames']} frames at {rep['fps']:.2f} fps, "
        f"{args.method} alpha {alpha:g}, {rep['codec']}, {rep['seconds']:.1f} s"
    )
    _print_notes(rep)
    return 0
