"""What every benchmark records about the run: the git revision and the CPU model."""

from __future__ import annotations

import platform
import subprocess
from pathlib import Path

_REPO = Path(__file__).resolve().parent.parent


def git_revision() -> str:
    """Short HEAD, with ``+dirty`` when rtmag/, kernels/ or bench/ have changes."""
    try:
        out = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            timeout=5,
            cwd=_REPO,
        )
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--", "rtmag", "kernels", "bench"],
            capture_output=True,
            text=True,
            timeout=5,
            cwd=_REPO,
        ).stdout.strip()
        return (out.stdout.strip() or "unknown") + ("+dirty" if dirty else "")
    except Exception:  # no git: not worth failing a benchmark
        return "unknown"


def cpu_model() -> str:
    """The CPU's model name (``/proc/cpuinfo``), else ``platform.processor()``."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


def load_average() -> list[float]:
    """The 1-, 5- and 15-minute load averages (``os.getloadavg``); NaNs where unknown."""
    import os

    try:
        return [float(v) for v in os.getloadavg()]
    except OSError:
        return [float("nan")] * 3


def under_load(loads, threads: int) -> bool:
    """Whether a 1-minute load in ``loads`` left fewer than ``threads`` cores free:
    numbers taken then include waiting for a core (same rule as bench_engines)."""
    import os

    cores = os.cpu_count() or 1
    return any(v > 0.5 + cores - threads for v in loads if v == v)
