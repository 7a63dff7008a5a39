"""Overlap decoding and encoding with the ascent: two small worker threads.

The file path's stages take turns on one thread otherwise: decoding a batch, the
ascent, rendering, encoding. Decoding and encoding (FFmpeg) and the network passes
(torch) release the GIL, so a reader thread that decodes the next batch and a writer
thread that encodes the last one run beside the ascent on the other core.

* :class:`Prefetch` iterates a source in a thread, a few items ahead.
* :class:`WriteBehind` calls a write function in a thread, in order.

Both hand an exception from their thread to the caller (at its next item, put or
close), and stop their thread when the ``with`` block ends, whichever way it ends.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterable, Iterator

__all__ = ["Prefetch", "WriteBehind"]

_POLL_S = 0.1


class Prefetch:
    """``for item in Prefetch(source)``: ``source`` is iterated in a daemon thread, at
    most ``depth`` items ahead of the consumer.

    An exception raised by ``source`` is raised by the consumer's loop, after the items
    produced before it. Use as a context manager: leaving the block (also early, by
    ``break`` or an exception) stops the thread and waits for it, so whatever the
    source reads from (an open video) can be closed right after.
    """

    def __init__(self, source: Iterable, depth: int = 2, name: str = "rtmag-prefetch"):
        if depth < 1:
            raise ValueError(f"depth must be >= 1, got {depth}")
        self._queue: queue.Queue = queue.Queue(maxsize=depth)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(source,), name=name, daemon=True)
        self._thread.start()

    def _run(self, source: Iterable) -> None:
        try:
            for item in source:
                if not self._put(("item", item)):
                    return
            self._put(("end", None))
        except BaseException as exc:  # handed to the consumer, raised there
            self._put(("error", exc))

    def _put(self, message) -> bool:
        while not self._stop.is_set():
            try:
                self._queue.put(message, timeout=_POLL_S)
                return True
            except queue.Full:
                continue
        return False

    def __iter__(self) -> Iterator:
        while True:
            kind, value = self._queue.get()
            if kind == "item":
                yield value
            elif kind == "end":
                return
            else:
                raise value

    def close(self) -> None:
        """Stop the thread (it finishes the item it is reading) and wait for it."""
        self._stop.set()
        self._thread.join()

    def __enter__(self) -> Prefetch:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class WriteBehind:
    """``put(*args)`` queues ``write(*args)`` for a daemon thread that calls it in order.

    ``close()`` waits until everything queued is written and raises the first
    exception ``write`` raised; ``put`` raises it too once it happened (nothing more
    is written after it). Use as a context manager: a normal exit closes, an exit by
    exception stops the thread without writing the rest (the caller's own error
    handling, e.g. :meth:`rtmag.video.VideoWriter.abort`, then cleans up).
    """

    def __init__(self, write: Callable, depth: int = 16, name: str = "rtmag-write"):
        if depth < 1:
            raise ValueError(f"depth must be >= 1, got {depth}")
        self._write = write
        self._queue: queue.Queue = queue.Queue(maxsize=depth)
        self._error: BaseException | None = None
        self._abandon = threading.Event()
        self._closed = False
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while True:
            args = self._queue.get()
            if args is None:
                return
            if self._error is not None or self._abandon.is_set():
                continue  # drain: nothing is written after an error or an abort
            try:
                self._write(*args)
            except BaseException as exc:
                self._error = exc

    def _raise(self) -> None:
        if self._error is not None:
            raise self._error

    def put(self, *args) -> None:
        """Queue one ``write(*args)`` (blocks while ``depth`` writes are waiting)."""
        if self._closed:
            raise RuntimeError("put() after close()")
        self._raise()
        while True:
            try:
                self._queue.put(args, timeout=_POLL_S)
                return
            except queue.Full:
                self._raise()
                if not self._thread.is_alive():
                    raise RuntimeError("the writer thread stopped") from None

    def _finish(self) -> None:
        if not self._closed:
            self._closed = True
            self._queue.put(None)
            self._thread.join()

    def close(self) -> None:
        """Write everything queued, stop the thread, raise the write's error if any."""
        self._finish()
        self._raise()

    def abort(self) -> None:
        """Stop the thread without writing what is still queued; raises nothing."""
        self._abandon.set()
        self._finish()

    def __enter__(self) -> WriteBehind:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()
