"""The public API: its names (frozen), a cheap import, LiveMagnifier's callbacks,
iterators, errors and stop, PushSource, and the vitals JSON lines of ``rtmag webcam``."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time

import numpy as np
import pytest

import rtmag
from tests.test_live import frozen_net, synthetic_frames

PUBLIC = [
    "FrameError",
    "LiveFrame",
    "LiveMagnifier",
    "MagnifiedFrame",
    "Magnifier",
    "MagnifierConfig",
    "PushSource",
    "RateEstimate",
    "RateTracker",
    "RtmagError",
    "UserError",
    "__version__",
    "estimate_rate",
    "open_source",
    "vitals_event",
]


def config(**kw):
    return rtmag.MagnifierConfig(gamma=0.5, n_iter=4, **kw)


def test_public_names_are_frozen_and_resolve():
    assert sorted(rtmag.__all__) == PUBLIC
    for name in PUBLIC:
        assert getattr(rtmag, name) is not None
    assert set(PUBLIC) <= set(dir(rtmag))
    with pytest.raises(AttributeError, match="no attribute 'magnify'"):
        rtmag.magnify  # noqa: B018


def test_import_is_cheap_and_does_not_load_torch():
    code = "import sys, rtmag; print('torch' in sys.modules, 'numpy' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]


def test_magnifier_refuses_bad_input_through_the_api():
    mag = rtmag.Magnifier(config(), net=frozen_net())
    good = np.full((24, 32, 3), 128, np.uint8)
    with pytest.raises(rtmag.FrameError, match="uint8"):
        mag.push(good.astype(np.float32), 0.0)
    with pytest.raises(rtmag.FrameError, match=r"shape \(H, W, 3\)"):
        mag.push(good[..., :2], 0.0)
    assert len(mag.push(good, 1.0)) == 1
    with pytest.raises(rtmag.FrameError, match="increase"):
        mag.push(good, 0.5)  # out of order / backwards
    assert len(mag.push(good, 1.04)) == 1  # the stream goes on


def file_like(n: int):
    from rtmag.live.capture import IteratorSource

    src = IteratorSource(list(synthetic_frames(n)), fps=30.0, live=False)
    src.open()
    return src


def test_callbacks_and_iterators_see_every_frame_and_event_in_order():
    frames, events = [], []
    live = rtmag.LiveMagnifier(
        file_like(150),
        config(),
        net=frozen_net(),
        pace=False,
        on_frame=frames.append,
        on_vitals=events.append,
    )
    with live:
        assert live.wait(timeout=60)
        got_events = list(live.events(timeout=1))
    assert [f.frame.index for f in frames] == list(range(150))
    assert len(events) >= 3 and got_events == events
    assert [e["t"] for e in events] == sorted(e["t"] for e in events)
    last = events[-1]
    assert last["mode"] == "pulse" and last["breathing_rate_bpm"] is None
    assert last["heart_rate_bpm"] is None or 42 <= last["heart_rate_bpm"] <= 150
    assert live.latest_vitals == last
    json.dumps(events)  # JSON-ready
    assert not live.running


def test_frames_iterator_and_error_in_a_callback_reaches_the_caller():
    with rtmag.LiveMagnifier(file_like(20), config(), net=frozen_net(), pace=False) as live:
        assert [it.frame.index for it in live.frames(timeout=30)] == list(range(20))

    def boom(item):
        if item.frame.index == 3:
            raise ValueError("callback failed")

    live = rtmag.LiveMagnifier(file_like(40), config(), net=frozen_net(), on_frame=boom)
    with pytest.raises(ValueError, match="callback failed"):
        with live:
            list(live.frames(timeout=30))
    assert not live.running


def test_push_source_checks_frames_and_stops_from_another_thread():
    live = rtmag.LiveMagnifier("push", config(), net=frozen_net(), fps=30.0)
    src = live.source
    got = []
    with live:
        frames = synthetic_frames(10, h=24, w=32)
        with pytest.raises(rtmag.FrameError, match="uint8"):
            src.push(frames[0].astype(np.int16), 0.0)
        for i, f in enumerate(frames):
            src.push(f, i / 30.0)
            if i == 4:
                with pytest.raises(rtmag.FrameError, match="increase"):
                    src.push(f, 0.05)
                with pytest.raises(rtmag.FrameError, match="size changed"):
                    src.push(f[:10], 1.0)
            time.sleep(0.01)
        threading.Timer(1.0, live.stop).start()  # nothing more is pushed: stop it
        for it in live.frames(timeout=20):
            got.append(it.frame.time_s)
        assert live.stop() == []
    assert 0 < len(got) <= 10 and got == sorted(got)
    with pytest.raises(rtmag.UserError, match="ended"):
        src.push(frames[0], 5.0)


def test_push_source_end_drains_and_ends():
    live = rtmag.LiveMagnifier("push", config(), net=frozen_net())
    with live:
        for i, f in enumerate(synthetic_frames(6, h=24, w=32)):
            live.source.push(f, 0.1 + i * 0.033)
            time.sleep(0.05)
        live.source.end()
        assert live.wait(timeout=10)
    assert live.pipeline.end_reason == "end of stream"


def test_bad_arguments_are_refused():
    with pytest.raises(rtmag.UserError, match="not usable"):
        rtmag.LiveMagnifier(3.5, net=frozen_net())
    with pytest.raises(rtmag.UserError, match="on_frame must be a callable"):
        rtmag.LiveMagnifier(file_like(2), net=frozen_net(), on_frame=42)
    with pytest.raises(rtmag.UserError, match="fps"):
        rtmag.PushSource(fps=0)


@pytest.mark.parametrize("to_stdout", [False, True])
def test_webcam_vitals_out_writes_json_lines(tmp_path, capsys, to_stdout):
    from rtmag.cli import main
    from rtmag.nets import save_weights
    from rtmag.video import write_video

    weights = str(save_weights(tmp_path / "w.pt", frozen_net(), {"note": "random"}))
    write_video(tmp_path / "in.mp4", synthetic_frames(45), 30)
    target = "-" if to_stdout else str(tmp_path / "vitals.jsonl")
    argv = ["webcam", "--source", str(tmp_path / "in.mp4"), "--headless", "--no-pace"]
    argv += ["--out", str(tmp_path / "out.mp4"), "--weights", weights, "--vitals-out", target]
    assert main(argv + ["--iterations", "4"]) == 0
    out = capsys.readouterr().out
    text = out if to_stdout else (tmp_path / "vitals.jsonl").read_text()
    events = [json.loads(line) for line in text.splitlines()]  # stdout: JSON lines only
    assert len(events) >= 1 and all("heart_rate_bpm" in e and "t" in e for e in events)
