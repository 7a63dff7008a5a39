"""Live magnification: capture thread, ring buffer, processing thread, window.

* :mod:`rtmag.live.ring`: :class:`RingBuffer`, bounded; live policy drops the oldest,
  file policy applies back-pressure.
* :mod:`rtmag.live.capture`: sources (camera/URL via OpenCV, files via PyAV, any
  iterator) and :class:`CaptureThread`.
* :mod:`rtmag.live.pipeline`: :class:`LivePipeline`, capture + batched processing
  around one :class:`rtmag.magnifier.Magnifier`; worker errors reach the caller.
* :mod:`rtmag.live.display`: the ``cv2.imshow`` window and its keys.
* :mod:`rtmag.live.record`: recording and ``--headless`` runs.
"""

from rtmag.live.capture import CameraError, CapturedFrame, open_source
from rtmag.live.pipeline import LiveFrame, LivePipeline
from rtmag.live.ring import RingBuffer

__all__ = [
    "CameraError",
    "CapturedFrame",
    "LiveFrame",
    "LivePipeline",
    "RingBuffer",
    "open_source",
]
