"""Magnify a video file with a baseline: ``rtmag magnify --method evm|vam|phase|vam-motion``.

Reads and writes as :func:`rtmag.process.magnify_file` does (``VideoReader``,
``VideoWriter``: the input's size, frame count, timestamps and audio; atomic rename).

* offline (default): two passes. The first decodes the file and keeps only the
  Gaussian-pyramid stack (``T x H/2^level x W/2^level x 3`` float64: 1/256 of the
  frames' pixels at level 4, times 8 bytes, e.g. 8.5 MB for 291 frames of 528x592); the
  whole-clip temporal filter runs on it; the second pass decodes again and renders.
  Memory grows with the clip only through that stack.
  The phase methods keep the phases of every pyramid coefficient instead (about
  ``5.3 H W`` float32 values a frame), and refuse a clip that would exceed their
  ``max_memory_gb`` before decoding it (:meth:`PhaseMagnifier.check_offline_memory`).
* causal (``causal=True``): one pass through the method's streaming ``push``; memory
  independent of the clip's length.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from rtmag.errors import VideoError
from rtmag.process import _batches, mirror_writer

__all__ = ["BaselineResult", "magnify_file_with_method"]


@dataclass
class BaselineResult:
    """What :func:`magnify_file_with_method` did; ``report()`` is ``--report``'s JSON."""

    input: str
    output: str
    frames: int
    fps: float
    settings: dict
    seconds: float
    codec: str
    notes: list = field(default_factory=list)

    def report(self) -> dict:
        s = self.settings
        return {
            "input": self.input,
            "output": self.output,
            "method": s["method"],
            "mode": "pulse",
            "heart_rate_bpm": None,
            "heart_rate_confidence": 0.0,
            "frames": self.frames,
            "fps": self.fps,
            "magnification": 1.0 + s["alpha"],
            "alpha": s["alpha"],
            "level": s.get("level"),
            "chrom_attenuation": s.get("chrom_attenuation"),
            "num_scales": s.get("num_scales"),
            "sigma": s.get("sigma"),
            "temporal_filter": s.get("filter", "dog"),
            "gamma": None,
            "iterations": None,
            "band_hz": list(s["band_hz"]),
            "engine": None,
            "causal": s["causal"],
            "align": False,
            "seconds": self.seconds,
            "frames_per_second_processed": self.frames / self.seconds if self.seconds else None,
            "codec": self.codec,
            "notes": list(self.notes),
        }


def magnify_file_with_method(
    src: str,
    dst: str,
    name: str = "evm",
    causal: bool = False,
    overwrite: bool = False,
    progress: Callable[[float], None] | None = None,
    lossless: bool = False,
    batch: int = 32,
    **kwargs,
) -> BaselineResult:
    """Magnify ``src`` into ``dst`` with the baseline ``name`` (:func:`create_method`).

    Args:
        src, dst, overwrite, progress, lossless: as :func:`rtmag.process.magnify_file`.
        name: registered baseline (``"evm"``, ``"vam"``, ``"phase"``, ``"vam-motion"``).
        causal: the causal streaming form instead of the offline whole-clip filter.
        batch: frames decoded and rendered at a time.
        **kwargs: the method's settings (``band``, ``alpha``, ``level``,
            ``chrom_attenuation``...); ``fps`` is the file's.

    Raises:
        UserError: unknown method or bad setting; VideoError: unreadable ``src``,
        existing ``dst``.
    """
    from rtmag.baselines import create_method
    from rtmag.video import VideoReader, probe

    info = probe(src)
    method = create_method(name, fps=float(info.fps), causal=causal, **kwargs)
    if not causal and hasattr(method, "check_offline_memory"):
        method.check_offline_memory(int(info.frames or 0), (int(info.height), int(info.width)))
    t0 = time.perf_counter()
    writer = mirror_writer(src, dst, info, overwrite=overwrite, lossless=lossless)
    n = 0
    with writer:
        if causal:
            method.reset()
            with VideoReader(src) as reader:
                for b in _batches(reader, batch):
                    out = method.push(np.stack([fr.image for fr in b]))
                    for fr, img in zip(b, out):
                        writer.write(img, pts=fr.pts)
                    n += len(b)
                    if progress:
                        progress(len(b))
        else:
            stacks = []
            with VideoReader(src) as reader:
                for b in _batches(reader, batch):
                    stacks.append(method.stack(np.stack([fr.image for fr in b])))
                    n += len(b)
                    if progress:
                        progress(len(b) / 2)
            filtered = method.filter_offline(np.concatenate(stacks))
            del stacks
            with VideoReader(src) as reader:
                for b in _batches(reader, batch):
                    i0 = b[0].index
                    if i0 + len(b) > len(filtered):
                        raise VideoError(
                            f"{src}: the second decode gave more frames than the first"
                        )
                    out = method.render(
                        np.stack([fr.image for fr in b]), filtered[i0 : i0 + len(b)]
                    )
                    for fr, img in zip(b, out):
                        writer.write(img, pts=fr.pts)
                    if progress:
                        progress(len(b) / 2)
    if n == 0:
        raise VideoError(f"{src}: no frames decoded; nothing to magnify")
    return BaselineResult(
        input=str(src),
        output=str(dst),
        frames=n,
        fps=float(info.fps),
        settings=method.settings(),
        seconds=time.perf_counter() - t0,
        codec=writer.codec_name,
        notes=list(writer.notes),
    )
