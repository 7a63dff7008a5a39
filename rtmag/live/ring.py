"""A bounded, thread-safe ring buffer between a producer and a consumer thread.

Two policies (DESIGN.md, STYLE.md 6):

* ``"live"`` (a camera): :meth:`RingBuffer.put` never blocks. When the buffer is full
  the oldest item is dropped to make room and counted in :attr:`RingBuffer.dropped`:
  a live view wants the newest frames, not a growing backlog.
* ``"file"`` (a video file): :meth:`RingBuffer.put` blocks while the buffer is full
  (back-pressure on the producer); nothing is ever dropped.

The consumer takes every item waiting, up to a cap, with :meth:`RingBuffer.get_batch`
(one ascent batch). :meth:`RingBuffer.close` marks the end of the stream: the consumer
still gets what is left, then ``None`` (the end-of-stream sentinel).
"""

from __future__ import annotations

import collections
import threading
import time

POLICIES = ("live", "file")


class RingBuffer:
    """Bounded FIFO of at most ``capacity`` items.

    Args:
        capacity: the most items held at once (>= 1).
        policy: ``"live"`` (drop the oldest when full, never block) or ``"file"``
            (block the producer when full, drop nothing).

    Attributes:
        dropped: number of items dropped so far (always 0 with ``"file"``).
        high_water: the largest number of items held at once so far.
        put_count: number of items accepted by :meth:`put`.
    """

    def __init__(self, capacity: int, policy: str = "live"):
        if int(capacity) < 1:
            raise ValueError(f"capacity must be >= 1, got {capacity}")
        if policy not in POLICIES:
            raise ValueError(f"unknown policy {policy!r}; known: {', '.join(POLICIES)}")
        self.capacity = int(capacity)
        self.policy = policy
        self._items: collections.deque = collections.deque()
        self._lock = threading.Lock()
        self._not_empty = threading.Condition(self._lock)
        self._not_full = threading.Condition(self._lock)
        self._closed = False
        self.dropped = 0
        self.high_water = 0
        self.put_count = 0

    def __len__(self) -> int:
        with self._lock:
            return len(self._items)

    @property
    def closed(self) -> bool:
        return self._closed

    def put(self, item, timeout: float | None = None) -> bool:
        """Add ``item``.

        With ``"live"`` this never waits. With ``"file"`` it waits while the buffer is
        full, at most ``timeout`` seconds (``None``: until there is room or the buffer
        is closed).

        Returns:
            True if the item was added; False if the buffer is closed or, with
            ``"file"``, ``timeout`` passed with the buffer still full.
        """
        with self._lock:
            if self._closed:
                return False
            if len(self._items) >= self.capacity:
                if self.policy == "live":
                    self._items.popleft()
                    self.dropped += 1
                else:
                    deadline = None if timeout is None else time.monotonic() + timeout
                    while len(self._items) >= self.capacity and not self._closed:
                        left = None if deadline is None else deadline - time.monotonic()
                        if left is not None and left <= 0:
                            return False
                        self._not_full.wait(left)
                    if self._closed:
                        return False
            self._items.append(item)
            self.put_count += 1
            self.high_water = max(self.high_water, len(self._items))
            self._not_empty.notify()
            return True

    def get_batch(self, max_n: int, timeout: float | None = None) -> list | None:
        """Take every item waiting, oldest first, at most ``max_n``.

        Waits up to ``timeout`` seconds (``None``: without limit) for the first item.

        Returns:
            A list of 1..``max_n`` items; ``[]`` if ``timeout`` passed with nothing
            waiting; ``None`` once the buffer is closed and empty (end of stream).
        """
        if max_n < 1:
            raise ValueError(f"max_n must be >= 1, got {max_n}")
        with self._lock:
            deadline = None if timeout is None else time.monotonic() + timeout
            while not self._items and not self._closed:
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    return []
                self._not_empty.wait(left)
            if not self._items:
                return None
            n = min(max_n, len(self._items))
            batch = [self._items.popleft() for _ in range(n)]
            self._not_full.notify_all()
            return batch

    def get(self, timeout: float | None = None):
        """Take one item, waiting up to ``timeout`` seconds.

        Returns:
            ``(True, item)``, ``(False, None)`` on timeout, or ``(None, None)`` at the
            end of the stream.
        """
        batch = self.get_batch(1, timeout)
        if batch is None:
            return None, None
        if not batch:
            return False, None
        return True, batch[0]

    def close(self) -> None:
        """End of stream: wake every waiter; later puts are refused. Safe to repeat."""
        with self._lock:
            self._closed = True
            self._not_empty.notify_all()
            self._not_full.notify_all()

    def clear(self) -> int:
        """Drop everything waiting (not counted as dropped); returns how many."""
        with self._lock:
            n = len(self._items)
            self._items.clear()
            self._not_full.notify_all()
            return n
