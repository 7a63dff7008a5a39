"""Video file input and output with PyAV.

Frames are RGB ``uint8`` arrays of shape ``(H, W, 3)``; a clip is ``(T, H, W, 3)``.
Timestamps are integers in the stream's ``time_base`` (a :class:`fractions.Fraction`
of a second); ``time_s`` is the same instant in seconds.

* :func:`probe` reads a file's header into a :class:`VideoInfo`.
* :class:`VideoReader` decodes frame by frame; :func:`read_video` reads a whole clip.
* :class:`VideoWriter` encodes frame by frame, writing to a hidden temporary file
  that is renamed onto the target only when :meth:`VideoWriter.close` succeeds;
  :func:`write_video` writes a whole clip.
* :func:`available_encoders` says which encoders this FFmpeg build has (``rtmag env``).

Every failure that the user can fix raises :class:`rtmag.errors.VideoError` (or
:class:`rtmag.errors.FrameError` for a bad frame) naming the file and what to do.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction

import av
import numpy as np

from rtmag.errors import FrameError, VideoError

__all__ = [
    "DecodedFrame",
    "VideoInfo",
    "VideoReader",
    "VideoWriter",
    "available_encoders",
    "probe",
    "read_video",
    "write_video",
]

#: Encoders that rtmag may use, in the order ``rtmag env`` lists them.
ENCODERS = ("libx264", "libx264rgb", "mpeg4", "libvpx-vp9", "ffv1", "aac", "libopenh264")

#: ``VideoWriter(codec=...)`` names, each a chain of encoders tried in order.
CODECS = {
    "h264": ("libx264", "mpeg4"),
    "mpeg4": ("mpeg4",),
    "vp9": ("libvpx-vp9",),
    "ffv1": ("ffv1",),
}

#: Lossless chains: libx264rgb at qp 0 is bit-exact for rgb24 input, as is ffv1.
LOSSLESS_CODECS = {
    "h264": ("libx264rgb", "ffv1"),
    "ffv1": ("ffv1",),
    "vp9": ("libvpx-vp9",),
}

# Frames may be this many short of the container's count before the reader calls the
# file truncated: some muxers count a frame or two that an edit list then hides.
_FRAME_COUNT_SLACK = 2

# MPEG-4 Part 2 cannot code a time base finer than 1/65535 s.
_MPEG4_MAX_TB_DEN = 65535


def available_encoders() -> dict[str, bool]:
    """Return ``{encoder name: available}`` for the encoders rtmag knows about."""
    return {name: _has_encoder(name) for name in ENCODERS}


def _has_encoder(name: str) -> bool:
    try:
        av.Codec(name, "w")
    except Exception:  # UnknownCodecError, or a decoder-only name
        return False
    return True


# --------------------------------------------------------------------------- reading


@dataclass(frozen=True)
class VideoInfo:
    """What a video file's header says about its first video stream.

    Attributes:
        path: The file, as given.
        width, height: Frame size in pixels.
        fps: Frames per second (the stream's average rate, else its guessed rate).
        frames: Number of frames; ``None`` when neither the container nor the
            duration tells.
        frames_estimated: ``True`` when ``frames`` is ``round(duration_s * fps)``
            rather than the container's count.
        duration_s: Duration in seconds, or ``None`` if unknown.
        time_base: Unit of the stream's timestamps, in seconds.
        codec: Video codec name (e.g. ``"h264"``).
        has_audio: Whether the file has an audio stream.
        audio_codec: The first audio stream's codec name, or ``None``.
    """

    path: str
    width: int
    height: int
    fps: float
    frames: int | None
    duration_s: float | None
    time_base: Fraction
    codec: str
    has_audio: bool
    audio_codec: str | None
    frames_estimated: bool = False


@dataclass(frozen=True)
class DecodedFrame:
    """One decoded frame.

    Attributes:
        image: RGB ``uint8`` array ``(H, W, 3)``.
        pts: Presentation timestamp in ``VideoInfo.time_base`` units, or ``None``.
        time_s: Presentation time in seconds (``index / fps`` when ``pts`` is ``None``).
        index: 0-based position in display order.
    """

    image: np.ndarray
    pts: int | None
    time_s: float
    index: int


def _open_input(path: str | os.PathLike) -> tuple[av.container.InputContainer, av.VideoStream]:
    """Open ``path`` for reading and return it with its first video stream."""
    path = os.fspath(path)
    if not os.path.exists(path):
        raise VideoError(f"{path}: no such file; check the path.")
    if os.path.isdir(path):
        raise VideoError(f"{path}: is a folder, not a video file.")
    try:
        container = av.open(path, mode="r")
    except av.FFmpegError as exc:
        raise VideoError(
            f"{path}: cannot be opened as a video ({exc.strerror or exc}). It is not a "
            "video file, or it is corrupt or truncated (an MP4 whose recording was "
            "interrupted has no index); re-export or re-download it."
        ) from exc
    if not container.streams.video:
        container.close()
        raise VideoError(f"{path}: has no video stream (audio-only or not a video file).")
    return container, container.streams.video[0]


def _info_from(path: str, container, stream) -> VideoInfo:
    time_base = Fraction(stream.time_base) if stream.time_base else Fraction(1, 1_000_000)
    duration_s = None
    if stream.duration:
        duration_s = float(stream.duration * time_base)
    elif container.duration:
        duration_s = container.duration / av.time_base
    rate = stream.average_rate or stream.guessed_rate or stream.base_rate
    frames = stream.frames or None
    if rate:
        fps = float(rate)
    elif frames and duration_s:
        fps = frames / duration_s
    else:
        raise VideoError(f"{path}: the video stream has no frame rate; re-encode it.")
    estimated = False
    if frames is None and duration_s:
        frames = max(1, round(duration_s * fps))
        estimated = True
    audio = container.streams.audio
    return VideoInfo(
        path=path,
        width=stream.codec_context.width,
        height=stream.codec_context.height,
        fps=fps,
        frames=frames,
        duration_s=duration_s,
        time_base=time_base,
        codec=stream.codec_context.name,
        has_audio=bool(audio),
        audio_codec=audio[0].codec_context.name if audio else None,
        frames_estimated=estimated,
    )


def probe(path: str | os.PathLike) -> VideoInfo:
    """Read the header of the video file at ``path``; decode nothing.

    Raises:
        VideoError: the file is missing, not a video, or unreadable.
    """
    container, stream = _open_input(path)
    try:
        return _info_from(os.fspath(path), container, stream)
    finally:
        container.close()


class VideoReader:
    """Decode a video file frame by frame as RGB ``uint8`` ``(H, W, 3)`` arrays.

    Use as a context manager and iterate::

        with VideoReader("in.mp4") as reader:
            for frame in reader:  # DecodedFrame
                ...

    A decode error mid-stream, or a stream that ends well short of the frame count in
    the container's index, raises :class:`VideoError` naming the frame: a damaged file
    never looks like a short one. Frames whose size changes mid-stream are scaled to
    the first frame's size.
    """

    def __init__(self, path: str | os.PathLike):
        self.path = os.fspath(path)
        self._container, self._stream = _open_input(self.path)
        try:
            self.info = _info_from(self.path, self._container, self._stream)
        except BaseException:
            self._container.close()
            raise
        self._stream.thread_type = "AUTO"
        self._started = False

    def __enter__(self) -> VideoReader:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        """Release the file. Safe to call twice."""
        self._container.close()

    def __iter__(self) -> Iterator[DecodedFrame]:
        if self._started:
            raise VideoError(f"{self.path}: a VideoReader can be iterated only once; open another.")
        self._started = True
        return self._frames()

    def _frames(self) -> Iterator[DecodedFrame]:
        info = self.info
        index = 0
        try:
            for packet in self._container.demux(self._stream):
                for frame in packet.decode():
                    yield self._to_decoded(frame, index)
                    index += 1
            # demux() ends with an empty packet, which flushed the decoder above.
        except av.FFmpegError as exc:
            raise VideoError(
                f"{self.path}: decoding failed at frame {index} (about "
                f"{index / info.fps:.2f} s): {exc.strerror or exc}. The file is corrupt "
                "or truncated; re-export or re-download it."
            ) from exc
        if index == 0:
            raise VideoError(f"{self.path}: the video stream has no frames.")
        if (
            info.frames is not None
            and not info.frames_estimated
            and index < info.frames - _FRAME_COUNT_SLACK
        ):
            raise VideoError(
                f"{self.path}: the stream ended after {index} of the {info.frames} frames "
                "its index lists; the file is truncated. Re-export or re-download it."
            )

    def _to_decoded(self, frame: av.VideoFrame, index: int) -> DecodedFrame:
        info = self.info
        if frame.width == info.width and frame.height == info.height:
            image = frame.to_ndarray(format="rgb24")
        else:
            image = frame.to_ndarray(format="rgb24", width=info.width, height=info.height)
        time_s = float(frame.pts * info.time_base) if frame.pts is not None else index / info.fps
        return DecodedFrame(image=image, pts=frame.pts, time_s=time_s, index=index)


def read_video(
    path: str | os.PathLike, max_frames: int | None = None
) -> tuple[np.ndarray, VideoInfo]:
    """Decode a whole clip (or its first ``max_frames``) into memory.

    Returns:
        ``(frames, info)``: frames is RGB ``uint8`` ``(T, H, W, 3)``.

    Raises:
        VideoError: as :class:`VideoReader`.
    """
    if max_frames is not None and max_frames < 1:
        raise ValueError(f"max_frames must be None or >= 1, got {max_frames}")
    with VideoReader(path) as reader:
        info = reader.info
        expected = info.frames if info.frames and not info.frames_estimated else None
        if max_frames is not None:
            expected = min(expected, max_frames) if expected else None
        shape = (info.height, info.width, 3)
        out = np.empty((expected, *shape), np.uint8) if expected else None
        extra: list[np.ndarray] = []
        count = 0
        for frame in reader:
            if out is not None and count < len(out):
                out[count] = frame.image
            else:
                extra.append(frame.image)
            count += 1
            if max_frames is not None and count >= max_frames:
                break
    if out is None:
        return np.stack(extra), info
    if count < len(out):
        return out[:count], info
    if extra:
        return np.concatenate([out, np.stack(extra)]), info
    return out, info


# --------------------------------------------------------------------------- writing


def _as_fraction(value, what: str) -> Fraction:
    try:
        frac = Fraction(value)
    except (TypeError, ValueError, OverflowError) as exc:
        raise VideoError(f"{what} must be a positive number, got {value!r}") from exc
    if frac <= 0:
        raise VideoError(f"{what} must be positive, got {value!r}")
    return frac


def _rate_fraction(fps: float | Fraction) -> Fraction:
    """Turn ``29.97002997`` into ``30000/1001`` and ``30.0`` into ``30``."""
    rate = _as_fraction(fps, "fps")
    if isinstance(fps, float):
        rate = rate.limit_denominator(1001)
    return rate


#: x264's speed presets, fastest first
X264_PRESETS = (
    "ultrafast",
    "superfast",
    "veryfast",
    "faster",
    "fast",
    "medium",
    "slow",
    "slower",
    "veryslow",
    "placebo",
)


class VideoWriter:
    """Encode RGB ``uint8`` ``(H, W, 3)`` frames into a video file.

    Args:
        path: Output file; its extension chooses the container (``.mp4``, ``.mkv``...).
        fps: Nominal frame rate (float or :class:`~fractions.Fraction`).
        size: ``(width, height)``; ``None`` takes it from the first frame.
        codec: ``"h264"`` (default), ``"mpeg4"``, ``"vp9"`` or ``"ffv1"``. ``"h264"``
            is libx264 yuv420p at ``crf``; an odd width or height switches to yuv444p
            (no padding, no cropping); without libx264 it falls back to mpeg4 at
            quality 2 with a warning.
        crf: x264 constant rate factor, 0 (best) to 51.
        preset: x264 speed preset (default ``"fast"``: on a 640x480 synthetic clip here
            the same PSNR as ``"medium"`` to 0.02 dB, a 4% smaller file, 25% less CPU).
        threads: encoder threads; 0 lets FFmpeg choose (x264: frame threads across
            the cores). 1 costs the least CPU per frame (7.5 against 8.8 ms at
            640x480, medium) for a writer that already runs in a thread of its own,
            beside other work (the file path's write-behind).
        time_base: Unit of the ``pts`` passed to :meth:`write`, e.g. the source's
            ``VideoInfo.time_base``; ``None`` means ``1/fps`` (pts = frame index).
        audio_from: A file whose first audio stream is copied, packet for packet, into
            the output; re-encoded to AAC only when the output container cannot hold
            its codec. Audio past the last video frame is dropped.
        overwrite: Replace an existing ``path``; otherwise that is a :class:`VideoError`.
        lossless: Bit-exact RGB: libx264rgb rgb24 at qp 0, else ffv1 (needs ``.mkv``).

    Attributes:
        codec_name: The encoder actually used (e.g. ``"libx264"``).
        notes: Human-readable notes on every choice made for the user (fallbacks,
            pixel format, audio handling).

    The file is written to ``.<name>.partial<ext>`` beside ``path`` and renamed onto
    ``path`` only when :meth:`close` succeeds. An exception inside a ``with`` block,
    a failed close, or closing with no frames written deletes the temporary file.
    """

    def __init__(
        self,
        path: str | os.PathLike,
        fps: float | Fraction,
        size: tuple[int, int] | None = None,
        codec: str = "h264",
        crf: int = 18,
        time_base: Fraction | None = None,
        audio_from: str | os.PathLike | None = None,
        overwrite: bool = False,
        lossless: bool = False,
        preset: str = "fast",
        threads: int = 0,
    ):
        self.path = os.fspath(path)
        self.rate = _rate_fraction(fps)
        self.time_base = _as_fraction(time_base, "time_base") if time_base else 1 / self.rate
        if not 0 <= crf <= 51:
            raise VideoError(f"crf must be between 0 and 51, got {crf}")
        self.crf = int(crf)
        if preset not in X264_PRESETS:
            raise VideoError(
                f"unknown x264 preset {preset!r}; choose one of {', '.join(X264_PRESETS)}"
            )
        self.preset = preset
        if not (isinstance(threads, int) and threads >= 0):
            raise VideoError(
                f"threads must be an integer >= 0 (0: the encoder chooses), got {threads!r}"
            )
        self.threads = threads
        # One frame period in time_base units: the pts step when write() gets no pts.
        self._pts_step = max(1, round(1 / (self.rate * self.time_base)))
        self.lossless = bool(lossless)
        self.overwrite = bool(overwrite)
        self.audio_from = os.fspath(audio_from) if audio_from is not None else None
        self.notes: list[str] = []
        self.size: tuple[int, int] | None = None
        if size is not None:
            self.size = self._check_size(size)

        folder, name = os.path.split(os.path.abspath(self.path))
        stem, ext = os.path.splitext(name)
        if not ext:
            raise VideoError(f"{self.path}: give the output a file extension such as .mp4 or .mkv")
        if not os.path.isdir(folder):
            raise VideoError(f"{self.path}: the folder {folder} does not exist; create it first.")
        if os.path.exists(self.path) and not self.overwrite:
            raise VideoError(f"{self.path}: exists; pass --force / overwrite=True to replace it.")
        self._ext = ext.lower()
        self._tmp_path = os.path.join(folder, f".{stem}.partial{ext}")
        if self.audio_from is not None and not os.path.exists(self.audio_from):
            raise VideoError(f"{self.audio_from}: audio source not found; check the path.")

        self.codec_name = self._choose_encoder(codec)
        self._container = None
        self._stream = None
        self._audio = None  # (source, source stream, packet iterator, out stream, reencode)
        self._audio_pending = None
        self._frames = 0
        self._last_pts: int | None = None
        self._end_time = 0.0
        self._closed = False

    # -- set-up

    def _choose_encoder(self, codec: str) -> str:
        table = LOSSLESS_CODECS if self.lossless else CODECS
        if codec not in table:
            kind = "lossless codecs" if self.lossless else "codecs"
            raise VideoError(f"unknown codec {codec!r}; known {kind}: {', '.join(sorted(table))}")
        chain = table[codec]
        for name in chain:
            if _has_encoder(name):
                if name != chain[0]:
                    msg = f"encoder {chain[0]} is not in this FFmpeg build; using {name} instead"
                    warnings.warn(msg, RuntimeWarning, stacklevel=3)
                    self.notes.append(msg)
                return name
        raise VideoError(
            f"none of the encoders for codec {codec!r} ({', '.join(chain)}) is in this FFmpeg "
            "build; run `rtmag env` to see which are, and choose another codec."
        )

    def _check_size(self, size) -> tuple[int, int]:
        try:
            width, height = (int(v) for v in size)
        except (TypeError, ValueError) as exc:
            raise VideoError(f"size must be (width, height), got {size!r}") from exc
        if width < 1 or height < 1:
            raise VideoError(f"size must be positive, got {size!r}")
        return width, height

    def _open(self) -> None:
        width, height = self.size
        options = {"movflags": "faststart"} if self._ext in (".mp4", ".mov", ".m4v") else {}
        try:
            self._container = av.open(self._tmp_path, mode="w", options=options)
        except (av.FFmpegError, ValueError) as exc:
            raise VideoError(f"{self.path}: cannot create the output file: {exc}") from exc
        self._remove_on_error(self._add_video_stream, width, height)
        if self.audio_from is not None:
            self._remove_on_error(self._add_audio_stream)

    def _remove_on_error(self, fn, *args) -> None:
        try:
            fn(*args)
        except BaseException:
            self.abort()
            raise

    def _add_video_stream(self, width: int, height: int) -> None:
        name = self.codec_name
        container = self._container
        if name not in container.supported_codecs:
            raise VideoError(
                f"{self.path}: the {container.format.name} container cannot hold {name}; "
                "use a .mkv file name."
            )
        stream = container.add_stream(name, rate=self.rate)
        stream.width, stream.height = width, height
        cc = stream.codec_context
        codec_tb = self.time_base
        if name == "libx264":
            odd = width % 2 or height % 2
            stream.pix_fmt = "yuv444p" if odd else "yuv420p"
            stream.options = {"crf": str(self.crf), "preset": self.preset}
            if odd:
                self.notes.append(
                    f"odd frame size {width}x{height}: encoded as yuv444p (High 4:4:4), "
                    "which some players cannot play; use an even size for yuv420p"
                )
        elif name == "libx264rgb":
            stream.pix_fmt = "rgb24"
            stream.options = {"qp": "0"}
        elif name == "ffv1":
            stream.pix_fmt = "bgr0"
            if self._ext != ".mkv":
                self.notes.append(f"ffv1 in {self._ext} plays in few players; .mkv is safer")
        elif name == "libvpx-vp9":
            if self.lossless:
                stream.pix_fmt = "gbrp"
                stream.options = {"lossless": "1"}
            else:
                stream.pix_fmt = "yuv420p"
                stream.options = {"crf": str(self.crf), "b": "0"}
        elif name == "mpeg4":
            stream.pix_fmt = "yuv420p"
            cc.qscale = True
            cc.global_quality = 2
            if codec_tb.denominator > _MPEG4_MAX_TB_DEN:
                codec_tb = Fraction(1, 60000)
                self.notes.append(
                    f"mpeg4 cannot code time base {self.time_base}; timestamps rounded to 1/60000 s"
                )
        stream.time_base = self.time_base
        cc.time_base = codec_tb
        cc.thread_count = self.threads
        self._stream = stream

    def _add_audio_stream(self) -> None:
        try:
            src = av.open(self.audio_from, mode="r")
        except av.FFmpegError as exc:
            raise VideoError(f"{self.audio_from}: cannot be read for its audio: {exc}") from exc
        if not src.streams.audio:
            src.close()
            self.notes.append(f"{self.audio_from} has no audio stream; output has none")
            return
        src_stream = src.streams.audio[0]
        name = src_stream.codec_context.name
        if name in self._container.supported_codecs:
            out_stream = self._container.add_stream_from_template(src_stream)
            self.notes.append(f"audio: {name} copied from {self.audio_from} without re-encoding")
            reencode = False
        elif "aac" not in self._container.supported_codecs:
            src.close()
            raise VideoError(
                f"{self.path}: the {self._container.format.name} container holds neither the "
                f"{name} audio of {self.audio_from} nor aac; use a .mp4 or .mkv file name."
            )
        else:
            out_stream = self._container.add_stream("aac", rate=src_stream.codec_context.rate)
            src_cc = src_stream.codec_context
            # aac refuses an unordered layout such as "1 channels" (common in WAV files).
            out_stream.layout = {1: "mono", 2: "stereo"}.get(src_cc.channels, src_cc.layout)
            out_stream.format = "fltp"  # the only sample format of FFmpeg's aac encoder
            self.notes.append(
                f"audio: {self._container.format.name} cannot hold {name}; re-encoded to aac"
            )
            reencode = True
        self._audio = (src, src_stream, src.demux(src_stream), out_stream, reencode)

    # -- audio

    def _mux_audio_until(self, t_end: float | None) -> None:
        """Copy source audio packets that start before ``t_end`` s (all if ``None``)."""
        if self._audio is None:
            return
        src, src_stream, packets, out_stream, reencode = self._audio
        tb = src_stream.time_base
        while True:
            packet = self._audio_pending
            if packet is None:
                packet = next(packets, None)
                if packet is None:
                    break
                if packet.dts is None:  # demux's final flush packet
                    continue
            if t_end is not None and packet.pts is not None and packet.pts * tb >= t_end:
                self._audio_pending = packet
                return
            self._audio_pending = None
            if reencode:
                for frame in packet.decode():
                    frame.pts = None
                    self._container.mux(out_stream.encode(frame))
            else:
                packet.stream = out_stream
                self._container.mux(packet)

    # -- writing

    def __enter__(self) -> VideoWriter:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is not None:
            self.abort()
        else:
            self.close()

    def write(self, image: np.ndarray, pts: int | None = None) -> None:
        """Encode one RGB ``uint8`` ``(H, W, 3)`` frame.

        Args:
            image: The frame; its size must match ``size`` (or the first frame).
            pts: Presentation timestamp in ``time_base`` units; must increase from frame
                to frame. ``None`` means one frame period (``1 / fps``) after the
                previous frame, or 0 for the first: with the default ``time_base`` that
                is the frame index.

        Raises:
            FrameError: wrong type, dtype, shape or size, or a non-increasing ``pts``.
            VideoError: the encoder or the file system failed.
        """
        if self._closed:
            raise VideoError(f"{self.path}: write() after close()")
        image = self._check_frame(image)
        if pts is None:
            pts = 0 if self._last_pts is None else self._last_pts + self._pts_step
        pts = int(pts)
        if self._last_pts is not None and pts <= self._last_pts:
            raise FrameError(
                f"pts must increase from frame to frame: got {pts} after {self._last_pts}"
            )
        if self._container is None:
            self._open()
        frame = av.VideoFrame.from_ndarray(image, format="rgb24")
        frame.pts = pts
        frame.time_base = self.time_base
        try:
            self._container.mux(self._stream.encode(frame))
            self._end_time = float(pts * self.time_base + 1 / self.rate)
            self._mux_audio_until(float(pts * self.time_base))
        except av.FFmpegError as exc:
            self.abort()
            raise VideoError(f"{self.path}: writing failed at frame {self._frames}: {exc}") from exc
        self._last_pts = pts
        self._frames += 1

    def _check_frame(self, image) -> np.ndarray:
        expected = "an RGB uint8 array of shape (H, W, 3)"
        if not isinstance(image, np.ndarray):
            raise FrameError(f"expected {expected}, got {type(image).__name__}")
        if image.ndim != 3 or image.shape[2] != 3:
            hint = (
                "; for a grey frame use np.repeat(img[..., None], 3, axis=2)"
                if image.ndim == 2 or (image.ndim == 3 and image.shape[2] == 1)
                else ""
            )
            raise FrameError(f"expected {expected}, got shape {image.shape}{hint}")
        if image.dtype != np.uint8:
            raise FrameError(
                f"expected {expected}, got dtype {image.dtype}; scale to 0..255 and use "
                "np.clip(x, 0, 255).astype(np.uint8)"
            )
        height, width = image.shape[:2]
        if self.size is None:
            self.size = (width, height)
        elif (width, height) != self.size:
            w0, h0 = self.size
            raise FrameError(f"expected frames of {w0}x{h0} (width x height), got {width}x{height}")
        return np.ascontiguousarray(image)

    def close(self) -> None:
        """Flush the encoder, finish the file and rename it onto ``path``.

        Raises:
            VideoError: no frame was written, or finishing the file failed; either way
                nothing is left at ``path`` or at the temporary path.
        """
        if self._closed:
            return
        if self._frames == 0:
            self.abort()
            raise VideoError(f"{self.path}: no frames were written; nothing was saved.")
        try:
            self._container.mux(self._stream.encode(None))
            self._mux_audio_until(self._end_time)
            if self._audio is not None and self._audio[4]:
                self._container.mux(self._audio[3].encode(None))
            self._container.close()
            self._close_audio_source()
            if os.path.exists(self.path) and not self.overwrite:
                raise VideoError(
                    f"{self.path}: appeared while writing; pass --force / overwrite=True."
                )
            os.replace(self._tmp_path, self.path)
        except (av.FFmpegError, OSError) as exc:
            self.abort()
            raise VideoError(f"{self.path}: finishing the file failed: {exc}") from exc
        except BaseException:
            self.abort()
            raise
        self._closed = True

    def abort(self) -> None:
        """Stop writing and delete the temporary file; ``path`` is left untouched."""
        self._closed = True
        if self._container is not None:
            try:
                self._container.close()
            except Exception:  # the file is being thrown away
                pass
            self._container = None
        self._close_audio_source()
        try:
            os.remove(self._tmp_path)
        except FileNotFoundError:
            pass

    def _close_audio_source(self) -> None:
        if self._audio is not None:
            self._audio[0].close()


def write_video(path: str | os.PathLike, frames, fps: float | Fraction, **kwargs) -> VideoWriter:
    """Encode a clip of RGB ``uint8`` frames ``(T, H, W, 3)`` (or an iterable of ``(H, W, 3)``).

    ``kwargs`` are those of :class:`VideoWriter`. Returns the closed writer, for its
    ``codec_name`` and ``notes``.
    """
    with VideoWriter(path, fps, **kwargs) as writer:
        for image in frames:
            writer.write(image)
    return writer
