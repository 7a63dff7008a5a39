"""rtmag: real-time, source-specific video magnification.

Implements "DeepMag: Source-Specific Change Magnification Using Gradient Ascent"
(Chen & McDuff, ACM TOG 2020) as a streaming system. Frames are RGB ``uint8``
arrays of shape ``(H, W, 3)`` everywhere in the public API; timestamps are seconds.

The public API (imported on first use, so ``import rtmag`` stays cheap and does not
load torch):

* :class:`Magnifier`, :class:`MagnifierConfig`, :class:`MagnifiedFrame`: frame by frame
  from any source, no threads: ``mag.push(frame, t)`` returns the magnified frames
  ready; ``mag.vitals()`` the latest rate.
* :class:`LiveMagnifier`: a camera, file, stream, the synthetic person or pushed
  frames, magnified in background threads; ``start()``/``stop()`` or ``with``;
  callbacks ``on_frame``/``on_vitals`` or the iterators ``frames()``/``events()``.
* :class:`LiveFrame`: one output of :class:`LiveMagnifier`; :class:`PushSource`: a
  source the application pushes frames into (e.g. decoded from a WebRTC track).
* :func:`vitals_event`: the vitals event dict; :func:`estimate_rate`,
  :class:`RateTracker`: rates from a signal.
* :class:`RtmagError`, :class:`UserError`, :class:`FrameError`: what bad input raises.

Example::

    import rtmag

    mag = rtmag.Magnifier(rtmag.MagnifierConfig(magnification=20, fps=30))
    for frame, t in frames_with_times:          # RGB uint8 (H, W, 3), seconds
        for out in mag.push(frame, t):
            show(out.image)
    print(mag.vitals())                         # {'heart_rate_bpm': 71.8, ...}
"""

from __future__ import annotations

import importlib

__version__ = "0.1.0.dev0"

_LAZY = {
    "Magnifier": "rtmag.magnifier",
    "MagnifierConfig": "rtmag.magnifier",
    "MagnifiedFrame": "rtmag.magnifier",
    "LiveMagnifier": "rtmag.live.session",
    "LiveFrame": "rtmag.live.pipeline",
    "vitals_event": "rtmag.live.pipeline",
    "PushSource": "rtmag.live.capture",
    "open_source": "rtmag.live.capture",
    "RateTracker": "rtmag.vitals",
    "RateEstimate": "rtmag.vitals",
    "estimate_rate": "rtmag.vitals",
    "RtmagError": "rtmag.errors",
    "UserError": "rtmag.errors",
    "FrameError": "rtmag.errors",
}

__all__ = ["__version__", *_LAZY]


def __getattr__(name: str):
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'rtmag' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
