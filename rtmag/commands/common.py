"""Small helpers shared by the subcommands."""

from __future__ import annotations

import argparse
import os


def parse_size(text: str) -> tuple[int, int]:
    """``"640x480"`` -> ``(640, 480)`` (width, height), for argparse."""
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"size must look like 640x480, got {text!r}") from None
    if w < 1 or h < 1:
        raise argparse.ArgumentTypeError(f"size must be positive, got {text!r}")
    return w, h


def quiet_threads() -> None:
    """Keep torch's idle OpenMP threads from spinning on the cores others need.

    With one core busy elsewhere, torch on two threads ran 17 times slower here until
    ``OMP_WAIT_POLICY=PASSIVE`` was set; it only takes effect before torch starts its
    thread pool, so the CLI sets it before importing torch.
    """
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
