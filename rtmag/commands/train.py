"""``rtmag train``: train a network on synthetic clips (runs outside CI; hours)."""

from __future__ import annotations

from rtmag.commands.common import parse_size


def add_arguments(p):
    from rtmag.train import TrainConfig

    d = TrainConfig()
    p.add_argument("--mode", default="pulse", choices=["pulse"], help="source to learn")
    p.add_argument("--clips", type=int, default=d.clips, help="training clips (%(default)s)")
    p.add_argument(
        "--val-clips", type=int, default=d.val_clips, help="held-out validation clips (%(default)s)"
    )
    p.add_argument("--seconds", type=float, default=d.seconds, help="clip length (s)")
    p.add_argument("--fps", type=float, default=d.fps, help="clip frame rate")
    p.add_argument(
        "--render-size",
        type=parse_size,
        default=d.render_size,
        help="WxH the clips are rendered at (default 160x120)",
    )
    p.add_argument(
        "--crops",
        type=int,
        default=d.crops_per_clip,
        help="views per clip: whole frame + head crops (%(default)s)",
    )
    p.add_argument("--epochs", type=int, default=d.epochs)
    p.add_argument("--batch", type=int, default=d.batch)
    p.add_argument("--lr", type=float, default=d.lr)
    p.add_argument(
        "--max-minutes", type=float, default=None, help="stop training after this many minutes"
    )
    p.add_argument("--seed", type=int, default=d.seed)
    p.add_argument("--workers", type=int, default=d.workers, help="rendering processes")
    p.add_argument("--out", default=d.out, help="weight file to write (%(default)s)")


def run(args) -> int:
    from rtmag.train import TrainConfig, train

    cfg = TrainConfig(
        mode=args.mode,
        clips=args.clips,
        val_clips=args.val_clips,
        seconds=args.seconds,
        fps=args.fps,
        render_size=args.render_size,
        crops_per_clip=args.crops,
        epochs=args.epochs,
        batch=args.batch,
        lr=args.lr,
        max_minutes=args.max_minutes,
        seed=args.seed,
        workers=args.workers,
        out=args.out,
    )
    train(cfg)
    return 0
