"""Write synthetic clips to disk, and the H.264 round trip for compression artefacts.

A clip directory holds ``input.mp4`` and ``ideal.mp4`` (lossless RGB: libx264rgb at
qp 0, or FFV1 in ``.mkv`` where that encoder is missing), ``truth.npz`` and
``meta.json``. Every file is written under a temporary name and renamed when
complete, ``meta.json`` last: a directory without ``meta.json`` is not a clip.
"""

from __future__ import annotations

import json
import os
from fractions import Fraction
from pathlib import Path

import cv2
import numpy as np

from rtmag.errors import UserError, VideoError


def lossless_codec() -> tuple[str, str, str, dict]:
    """(codec, pix_fmt, file extension, options) of the lossless RGB encoder used.

    libx264rgb at qp 0 is bit-exact RGB; preset ultrafast encodes a noisy 640x480
    frame in about 6 ms instead of 33 ms (veryfast) for files about 17 % larger.
    """
    import av

    if "libx264rgb" in av.codecs_available:
        return "libx264rgb", "rgb24", ".mp4", {"qp": "0", "preset": "ultrafast"}
    if "ffv1" in av.codecs_available:
        return "ffv1", "bgr0", ".mkv", {}
    raise VideoError("no lossless RGB encoder (libx264rgb or ffv1) in this PyAV/FFmpeg build")


def _fps_fraction(fps: float) -> Fraction:
    return Fraction(fps).limit_denominator(1001)


class LosslessWriter:
    """Stream RGB uint8 (H, W, 3) frames into a lossless video file.

    Writes to ``path`` + ``.part`` and renames on :meth:`close`. Use as a context
    manager; on an exception the partial file is removed.
    """

    def __init__(self, path: Path, size: tuple[int, int], fps: float) -> None:
        import av

        self.codec, self.pix_fmt, _ext, options = lossless_codec()
        self.path = Path(path)
        self.tmp = self.path.with_name("." + self.path.name + ".part")
        fmt = "mp4" if self.path.suffix == ".mp4" else "matroska"
        self._container = av.open(str(self.tmp), mode="w", format=fmt)
        self._stream = self._container.add_stream(self.codec, rate=_fps_fraction(fps))
        self._stream.width, self._stream.height = size
        self._stream.pix_fmt = self.pix_fmt
        self._stream.options = options
        self.size = size

    def write(self, frame: np.ndarray) -> None:
        import av

        if frame.dtype != np.uint8 or frame.shape != (self.size[1], self.size[0], 3):
            raise VideoError(
                f"expected uint8 frame {(self.size[1], self.size[0], 3)}, got "
                f"{frame.dtype} {frame.shape}"
            )
        vf = av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format="rgb24")
        if self.pix_fmt != "rgb24":
            vf = vf.reformat(format=self.pix_fmt)
        for pkt in self._stream.encode(vf):
            self._container.mux(pkt)

    def close(self) -> None:
        for pkt in self._stream.encode():
            self._container.mux(pkt)
        self._container.close()
        os.replace(self.tmp, self.path)

    def abort(self) -> None:
        try:
            self._container.close()
        finally:
            self.tmp.unlink(missing_ok=True)

    def __enter__(self) -> LosslessWriter:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()


def read_video(path: Path) -> np.ndarray:
    """Decode every frame of a video file as (T, H, W, 3) uint8 RGB."""
    import av

    with av.open(str(path)) as container:
        return np.stack([f.to_ndarray(format="rgb24") for f in container.decode(video=0)])


def _i420_to_rgb(i420: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(i420, cv2.COLOR_YUV2RGB_I420)


class H264RoundTrip:
    """Encode frames with libx264 yuv420p at a CRF and decode them again, streaming.

    RGB <-> YUV 4:2:0 uses OpenCV's conversion both ways (swscale's default conversion
    left a bias of about one grey level here). ``push(frame)`` returns the decoded
    frames ready so far (zero-latency tuning makes that one per push), ``flush()`` the
    rest. Frames are (H, W, 3) uint8 RGB.
    """

    def __init__(self, size: tuple[int, int], fps: float, crf: int) -> None:
        import av

        w, h = size
        self._enc = av.CodecContext.create("libx264", "w")
        self._enc.width, self._enc.height = w, h
        self._enc.pix_fmt = "yuv420p"
        self._enc.time_base = 1 / _fps_fraction(fps)
        self._enc.framerate = _fps_fraction(fps)
        self._enc.options = {"crf": str(int(crf)), "preset": "veryfast", "tune": "zerolatency"}
        self._dec = av.CodecContext.create("h264", "r")
        self._pts = 0

    def _decode(self, packets) -> list[np.ndarray]:
        out = []
        for pkt in packets:
            for f in self._dec.decode(pkt):
                out.append(_i420_to_rgb(f.to_ndarray(format="yuv420p")))
        return out

    def push(self, frame: np.ndarray) -> list[np.ndarray]:
        import av

        i420 = cv2.cvtColor(np.ascontiguousarray(frame), cv2.COLOR_RGB2YUV_I420)
        vf = av.VideoFrame.from_ndarray(i420, format="yuv420p")
        vf.pts = self._pts
        self._pts += 1
        return self._decode(self._enc.encode(vf))

    def flush(self) -> list[np.ndarray]:
        out = self._decode(self._enc.encode(None))
        for f in self._dec.decode(None):
            out.append(_i420_to_rgb(f.to_ndarray(format="yuv420p")))
        return out


class ClipWriter:
    """Write a clip frame by frame into ``out_dir`` (see the module docstring).

    Args:
        out_dir: the clip directory (created if missing).
        meta: the clip's meta dict (:func:`rtmag.synth.render.clip_meta`); ``codec``
            and ``lossless`` are filled in.
        force: overwrite a directory that already holds ``input.mp4``.
    """

    def __init__(self, out_dir: str | os.PathLike, meta: dict, force: bool = False) -> None:
        self.out_dir = Path(out_dir)
        if self.out_dir.exists() and not self.out_dir.is_dir():
            raise UserError(f"{self.out_dir} exists and is not a directory")
        codec, _pix, ext, _opts = lossless_codec()
        existing = [p for p in ("input.mp4", "input.mkv") if (self.out_dir / p).exists()]
        if existing and not force:
            raise UserError(
                f"{self.out_dir} already holds a clip ({existing[0]}); "
                "choose another directory or pass force=True (--force)"
            )
        self.out_dir.mkdir(parents=True, exist_ok=True)
        (self.out_dir / "meta.json").unlink(missing_ok=True)
        self.meta = dict(meta)
        self.meta["codec"] = codec
        self.meta["lossless"] = True
        self.meta["files"] = {"input": "input" + ext, "ideal": "ideal" + ext}
        size = tuple(self.meta["size"])
        fps = float(self.meta["fps"])
        self._w_in = LosslessWriter(self.out_dir / ("input" + ext), size, fps)
        self._w_id = LosslessWriter(self.out_dir / ("ideal" + ext), size, fps)
        self._truths: list[dict] = []

    def write(self, frame: np.ndarray, ideal: np.ndarray, truth_t: dict) -> None:
        """Append one frame pair with its per-frame truth."""
        if frame.dtype != np.uint8:
            frame = np.clip(np.rint(frame), 0, 255).astype(np.uint8)
            ideal = np.clip(np.rint(ideal), 0, 255).astype(np.uint8)
        self._w_in.write(frame)
        self._w_id.write(ideal)
        self._truths.append(truth_t)

    def close(self, truth: dict | None = None) -> Path:
        """Finish both videos, write truth.npz then meta.json. Returns ``out_dir``."""
        from rtmag.synth.render import stack_truth

        self._w_in.close()
        self._w_id.close()
        if truth is None:
            truth = stack_truth(self._truths)
        tmp = self.out_dir / ".truth.npz.part"
        with open(tmp, "wb") as fh:
            np.savez_compressed(fh, **truth)
        os.replace(tmp, self.out_dir / "truth.npz")
        tmp = self.out_dir / ".meta.json.part"
        tmp.write_text(json.dumps(self.meta, indent=2) + "\n", encoding="utf-8")
        os.replace(tmp, self.out_dir / "meta.json")
        return self.out_dir

    def abort(self) -> None:
        """Remove the partial files."""
        self._w_in.abort()
        self._w_id.abort()

    def __enter__(self) -> ClipWriter:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is not None:
            self.abort()


def write_clip(clip, out_dir: str | os.PathLike, force: bool = False) -> Path:
    """Write a :class:`~rtmag.synth.render.SynthClip` to ``out_dir``.

    Files: ``input.mp4``, ``ideal.mp4`` (lossless, see :func:`lossless_codec`),
    ``truth.npz`` (``np.savez_compressed`` of ``clip.truth``) and ``meta.json``.
    Refuses a directory that already has ``input.mp4`` unless ``force``.
    """
    with ClipWriter(out_dir, clip.meta, force=force) as w:
        for k in range(len(clip.frames)):
            w._w_in.write(_as_uint8(clip.frames[k]))
            w._w_id.write(_as_uint8(clip.ideal[k]))
        return w.close(truth=clip.truth)


def _as_uint8(x: np.ndarray) -> np.ndarray:
    if x.dtype == np.uint8:
        return x
    return np.clip(np.rint(x), 0, 255).astype(np.uint8)


def read_clip(out_dir: str | os.PathLike) -> tuple[np.ndarray, np.ndarray, dict, dict]:
    """Read a clip directory: ``(frames, ideal, truth, meta)``."""
    d = Path(out_dir)
    meta_path = d / "meta.json"
    if not meta_path.exists():
        raise UserError(f"{d} is not a complete clip (no meta.json)")
    meta = json.loads(meta_path.read_text(encoding="utf-8"))
    files = meta.get("files", {"input": "input.mp4", "ideal": "ideal.mp4"})
    with np.load(d / "truth.npz") as z:
        truth = {k: z[k] for k in z.files}
    return read_video(d / files["input"]), read_video(d / files["ideal"]), truth, meta
