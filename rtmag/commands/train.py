"""``rtmag train``: train a network on synthetic clips (runs outside CI; hours)."""

from __future__ import annotations

from rtmag.commands.common import parse_size


def add_arguments(p):
    from rtmag.train import MODES, RESPIRATION_DEFAULTS, TrainConfig

    d = TrainConfig()
    r = RESPIRATION_DEFAULTS

    def both(name):
        return f"pulse {getattr(d, name)}, respiration {r.get(name, getattr(d, name))}"

    p.add_argument("--mode", default="pulse", choices=MODES, help="source to learn")
    p.add_argument("--clips", type=int, help=f"training clips ({both('clips')})")
    p.add_argument("--val-clips", type=int, help=f"held-out validation clips ({both('val_clips')})")
    p.add_argument("--seconds", type=float, help=f"clip length in s ({both('seconds')})")
    p.add_argument(
        "--fps",
        type=float,
        help=f"clip frame rate; for respiration the rate of frame pairs ({both('fps')})",
    )
    p.add_argument(
        "--render-size",
        type=parse_size,
        help="WxH the clips are rendered at (pulse 160x120, respiration 320x240)",
    )
    p.add_argument(
        "--crops",
        type=int,
        help=f"views per clip: whole frame + head crops ({both('crops_per_clip')})",
    )
    p.add_argument("--epochs", type=int, help=f"passes over the data ({both('epochs')})")
    p.add_argument("--batch", type=int, help=f"minibatch ({both('batch')})")
    p.add_argument("--lr", type=float, help=f"peak learning rate ({both('lr')})")
    p.add_argument(
        "--max-minutes", type=float, default=None, help="stop training after this many minutes"
    )
    p.add_argument(
        "--curriculum-epochs",
        type=int,
        help="first epochs on easy clips only (still or slow, strong source;"
        f" {both('curriculum_epochs')})",
    )
    p.add_argument(
        "--amplitude",
        type=float,
        nargs=2,
        metavar=("LO", "HI"),
        help="source amplitude of training clips, drawn log-uniformly: pulse relative"
        f" reflectance (default {d.pulse_amplitude[0]} {d.pulse_amplitude[1]}), respiration"
        f" chest pixels at 480 rows ({d.breathing_amplitude[0]} {d.breathing_amplitude[1]})",
    )
    p.add_argument(
        "--init",
        metavar="WEIGHTS",
        help="fine-tune: start from this weight file of the same mode instead of a random"
        " network (a file is written only if an epoch beats it on validation; calibrate"
        " the result with `rtmag quality --calibrate`)",
    )
    p.add_argument("--seed", type=int, default=d.seed)
    p.add_argument("--workers", type=int, default=d.workers, help="rendering processes")
    p.add_argument("--out", help="weight file to write (rtmag/weights/pulse.pt or respiration.pt)")


def run(args) -> int:
    from rtmag.train import TrainConfig, train

    cfg = TrainConfig.for_mode(
        args.mode,
        clips=args.clips,
        val_clips=args.val_clips,
        seconds=args.seconds,
        fps=args.fps,
        render_size=args.render_size,
        crops_per_clip=args.crops,
        epochs=args.epochs,
        batch=args.batch,
        lr=args.lr,
        curriculum_epochs=args.curriculum_epochs,
        **{
            ("pulse_amplitude" if args.mode == "pulse" else "breathing_amplitude"): (
                tuple(args.amplitude) if args.amplitude else None
            )
        },
        init=args.init,
        max_minutes=args.max_minutes,
        seed=args.seed,
        workers=args.workers,
        out=args.out,
    )
    train(cfg)
    return 0
