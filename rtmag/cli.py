"""The ``rtmag`` command line.

Each subcommand lives in ``rtmag/commands/<name>.py`` and exposes
``add_arguments(parser)`` and ``run(args) -> int``. Modules are imported only when
their subcommand runs, so ``rtmag env`` works even when an optional part is broken.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from rtmag.errors import UserError

# name -> (module, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "demo": ("rtmag.commands.demo", "magnify a built-in synthetic person (no camera needed)"),
    "magnify": ("rtmag.commands.magnify", "magnify a video file"),
    "synth": ("rtmag.commands.synth", "render a synthetic physiology clip with ground truth"),
    "contact-sheet": ("rtmag.commands.contact_sheet", "picture of synthetic tasks A-D"),
    "train": ("rtmag.commands.train", "train a network on synthetic clips"),
    "quality": ("rtmag.commands.quality", "measure the pulse magnifier on synthetic clips"),
    "evaluate": ("rtmag.commands.evaluate", "the paper's evaluation: DeepMag vs the baselines"),
    "webcam": ("rtmag.commands.webcam", "magnify live from a camera, stream or file"),
    "env": ("rtmag.commands.env", "print versions, encoders, engines and weight files"),
}


def build_parser() -> argparse.ArgumentParser:
    from rtmag import __version__

    parser = argparse.ArgumentParser(
        prog="rtmag",
        description="Real-time source-specific video magnification of pulse and breathing.",
    )
    parser.add_argument("--version", action="version", version=f"rtmag {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (_module, help_text) in COMMANDS.items():
        sub.add_parser(name, help=help_text, description=help_text, add_help=False)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    if not argv or argv[0] not in COMMANDS:
        parser.parse_args(argv or ["--help"])  # prints help or an 'invalid choice' error
        return 2
    name = argv[0]
    module = importlib.import_module(COMMANDS[name][0])
    sub = argparse.ArgumentParser(prog=f"rtmag {name}", description=COMMANDS[name][1])
    module.add_arguments(sub)
    args = sub.parse_args(argv[1:])
    try:
        return int(module.run(args) or 0)
    except UserError as exc:
        print(f"rtmag {name}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"rtmag {name}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
