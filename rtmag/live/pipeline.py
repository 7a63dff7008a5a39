"""The live pipeline: a capture thread and a processing thread around a Magnifier.

::

    source --CaptureThread--> RingBuffer --processing thread--> output RingBuffer --> you
                                            (Magnifier.push_many on every frame waiting,
                                             up to a cap: one ascent batch)

The caller (the display on the main thread, or the headless writer) takes
:class:`LiveFrame` items with :meth:`LivePipeline.get`. An exception in either worker
stops the pipeline and is raised again on the caller's thread by :meth:`get`,
:meth:`raise_if_failed` or on leaving the ``with`` block. :meth:`stop` joins every
thread within its timeout (2 s by default).

Vitals events: ``on_vitals(event)`` is called on the processing thread each time the
rate estimate is renewed (about once a second of stream), with the dict of
:func:`vitals_event`.

A live source (camera, the demo) uses the ``"live"`` ring policy: the oldest frames
are dropped when processing falls behind, and counted. A file uses ``"file"``:
back-pressure, nothing dropped.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from rtmag.live.capture import CaptureThread, Source
from rtmag.live.ring import RingBuffer
from rtmag.magnifier import MagnifiedFrame, Magnifier

#: Torch intra-op threads for the processing thread (see ``bench/bench_live.py``): on
#: this 2-core machine the capture and display threads need the other core.
DEFAULT_TORCH_THREADS = 1

#: Bounds of the magnification that the + and - keys reach.
MAGNIFICATION_RANGE = (1.0, 1000.0)


@dataclass
class LiveFrame:
    """One output of the pipeline.

    Attributes:
        frame: the magnified frame (``frame.image``), its original and the network's
            reading (``frame.signal``).
        vitals: ``{heart_rate_bpm, heart_rate_confidence}`` after this frame's batch.
        captured_wall: ``time.perf_counter()`` when the shown frame was captured.
        processed_wall: ``time.perf_counter()`` when its batch was done.
        batch_size: frames in the ascent batch that made it.
        dropped: frames dropped so far by the capture ring (live sources).
        magnification: the magnification in effect.
        gamma: the fixed step size in effect, or None (derived from magnification).
        align_latency_s: the alignment delay (``Magnifier.latency_s``).
        lock_s: how much older the magnification shown is (the phase lock,
            ``Magnifier.lock_delay_s``; 0 until the rate is read with confidence).
        event: the vitals event renewed by this frame's batch (:func:`vitals_event`),
            on the first frame of that batch; None on the others.
    """

    frame: MagnifiedFrame
    vitals: dict
    captured_wall: float
    processed_wall: float
    batch_size: int
    dropped: int
    magnification: float
    gamma: float | None
    align_latency_s: float
    event: dict | None = None
    lock_s: float = 0.0


def vitals_event(magnifier: Magnifier, dropped: int = 0) -> dict:
    """The magnifier's latest rate estimate as a JSON-ready dict.

    Keys: ``t`` (stream seconds of the sample that ended the estimate's window),
    ``wall_time`` (``time.time()`` when made), ``mode``, ``heart_rate_bpm`` and
    ``heart_rate_confidence`` (pulse mode), ``breathing_rate_bpm`` and
    ``breathing_rate_confidence`` (breaths/min, respiration mode), ``confidence`` (that
    of the mode's rate), ``window_s`` and ``dropped`` (frames dropped so far). A rate
    is None while unknown, and always for the source the mode does not measure.
    """
    cfg = magnifier.config
    event = {
        "t": magnifier.rates.updated_at,
        "wall_time": time.time(),
        "mode": cfg.mode,
        "heart_rate_bpm": None,
        "heart_rate_confidence": 0.0,
        "breathing_rate_bpm": None,
        "breathing_rate_confidence": 0.0,
    }
    event.update(magnifier.vitals())
    name = "heart_rate" if cfg.mode == "pulse" else "breathing_rate"
    event["confidence"] = float(event[f"{name}_confidence"])
    event["window_s"] = float(magnifier.rates.window_s)
    event["dropped"] = int(dropped)
    return event


class LivePipeline:
    """Capture + processing threads around one :class:`Magnifier`.

    Args:
        source: an opened :class:`~rtmag.live.capture.Source`.
        magnifier: a ready Magnifier, or a callable ``factory(fps) -> Magnifier`` that
            is called on the caller's thread in :meth:`start` (so a missing weight file
            raises there).
        ring_size: capacity of the capture ring (default 8 for a live source, 16 for
            a file).
        max_batch: the most frames per ascent batch (default: the ring size).
        pace: pace sources that no device paces at their fps.
        torch_threads: ``torch.set_num_threads`` for the processing (None: leave it).
        out_size: capacity of the output ring (default 4 live, 16 file).
        reconnect_attempts: reopen attempts for a lost camera.
        max_frames: end the stream after this many captured frames.
        on_vitals: called with each new vitals event (:func:`vitals_event`) on the
            processing thread; keep it short. An exception in it stops the pipeline
            and reaches the caller like any worker error.
    """

    def __init__(
        self,
        source: Source,
        magnifier: Magnifier | Callable[[float], Magnifier],
        ring_size: int | None = None,
        max_batch: int | None = None,
        pace: bool = True,
        torch_threads: int | None = DEFAULT_TORCH_THREADS,
        out_size: int | None = None,
        reconnect_attempts: int = 3,
        max_frames: int | None = None,
        on_vitals: Callable[[dict], None] | None = None,
    ):
        self.source = source
        self.on_vitals = on_vitals
        self._rates_at: float | None = None
        self._magnifier_arg = magnifier
        is_factory = callable(magnifier) and not hasattr(magnifier, "push_many")
        self.magnifier: Magnifier | None = None if is_factory else magnifier
        policy = "live" if source.live else "file"
        self.ring = RingBuffer(ring_size or (8 if source.live else 16), policy)
        self.out = RingBuffer(out_size or (4 if source.live else 16), policy)
        self.max_batch = int(max_batch or self.ring.capacity)
        self.pace = pace
        self.torch_threads = torch_threads
        self.stop_event = threading.Event()
        self.capture = CaptureThread(
            source,
            self.ring,
            self.stop_event,
            pace=pace,
            reconnect_attempts=reconnect_attempts,
            max_frames=max_frames,
        )
        self.processor = threading.Thread(
            target=self._process_main, name="rtmag-process", daemon=True
        )
        self.error: BaseException | None = None
        self._lock = threading.Lock()
        self._factor: float | None = None
        self._started = False
        self.frames_out = 0
        self.batches = 0
        self.process_seconds = 0.0

    # -- life cycle

    def start(self) -> LivePipeline:
        """Build the magnifier (if given a factory) and start both threads."""
        if self._started:
            raise RuntimeError("a LivePipeline can be started only once")
        if self.magnifier is None:
            self.magnifier = self._magnifier_arg(self.source.fps)
        if self.torch_threads:
            import torch

            torch.set_num_threads(int(self.torch_threads))
        self._started = True
        self.processor.start()
        self.capture.start()
        return self

    def stop(self, timeout: float = 2.0) -> list[str]:
        """Stop and join every thread within ``timeout`` seconds in all.

        Returns:
            The names of threads still alive after the timeout (empty when clean).
        """
        self.stop_event.set()
        self.ring.close()
        self.out.close()
        interrupt = getattr(self.source, "interrupt", None)
        if interrupt is not None:  # a source that blocks in read() (PushSource)
            interrupt()
        deadline = time.monotonic() + timeout
        alive = []
        for t in (self.capture, self.processor):
            if t.is_alive():
                t.join(max(0.0, deadline - time.monotonic()))
            if t.is_alive():
                alive.append(t.name)
        if not self.capture.is_alive():
            self.source.close()
        return alive

    def __enter__(self) -> LivePipeline:
        if not self._started:
            self.start()
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        self.stop()
        if exc_type is None:
            self.raise_if_failed()

    @property
    def threads(self) -> list[threading.Thread]:
        return [self.capture, self.processor]

    # -- errors

    def _failure(self) -> BaseException | None:
        return self.error or self.capture.error

    def raise_if_failed(self) -> None:
        """Raise the exception that ended a worker thread, if any, on this thread."""
        err = self._failure()
        if err is not None:
            raise err

    # -- output

    def get(self, timeout: float | None = None):
        """Take the next :class:`LiveFrame`.

        Returns:
            The frame; ``False`` if ``timeout`` passed first; ``None`` at the end of
            the stream.

        Raises:
            The exception that stopped a worker thread.
        """
        ok, item = self.out.get(timeout)
        if ok:
            return item
        self.raise_if_failed()
        return None if ok is None else False

    @property
    def dropped(self) -> int:
        """Frames dropped: by the capture ring, and outputs the consumer did not take."""
        return self.ring.dropped + self.out.dropped

    @property
    def end_reason(self) -> str:
        return self.capture.end_reason

    # -- controls (applied by the processing thread between batches)

    def scale_magnification(self, factor: float) -> None:
        """Multiply the magnification (or the fixed step size) by ``factor`` before
        the next batch; the filter state is kept, so the change is smooth."""
        with self._lock:
            self._factor = (self._factor or 1.0) * float(factor)

    def _apply_controls(self) -> None:
        with self._lock:
            factor, self._factor = self._factor, None
        if factor is None:
            return
        cfg = self.magnifier.config
        if cfg.gamma is not None:
            cfg.gamma = float(cfg.gamma) * factor
        else:
            lo, hi = MAGNIFICATION_RANGE
            new = min(max(cfg.magnification * factor, lo), hi)
            dataclasses.replace(cfg, magnification=new)  # validates
            cfg.magnification = new  # the analyser reads this very config per batch

    # -- processing thread

    def _emit(self, outs, batch_size: int, walls: dict) -> None:
        mag = self.magnifier
        vitals = mag.vitals()
        event = None
        renewed = getattr(getattr(mag, "rates", None), "updated_at", None)  # None: stand-ins
        if renewed is not None and renewed != self._rates_at:
            self._rates_at = renewed
            event = vitals_event(mag, self.ring.dropped)
            if self.on_vitals is not None:
                self.on_vitals(event)
        now = time.perf_counter()
        cfg = mag.config
        for o in outs:
            wall, pts, cap_index = walls.pop(o.index, (now, None, None))
            o.extra["pts"] = pts
            o.extra["capture_index"] = cap_index
            item = LiveFrame(
                frame=o,
                vitals=vitals,
                captured_wall=wall,
                processed_wall=now,
                batch_size=batch_size,
                dropped=self.ring.dropped,
                magnification=cfg.magnification,
                gamma=cfg.gamma,
                align_latency_s=mag.latency_s,
                event=event,
                lock_s=getattr(mag, "lock_delay_s", 0.0),
            )
            event = None
            while not self.out.put(item, timeout=0.1):
                if self.stop_event.is_set() or self.out.closed:
                    return
            self.frames_out += 1

    def _process_main(self) -> None:
        try:
            self._process()
        except BaseException as exc:  # re-raised on the caller's thread
            self.error = exc
            self.stop_event.set()
            self.ring.close()
        finally:
            self.out.close()

    def _process(self) -> None:
        mag = self.magnifier
        walls: dict[int, tuple] = {}
        self._pushed = mag._index  # the magnifier numbers frames from its own start
        while not self.stop_event.is_set():
            self._apply_controls()
            batch = self.ring.get_batch(self.max_batch, timeout=0.1)
            if batch is None:  # end of stream
                if self.capture.error is None and not self.stop_event.is_set():
                    self._emit(mag.flush(), 0, walls)
                return
            if not batch:
                continue
            t0 = time.perf_counter()
            for i, c in enumerate(batch):  # the magnifier numbers the frames it is given
                walls[self._pushed + i] = (c.wall, c.pts, c.index)
            self._pushed += len(batch)
            outs = mag.push_many([c.image for c in batch], [c.time_s for c in batch])
            self.process_seconds += time.perf_counter() - t0
            self.batches += 1
            self._emit(outs, len(batch), walls)
