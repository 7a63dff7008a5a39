"""Face region: a tracked square face box and the geometry to use it.

The paper area-downsamples the whole frame to ``36 x 36``. With a face region the
same representation is taken from a square box around the face instead, so more of
the 36 x 36 grid is skin and the pulse signal is stronger; the log gain that the
gradient ascent produces for the box is then pasted back into the full frame.

* :class:`Box`: an axis-aligned box in pixel coordinates (floats; pixel ``i`` covers
  ``[i, i + 1)``, so an integer box ``(x0, y0, x1, y1)`` is the slice
  ``frame[y0:y1, x0:x1]``).
* :class:`FaceTracker`: OpenCV Haar cascades (frontal, and profile in both directions
  for yaw up to about 60 degrees) every ``detect_every`` frames on a small grey copy,
  an exponential smoother with a half-life in seconds (variable frame rate) and a
  dead-zone so that a still face gives a box that does not move.
* :func:`crop_resize`: the box area-downsampled to ``36 x 36`` (as
  :func:`rtmag.representations.colour.downsample` does for the whole frame).
* :func:`feather_mask` and :func:`paste_log_gain`: the box's ``36 x 36 x 3`` log gain
  upsampled into the full frame with a raised-cosine edge, zero outside the box.

Frames are RGB ``uint8`` of shape ``(H, W, 3)``.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np

from rtmag.errors import FrameError, UserError
from rtmag.filters import ema_rate

__all__ = [
    "Box",
    "FaceTracker",
    "crop_resize",
    "feather_mask",
    "paste_log_gain",
    "CASCADES",
]

#: Cascade files that ship with opencv-python (``cv2.data.haarcascades``), by role.
CASCADES = {
    "frontal": "haarcascade_frontalface_default.xml",
    "profile": "haarcascade_profileface.xml",
}

# Smallest window the shipped face cascades are trained at (24 x 24 px; profile 20 x 20).
_MIN_WINDOW = 24
# Local contrast equalisation of the grey copy before the cascades (clip limit, tiles):
# finds dim or low-contrast faces (dark skin, plain dark backgrounds) more often.
_CLAHE_CLIP, _CLAHE_TILES = 2.0, 8
# Overlapping raw detections a face needs (OpenCV's minNeighbors).
_MIN_NEIGHBOURS = 3


# --------------------------------------------------------------------------- Box


@dataclass(frozen=True)
class Box:
    """An axis-aligned box in pixels, ``x0 <= x1`` and ``y0 <= y1``.

    Coordinates are continuous: pixel ``(i, j)`` covers ``[i, i+1) x [j, j+1)``, so
    the integer box ``Box(10, 20, 50, 60)`` is ``frame[20:60, 10:50]``.
    """

    x0: float
    y0: float
    x1: float
    y1: float

    def __post_init__(self) -> None:
        vals = [float(v) for v in (self.x0, self.y0, self.x1, self.y1)]
        if not all(math.isfinite(v) for v in vals):
            raise UserError(f"Box coordinates must be finite, got {tuple(vals)}")
        if vals[2] < vals[0] or vals[3] < vals[1]:
            raise UserError(f"Box needs x0 <= x1 and y0 <= y1, got {tuple(vals)}")
        for name, v in zip(("x0", "y0", "x1", "y1"), vals):
            object.__setattr__(self, name, v)

    @classmethod
    def from_centre(cls, cx: float, cy: float, width: float, height: float | None = None) -> Box:
        """The box of the given size (``height`` defaults to ``width``) centred on ``(cx, cy)``."""
        height = width if height is None else height
        return cls(cx - width / 2, cy - height / 2, cx + width / 2, cy + height / 2)

    @property
    def width(self) -> float:
        return self.x1 - self.x0

    @property
    def height(self) -> float:
        return self.y1 - self.y0

    @property
    def centre(self) -> tuple[float, float]:
        """``(cx, cy)`` in pixels."""
        return (self.x0 + self.x1) / 2, (self.y0 + self.y1) / 2

    @property
    def area(self) -> float:
        return self.width * self.height

    def clip(self, W: int, H: int) -> Box:
        """The part of the box inside a ``W x H`` frame (zero-size if it lies outside)."""
        x0 = min(max(self.x0, 0.0), W)
        y0 = min(max(self.y0, 0.0), H)
        x1 = min(max(self.x1, x0), W)
        y1 = min(max(self.y1, y0), H)
        return Box(x0, y0, max(x1, x0), max(y1, y0))

    def expand(self, margin: float) -> Box:
        """Scale width and height by ``1 + margin`` about the centre (``margin > -1``).

        ``expand(0.3)`` adds 15 % of the size on each side.
        """
        if not margin > -1:
            raise UserError(f"Box.expand margin must be > -1, got {margin}")
        cx, cy = self.centre
        return Box.from_centre(cx, cy, self.width * (1 + margin), self.height * (1 + margin))

    def to_int(self) -> tuple[int, int, int, int]:
        """``(x0, y0, x1, y1)`` rounded half up to whole pixels, at least 1 x 1."""
        x0, y0 = math.floor(self.x0 + 0.5), math.floor(self.y0 + 0.5)
        x1, y1 = math.floor(self.x1 + 0.5), math.floor(self.y1 + 0.5)
        return x0, y0, max(x1, x0 + 1), max(y1, y0 + 1)

    def iou(self, other: Box) -> float:
        """Intersection over union with ``other`` (0 when either is empty)."""
        ix = max(0.0, min(self.x1, other.x1) - max(self.x0, other.x0))
        iy = max(0.0, min(self.y1, other.y1) - max(self.y0, other.y0))
        inter = ix * iy
        union = self.area + other.area - inter
        return inter / union if union > 0 else 0.0


# --------------------------------------------------------------------------- geometry


def _check_frame(frame: Any, name: str = "frame") -> np.ndarray:
    if not isinstance(frame, np.ndarray) or frame.ndim != 3 or frame.shape[-1] != 3:
        shape = getattr(frame, "shape", type(frame).__name__)
        raise FrameError(f"{name} must be an RGB numpy array of shape (H, W, 3), got {shape}")
    if frame.shape[0] == 0 or frame.shape[1] == 0:
        raise FrameError(f"{name} has zero size {frame.shape}; expected (H, W, 3), H, W >= 1")
    if frame.dtype != np.uint8 and not np.issubdtype(frame.dtype, np.floating):
        raise FrameError(f"{name} must be uint8 or float, got dtype {frame.dtype}")
    return frame


def _check_hw(H: int, W: int) -> tuple[int, int]:
    H, W = int(H), int(W)
    if H < 1 or W < 1:
        raise UserError(f"frame size must be at least 1 x 1 pixel, got H={H}, W={W}")
    return H, W


def crop_resize(frame: np.ndarray, box: Box, size: int = 36) -> np.ndarray:
    """Area-downsample the box region of a frame to ``size x size x 3`` float32.

    The box edges are rounded to whole pixels (:meth:`Box.to_int`); where the box
    leaves the frame the frame's edge pixels are repeated. The region is averaged with
    ``cv2.INTER_AREA`` on a float copy, exactly as
    :func:`rtmag.representations.colour.downsample` does for a whole frame, so for an
    integer box inside the frame ``crop_resize(f, box) == downsample(f[y0:y1, x0:x1])``.

    Args:
        frame: ``(H, W, 3)`` RGB, ``uint8`` or float.
        box: region in pixels.
        size: output side in pixels (>= 1).

    Returns:
        ``(size, size, 3)`` float32 in the frame's scale (0-255 for ``uint8``).
    """
    frame = _check_frame(frame)
    size = int(size)
    if size < 1:
        raise UserError(f"crop_resize size must be >= 1 pixel, got {size}")
    H, W = frame.shape[:2]
    x0, y0, x1, y1 = box.to_int()
    if 0 <= x0 and x1 <= W and 0 <= y0 and y1 <= H:
        region = frame[y0:y1, x0:x1]
    else:  # edge replication: clamp the row and column indices into the frame
        rows = np.clip(np.arange(y0, y1), 0, H - 1)
        cols = np.clip(np.arange(x0, x1), 0, W - 1)
        region = frame[rows[:, None], cols[None, :]]
    region = region.astype(np.float32, copy=False)
    return cv2.resize(region, (size, size), interpolation=cv2.INTER_AREA).astype(
        np.float32, copy=False
    )


def _ramp(n: int, lo: float, hi: float, feather: float) -> np.ndarray:
    """Raised-cosine edge weights of the pixel centres ``0.5 .. n - 0.5`` for ``[lo, hi]``."""
    c = np.arange(n, dtype=np.float64) + 0.5
    d = np.minimum(c - lo, hi - c)  # distance inside the nearest edge (< 0 outside)
    if feather <= 0:
        return (d > 0).astype(np.float32)
    r = np.clip(d / feather, 0.0, 1.0)
    return (0.5 - 0.5 * np.cos(np.pi * r)).astype(np.float32)


def _check_feather_frac(feather_frac: float) -> float:
    feather_frac = float(feather_frac)
    if not 0.0 <= feather_frac <= 0.5:
        raise UserError(f"feather_frac must be in [0, 0.5] of the box side, got {feather_frac}")
    return feather_frac


def feather_mask(H: int, W: int, box: Box, feather_frac: float = 0.15) -> np.ndarray:
    """A soft-edged box mask, ``(H, W)`` float32 in ``[0, 1]``.

    The feather width is ``f = feather_frac * min(box.width, box.height)`` pixels. The
    mask is 1 inside the box shrunk by ``f`` on each side, falls as a raised cosine
    ``0.5 - 0.5 cos(pi d / f)`` (``d``: distance of the pixel centre inside the box
    edge) to 0 at the edge, and is 0 outside. It is the product of a row and a column
    profile, so it is symmetric about the box's centre lines.

    Args:
        H, W: frame size in pixels.
        box: the box (float coordinates are used as they are, not rounded).
        feather_frac: feather width as a fraction of the box's shorter side, ``[0, 0.5]``;
            0 gives a hard edge.
    """
    H, W = _check_hw(H, W)
    f = _check_feather_frac(feather_frac) * min(box.width, box.height)
    wy = _ramp(H, box.y0, box.y1, f)
    wx = _ramp(W, box.x0, box.x1, f)
    return wy[:, None] * wx[None, :]


def paste_log_gain(
    log_gain_36: np.ndarray, box: Box, H: int, W: int, feather: float | np.ndarray = 0.15
) -> np.ndarray:
    """Put the box's low-resolution log gain back into a full ``(H, W, 3)`` frame.

    The ``(h, w, 3)`` gain (36 x 36 x 3 in rtmag) is upsampled bilinearly
    (``cv2.INTER_LINEAR``, pixel centres aligned) onto the box rounded to whole pixels
    as :func:`crop_resize` rounds it, so each low-resolution cell returns to the
    pixels it was averaged from; it is multiplied by the feather mask and is 0 outside
    the box. Only the box area is computed.

    Args:
        log_gain_36: ``(h, w, 3)`` float log gain (natural log) of the box.
        box: the box the gain was computed for.
        H, W: full frame size in pixels.
        feather: the feather fraction for :func:`feather_mask` of the rounded box, or
            a precomputed ``(H, W)`` mask.

    Returns:
        ``(H, W, 3)`` float32 log gain, e.g. for
        :func:`rtmag.representations.colour.apply_log_gain`-style ``frame * exp(gain)``.
    """
    H, W = _check_hw(H, W)
    g = np.asarray(log_gain_36)
    if g.ndim != 3 or g.shape[-1] != 3 or g.shape[0] < 1 or g.shape[1] < 1:
        raise FrameError(f"log_gain_36 must have shape (h, w, 3), got {g.shape}")
    out = np.zeros((H, W, 3), np.float32)
    x0, y0, x1, y1 = box.to_int()
    cx0, cy0, cx1, cy1 = max(x0, 0), max(y0, 0), min(x1, W), min(y1, H)
    if cx1 <= cx0 or cy1 <= cy0:
        return out
    up = cv2.resize(
        g.astype(np.float32, copy=False), (x1 - x0, y1 - y0), interpolation=cv2.INTER_LINEAR
    )
    up = up[cy0 - y0 : cy1 - y0, cx0 - x0 : cx1 - x0]
    if isinstance(feather, np.ndarray):
        if feather.shape != (H, W):
            raise UserError(f"feather mask must have shape (H, W) = {(H, W)}, got {feather.shape}")
        mask = feather[cy0:cy1, cx0:cx1].astype(np.float32, copy=False)
    else:
        f = _check_feather_frac(feather) * min(x1 - x0, y1 - y0)
        wy = _ramp(y1 - y0, 0, y1 - y0, f)[cy0 - y0 : cy1 - y0]
        wx = _ramp(x1 - x0, 0, x1 - x0, f)[cx0 - x0 : cx1 - x0]
        mask = wy[:, None] * wx[None, :]
    np.multiply(up, mask[:, :, None], out=out[cy0:cy1, cx0:cx1])
    return out


# --------------------------------------------------------------------------- tracker


def _load_cascade(directory: str, filename: str) -> cv2.CascadeClassifier:
    path = os.path.join(directory, filename)
    if not os.path.isfile(path):
        raise UserError(
            f"face cascade {filename} not found in {directory!r}; the face region needs "
            "the Haar cascades that ship with opencv-python (cv2.data.haarcascades). "
            "Reinstall it with `pip install --force-reinstall opencv-python`, or use the "
            "whole-frame region."
        )
    cascade = cv2.CascadeClassifier(path)
    if cascade.empty():
        raise UserError(f"face cascade {path} could not be loaded (corrupt file?)")
    return cascade


class FaceTracker:
    """Track one face as a square box, frame by frame, for the face-region option.

    Every ``detect_every``-th frame the Haar cascades run on a grey copy scaled to
    ``detect_width`` pixels wide and contrast-equalised (CLAHE): frontal first, then
    profile, then profile on the mirrored image (the other yaw direction), stopping at
    the first that finds a face.
    While a face is tracked only a window of 2.5 face sides around it and face sizes
    of 0.6-1.6 times the current one are searched (a few ms); otherwise the whole
    frame is searched, one cascade per detection frame in turn so that no frame
    costs three full searches. The detection nearest the current box is taken (the
    largest when there is none). A face that leaves the search window between two
    detections (a jump of more than 0.75 face sides) is found again only after the
    box is lost (``lost_after_s``).

    The detected centre and side are smoothed by an exponential filter whose weight
    follows the time since the last detection, ``a = 1 - 2**(-dt / halflife)``, so
    the smoothing is the same at any frame rate. A dead-zone (backlash) of
    ``deadzone_px`` then holds the output still until the smoothed value has moved by
    more than that, and after that follows it without a jump: detector jitter on a
    still face, mostly below the dead-zone, barely moves the box. The face box is
    enlarged by ``margin`` (forehead and cheeks) and kept square and inside the frame.

    When detections fail the last box is kept for ``lost_after_s`` seconds after the
    last detection; after that :meth:`update` returns ``None`` until a face is found.

    Args:
        detect_every: run the detector on every n-th frame (>= 1).
        smoothing_halflife_s: half-life of the smoother in seconds (>= 0; 0: none).
        margin: the box is ``(1 + margin)`` times the detected face's side (>= 0).
        min_face_frac: smallest face searched, as a fraction of the frame's shorter
            side, (0, 1].
        lost_after_s: how long to keep the last box without a detection (>= 0).
        deadzone_px: dead-zone of the output box's centre and side, in pixels (>= 0).
        detect_width: width of the grey copy the cascades run on (>= 64); frames
            narrower than that are not enlarged.
        cascade_dir: folder of the cascade files; ``None``: ``cv2.data.haarcascades``.

    Attributes (read-only state):
        face: the last raw detection (before smoothing and margin) or ``None``.
        detected: whether this frame's detection found a face; ``None`` when no
            detection ran on this frame.
        attempts, hits: detection runs and successful ones since the start.

    Raises:
        UserError: a parameter out of range, or a cascade file missing.
    """

    def __init__(
        self,
        detect_every: int = 3,
        smoothing_halflife_s: float = 0.7,
        margin: float = 0.3,
        min_face_frac: float = 0.08,
        lost_after_s: float = 2.0,
        deadzone_px: float = 1.0,
        detect_width: int = 320,
        cascade_dir: str | os.PathLike | None = None,
    ) -> None:
        if int(detect_every) != detect_every or detect_every < 1:
            raise UserError(f"detect_every must be an integer >= 1, got {detect_every}")
        checks = [
            ("smoothing_halflife_s", smoothing_halflife_s, 0.0, math.inf),
            ("margin", margin, 0.0, math.inf),
            ("lost_after_s", lost_after_s, 0.0, math.inf),
            ("deadzone_px", deadzone_px, 0.0, math.inf),
        ]
        for name, v, lo, hi in checks:
            if not (lo <= float(v) < hi):
                raise UserError(f"{name} must be >= {lo} and finite, got {v}")
        if not 0.0 < float(min_face_frac) <= 1.0:
            raise UserError(f"min_face_frac must be in (0, 1], got {min_face_frac}")
        if int(detect_width) != detect_width or detect_width < 64:
            raise UserError(f"detect_width must be an integer >= 64 pixels, got {detect_width}")
        self.detect_every = int(detect_every)
        self.smoothing_halflife_s = float(smoothing_halflife_s)
        self.margin = float(margin)
        self.min_face_frac = float(min_face_frac)
        self.lost_after_s = float(lost_after_s)
        self.deadzone_px = float(deadzone_px)
        self.detect_width = int(detect_width)
        directory = os.fspath(cascade_dir) if cascade_dir is not None else cv2.data.haarcascades
        self._frontal = _load_cascade(directory, CASCADES["frontal"])
        self._profile = _load_cascade(directory, CASCADES["profile"])
        self._clahe = cv2.createCLAHE(_CLAHE_CLIP, (_CLAHE_TILES, _CLAHE_TILES))
        self.reset()

    def reset(self) -> None:
        """Forget the face, the timestamps and the frame size (e.g. for a new clip)."""
        self.face: Box | None = None
        self.detected: bool | None = None
        self.attempts = 0
        self.hits = 0
        self._frame_index = 0
        self._shape: tuple[int, int] | None = None
        self._t_last: float | None = None
        self._t_detect: float | None = None  # time of the last successful detection
        self._state: np.ndarray | None = None  # smoothed (cx, cy, side) of the face
        self._out: np.ndarray | None = None  # dead-zoned (cx, cy, side) of the face
        self._search_turn = 0

    # ------------------------------------------------------------------ public

    def update(self, frame: np.ndarray, t: float) -> Box | None:
        """Take the next frame and its time in seconds; return the face box or ``None``.

        Raises:
            FrameError: not an RGB ``(H, W, 3)`` array, a frame size different from
                the previous frames' (call :meth:`reset` first), or a time that is
                not finite or earlier than the previous frame's.
        """
        frame = _check_frame(frame)
        t = float(t)
        if not math.isfinite(t):
            raise FrameError(f"frame time must be a finite number of seconds, got {t}")
        if self._t_last is not None and t < self._t_last:
            raise FrameError(
                f"frame times must not go backwards: got t={t} s after t={self._t_last} s; "
                "call FaceTracker.reset() when starting a new clip"
            )
        H, W = frame.shape[:2]
        if self._shape is not None and self._shape != (H, W):
            raise FrameError(
                f"frame size changed from {self._shape[1]}x{self._shape[0]} to {W}x{H}; "
                "call FaceTracker.reset() when the video source changes"
            )
        self._shape = (H, W)
        self._t_last = t

        self.detected = None
        if self._frame_index % self.detect_every == 0:
            face = self._detect(frame)
            self.attempts += 1
            self.detected = face is not None
            if face is not None:
                self.hits += 1
                self.face = face
                self._smooth(face, t)
        self._frame_index += 1

        if self._t_detect is not None and t - self._t_detect > self.lost_after_s:
            self._state = self._out = None
            self._t_detect = None
            self.face = None
        if self._out is None:
            return None
        return self._square_box(self._out, W, H)

    # ------------------------------------------------------------------ internals

    def _smooth(self, face: Box, t: float) -> None:
        cx, cy = face.centre
        meas = np.array([cx, cy, max(face.width, face.height)])
        if self._state is None or self._t_detect is None:
            self._state = meas
            self._out = meas.copy()
        else:
            a = ema_rate(self.smoothing_halflife_s, max(t - self._t_detect, 0.0))
            self._state = self._state + a * (meas - self._state)
            # backlash: hold still within the dead-zone, then follow at its edge
            d = self.deadzone_px
            self._out = self._state - np.clip(self._state - self._out, -d, d)
        self._t_detect = t

    def _square_box(self, state: np.ndarray, W: int, H: int) -> Box:
        cx, cy, side = state
        side = min(side * (1.0 + self.margin), W, H)
        cx = min(max(cx, side / 2), W - side / 2)
        cy = min(max(cy, side / 2), H - side / 2)
        return Box.from_centre(cx, cy, side)

    def _detect(self, frame: np.ndarray) -> Box | None:
        H, W = frame.shape[:2]
        scale = min(1.0, self.detect_width / W)
        small = frame
        if scale < 1.0:
            size = (self.detect_width, max(1, round(H * scale)))
            small = cv2.resize(frame, size, interpolation=cv2.INTER_AREA)
        if small.dtype != np.uint8:
            small = np.clip(small, 0, 255).astype(np.uint8)
        grey = cv2.cvtColor(small, cv2.COLOR_RGB2GRAY)
        grey = self._clahe.apply(grey)
        gh, gw = grey.shape
        min_side = max(_MIN_WINDOW, int(self.min_face_frac * min(gh, gw)))

        if self._state is not None:  # tracking: a window around the face, nearby sizes
            cx, cy, side = self._state * scale
            lo = max(min_side, int(0.6 * side))
            hi = max(lo + 1, int(1.6 * side))
            win = Box.from_centre(cx, cy, 2.5 * side).clip(gw, gh)
            wx0, wy0, wx1, wy1 = (
                int(v) for v in (win.x0, win.y0, math.ceil(win.x1), math.ceil(win.y1))
            )
            roi = grey[wy0:wy1, wx0:wx1]
            if min(roi.shape) < lo:
                return None
            for kind in ("frontal", "profile", "profile_flipped"):
                found = self._run_cascade(kind, roi, lo, hi)
                if found:
                    boxes = [
                        Box(x + wx0, y + wy0, x + wx0 + w, y + wy0 + h) for x, y, w, h in found
                    ]
                    best = min(boxes, key=lambda b: math.dist(b.centre, (cx, cy)))
                    return _scale_box(best, 1.0 / scale)
            return None

        # searching: the whole frame, one cascade per detection frame in turn
        kind = ("frontal", "profile", "profile_flipped")[self._search_turn % 3]
        self._search_turn += 1
        found = self._run_cascade(kind, grey, min_side, min(gh, gw))
        if not found:
            return None
        self._search_turn = 0  # start with the frontal cascade next time
        x, y, w, h = max(found, key=lambda r: r[2] * r[3])
        return _scale_box(Box(x, y, x + w, y + h), 1.0 / scale)

    def _run_cascade(self, kind: str, grey: np.ndarray, lo: int, hi: int) -> list:
        flipped = kind == "profile_flipped"
        img = cv2.flip(grey, 1) if flipped else grey
        cascade = self._frontal if kind == "frontal" else self._profile
        found = cascade.detectMultiScale(
            img, scaleFactor=1.1, minNeighbors=_MIN_NEIGHBOURS, minSize=(lo, lo), maxSize=(hi, hi)
        )
        rects = [tuple(int(v) for v in r) for r in np.asarray(found).reshape(-1, 4)]
        if flipped:
            gw = grey.shape[1]
            rects = [(gw - x - w, y, w, h) for x, y, w, h in rects]
        return rects


def _scale_box(box: Box, s: float) -> Box:
    return Box(box.x0 * s, box.y0 * s, box.x1 * s, box.y1 * s)
