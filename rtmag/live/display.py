"""The live window: ``cv2.imshow`` on the main thread.

Layout (:func:`compose`, a pure function of the latest :class:`LiveFrame` and the
window's state, so tests can check the picture without a window): original and
magnified side by side (``v`` cycles both / magnified / original), under them a strip
with the network's pulse signal of the last seconds and a line with the heart rate
and its confidence, fps, capture-to-display latency (and the alignment delay),
dropped frames and the magnification.

Keys: ``q``/Esc quit, ``v`` view, ``m`` mode, ``+``/``-`` magnification, space pause,
``s`` snapshot PNG, ``r`` start/stop recording (magnified frames, overlays off).

With no display, OpenCV's Qt backend aborts the whole process inside ``cv2.imshow``
(exit 134, no Python exception); :func:`require_display` checks first.
"""

from __future__ import annotations

import collections
import os
import sys
import threading
import time
from dataclasses import dataclass, field

import numpy as np

from rtmag.errors import UserError

WINDOW = "rtmag"
VIEWS = ("both", "magnified", "original")
MAG_STEP = 2**0.5


class NoDisplayError(UserError):
    """No display to open a window on."""


def display_available() -> bool:
    """True if a window can be opened: on Linux, DISPLAY or WAYLAND_DISPLAY is set."""
    if sys.platform.startswith("linux") or "bsd" in sys.platform:
        return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))
    return True


def require_display() -> None:
    """Raise :class:`NoDisplayError` (before any window is opened) if there is no display."""
    if not display_available():
        raise NoDisplayError(
            "no display: neither DISPLAY nor WAYLAND_DISPLAY is set, and OpenCV would "
            "abort the process when opening a window. Run with --headless --out FILE.mp4 "
            "(and --duration S for a camera) to write the magnified video to a file, or "
            "run under a display (e.g. ssh -X, or xvfb-run for a virtual one)."
        )


@dataclass
class DisplayState:
    """What the window shows beyond the frames; changed by the keys."""

    view: str = "both"
    paused: bool = False
    recording: str | None = None
    message: str = ""
    message_until: float = 0.0
    fps: float = 0.0
    latency_ms: float = float("nan")
    signal: collections.deque = field(default_factory=lambda: collections.deque(maxlen=300))

    def say(self, text: str, seconds: float = 3.0) -> None:
        self.message = text
        self.message_until = time.monotonic() + seconds


def _fit(img: np.ndarray, height: int) -> np.ndarray:
    import cv2

    if img.shape[0] == height:
        return img
    w = max(1, round(img.shape[1] * height / img.shape[0]))
    interp = cv2.INTER_AREA if height < img.shape[0] else cv2.INTER_LINEAR
    return cv2.resize(img, (w, height), interpolation=interp)


def _label(img: np.ndarray, text: str) -> None:
    import cv2

    cv2.putText(img, text, (8, 22), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (0, 0, 0), 3, cv2.LINE_AA)
    cv2.putText(img, text, (8, 22), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (255, 255, 255), 1, cv2.LINE_AA)


def status_text(item, state: DisplayState) -> str:
    """The status line: rate and confidence, fps, latency (and the phase lock's
    state delay once it follows the rate), drops, magnification."""
    v = item.vitals
    if "breathing_rate_bpm" in v:
        br = v.get("breathing_rate_bpm")
        conf = float(v.get("breathing_rate_confidence") or 0.0)
        hr_text = "BR --- /min" if br is None else f"BR {br:.0f} /min"
    else:
        hr = v.get("heart_rate_bpm")
        conf = float(v.get("heart_rate_confidence") or 0.0)
        hr_text = "HR --- bpm" if hr is None else f"HR {hr:.0f} bpm"
    lat = "---" if not np.isfinite(state.latency_ms) else f"{state.latency_ms:.0f}"
    align = f" (align +{item.align_latency_s * 1000:.0f})" if item.align_latency_s else ""
    lock_s = getattr(item, "lock_s", 0.0)
    lock = f" | lock {lock_s:.2f} s" if lock_s else ""
    gain = f"gamma {item.gamma:.2g}" if item.gamma is not None else f"x{item.magnification:.3g}"
    return (
        f"{hr_text} (conf {conf:.2f}) | {state.fps:.1f} fps | latency {lat} ms{align}{lock} | "
        f"dropped {item.dropped} | {gain}"
    )


def compose(
    item, state: DisplayState, pane_height: int = 360, strip_height: int = 80
) -> np.ndarray:
    """The window's picture (BGR uint8) for one :class:`~rtmag.live.pipeline.LiveFrame`."""
    import cv2

    f = item.frame
    panes = []
    if state.view in ("both", "original"):
        o = np.ascontiguousarray(_fit(f.original, pane_height)[..., ::-1])
        _label(o, "original")
        panes.append(o)
    if state.view in ("both", "magnified"):
        m = np.ascontiguousarray(_fit(f.image, pane_height)[..., ::-1])
        _label(m, "magnified (pulse)")
        panes.append(m)
    top = np.concatenate(panes, axis=1) if len(panes) > 1 else panes[0]
    width = max(top.shape[1], 640)
    if top.shape[1] < width:
        top = np.pad(top, ((0, 0), (0, width - top.shape[1]), (0, 0)))
    strip = np.full((strip_height, width, 3), 24, np.uint8)
    sig = np.array([s for s in state.signal if np.isfinite(s)], np.float64)
    if len(sig) > 1:
        lo, hi = np.percentile(sig, [2, 98])
        span = hi - lo if hi > lo else 1.0
        y = (strip_height - 8) - (np.clip((sig - lo) / span, 0, 1) * (strip_height - 16))
        x = np.linspace(0, width - 1, state.signal.maxlen)[-len(sig) :]
        pts = np.stack([x, y], axis=1).round().astype(np.int32)
        cv2.polylines(strip, [pts], False, (80, 220, 80), 1, cv2.LINE_AA)
    cv2.putText(
        strip,
        "pulse signal",
        (6, 14),
        cv2.FONT_HERSHEY_SIMPLEX,
        0.4,
        (160, 160, 160),
        1,
        cv2.LINE_AA,
    )
    bar = np.full((30, width, 3), 0, np.uint8)
    text = status_text(item, state)
    scale = 0.5
    tw = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, 1)[0][0]
    if tw > width - 12:  # shrink to fit a narrow window
        scale *= (width - 12) / tw
    cv2.putText(
        bar, text, (6, 20), cv2.FONT_HERSHEY_SIMPLEX, scale, (255, 255, 255), 1, cv2.LINE_AA
    )
    extra = []
    if state.paused:
        extra.append("PAUSED")
    if state.recording:
        extra.append("REC")
    if state.message and time.monotonic() < state.message_until:
        extra.append(state.message)
    if extra:
        text = " | ".join(extra)
        for colour, thickness in (((0, 0, 0), 3), ((0, 255, 255), 1)):  # outlined
            cv2.putText(
                top,
                text,
                (8, top.shape[0] - 12),
                cv2.FONT_HERSHEY_SIMPLEX,
                0.55,
                colour,
                thickness,
                cv2.LINE_AA,
            )
    return np.concatenate([top, strip, bar], axis=0)


class LiveWindow:
    """Show a :class:`~rtmag.live.pipeline.LivePipeline` in a window until ``q``.

    Args:
        out_dir: folder for snapshots and recordings.
        pane_height: height of each pane in pixels.
        max_seconds: close after this long (tests, screenshots); None: until quit.
        on_canvas: called with every composed picture (BGR) after it is shown.

    Attributes:
        canvas: the last picture passed to ``cv2.imshow`` (BGR uint8).
        state: the :class:`DisplayState`.
        shown: number of frames shown.
        latencies_s: capture-to-display latency of every frame shown.
    """

    def __init__(
        self,
        out_dir: str = ".",
        pane_height: int = 360,
        max_seconds: float | None = None,
        on_canvas=None,
    ):
        self.out_dir = out_dir
        self.pane_height = pane_height
        self.max_seconds = max_seconds
        self.on_canvas = on_canvas
        self.state = DisplayState()
        self.canvas: np.ndarray | None = None
        self.shown = 0
        self.latencies_s: list[float] = []
        self.recorder = None
        self.snapshots: list[str] = []
        self._item = None
        self._times: collections.deque = collections.deque(maxlen=30)

    def _stamp(self, what: str, ext: str) -> str:
        return os.path.join(self.out_dir, time.strftime(f"rtmag-{what}-%Y%m%d-%H%M%S") + ext)

    def handle_key(self, key: int, pipeline) -> bool:
        """Act on one key code; False means quit."""
        import cv2

        st = self.state
        if key < 0 or key == 255:
            return True
        ch = chr(key & 0xFF).lower()
        if ch == "q" or key == 27:
            return False
        if ch == "v":
            st.view = VIEWS[(VIEWS.index(st.view) + 1) % len(VIEWS)]
        elif ch == "m":
            st.say("the mode is fixed for a run: restart with --mode pulse|respiration")
        elif ch in "+=":
            pipeline.scale_magnification(MAG_STEP)
            st.say("magnification up")
        elif ch in "-_":
            pipeline.scale_magnification(1 / MAG_STEP)
            st.say("magnification down")
        elif ch == " ":
            st.paused = not st.paused
        elif ch == "s" and self._item is not None:
            path = self._stamp("snapshot", ".png")
            cv2.imwrite(path, self.canvas)
            self.snapshots.append(path)
            st.say(f"saved {path}")
        elif ch == "r":
            self.toggle_recording(pipeline)
        return True

    def toggle_recording(self, pipeline) -> None:
        from rtmag.live.record import Recorder

        if self.recorder is None:
            path = self._stamp("recording", ".mp4")
            self.recorder = Recorder(path, pipeline.source)
            self.state.recording = path
            self.state.say(f"recording to {path}")
        else:
            self.finish_recording()

    def finish_recording(self) -> str | None:
        rec, self.recorder = self.recorder, None
        self.state.recording = None
        if rec is None:
            return None
        if rec.frames:
            rec.close()
            self.state.say(f"saved {rec.path}")
            print(f"recording saved: {rec.path} ({rec.frames} frames)")
            return rec.path
        rec.writer.abort()
        return None

    def _show(self, pipeline) -> None:
        import cv2

        if self._item is None:
            return
        self.canvas = compose(self._item, self.state, self.pane_height)
        cv2.imshow(WINDOW, self.canvas)
        if self.on_canvas is not None:
            self.on_canvas(self.canvas)

    def run(self, pipeline) -> None:
        """Show the pipeline's frames until ``q``, the window is closed, or the stream
        ends. Ctrl-C ends it cleanly too. A recording in progress is finalised."""
        import cv2

        from rtmag.live.record import catch_sigint

        require_display()
        t_start = time.monotonic()
        interrupted = threading.Event()
        restore = catch_sigint(interrupted)
        cv2.namedWindow(WINDOW, cv2.WINDOW_AUTOSIZE | cv2.WINDOW_GUI_NORMAL)
        try:
            if not pipeline._started:
                pipeline.start()
            while not interrupted.is_set():
                if self.max_seconds is not None and time.monotonic() - t_start > self.max_seconds:
                    break
                if not self.state.paused:
                    item = pipeline.get(timeout=0.01)
                    if item is None:
                        break
                    if item is not False:
                        self._new_item(item)
                        self._show(pipeline)
                        self.latencies_s.append(time.perf_counter() - item.captured_wall)
                elif self._item is not None:
                    self._show(pipeline)
                key = cv2.waitKey(1 if not self.state.paused else 30)
                if not self.handle_key(key, pipeline):
                    break
                if cv2.getWindowProperty(WINDOW, cv2.WND_PROP_VISIBLE) < 1:
                    break
        except KeyboardInterrupt:
            pass
        finally:
            restore()
            pipeline.stop()
            self.finish_recording()
            cv2.destroyWindow(WINDOW)
            cv2.waitKey(1)
        pipeline.raise_if_failed()

    def _new_item(self, item) -> None:
        now = time.perf_counter()
        self._item = item
        self.shown += 1
        self._times.append(now)
        if len(self._times) > 1:
            self.state.fps = (len(self._times) - 1) / (self._times[-1] - self._times[0])
        self.state.latency_ms = (now - item.captured_wall) * 1000
        self.state.signal.append(item.frame.signal)
        if self.recorder is not None:
            self.recorder.write(item.frame)
