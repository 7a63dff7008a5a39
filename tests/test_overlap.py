"""The decode-ahead and encode-behind threads of the file path (rtmag.overlap)."""

import threading
import time

import pytest

from rtmag.overlap import Prefetch, WriteBehind


def test_prefetch_keeps_order_and_reads_ahead_in_another_thread():
    where = []

    def source():
        for i in range(20):
            where.append(threading.current_thread().name)
            yield i

    with Prefetch(source(), depth=3, name="reader") as items:
        assert list(items) == list(range(20))
    assert set(where) == {"reader"}


def test_prefetch_raises_the_source_error_after_the_items_before_it():
    def source():
        yield 1
        yield 2
        raise ValueError("frame 3 is corrupt")

    got = []
    with pytest.raises(ValueError, match="frame 3 is corrupt"):
        with Prefetch(source()) as items:
            for v in items:
                got.append(v)
    assert got == [1, 2]


def test_prefetch_stops_its_thread_when_the_consumer_leaves_early():
    produced = []

    def endless():
        i = 0
        while True:
            produced.append(i)
            yield i
            i += 1

    p = Prefetch(endless(), depth=2)
    with p as items:
        for v in items:
            if v == 5:
                break
    assert not p._thread.is_alive()
    n = len(produced)
    time.sleep(0.3)
    assert len(produced) == n  # nothing read after the block ended
    assert n <= 5 + 1 + 2 + 1  # at most depth items (and one in hand) beyond the last used


def test_write_behind_writes_in_order_in_another_thread():
    written, where = [], set()

    def write(a, b):
        where.add(threading.current_thread().name)
        written.append((a, b))

    with WriteBehind(write, depth=2, name="writer") as w:
        for i in range(50):
            w.put(i, -i)
    assert written == [(i, -i) for i in range(50)]
    assert where == {"writer"}


def test_write_behind_reports_the_write_error_and_writes_nothing_after_it():
    written = []

    def write(i):
        if i == 3:
            raise OSError("disk full")
        written.append(i)

    w = WriteBehind(write, depth=64)
    for i in range(10):
        try:
            w.put(i)
        except OSError:
            break
    with pytest.raises(OSError, match="disk full"):
        w.close()
    assert written == [0, 1, 2]
    with pytest.raises(RuntimeError, match="after close"):
        w.put(11)


def test_write_behind_abort_on_the_callers_error_drops_the_rest_quietly():
    written = []
    started, gate = threading.Event(), threading.Event()

    def write(i):
        written.append(i)
        started.set()
        gate.wait(5)  # the first write is still running when the caller fails

    threading.Timer(0.3, gate.set).start()
    with pytest.raises(KeyError):
        with WriteBehind(write, depth=64) as w:
            w.put(0)
            assert started.wait(5)
            for i in range(1, 10):
                w.put(i)
            raise KeyError("the caller failed")
    assert not w._thread.is_alive()
    assert written == [0]


def test_depth_must_be_positive():
    with pytest.raises(ValueError, match="depth"):
        Prefetch([], depth=0)
    with pytest.raises(ValueError, match="depth"):
        WriteBehind(print, depth=0)
