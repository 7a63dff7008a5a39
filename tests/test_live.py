"""Tests of rtmag.live: ring buffer, capture thread, pipeline, headless run, window.

None needs the trained weights: the magnifier gets a frozen random-init PulseNet.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import threading
import time

import numpy as np
import pytest
import torch

import rtmag.nets
from rtmag.errors import UserError
from rtmag.live.capture import CameraError, CaptureThread, FileSource, IteratorSource, open_source
from rtmag.live.pipeline import LivePipeline
from rtmag.live.ring import RingBuffer
from rtmag.magnifier import Magnifier, MagnifierConfig

GAMMA = 0.5  # large enough that the random net visibly changes the frames (~10 levels)


def frozen_net(seed: int = 0):
    torch.manual_seed(seed)
    net = rtmag.nets.PulseNet().eval()
    for p in net.parameters():
        p.requires_grad_(False)
    return net


def make_magnifier(fps: float = 30.0, gamma: float = GAMMA, **kw) -> Magnifier:
    return Magnifier(MagnifierConfig(gamma=gamma, fps=fps, engine="auto", **kw), net=frozen_net())


def synthetic_frames(n: int, h: int = 48, w: int = 64, seed: int = 0) -> np.ndarray:
    """A noisy face-like patch with a 1.2 Hz colour change at 30 fps."""
    rng = np.random.default_rng(seed)
    base = rng.integers(60, 200, (1, h, w, 3)).astype(np.float64)
    pulse = 4 * np.sin(2 * np.pi * 1.2 * np.arange(n) / 30.0)[:, None, None, None]
    noise = rng.normal(0, 2, (n, h, w, 3))
    return np.clip(base + pulse * np.array([0.33, 0.77, 0.53]) + noise, 0, 255).astype(np.uint8)


# --------------------------------------------------------------------------- ring


def test_ring_live_policy_never_exceeds_bound_never_blocks_and_counts_drops():
    ring = RingBuffer(4, "live")
    t0 = time.perf_counter()
    for i in range(1000):
        assert ring.put(i)  # no consumer at all: must never block
        assert len(ring) <= 4
    assert time.perf_counter() - t0 < 1.0
    assert ring.high_water == 4
    assert ring.dropped == 996
    assert ring.get_batch(10, timeout=0) == [996, 997, 998, 999]  # newest kept, in order
    assert ring.get_batch(10, timeout=0.01) == []


def test_ring_live_policy_concurrent_producer_slow_consumer():
    ring = RingBuffer(3, "live")
    got = []
    done = threading.Event()

    def consume():
        while True:
            batch = ring.get_batch(2, timeout=1.0)
            if batch is None:
                break
            got.extend(batch)
            time.sleep(0.001)
        done.set()

    t = threading.Thread(target=consume)
    t.start()
    for i in range(3000):
        ring.put(i)
    ring.close()
    assert done.wait(2.0)
    t.join(1.0)
    assert ring.high_water <= 3
    assert ring.dropped + len(got) == 3000
    assert got == sorted(got)


def test_ring_file_policy_blocks_and_drops_nothing():
    ring = RingBuffer(2, "file")
    assert ring.put(0) and ring.put(1)
    t0 = time.perf_counter()
    assert not ring.put(2, timeout=0.05)  # full: back-pressure, then give up
    assert time.perf_counter() - t0 >= 0.04
    got = []

    def consume():
        while (batch := ring.get_batch(5, timeout=1.0)) is not None:
            got.extend(batch)

    t = threading.Thread(target=consume)
    t.start()
    for i in range(2, 500):
        assert ring.put(i, timeout=2.0)
        assert len(ring) <= 2
    ring.close()
    t.join(2.0)
    assert got == list(range(500))
    assert ring.dropped == 0


def test_ring_close_is_end_of_stream_after_the_rest():
    ring = RingBuffer(5, "file")
    ring.put("a")
    ring.close()
    assert not ring.put("b")
    assert ring.get_batch(3, timeout=0) == ["a"]
    assert ring.get_batch(3, timeout=0) is None


# --------------------------------------------------------------------------- capture


def test_no_camera_error_lists_what_was_tried():
    with pytest.raises(CameraError) as info:
        open_source("97")
    msg = str(info.value)
    assert "VideoCapture(97)" in msg and "/dev/video" in msg and "--source" in msg
    assert isinstance(info.value, UserError)


def test_unknown_source_names_the_choices(tmp_path):
    with pytest.raises(UserError, match="not a camera index, a URL or an existing file"):
        open_source(str(tmp_path / "nope.mp4"))


class FlakyCamera(IteratorSource):
    """A live source that stops delivering after a few frames and never comes back."""

    def __init__(self, n):
        super().__init__(list(synthetic_frames(n)), fps=30.0, live=True, description="camera 9")
        self.reopens = 0

    def reopen(self):
        self.reopens += 1
        return False


def test_lost_camera_reconnects_then_ends_cleanly():
    src = FlakyCamera(5)
    src.open()
    ring = RingBuffer(10, "live")
    cap = CaptureThread(
        src, ring, threading.Event(), pace=False, reconnect_attempts=3, reconnect_wait_s=0.01
    )
    cap.start()
    cap.join(2.0)
    assert not cap.is_alive() and cap.error is None
    assert src.reopens == 3 and cap.lost
    assert "3 attempts to reopen it failed" in cap.end_reason
    assert len(ring.get_batch(10, 0)) == 5 and ring.get_batch(10, 0) is None


def test_pacing_follows_the_frame_rate():
    src = IteratorSource(list(synthetic_frames(7)), fps=50.0, live=False)
    src.open()
    ring = RingBuffer(10, "file")
    cap = CaptureThread(src, ring, threading.Event(), pace=True)
    t0 = time.perf_counter()
    cap.start()
    cap.join(2.0)
    assert 0.10 <= time.perf_counter() - t0 < 1.0  # 6 frame periods of 20 ms
    walls = [c.wall for c in ring.get_batch(10, 0)]
    assert walls[-1] - walls[0] >= 0.11


# --------------------------------------------------------------------------- pipeline


def endless_frames(stop_after: int | None = None):
    frames = synthetic_frames(30)
    i = 0
    while stop_after is None or i < stop_after:
        yield frames[i % 30]
        i += 1


def test_stop_joins_every_thread_within_2s():
    src = IteratorSource(endless_frames(), fps=30.0, live=True)
    src.open()
    pipe = LivePipeline(src, make_magnifier(), pace=True)
    pipe.start()
    got = 0
    deadline = time.monotonic() + 10
    while got < 5 and time.monotonic() < deadline:
        if pipe.get(timeout=0.5):
            got += 1
    assert got == 5
    t0 = time.monotonic()
    alive = pipe.stop()
    assert alive == [] and time.monotonic() - t0 < 2.0
    assert not any(t.is_alive() for t in pipe.threads)


def test_stop_while_the_consumer_is_away_and_the_file_ring_is_full():
    src = IteratorSource(endless_frames(), fps=30.0, live=False)
    src.open()
    pipe = LivePipeline(src, make_magnifier(), pace=False, ring_size=2, out_size=2)
    pipe.start()
    time.sleep(0.3)  # nobody reads: capture and processing both block on full rings
    assert pipe.ring.dropped == 0 and len(pipe.ring) <= 2
    t0 = time.monotonic()
    assert pipe.stop() == [] and time.monotonic() - t0 < 2.0


def test_live_pipeline_drops_when_behind_and_never_exceeds_the_ring():
    class SlowMag:
        """A magnifier stand-in that takes 30 ms a batch."""

        def __init__(self):
            self.inner = make_magnifier()
            self.config, self._index = self.inner.config, 0
            self.latency_s = 0.0
            self.sizes = []

        def push_many(self, frames, times):
            time.sleep(0.03)
            self.sizes.append(len(frames))
            out = self.inner.push_many(frames, times)
            self._index = self.inner._index
            return out

        def vitals(self):
            return self.inner.vitals()

        def flush(self):
            return self.inner.flush()

    src = IteratorSource(endless_frames(400), fps=30.0, live=True)
    src.open()
    slow = SlowMag()
    pipe = LivePipeline(src, slow, pace=False, ring_size=4, max_batch=3)
    pipe.start()
    n = 0
    while (item := pipe.get(timeout=2.0)) is not None:
        n += 1 if item else 0
    pipe.stop()
    pipe.raise_if_failed()
    assert pipe.ring.high_water <= 4 and max(slow.sizes) <= 3
    assert pipe.ring.dropped > 0
    assert pipe.capture.frames == 400 and n + pipe.dropped == 400


def test_worker_exception_reaches_the_caller():
    frames = list(synthetic_frames(6))
    frames[4] = frames[4][..., 0]  # a grey frame mid-stream: Magnifier raises FrameError
    src = IteratorSource(frames, fps=30.0, live=False)
    src.open()
    with pytest.raises(UserError, match="grey-scale frame"):
        with LivePipeline(src, make_magnifier(), pace=False, max_batch=1) as pipe:
            while pipe.get(timeout=2.0) is not None:
                pass
    assert not any(t.is_alive() for t in pipe.threads)


def test_worker_exception_reaches_the_caller_from_capture():
    def broken():
        yield synthetic_frames(1)[0]
        raise RuntimeError("sensor on fire")

    src = IteratorSource(broken(), fps=30.0, live=True)
    src.open()
    pipe = LivePipeline(src, make_magnifier(), pace=False)
    pipe.start()
    with pytest.raises(RuntimeError, match="sensor on fire"):
        while pipe.get(timeout=2.0) is not None:
            pass
    assert pipe.stop() == []


def test_factory_errors_raise_in_start():
    src = IteratorSource([], fps=30.0)
    src.open()

    def factory(fps):
        raise UserError("no weights")

    with pytest.raises(UserError, match="no weights"):
        LivePipeline(src, factory).start()


def test_magnification_keys_adjust_between_batches():
    src = IteratorSource(endless_frames(60), fps=30.0, live=False)
    src.open()
    mag = make_magnifier(gamma=None, magnification=10.0)
    pipe = LivePipeline(src, mag, pace=False, max_batch=4)
    pipe.scale_magnification(2.0)
    with pipe:
        items = [i for i in iter(lambda: pipe.get(timeout=5.0), None) if i]
    assert mag.config.magnification == 20.0 and items[-1].magnification == 20.0


# --------------------------------------------------------------------------- headless vs file


def test_headless_file_run_equals_magnify_file_causal(tmp_path):
    from rtmag.live.record import run_headless
    from rtmag.process import magnify_file
    from rtmag.video import read_video, write_video

    clip = synthetic_frames(45)
    src_path = str(tmp_path / "in.mp4")
    write_video(src_path, clip, 30)
    src = open_source(src_path)
    assert isinstance(src, FileSource) and src.fps == 30.0
    pipe = LivePipeline(src, make_magnifier(), pace=False)
    live = run_headless(pipe, tmp_path / "live.mp4", keep_frames=True)
    assert live.frames == 45 and live.dropped == 0
    magnify_file(src_path, str(tmp_path / "file.mp4"), causal=True, magnifier=make_magnifier())

    decoded, _ = read_video(src_path)
    ref = make_magnifier().push_many(list(decoded))
    # the frames the pipeline made, before encoding: the Magnifier's own
    for a, b in zip(live.frames_out, ref):
        assert np.abs(a.image.astype(int) - b.image).max() <= 1
    assert (
        max(np.abs(r.image.astype(int) - d).max() for r, d in zip(ref, decoded)) >= 3
    )  # not a no-op
    # the files: the same frames through the same encoder
    a, _ = read_video(tmp_path / "live.mp4")
    b, _ = read_video(tmp_path / "file.mp4")
    assert a.shape == b.shape == clip.shape
    assert np.abs(a.astype(int) - b).max() <= 1


def test_headless_duration_and_aligned_flush(tmp_path):
    from rtmag.live.record import run_headless
    from rtmag.video import probe

    src = IteratorSource(endless_frames(90), fps=30.0, live=False)
    src.open()
    mag = make_magnifier(align=True)
    mag.delay_frames = 7  # the pulse band needs none (in phase at its centre)
    res = run_headless(LivePipeline(src, mag, pace=False), tmp_path / "o.mp4", duration_s=1.0)
    assert res.frames == 30
    assert probe(tmp_path / "o.mp4").frames == 30


# --------------------------------------------------------------------------- display


def test_compose_shows_both_panes_strip_and_rate():
    from rtmag.live.display import DisplayState, compose, status_text

    src = IteratorSource(endless_frames(40), fps=30.0, live=False)
    src.open()
    with LivePipeline(src, make_magnifier(), pace=False) as pipe:
        items = [i for i in iter(lambda: pipe.get(timeout=5.0), None) if i]
    st = DisplayState()
    for it in items:
        st.signal.append(it.frame.signal)
    canvas = compose(items[-1], st, pane_height=96)
    assert canvas.dtype == np.uint8 and canvas.shape[1] >= 2 * 128
    assert "HR" in status_text(items[-1], st) and "fps" in status_text(items[-1], st)
    assert "lock" not in status_text(items[-1], st)  # no confident rate: no lock
    import dataclasses

    assert "lock 0.30 s" in status_text(dataclasses.replace(items[-1], lock_s=0.3), st)
    st.view = "magnified"
    assert compose(items[-1], st, pane_height=96).shape[0] == canvas.shape[0]


def test_no_display_gives_a_clear_error(monkeypatch):
    from rtmag.live import display

    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    monkeypatch.setattr(display.sys, "platform", "linux")
    with pytest.raises(display.NoDisplayError, match="--headless"):
        display.require_display()


@pytest.mark.skipif(shutil.which("xvfb-run") is None, reason="xvfb-run is not installed")
def test_window_under_xvfb_shows_both_panes_and_rate(tmp_path):
    """Open the real window on a virtual display and take a screenshot of the X root."""
    shot = tmp_path / "screen.png"
    env = dict(
        os.environ, OMP_NUM_THREADS="1", OMP_WAIT_POLICY="PASSIVE", QT_LOGGING_RULES="*.debug=false"
    )
    cmd = [
        "xvfb-run", "-a", "-s", "-screen 0 1280x720x24",
        sys.executable, "-m", "rtmag.live.screenshot", str(shot), "--seconds", "4",
    ]  # fmt: skip
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=90)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    import cv2

    screen = cv2.imread(str(shot))
    canvas = cv2.imread(str(tmp_path / "screen.canvas.png"))
    assert screen is not None and canvas is not None
    # the window's picture is on the screen, pixel for pixel
    score = cv2.minMaxLoc(cv2.matchTemplate(screen, canvas, cv2.TM_CCOEFF_NORMED))[1]
    assert score > 0.99, score
    assert "both panes" in proc.stdout and "HR" in proc.stdout


def test_ctrl_c_finalises_the_headless_file(tmp_path):
    import signal

    from rtmag.live.record import run_headless
    from rtmag.video import read_video

    if threading.current_thread() is not threading.main_thread():
        pytest.skip("Ctrl-C handling needs the main thread")
    before = signal.getsignal(signal.SIGINT)  # SIG_IGN when run in the background
    src = IteratorSource(endless_frames(), fps=30.0, live=True)
    src.open()
    timer = threading.Timer(0.8, lambda: os.kill(os.getpid(), signal.SIGINT))
    timer.start()
    try:
        res = run_headless(LivePipeline(src, make_magnifier()), tmp_path / "o.mp4")
    finally:
        timer.cancel()
    assert res.interrupted and res.frames > 0
    frames, _ = read_video(tmp_path / "o.mp4")
    assert len(frames) == res.frames  # a complete, readable file
    assert signal.getsignal(signal.SIGINT) is before  # the handler is given back


# --------------------------------------------------------------------------- commands


@pytest.fixture
def weight_file(tmp_path):
    from rtmag.nets import save_weights

    return str(save_weights(tmp_path / "random.pt", frozen_net(), {"note": "random init, tests"}))


def test_webcam_command_headless_on_a_file(tmp_path, weight_file, capsys):
    from rtmag.cli import main
    from rtmag.video import probe, write_video

    write_video(tmp_path / "in.mp4", synthetic_frames(30), 30)
    out = tmp_path / "out.mp4"
    argv = ["webcam", "--source", str(tmp_path / "in.mp4"), "--headless", "--out", str(out)]
    argv += ["--weights", weight_file, "--no-pace"]
    assert main(argv) == 0
    assert probe(out).frames == 30
    assert "wrote" in capsys.readouterr().out
    assert main(argv) == 2  # exists, no --force
    assert "--force" in capsys.readouterr().err


def test_commands_say_what_is_missing(tmp_path, weight_file, capsys, monkeypatch):
    from rtmag.cli import main

    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    assert main(["webcam", "--weights", weight_file]) == 2
    assert "--headless" in capsys.readouterr().err
    assert main(["webcam", "--source", "96", "--headless", "--out", str(tmp_path / "x.mp4")]) == 2
    assert "no camera could be opened" in capsys.readouterr().err
    assert main(["demo", "--weights", str(tmp_path / "none.pt")]) == 2
    assert "none.pt" in capsys.readouterr().err


def test_demo_without_display_writes_a_clip(tmp_path, weight_file, capsys, monkeypatch):
    from rtmag.cli import main
    from rtmag.video import probe

    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    monkeypatch.chdir(tmp_path)
    assert main(["demo", "--weights", weight_file, "--duration", "1", "--size", "64x48"]) == 0
    out = capsys.readouterr().out
    assert "no display found" in out and str(tmp_path / "rtmag-demo.mp4") in out
    assert "the synthetic person's rate: 72.0 bpm" in out
    assert probe(tmp_path / "rtmag-demo.mp4").frames == 30


def test_demo_reads_the_person_s_heart_rate(tmp_path, capsys, monkeypatch):
    """The README's first command end to end with the shipped network: the 10 s clip's
    heart rate is the synthetic person's (72 bpm), read with confidence. Before the
    reading took the network's output as a derivative it printed 142.7 bpm."""
    import re

    from rtmag.cli import main

    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    monkeypatch.chdir(tmp_path)
    assert main(["demo"]) == 0
    out = capsys.readouterr().out
    m = re.search(r"heart rate: ([0-9.]+) bpm \(confidence ([0-9.]+)\)", out)
    assert m, out
    assert abs(float(m.group(1)) - 72.0) < 2 and float(m.group(2)) >= 0.55, out


def test_window_keys_without_a_window(tmp_path):
    """The keys act on the pipeline and the window state; s and r write files."""
    import cv2

    from rtmag.live.display import LiveWindow, compose
    from rtmag.video import read_video

    src = IteratorSource(endless_frames(40), fps=30.0, live=False)
    src.open()
    pipe = LivePipeline(src, make_magnifier(gamma=None, magnification=10.0), pace=False)
    with pipe:
        items = [i for i in iter(lambda: pipe.get(timeout=5.0), None) if i]
    win = LiveWindow(out_dir=str(tmp_path), pane_height=48)
    win._new_item(items[0])
    win.canvas = compose(items[0], win.state, 48)
    key = ord
    assert win.handle_key(key("v"), pipe) and win.state.view == "magnified"
    assert win.handle_key(key("m"), pipe) and "--mode pulse|respiration" in win.state.message
    win.handle_key(key("+"), pipe)
    pipe._apply_controls()
    assert pipe.magnifier.config.magnification == pytest.approx(10 * 2**0.5)
    win.handle_key(key("-"), pipe)
    pipe._apply_controls()
    assert pipe.magnifier.config.magnification == pytest.approx(10.0)
    assert win.handle_key(key(" "), pipe) and win.state.paused
    assert win.handle_key(-1, pipe)
    win.handle_key(key("s"), pipe)
    assert cv2.imread(win.snapshots[0]) is not None
    win.handle_key(key("r"), pipe)
    for it in items[1:11]:
        win._new_item(it)
    path = win.finish_recording()
    frames, _ = read_video(path)
    assert len(frames) == 10 and frames.shape[1:] == items[0].frame.image.shape  # no overlays
    assert not win.handle_key(key("q"), pipe)
