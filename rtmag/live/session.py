"""Live magnification for applications: one object that owns the threads.

::

    with rtmag.LiveMagnifier("synthetic", on_vitals=print) as live:
        for item in live.frames():          # LiveFrame: .frame.image, .frame.original
            show(item.frame.image)

:class:`LiveMagnifier` wraps a :class:`~rtmag.live.pipeline.LivePipeline` (capture and
processing threads) and adds a dispatch thread that calls your callbacks in stream
order and feeds the iterators :meth:`LiveMagnifier.frames` and
:meth:`LiveMagnifier.events`. Callbacks run on that dispatch thread, never on the
processing thread, so a slow callback delays the output, not the ascent.

Errors: an exception in a worker thread or in a callback stops everything and is
raised on the caller's thread by the iterators, :meth:`LiveMagnifier.wait`,
:meth:`LiveMagnifier.raise_if_failed` and on leaving the ``with`` block.
:meth:`LiveMagnifier.stop` may be called from any thread, a callback included, and
more than once.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator

from rtmag.errors import UserError
from rtmag.live.capture import IteratorSource, PushSource, Source, open_source
from rtmag.live.pipeline import DEFAULT_TORCH_THREADS, LiveFrame, LivePipeline
from rtmag.live.ring import RingBuffer

#: ``source="synthetic"``: the demo's person (task D) at this size, 72 bpm.
SYNTHETIC_SIZE = (320, 240)
EVENT_BUFFER = 1024


def synthetic_frames(
    fps: float = 30.0, size: tuple[int, int] = SYNTHETIC_SIZE, heart_rate: float = 72.0
) -> Iterator:
    """Endless frames of ``rtmag demo``'s synthetic person (task D: head motion over a
    pulse), an hour per seed."""
    from rtmag.synth import SynthConfig, iter_render

    seed = 7
    while True:
        cfg = SynthConfig(
            task="D",
            seconds=3600.0,
            fps=fps,
            size=tuple(size),
            seed=seed,
            heart_rate_bpm=heart_rate,
            pulse_amplitude=0.006,
        )
        for frame, _ideal, _truth in iter_render(cfg):
            yield frame
        seed += 1


def make_source(source, fps: float | None = None) -> Source:
    """An opened :class:`Source` from what :class:`LiveMagnifier` accepts.

    ``"synthetic"`` (the demo's person, endless), ``"push"`` (a :class:`PushSource`),
    a camera index or URL or file path (as ``--source``), a :class:`Source`, or an
    iterable of RGB frames or ``(frame, t)`` pairs (a live stream at ``fps``).
    """
    if isinstance(source, Source):
        return source
    if isinstance(source, str) and source == "synthetic":
        src = IteratorSource(
            synthetic_frames(fps or 30.0), fps=fps or 30.0, description="synthetic person (task D)"
        )
        src.open()
        return src
    if isinstance(source, str) and source == "push":
        return PushSource(fps=fps or 30.0)
    if isinstance(source, int | str) or hasattr(source, "__fspath__"):
        return open_source(source if isinstance(source, int) else str(source), fps=fps)
    if hasattr(source, "__iter__"):
        src = IteratorSource(source, fps=fps or 30.0, live=True, description="frames")
        src.open()
        return src
    raise UserError(
        f"source {source!r} is not usable: give 'synthetic', 'push', a camera index, a "
        "URL, a video file, a rtmag.live.capture.Source or an iterable of RGB frames"
    )


class LiveMagnifier:
    """Magnify a live source in background threads; frames and vitals come back by
    callback or iterator.

    Args:
        source: see :func:`make_source` (default ``"synthetic"``: no camera needed).
        config: the magnifier's settings (:class:`rtmag.MagnifierConfig`); its ``fps``
            is replaced by the source's nominal rate.
        on_frame: ``f(LiveFrame)`` for every magnified frame, in order.
        on_vitals: ``f(dict)`` for every renewed rate estimate (about 1/s; keys in
            :func:`rtmag.live.pipeline.vitals_event`).
        net, meta: a frozen network (and its metadata) instead of the weight file.
        fps: nominal frame rate for sources that report none (camera, push, iterable).
        pace: deliver file and synthetic frames at their own rate (False: as fast as
            the processing takes them).
        torch_threads: torch threads of the processing thread (None: leave as is).
        buffer: frames :meth:`frames` holds for a slow reader; a live source drops the
            oldest beyond that; a file source without ``on_frame`` waits instead.
        max_frames: end the stream after this many frames.

    Attributes:
        source: the opened source (``live.source.push(frame, t)`` for ``"push"``).
        latest_vitals: the last vitals event, or None.
    """

    def __init__(
        self,
        source="synthetic",
        config=None,
        *,
        on_frame: Callable[[LiveFrame], None] | None = None,
        on_vitals: Callable[[dict], None] | None = None,
        net=None,
        meta: dict | None = None,
        fps: float | None = None,
        pace: bool = True,
        torch_threads: int | None = DEFAULT_TORCH_THREADS,
        buffer: int = 4,
        max_frames: int | None = None,
    ):
        import dataclasses

        from rtmag.magnifier import Magnifier, MagnifierConfig

        for name, fn in (("on_frame", on_frame), ("on_vitals", on_vitals)):
            if fn is not None and not callable(fn):
                raise UserError(f"{name} must be a callable, got {type(fn).__name__}")
        if int(buffer) < 1:
            raise UserError(f"buffer must be at least 1 frame, got {buffer}")
        self.source = make_source(source, fps)
        try:
            cfg = dataclasses.replace(config or MagnifierConfig(), fps=self.source.fps)
            self.magnifier = Magnifier(cfg, net=net, meta=meta)
        except BaseException:
            self.source.close()
            raise
        self.on_frame = on_frame
        self.on_vitals = on_vitals
        self._events_in = RingBuffer(EVENT_BUFFER, "live")
        self.pipeline = LivePipeline(
            self.source,
            self.magnifier,
            pace=pace,
            torch_threads=torch_threads,
            max_frames=max_frames,
            on_vitals=self._events_in.put,
        )
        wait = not self.source.live and on_frame is None
        self._frames_out = RingBuffer(int(buffer), "file" if wait else "live")
        self._events_out = RingBuffer(EVENT_BUFFER, "live")
        self._dispatcher = threading.Thread(
            target=self._dispatch_main, name="rtmag-dispatch", daemon=True
        )
        self._stop = threading.Event()
        self._error: BaseException | None = None
        self._started = False
        self.latest_vitals: dict | None = None

    # -- life cycle

    def start(self) -> LiveMagnifier:
        """Start the capture, processing and dispatch threads (once)."""
        if self._started:
            raise UserError("a LiveMagnifier can be started only once; make a new one")
        self._started = True
        self.pipeline.start()
        self._dispatcher.start()
        return self

    def stop(self, timeout: float = 2.0) -> list[str]:
        """Stop every thread, from any thread; safe to repeat.

        Returns:
            Names of threads still alive after ``timeout`` seconds (empty when clean).
        """
        self._stop.set()
        alive = self.pipeline.stop(timeout)
        self._frames_out.close()
        self._events_out.close()
        me = threading.current_thread()
        if self._dispatcher.is_alive() and self._dispatcher is not me:
            self._dispatcher.join(timeout)
            if self._dispatcher.is_alive():
                alive.append(self._dispatcher.name)
        return alive

    @property
    def running(self) -> bool:
        """True while the stream goes on (started, not stopped, not failed, not ended)."""
        return self._started and self._dispatcher.is_alive()

    def wait(self, timeout: float | None = None) -> bool:
        """Wait for the end of the stream; True if it ended within ``timeout``.

        Raises:
            The exception that stopped a worker thread or a callback.
        """
        self._dispatcher.join(timeout)
        self.raise_if_failed()
        return not self._dispatcher.is_alive()

    def __enter__(self) -> LiveMagnifier:
        if not self._started:
            self.start()
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        self.stop()
        if exc_type is None:
            self.raise_if_failed()

    # -- errors

    @property
    def error(self) -> BaseException | None:
        """The exception that stopped the stream, or None."""
        return self._error or self.pipeline._failure()

    def raise_if_failed(self) -> None:
        """Raise, on this thread, the exception that stopped the stream, if any."""
        err = self.error
        if err is not None:
            raise err

    # -- output

    def frames(self, timeout: float | None = None) -> Iterator[LiveFrame]:
        """Iterate over magnified frames until the stream ends or :meth:`stop`.

        Args:
            timeout: the longest wait for one frame in seconds (None: no limit);
                ``TimeoutError`` when it passes.
        """
        return self._iterate(self._frames_out, timeout, "frame")

    def events(self, timeout: float | None = None) -> Iterator[dict]:
        """Iterate over vitals events (dicts) until the stream ends or :meth:`stop`."""
        return self._iterate(self._events_out, timeout, "vitals event")

    def _iterate(self, ring: RingBuffer, timeout: float | None, what: str):
        if not self._started:
            self.start()
        while True:
            ok, item = ring.get(timeout)
            if ok:
                yield item
            elif ok is None:
                self.raise_if_failed()
                return
            else:
                self.raise_if_failed()
                raise TimeoutError(f"no {what} within {timeout} s")

    # -- dispatch thread

    def _deliver_events(self) -> None:
        batch = self._events_in.get_batch(EVENT_BUFFER, timeout=0)
        for event in batch or ():
            self.latest_vitals = event
            self._events_out.put(event)
            if self.on_vitals is not None:
                self.on_vitals(event)

    def _dispatch_main(self) -> None:
        try:
            while not self._stop.is_set():
                item = self.pipeline.get(timeout=0.05)
                self._deliver_events()
                if item is None:
                    break
                if item is False:
                    continue
                if self.on_frame is not None:
                    self.on_frame(item)
                while not self._frames_out.put(item, timeout=0.1):
                    if self._stop.is_set() or self._frames_out.closed:
                        return
            self._deliver_events()
        except BaseException as exc:  # re-raised on the caller's thread
            if self.pipeline._failure() is None:
                self._error = exc
            self._stop.set()
            self.pipeline.stop(timeout=0.5)
        finally:
            self._frames_out.close()
            self._events_out.close()
