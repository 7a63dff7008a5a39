"""``rtmag evaluate``: the paper's Table 1/2 protocol on synthetic clips (rtmag.evaluate)."""

from __future__ import annotations

from rtmag.commands.common import parse_size, quiet_threads


def add_arguments(p) -> None:
    p.add_argument(
        "--mode",
        default="pulse",
        choices=["pulse", "respiration"],
        help="source: pulse (deepmag, evm, vam) or respiration (deepmag, phase, vam-motion)",
    )
    p.add_argument(
        "--quick",
        action="store_true",
        help="small version (1 clip per task, 8 s at 320x240: a few minutes)",
    )
    p.add_argument("--methods", default=None, help="comma-separated subset of the mode's methods")
    p.add_argument(
        "--target",
        type=float,
        default=None,
        help="gain every method is matched to on task A (default: pulse 20, respiration 10)",
    )
    p.add_argument("--per-task", type=int, default=None, help="clips per task (default 4)")
    p.add_argument("--match-clips", type=int, default=None, help="task-A clips for matching")
    p.add_argument("--seconds", type=float, default=None, help="clip length (default 10)")
    p.add_argument("--size", type=parse_size, default=None, help="clip size WxH (default 640x480)")
    p.add_argument("--rounds", type=int, default=None, help="matching rounds (default 2)")
    p.add_argument("--weights", default=None, help="DeepMag weight file (default: shipped)")
    p.add_argument("--engine", default="eager", help="DeepMag's ascent engine")
    p.add_argument("--workers", type=int, default=1, help="processes for the clips (cores)")
    p.add_argument(
        "--out",
        default="evaluate",
        help="folder for evaluate_<mode>.json, .md and the figures; --quick: "
        "evaluate_<mode>_quick.* (default %(default)s)",
    )
    p.add_argument("--no-figures", action="store_true", help="skip the figures")
    p.add_argument("--no-sweep", action="store_true", help="skip the step-size sweep (Table 2)")
    p.add_argument("--quiet", action="store_true", help="no progress bar or matching log")


def run(args) -> int:
    quiet_threads()
    import json
    import pathlib

    from tqdm import tqdm

    from rtmag.evaluate import TASKS, EvalConfig, evaluate, figures, markdown

    kw = {
        k: v
        for k, v in dict(
            per_task=args.per_task,
            match_clips=args.match_clips,
            seconds=args.seconds,
            size=args.size,
            rounds=args.rounds,
        ).items()
        if v is not None
    }
    kw.update(
        mode=args.mode,
        target=args.target,
        weights=args.weights,
        engine=args.engine,
        workers=args.workers,
        sweep=not args.no_sweep,
        methods=None if args.methods is None else tuple(m.strip() for m in args.methods.split(",")),
    )
    cfg = EvalConfig.quick(**kw) if args.quick else EvalConfig(**kw)
    log = (lambda _msg: None) if args.quiet else print
    out = pathlib.Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    with tqdm(
        total=cfg.per_task * len(TASKS), unit="clip", desc="evaluate", disable=args.quiet
    ) as bar:
        result = evaluate(cfg, log=log, progress=bar.update)
    md = markdown(result)
    name = cfg.mode + ("_quick" if args.quick else "")  # a quick run keeps the full one
    (out / f"evaluate_{name}.json").write_text(json.dumps(result, indent=1) + "\n")
    (out / f"evaluate_{name}.md").write_text(md + "\n")
    print(md)
    if not args.no_figures:
        figures(result, out, log=log, name=name)
    print(f"wrote {out / f'evaluate_{name}.json'} and .md ({result['seconds']:.0f} s)")
    return 0
