"""Frame sources and the capture thread that feeds a :class:`~rtmag.live.ring.RingBuffer`.

A *source* yields RGB ``uint8`` ``(H, W, 3)`` frames with their timestamps:

* :class:`CameraSource`: an OpenCV ``VideoCapture`` of a device index or a stream URL
  (RTSP/HTTP). OpenCV gives BGR; the source converts to RGB at this boundary. The
  device paces it; its frames are stamped with the capture clock.
* :class:`FileSource`: a video file decoded with PyAV (:class:`rtmag.video.VideoReader`),
  the same decoder as ``rtmag magnify``, so a headless live run of a file writes the
  frames ``rtmag magnify --causal`` writes. Frames keep their own timestamps.
* :class:`IteratorSource`: any Python iterable of frames (the synthetic person of
  ``rtmag demo``, tests).
* :class:`PushSource`: frames pushed in by the application from any thread (e.g.
  decoded from a WebRTC track), with their own timestamps.

:func:`open_source` turns a ``--source`` value into one of these. :class:`CaptureThread`
reads a source into a ring buffer until the stream ends or its stop ``Event`` is set,
paces sources that are not paced by a device, and reconnects a lost camera a few
times before ending the stream cleanly.
"""

from __future__ import annotations

import glob
import os
import threading
import time
from dataclasses import dataclass
from fractions import Fraction

import numpy as np

from rtmag.errors import UserError


class CameraError(UserError):
    """No camera (or stream) could be opened."""


SOURCE_HELP = (
    "Pass --source N for another camera index (e.g. --source 1), --source PATH for a "
    "video file, or --source rtsp://HOST/PATH (or http://...) for a network stream; "
    "`rtmag demo` runs without a camera."
)


@dataclass
class CapturedFrame:
    """One frame as captured.

    Attributes:
        image: RGB ``uint8`` ``(H, W, 3)``.
        index: 0-based position in the captured stream (dropped frames included).
        time_s: stream time in seconds: the file's timestamp, or seconds since the
            first frame on the capture clock for a camera. Strictly increasing.
        pts: the file's presentation timestamp in ``source.time_base`` units, else None.
        wall: ``time.perf_counter()`` when the frame was captured (for latency).
    """

    image: np.ndarray
    index: int
    time_s: float
    pts: int | None
    wall: float


class Source:
    """Base class of frame sources.

    Attributes:
        live: a live stream (camera, URL, the demo's simulated camera): the ring
            buffer keeps the newest frames. False: a file, nothing may be dropped.
        device_paced: the device delivers frames at its own rate (a camera); else the
            capture thread paces the source at ``fps`` when asked to.
        fps: nominal frame rate in frames/s.
        time_base: unit of ``pts`` (files), else None.
        path: the file, for copying its audio (files), else None.
        description: what the source is, for messages.
    """

    live = True
    device_paced = False
    fps: float = 30.0
    time_base: Fraction | None = None
    path: str | None = None
    description = "source"

    def open(self) -> None:
        """Open the source; raise a :class:`UserError` that says what to do if it fails."""

    def read(self) -> tuple[np.ndarray, float | None, int | None] | None:
        """Next frame as ``(rgb, time_s or None, pts or None)``; None: no frame (end of a
        file, or a camera that stopped delivering)."""
        raise NotImplementedError

    def reopen(self) -> bool:
        """Try to reconnect a lost live source; True on success."""
        return False

    def close(self) -> None:
        """Release the source. Safe to call twice."""


def _video_devices() -> list[str]:
    return sorted(glob.glob("/dev/video*"))


class CameraSource(Source):
    """An OpenCV ``VideoCapture`` of a device index or a URL (BGR converted to RGB).

    Args:
        spec: device index (int) or stream URL.
        fps: frame rate to assume when the device does not report one.
    """

    live = True
    device_paced = True

    def __init__(self, spec: int | str, fps: float | None = None):
        self.spec = spec
        self._fps_hint = fps
        self.cap = None
        kind = "camera" if isinstance(spec, int) else "stream"
        self.description = f"{kind} {spec}"

    def _open_capture(self):
        import cv2

        get_level = getattr(getattr(cv2, "utils", None), "logging", None)
        level = get_level.getLogLevel() if get_level else None
        if get_level:  # a failed probe logs backend noise; our error says what happened
            get_level.setLogLevel(get_level.LOG_LEVEL_SILENT)
        try:
            cap = cv2.VideoCapture(self.spec)
        finally:
            if get_level:
                get_level.setLogLevel(level)
        if not cap.isOpened():
            cap.release()
            return None
        return cap

    def open(self) -> None:
        self.cap = self._open_capture()
        if self.cap is None:
            if isinstance(self.spec, int):
                devices = _video_devices()
                found = ", ".join(devices) if devices else "none"
                raise CameraError(
                    f"no camera could be opened: tried OpenCV VideoCapture({self.spec}) "
                    f"(device index {self.spec}, default backend), which did not open. "
                    f"Video devices on this machine (/dev/video*): {found}. {SOURCE_HELP}"
                )
            raise CameraError(
                f"could not open the stream {self.spec!r} with OpenCV VideoCapture (check "
                f"the URL, the network and that OpenCV's FFmpeg can read it). {SOURCE_HELP}"
            )
        import cv2

        fps = float(self.cap.get(cv2.CAP_PROP_FPS) or 0.0)
        if not 1.0 <= fps <= 240.0:
            fps = float(self._fps_hint or 30.0)
        self.fps = fps

    def read(self):
        import cv2

        if self.cap is None:
            return None
        ok, bgr = self.cap.read()
        if not ok or bgr is None or bgr.size == 0:
            return None
        if bgr.ndim == 2:
            rgb = cv2.cvtColor(bgr, cv2.COLOR_GRAY2RGB)
        elif bgr.shape[2] == 4:
            rgb = cv2.cvtColor(bgr, cv2.COLOR_BGRA2RGB)
        else:
            rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
        return rgb, None, None

    def reopen(self) -> bool:
        self.close()
        self.cap = self._open_capture()
        return self.cap is not None

    def close(self) -> None:
        if self.cap is not None:
            self.cap.release()
            self.cap = None


class FileSource(Source):
    """A video file decoded with PyAV, frames with their own timestamps."""

    live = False
    device_paced = False

    def __init__(self, path: str | os.PathLike):
        self.path = os.fspath(path)
        self.description = f"file {self.path}"
        self._reader = None
        self._it = None

    def open(self) -> None:
        from rtmag.video import VideoReader

        self._reader = VideoReader(self.path)
        self.fps = float(self._reader.info.fps)
        self.time_base = self._reader.info.time_base
        self.info = self._reader.info
        self._it = iter(self._reader)

    def read(self):
        try:
            fr = next(self._it)
        except StopIteration:
            return None
        return fr.image, fr.time_s, fr.pts

    def close(self) -> None:
        if self._reader is not None:
            self._reader.close()
            self._reader = None


class IteratorSource(Source):
    """Frames from any iterable: RGB ``uint8`` arrays, or ``(rgb, time_s)`` pairs.

    Args:
        frames: the iterable.
        fps: its frame rate in frames/s (for pacing and the filter design).
        live: treat it as a live stream (drop the oldest frames when behind) or as a
            file (back-pressure, drop nothing).
        description: what it is, for messages.
    """

    device_paced = False

    def __init__(self, frames, fps: float, live: bool = True, description: str = "frames"):
        self._frames = frames
        self._it = None
        self.fps = float(fps)
        self.live = bool(live)
        self.description = description

    def open(self) -> None:
        self._it = iter(self._frames)

    def read(self):
        try:
            item = next(self._it)
        except StopIteration:
            return None
        if isinstance(item, tuple):
            return item[0], float(item[1]), None
        return item, None, None

    def close(self) -> None:
        close = getattr(self._it, "close", None)
        if close is not None:
            close()


class PushSource(Source):
    """Frames pushed in by the application: :meth:`push` from any thread.

    A live source: when processing falls behind, the oldest frames are dropped (by
    the pipeline's ring). :meth:`push` checks each frame and timestamp at once, so a
    bad one raises :class:`~rtmag.errors.FrameError` on the pushing thread and the
    stream goes on. :meth:`end` ends the stream (the pipeline then drains and stops).

    Args:
        fps: nominal frame rate in frames/s (the filter design and rate grid).
        queue_size: frames held between :meth:`push` and the capture thread; the
            oldest is dropped (and counted in :attr:`dropped`) when full.
        description: what it is, for messages.
    """

    live = True
    device_paced = True  # the pusher's clock paces it

    def __init__(self, fps: float = 30.0, queue_size: int = 4, description: str = "pushed frames"):
        import collections

        if not (float(fps) > 0 and float(fps) < 1000):
            raise UserError(f"fps must be a positive frame rate below 1000, got {fps!r}")
        self.fps = float(fps)
        self.description = description
        self._queue: collections.deque = collections.deque(maxlen=max(1, int(queue_size)))
        self._cond = threading.Condition()
        self._shape: tuple[int, int] | None = None
        self._last_t: float | None = None
        self._t0: float | None = None
        self.ended = False
        self.dropped = 0

    def push(self, frame: np.ndarray, t: float | None = None) -> None:
        """Add a frame (RGB uint8 ``(H, W, 3)``) taken at ``t`` seconds (any origin,
        strictly increasing; None: now, on ``time.perf_counter``'s clock).

        Raises:
            FrameError: wrong type, dtype or shape, a size that differs from the
                stream's, or a timestamp that does not increase. The frame is not
                taken; the stream goes on.
            UserError: the stream has ended.
        """
        from rtmag.errors import FrameError
        from rtmag.magnifier import check_frame

        if self.ended:
            raise UserError("this PushSource has ended; start a new one for a new stream")
        frame = check_frame(frame, self._shape)
        now = time.perf_counter()
        t = (now - (self._t0 if self._t0 is not None else now)) if t is None else float(t)
        with self._cond:
            if not np.isfinite(t) or (self._last_t is not None and t <= self._last_t):
                raise FrameError(
                    f"timestamps must increase: got {t} s after {self._last_t} s; drop "
                    "repeated or late frames (or start a new stream for a new clock)"
                )
            if self._t0 is None:
                self._t0 = now
            self._shape = frame.shape[:2]
            self._last_t = t
            if len(self._queue) == self._queue.maxlen:
                self.dropped += 1
            self._queue.append((frame.copy(), t, None))
            self._cond.notify()

    def read(self):
        with self._cond:
            while not self._queue and not self.ended:
                self._cond.wait(0.1)
            return self._queue.popleft() if self._queue else None

    def end(self) -> None:
        """End the stream: frames already pushed are still processed."""
        with self._cond:
            self.ended = True
            self._cond.notify_all()

    def interrupt(self) -> None:
        """Wake a blocked :meth:`read` for the pipeline's stop (drops what waits)."""
        with self._cond:
            self.ended = True
            self._queue.clear()
            self._cond.notify_all()

    def close(self) -> None:
        self.end()


def open_source(spec, fps: float | None = None) -> Source:
    """Build and open the source that ``--source`` names.

    Args:
        spec: a camera index (``0`` or ``"0"``), a URL (``rtsp://``, ``http://`` ...),
            or the path of a video file.
        fps: frame rate to assume for a camera that reports none.

    Raises:
        CameraError: the camera or stream cannot be opened (the message lists what was
            tried and how to pass ``--source``).
        VideoError: the file cannot be read.
        UserError: ``spec`` is none of the above.
    """
    if isinstance(spec, int) or (isinstance(spec, str) and spec.strip().isdigit()):
        src: Source = CameraSource(int(spec), fps=fps)
    elif isinstance(spec, str) and "://" in spec:
        src = CameraSource(spec, fps=fps)
    elif os.path.exists(os.fspath(spec)):
        src = FileSource(spec)
    else:
        raise UserError(
            f"--source {spec!r} is not a camera index, a URL or an existing file. {SOURCE_HELP}"
        )
    src.open()
    return src


class CaptureThread(threading.Thread):
    """Read ``source`` into ``ring`` until the stream ends or ``stop`` is set.

    The ring is closed when the thread ends (end of stream for the consumer). An
    exception is kept in :attr:`error` for the pipeline to re-raise on the caller's
    thread.

    Args:
        source: an opened :class:`Source`.
        ring: the ring buffer (its policy decides drop vs back-pressure).
        stop: set to end the thread.
        pace: deliver frames no faster than their timestamps (sources that are not
            paced by a device); False: as fast as they come.
        reconnect_attempts: how often to try to reopen a live source that stopped
            delivering before ending the stream.
        reconnect_wait_s: wait before each attempt.
        max_frames: end after this many frames (None: no limit).

    Attributes:
        error: the exception that ended the thread, or None.
        lost: True if a live source was lost and could not be reopened.
        end_reason: a sentence saying why capture ended.
        frames: number of frames captured.
    """

    def __init__(
        self,
        source: Source,
        ring,
        stop: threading.Event,
        pace: bool = True,
        reconnect_attempts: int = 3,
        reconnect_wait_s: float = 0.5,
        max_frames: int | None = None,
    ):
        super().__init__(name="rtmag-capture", daemon=True)
        self.source = source
        self.ring = ring
        self.stop_event = stop
        self.pace = pace and not source.device_paced
        self.reconnect_attempts = int(reconnect_attempts)
        self.reconnect_wait_s = float(reconnect_wait_s)
        self.max_frames = max_frames
        self.error: BaseException | None = None
        self.lost = False
        self.end_reason = ""
        self.frames = 0

    def _read_or_reconnect(self):
        item = self.source.read()
        if item is not None or not self.source.live or getattr(self.source, "ended", False):
            return item
        for _ in range(self.reconnect_attempts):
            if self.stop_event.wait(self.reconnect_wait_s):
                return None
            if self.source.reopen():
                item = self.source.read()
                if item is not None:
                    return item
        self.lost = True
        self.end_reason = (
            f"{self.source.description} stopped delivering frames and "
            f"{self.reconnect_attempts} attempts to reopen it failed"
        )
        return None

    def run(self) -> None:
        try:
            self._run()
        except BaseException as exc:  # handed to the caller by the pipeline
            self.error = exc
            self.end_reason = f"capture failed: {exc}"
        finally:
            self.ring.close()

    def _run(self) -> None:
        import cv2

        shape = None
        last_t = None
        t0_media = wall0 = None
        index = 0
        while not self.stop_event.is_set():
            if self.max_frames is not None and index >= self.max_frames:
                self.end_reason = f"stopped after {index} frames"
                return
            item = self._read_or_reconnect()
            if item is None:
                if not self.end_reason:
                    self.end_reason = "end of stream" if not self.stop_event.is_set() else "stopped"
                return
            rgb, t, pts = item
            now = time.perf_counter()
            if wall0 is None:
                wall0 = now
            if shape is None:
                shape = rgb.shape[:2]
            elif rgb.shape[:2] != shape:  # a reconnected camera at another size
                rgb = cv2.resize(rgb, (shape[1], shape[0]), interpolation=cv2.INTER_AREA)
            if t is None:
                t = (index / self.source.fps) if not self.source.device_paced else now - wall0
            if last_t is not None and t <= last_t:
                t = last_t + 1e-6
            last_t = t
            if self.pace:
                if t0_media is None:
                    t0_media = t
                delay = wall0 + (t - t0_media) - time.perf_counter()
                if delay < -0.25:  # held up (pause, back-pressure): resume at real speed
                    wall0 -= delay
                elif delay > 0 and self.stop_event.wait(delay):
                    return
                now = time.perf_counter()
            frame = CapturedFrame(
                image=np.ascontiguousarray(rgb), index=index, time_s=float(t), pts=pts, wall=now
            )
            while not self.ring.put(frame, timeout=0.1):
                if self.stop_event.is_set() or self.ring.closed:
                    return
            index += 1
            self.frames = index
