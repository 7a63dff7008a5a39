"""rtmag: real-time, source-specific video magnification.

Implements "DeepMag: Source-Specific Change Magnification Using Gradient Ascent"
(Chen & McDuff, ACM TOG 2020) as a streaming system. Frames are RGB ``uint8``
arrays of shape ``(H, W, 3)`` everywhere in the public API.
"""

__version__ = "0.1.0.dev0"
