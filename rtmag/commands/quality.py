"""``rtmag quality``: measure (and calibrate) the pulse magnifier on held-out
synthetic clips whose ideal output is known."""

from __future__ import annotations

from rtmag.commands.common import parse_size, quiet_threads


def add_arguments(p) -> None:
    p.add_argument("--weights", default=None, help="weight file (default: the shipped one)")
    p.add_argument("--per-task", type=int, default=3, help="clips per task A-D")
    p.add_argument("--seconds", type=float, default=12.0, help="clip length")
    p.add_argument("--size", type=parse_size, default=(640, 480), help="clip size WxH")
    p.add_argument("--magnification", type=float, default=20.0)
    p.add_argument("--region", default="frame", choices=["frame", "face"])
    p.add_argument("--causal", action="store_true", help="the live path's causal filter")
    p.add_argument("--engine", default="auto")
    p.add_argument(
        "--calibrate",
        action="store_true",
        help="first fit --magnification's step-size constant on task-A clips "
        "and write it into the weight file",
    )
    p.add_argument("--json", default=None, help="write rows and summary to this JSON file")


def run(args) -> int:
    quiet_threads()
    import dataclasses
    import json

    from tqdm import tqdm

    from rtmag.magnifier import MagnifierConfig
    from rtmag.nets import default_weights_path, load_weights, save_weights
    from rtmag.quality import calibrate, markdown, measure_clip, quality_clips, summarise

    path = args.weights or str(default_weights_path("pulse"))
    net, meta = load_weights(path, mode="pulse")
    if args.calibrate:
        cal = [
            dataclasses.replace(c, seed=c.seed + 100)
            for c in quality_clips(4, 10.0, (320, 240), tasks="A")
        ]
        c = calibrate(net, meta, cal)
        meta = {
            **meta,
            "calibration": {
                "gamma_per_gain": c,
                "clips": "task A, 4 seeds, 320x240",
                "magnification": 11.0,
            },
        }
        save_weights(path, net, meta)
        print(f"calibrated: gamma_per_gain = {c:.4g}, written to {path}")
    mcfg = MagnifierConfig(magnification=args.magnification, region=args.region, engine=args.engine)
    rows = []
    for scfg in tqdm(quality_clips(args.per_task, args.seconds, args.size), unit="clip"):
        rows.append(measure_clip(scfg, mcfg, net, meta, causal=args.causal))
    summary = summarise(rows)
    print(markdown(summary))
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(
                {
                    "settings": {k: v for k, v in vars(args).items()},
                    "summary": summary,
                    "rows": rows,
                },
                fh,
                indent=1,
                default=str,
            )
    return 0
