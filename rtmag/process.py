"""Magnify a video file: the engine behind ``rtmag magnify``.

Two ways through a file:

* causal (``causal=True``): every frame goes through :class:`rtmag.magnifier.Magnifier`
  in order, with the causal band-pass: exactly what the live path would show.
* offline (default): two passes. The first decodes the file, runs the ascent on every
  frame pair and keeps only the low-resolution changes ``X_N - X_1`` (36x36x3 per
  frame); the whole-clip zero-phase band-pass (the paper's filter) makes the log gain
  of every frame; the second pass decodes again and writes the magnified frames. No
  delay, no phase lag, memory independent of the clip's length.

Decoding runs a batch ahead and encoding behind, each in its own thread
(:mod:`rtmag.overlap`), beside the ascent. Both ways write through
:class:`rtmag.video.VideoWriter`: H.264 (or its stated fallback),
the input's size, frame count and timestamps, its audio copied, and an atomic rename
so that nothing half-written looks complete.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from rtmag.errors import VideoError
from rtmag.magnifier import Magnifier, MagnifierConfig
from rtmag.overlap import Prefetch, WriteBehind


@dataclass
class FileResult:
    """What :func:`magnify_file` did; ``report()`` is the JSON of ``--report``."""

    input: str
    output: str
    frames: int
    fps: float
    config: MagnifierConfig
    engine: str
    seconds: float
    causal: bool
    heart_rate_bpm: float | None  # the mode's rate: breaths/min for respiration
    heart_rate_confidence: float
    signal: np.ndarray
    codec: str
    notes: list = field(default_factory=list)
    decimate: int = 1

    def report(self) -> dict:
        rate = "heart_rate" if self.config.mode == "pulse" else "breathing_rate"
        return {
            "input": self.input,
            "output": self.output,
            "mode": self.config.mode,
            f"{rate}_bpm": self.heart_rate_bpm,
            f"{rate}_confidence": self.heart_rate_confidence,
            "frames": self.frames,
            "fps": self.fps,
            "magnification": self.config.magnification,
            "gamma": self.config.gamma,
            "iterations": self.config.n_iter,
            "band_hz": list(self.config.band),
            **({"decimate": self.decimate} if self.config.mode == "respiration" else {}),
            "engine": self.engine,
            "causal": self.causal,
            "align": self.config.align,
            "seconds": self.seconds,
            "frames_per_second_processed": self.frames / self.seconds if self.seconds else None,
            "codec": self.codec,
            "notes": list(self.notes),
        }


def mirror_writer(
    src, dst, info, overwrite: bool = False, lossless: bool = False, threads: int = 0
):
    """A :class:`rtmag.video.VideoWriter` for ``dst`` that keeps ``src``'s size, frame
    rate, timestamps (its time base) and audio: what every file path of rtmag writes.
    ``threads``: the encoder's (``magnify_file`` encodes behind in a thread of its own
    and asks for 1)."""
    from rtmag.video import VideoWriter

    return VideoWriter(
        dst,
        fps=info.fps,
        size=(info.width, info.height),
        codec="h264",
        time_base=info.time_base,
        audio_from=src,
        overwrite=overwrite,
        lossless=lossless,
        threads=threads,
    )


def _batches(reader, size: int):
    """Group decoded frames into lists of at most ``size`` (the last may be shorter)."""
    batch = []
    for fr in reader:
        batch.append(fr)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def magnify_file(
    src: str,
    dst: str,
    config: MagnifierConfig | None = None,
    causal: bool = False,
    overwrite: bool = False,
    progress: Callable[[int], None] | None = None,
    magnifier: Magnifier | None = None,
    lossless: bool = False,
) -> FileResult:
    """Magnify ``src`` into ``dst``.

    Args:
        src: any video PyAV reads.
        dst: output path (``.mp4``: H.264; see :class:`rtmag.video.VideoWriter`).
        config: magnifier settings; ``fps`` is replaced by the file's frame rate.
        causal: the live path's causal filter (True) or the zero-phase one (False).
        overwrite: replace an existing ``dst``.
        progress: called with the number of frames just done (e.g. ``tqdm.update``).
        magnifier: use this magnifier (its config wins) instead of building one.
        lossless: encode losslessly (RGB H.264 at qp 0, or FFV1) instead of H.264 crf 18.

    Returns:
        :class:`FileResult`, with the heart rate read from the whole clip.

    Raises:
        VideoError: ``src`` unreadable, corrupt or empty; ``dst`` exists.
    """
    import dataclasses

    from rtmag.video import probe
    from rtmag.vitals import estimate_rate

    info = probe(src)
    config = config or MagnifierConfig()
    if magnifier is None:
        config = dataclasses.replace(config, fps=float(info.fps))
        magnifier = Magnifier(config)
    config = magnifier.config
    t0 = time.perf_counter()
    signal: list[float] = []
    times: list[float] = []
    writer = mirror_writer(src, dst, info, overwrite=overwrite, lossless=lossless, threads=1)
    with writer:
        if causal:
            frames = _causal(magnifier, src, writer, signal, times, progress)
        else:
            frames = _offline(magnifier, src, writer, signal, times, progress)
    if frames == 0:
        raise VideoError(f"{src}: no frames decoded; nothing to magnify")
    seconds = time.perf_counter() - t0
    sig = np.asarray(signal, dtype=np.float64)
    rate_fs = magnifier.path.signal_rate
    est = (  # the network's output is a derivative (rtmag.train)
        estimate_rate(sig, rate_fs, config.band, t=np.asarray(times), derivative=True)
        if len(sig)
        else None
    )
    rate = None if est is None else est.rate_bpm
    return FileResult(
        input=str(src),
        output=str(dst),
        frames=frames,
        fps=float(info.fps),
        config=config,
        engine=config.engine,
        seconds=seconds,
        causal=causal,
        heart_rate_bpm=None if rate is None else float(rate),
        heart_rate_confidence=0.0 if est is None else float(est.confidence),
        signal=sig,
        codec=writer.codec_name,
        notes=list(writer.notes),
        decimate=int(getattr(magnifier.path, "k", 1)),
    )


def _decoded_batches(reader, size: int) -> Prefetch:
    """Batches of ``reader`` decoded one batch ahead in a thread (:mod:`rtmag.overlap`)."""
    return Prefetch(_batches(reader, size), depth=1, name="rtmag-decode")


def _causal(mag, src, writer, signal, times, progress) -> int:
    from rtmag.video import VideoReader

    n = 0
    pts_of: dict[int, int | None] = {}

    def write(outs):
        for o in outs:
            encoder.put(o.image, pts_of.pop(o.index))
            if np.isfinite(o.signal):
                signal.append(o.signal)
                times.append(o.time_s)

    with WriteBehind(writer.write, name="rtmag-encode") as encoder:
        with VideoReader(src) as reader, _decoded_batches(reader, mag.config.max_batch) as batches:
            for batch in batches:
                for fr in batch:
                    pts_of[fr.index] = fr.pts
                write(mag.push_many([fr.image for fr in batch], [fr.time_s for fr in batch]))
                n += len(batch)
                if progress:
                    progress(len(batch))
        write(mag.flush())
    return n


def _offline(mag, src, writer, signal, times, progress) -> int:
    from rtmag.video import VideoReader

    cfg = mag.config
    deltas, delta_times, frame_times, boxes = [], [], [], []
    n = 0
    with VideoReader(src) as reader, _decoded_batches(reader, cfg.max_batch) as batches:
        for batch in batches:
            images = np.stack([fr.image for fr in batch])
            tb = [fr.time_s for fr in batch]
            a = mag.analyse(images, tb)
            deltas.append(a.delta)
            delta_times.extend(tb[i] for i in a.at)
            frame_times.extend(tb)
            boxes.extend(a.boxes)
            signal.extend(a.y.tolist())
            times.extend(tb[i] for i in a.at)
            n += len(batch)
            if progress:
                progress(len(batch) / 2)
    if n == 0:
        return 0
    states = mag.path.offline(np.concatenate(deltas), delta_times, frame_times, writer.notes)
    with (
        WriteBehind(writer.write, name="rtmag-encode") as encoder,
        VideoReader(src) as reader,
        _decoded_batches(reader, cfg.max_batch) as batches,
    ):
        for batch in batches:
            idx = [fr.index for fr in batch]
            if idx[-1] >= n:
                raise VideoError(f"{src}: the second decode gave more frames than the first")
            images = mag.render(
                np.stack([fr.image for fr in batch]), states(idx), [boxes[i] for i in idx]
            )
            for fr, img in zip(batch, images):
                encoder.put(img, fr.pts)
            if progress:
                progress(len(batch) / 2)
    return n


def magnify_frames(
    frames: np.ndarray, magnifier: Magnifier, causal: bool = False
) -> tuple[np.ndarray, np.ndarray]:
    """Magnify a clip held in memory, ``(T, H, W, 3)`` uint8 -> same, plus the network's
    reading ``(T - 1,)``. The same computation as :func:`magnify_file` without files."""
    cfg = magnifier.config
    if causal:
        outs = []
        for i in range(0, len(frames), cfg.max_batch):
            outs += magnifier.push_many(list(frames[i : i + cfg.max_batch]))
        outs += magnifier.flush()
        sig = np.array([o.signal for o in outs if np.isfinite(o.signal)])
        return np.stack([o.image for o in outs]), sig
    deltas, ys, boxes, delta_times = [], [], [], []
    frame_times = np.arange(len(frames)) / cfg.fps
    for i in range(0, len(frames), cfg.max_batch):
        chunk = frames[i : i + cfg.max_batch]
        a = magnifier.analyse(chunk, frame_times[i : i + len(chunk)])
        deltas.append(a.delta)
        ys.append(a.y)
        boxes.extend(a.boxes)
        delta_times.extend(frame_times[i + a.at])
    states = magnifier.path.offline(np.concatenate(deltas), delta_times, frame_times, [])
    out = np.empty_like(frames)
    for i in range(0, len(frames), cfg.max_batch):
        j = np.arange(i, min(i + cfg.max_batch, len(frames)))
        out[j] = magnifier.render(frames[j], states(j), [boxes[k] for k in j])
    return out, np.concatenate(ys)
