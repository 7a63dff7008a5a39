"""Writing the magnified stream to a file: the ``r`` key and ``--headless``.

:class:`Recorder` wraps :class:`rtmag.video.VideoWriter` (H.264, atomic rename): a file
source keeps its own timestamps and audio, so a headless run of a file writes what
``rtmag magnify --causal`` writes; other sources are stamped in milliseconds of stream
time. :func:`run_headless` drains a :class:`~rtmag.live.pipeline.LivePipeline` into a
Recorder, and finalises the file on Ctrl-C.
"""

from __future__ import annotations

import signal
import threading
import time
from dataclasses import dataclass, field
from fractions import Fraction

MS = Fraction(1, 1000)


class Recorder:
    """Record magnified frames (no overlays) of one stream.

    Args:
        path: output file (``.mp4``: H.264).
        source: the pipeline's source (its ``fps``, ``time_base`` and ``path``).
        overwrite: replace an existing file.
        keep_timestamps: use the file source's own pts and copy its audio (True for
            headless runs of a file); otherwise pts are milliseconds since the first
            recorded frame.
    """

    def __init__(self, path, source, overwrite: bool = False, keep_timestamps: bool = False):
        from rtmag.video import VideoWriter

        self.path = str(path)
        self.keep = bool(keep_timestamps and source.time_base is not None)
        kwargs = {}
        if self.keep:
            kwargs = {"time_base": source.time_base, "audio_from": source.path}
        else:
            kwargs = {"time_base": MS}
        self.writer = VideoWriter(path, fps=source.fps, codec="h264", overwrite=overwrite, **kwargs)
        self.frames = 0
        self._t0: float | None = None
        self._last_pts: int | None = None
        self.first_time_s: float | None = None
        self.last_time_s: float | None = None

    def write(self, magnified, pts: int | None = None) -> None:
        """Write one :class:`~rtmag.magnifier.MagnifiedFrame` (its ``image``)."""
        if self.keep:  # the file's own pts (None: one frame period on, as magnify does)
            p = None if pts is None else int(pts)
        else:
            if self._t0 is None:
                self._t0 = magnified.time_s
            p = int(round((magnified.time_s - self._t0) * 1000))
            if self._last_pts is not None and p <= self._last_pts:
                p = self._last_pts + 1
        self.writer.write(magnified.image, pts=p)
        if p is not None:
            self._last_pts = p
        self.frames += 1
        if self.first_time_s is None:
            self.first_time_s = magnified.time_s
        self.last_time_s = magnified.time_s

    def close(self) -> None:
        """Finish the file (rename it into place)."""
        self.writer.close()

    @property
    def notes(self) -> list[str]:
        return list(self.writer.notes)


def catch_sigint(flag: threading.Event):
    """On the main thread, turn Ctrl-C into ``flag`` (so it never lands inside an
    encoder call); returns the function that restores the previous handler."""
    if threading.current_thread() is not threading.main_thread():
        return lambda: None
    previous = signal.getsignal(signal.SIGINT)

    def handler(signum, frame):
        if flag.is_set():  # a second Ctrl-C: the old behaviour
            raise KeyboardInterrupt
        flag.set()

    signal.signal(signal.SIGINT, handler)
    return lambda: signal.signal(signal.SIGINT, previous)


@dataclass
class HeadlessResult:
    """What :func:`run_headless` did."""

    output: str
    frames: int
    seconds: float
    dropped: int
    interrupted: bool
    end_reason: str
    heart_rate_bpm: float | None  # the mode's rate (breaths/min for respiration)
    heart_rate_confidence: float
    latencies_s: list = field(default_factory=list)
    frames_out: list = field(default_factory=list)


def run_headless(
    pipeline,
    out_path,
    duration_s: float | None = None,
    overwrite: bool = False,
    keep_frames: bool = False,
) -> HeadlessResult:
    """Run ``pipeline`` to the end of its stream (or ``duration_s`` seconds of stream
    time) writing every magnified frame to ``out_path``.

    Ctrl-C stops the run cleanly: the file written so far is finalised.

    Args:
        pipeline: a :class:`~rtmag.live.pipeline.LivePipeline`, started or not.
        out_path: output video file.
        duration_s: stop after this much stream time (None: to the end).
        overwrite: replace an existing ``out_path``.
        keep_frames: also keep the :class:`~rtmag.magnifier.MagnifiedFrame` objects
            in ``HeadlessResult.frames_out`` (tests).

    Raises:
        The exception of a failed worker thread (the partial file is removed).
    """
    source = pipeline.source
    rec = None
    interrupted = False
    t_start = time.perf_counter()
    latencies = []
    kept = []
    last_vitals = {"heart_rate_bpm": None, "heart_rate_confidence": 0.0}
    ok = False
    stop_requested = threading.Event()
    restore = catch_sigint(stop_requested)
    try:
        if not pipeline._started:
            pipeline.start()
        rec = Recorder(out_path, source, overwrite=overwrite, keep_timestamps=True)
        t0 = None
        while not stop_requested.is_set():
            item = pipeline.get(timeout=0.5)
            if item is None:
                break
            if item is False:
                continue
            f = item.frame
            if t0 is None:
                t0 = f.time_s
            if duration_s is not None and f.time_s - t0 >= duration_s:
                break
            rec.write(f, pts=f.extra.get("pts"))
            latencies.append(time.perf_counter() - item.captured_wall)
            last_vitals = item.vitals
            if keep_frames:
                kept.append(f)
        ok = True
    except KeyboardInterrupt:
        interrupted = True
        ok = True
    finally:
        restore()
        interrupted = interrupted or stop_requested.is_set()
        pipeline.stop()
        if rec is not None:
            if ok and rec.frames:
                rec.close()
            else:
                rec.writer.abort()
    pipeline.raise_if_failed()
    return HeadlessResult(
        output=str(out_path),
        frames=rec.frames if rec else 0,
        seconds=time.perf_counter() - t_start,
        dropped=pipeline.dropped,
        interrupted=interrupted,
        end_reason=pipeline.end_reason,
        heart_rate_bpm=_rate(last_vitals, "bpm"),
        heart_rate_confidence=float(_rate(last_vitals, "confidence") or 0.0),
        latencies_s=latencies,
        frames_out=kept,
    )


def _rate(vitals: dict, what: str):
    """The heart rate's (or, in respiration mode, the breathing rate's) ``what``."""
    key = f"heart_rate_{what}"
    return vitals.get(key) if key in vitals else vitals.get(f"breathing_rate_{what}")
