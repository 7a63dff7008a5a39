"""``rtmag synth``: render a synthetic physiology clip with ground truth to a folder."""

from __future__ import annotations

import argparse

from rtmag.errors import UserError


def parse_size(text: str) -> tuple[int, int]:
    """Parse ``WxH`` (e.g. ``640x480``) into ``(W, H)``."""
    try:
        w, h = text.lower().split("x")
        return int(w), int(h)
    except ValueError:
        raise UserError(f"--size {text!r}: use WIDTHxHEIGHT, e.g. 640x480") from None


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--task",
        default="A",
        help="motion task A (still), B (10 deg/s sweep), "
        "C (30 deg/s), D (random re-orientation each second); default A",
    )
    parser.add_argument("--mode", default="pulse", help="source of the ideal: pulse or respiration")
    parser.add_argument("--seconds", type=float, default=10.0, help="length in seconds (10)")
    parser.add_argument("--fps", type=float, default=30.0, help="frames per second (30)")
    parser.add_argument("--size", default="640x480", help="WIDTHxHEIGHT (640x480)")
    parser.add_argument(
        "--alpha",
        type=float,
        default=1.0,
        help="magnification of the source in ideal.mp4 (1: same as input)",
    )
    parser.add_argument("--seed", type=int, default=0, help="random seed (0)")
    parser.add_argument("--out", required=True, help="output folder")
    parser.add_argument("--skin-tone", type=int, default=None, help="Fitzpatrick type 1..6")
    parser.add_argument("--background", default=None, help="plain or patterned (task default)")
    parser.add_argument("--heart-rate", type=float, default=None, help="mean bpm, 42-150")
    parser.add_argument("--breathing-rate", type=float, default=None, help="breaths/min, 8-30")
    parser.add_argument(
        "--pulse-amplitude",
        type=float,
        default=None,
        help="relative peak-to-peak skin reflectance change (e.g. 0.006)",
    )
    parser.add_argument(
        "--sensor-noise",
        type=float,
        default=1.75,
        help="sensor noise std in grey levels at 640x480 (1.75)",
    )
    parser.add_argument("--talking", action="store_true", help="the person talks")
    parser.add_argument("--flicker", action="store_true", help="aliased mains flicker of the light")
    parser.add_argument("--glasses", action="store_true", help="the person wears glasses")
    parser.add_argument("--no-specular", action="store_true", help="no specular highlights")
    parser.add_argument(
        "--compress",
        type=int,
        default=None,
        help="pass both clips through libx264 yuv420p at this CRF (0-51)",
    )
    parser.add_argument("--force", action="store_true", help="overwrite an existing clip")


def run(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from rtmag.synth import ClipWriter, SynthConfig, clip_meta, iter_render, resolve_config

    cfg = resolve_config(
        SynthConfig(
            task=args.task.upper(),
            mode=args.mode,
            seconds=args.seconds,
            fps=args.fps,
            size=parse_size(args.size),
            alpha=args.alpha,
            seed=args.seed,
            heart_rate_bpm=args.heart_rate,
            breathing_rate_bpm=args.breathing_rate,
            pulse_amplitude=args.pulse_amplitude,
            skin_tone=args.skin_tone,
            background=args.background,
            glasses=args.glasses,
            talking=args.talking,
            flicker=args.flicker,
            specular=not args.no_specular,
            sensor_noise=args.sensor_noise,
            compress=args.compress,
        )
    )
    meta = clip_meta(cfg)
    with ClipWriter(args.out, meta, force=args.force) as writer:
        for frame, ideal, truth in tqdm(
            iter_render(cfg), total=cfg.n_frames, unit="frame", desc="rtmag synth"
        ):
            writer.write(frame, ideal, truth)
        out = writer.close()
    print(
        f"wrote {out} ({cfg.n_frames} frames, {cfg.size[0]}x{cfg.size[1]}, task {cfg.task}, "
        f"{cfg.mode} x{cfg.alpha:g}): heart rate {meta['heart_rate_bpm']:.1f} bpm, "
        f"breathing {meta['breathing_rate_bpm']:.1f} breaths/min, skin tone {cfg.skin_tone}"
    )
    return 0
