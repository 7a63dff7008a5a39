"""Tests for rtmag.video: round trips on synthetic clips, timestamps, audio, errors."""

from __future__ import annotations

import os
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

from rtmag.errors import FrameError, VideoError
from rtmag.video import (
    VideoReader,
    VideoWriter,
    available_encoders,
    probe,
    read_video,
    write_video,
)

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
FACE = DATA / "evm_face.mp4"
needs_face = pytest.mark.skipif(
    not FACE.exists(), reason=f"test clip {FACE} not present (shared/ beside the repo)"
)

# 0-9 as 3x5 bitmaps, for frames that carry their own index.
_DIGITS = [
    "111101101101111",
    "010110010010111",
    "111001111100111",
    "111001111001111",
    "101101111001001",
    "111100111001111",
    "111100111101111",
    "111001001001001",
    "111101111101111",
    "111101111001111",
]


def numbered_frames(count: int, width: int = 64, height: int = 48, seed: int = 0) -> np.ndarray:
    """``(count, height, width, 3)`` uint8: a smooth gradient, noise, and the frame number."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width]
    frames = np.empty((count, height, width, 3), np.uint8)
    for i in range(count):
        base = np.stack([x * 255 // width, y * 255 // height, np.full_like(x, 40 * i % 256)], -1)
        noise = rng.integers(-2, 3, size=base.shape)
        img = np.clip(base + noise, 0, 255).astype(np.uint8)
        for k, ch in enumerate(str(i)):
            glyph = np.array([int(b) for b in _DIGITS[int(ch)]], bool).reshape(5, 3)
            block = np.kron(glyph, np.ones((3, 3), bool))
            img[2 : 2 + 15, 2 + 12 * k : 2 + 12 * k + 9][block] = 255
        frames[i] = img
    return frames


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


# ---------------------------------------------------------------- round trips


def test_lossless_round_trip_is_bit_exact(tmp_path):
    frames = numbered_frames(12)
    out = tmp_path / "lossless.mp4"
    writer = write_video(out, frames, fps=25, lossless=True)
    assert writer.codec_name in ("libx264rgb", "ffv1")
    got, info = read_video(out)
    assert got.shape == frames.shape
    np.testing.assert_array_equal(got, frames)
    assert (info.width, info.height, info.frames) == (64, 48, 12)
    assert info.fps == pytest.approx(25)
    assert not info.frames_estimated
    assert leftovers(tmp_path) == ["lossless.mp4"]


def test_h264_round_trip_close_and_preserves_count_fps_size(tmp_path):
    frames = numbered_frames(15, width=80, height=60)
    out = tmp_path / "clip.mp4"
    writer = write_video(out, frames, fps=30000 / 1001, crf=12)
    assert writer.codec_name == "libx264"
    info = probe(out)
    assert info.codec == "h264"
    assert (info.width, info.height, info.frames) == (80, 60, 15)
    assert info.fps == pytest.approx(30000 / 1001, rel=1e-4)
    got, _ = read_video(out)
    err = np.abs(got.astype(int) - frames.astype(int))
    assert err.mean() < 4, err.mean()


def test_reader_yields_indices_and_times(tmp_path):
    out = tmp_path / "clip.mp4"
    write_video(out, numbered_frames(6), fps=10)
    with VideoReader(out) as reader:
        decoded = list(reader)
    assert [f.index for f in decoded] == list(range(6))
    assert [f.time_s for f in decoded] == pytest.approx([i / 10 for i in range(6)])
    assert all(f.image.shape == (48, 64, 3) and f.image.dtype == np.uint8 for f in decoded)


def test_read_video_max_frames(tmp_path):
    out = tmp_path / "clip.mp4"
    write_video(out, numbered_frames(8), fps=10, lossless=True)
    got, _ = read_video(out, max_frames=3)
    np.testing.assert_array_equal(got, numbered_frames(8)[:3])


@pytest.mark.parametrize("lossless", [False, True])
def test_non_uniform_pts_are_preserved(tmp_path, lossless):
    tb = Fraction(1, 90000)
    pts = [0, 3000, 9000, 10000, 20000, 21500]
    frames = numbered_frames(len(pts))
    out = tmp_path / "vfr.mp4"
    with VideoWriter(out, fps=30, time_base=tb, lossless=lossless) as writer:
        for image, p in zip(frames, pts):
            writer.write(image, pts=p)
    with VideoReader(out) as reader:
        times = [f.time_s for f in reader]
    assert times == pytest.approx([float(p * tb) for p in pts], abs=1e-6)


def test_default_pts_step_one_frame_in_custom_time_base(tmp_path):
    out = tmp_path / "x.mp4"
    write_video(out, numbered_frames(3), fps=25, time_base=Fraction(1, 90000))
    with VideoReader(out) as reader:
        assert [f.pts for f in reader] == [0, 3600, 7200]


def test_pts_must_increase(tmp_path):
    with VideoWriter(tmp_path / "x.mp4", fps=30) as writer:
        writer.write(numbered_frames(1)[0], pts=5)
        with pytest.raises(FrameError, match="increase"):
            writer.write(numbered_frames(1)[0], pts=5)


def test_odd_frame_size(tmp_path):
    frames = numbered_frames(5, width=65, height=47)
    out = tmp_path / "odd.mp4"
    writer = write_video(out, frames, fps=30)
    assert any("yuv444p" in note for note in writer.notes)
    got, info = read_video(out)
    assert got.shape == (5, 47, 65, 3)
    assert np.abs(got.astype(int) - frames.astype(int)).mean() < 4


def test_single_frame_video(tmp_path):
    out = tmp_path / "one.mp4"
    write_video(out, numbered_frames(1), fps=30)
    got, info = read_video(out)
    assert got.shape == (1, 48, 64, 3)
    assert info.frames == 1


@pytest.mark.parametrize(
    "codec, name, encoder", [("ffv1", "x.mkv", "ffv1"), ("vp9", "x.webm", "libvpx-vp9")]
)
def test_other_lossless_codecs(tmp_path, codec, name, encoder):
    frames = numbered_frames(4)
    out = tmp_path / name
    writer = write_video(out, frames, fps=24, codec=codec, lossless=True)
    assert writer.codec_name == encoder
    got, info = read_video(out)
    np.testing.assert_array_equal(got, frames)
    assert info.fps == pytest.approx(24)


def test_available_encoders_lists_known_names():
    encoders = available_encoders()
    assert {"libx264", "libx264rgb", "mpeg4", "ffv1", "aac"} <= set(encoders)
    assert all(isinstance(v, bool) for v in encoders.values())


# ---------------------------------------------------------------- audio


@needs_face
def test_audio_passthrough_copies_packets(tmp_path):
    src = probe(FACE)
    assert src.has_audio
    frames, info = read_video(FACE, max_frames=60)
    out = tmp_path / "with_audio.mp4"
    writer = VideoWriter(out, fps=info.fps, time_base=info.time_base, audio_from=FACE)
    with writer:
        with VideoReader(FACE) as reader:
            for frame in reader:
                writer.write(frame.image[::4, ::4].copy(), pts=frame.pts)
    assert any("without re-encoding" in note for note in writer.notes)
    got = probe(out)
    assert got.has_audio and got.audio_codec == src.audio_codec
    assert got.frames == src.frames
    with av.open(str(FACE)) as a, av.open(str(out)) as b:
        sa, sb = a.streams.audio[0], b.streams.audio[0]
        dur_a = float(sa.duration * sa.time_base)
        dur_b = float(sb.duration * sb.time_base)
        assert (sb.rate, sb.channels) == (sa.rate, sa.channels)
    assert dur_b == pytest.approx(dur_a, abs=0.1)


@needs_face
def test_audio_is_trimmed_to_the_video(tmp_path):
    frames, info = read_video(FACE, max_frames=30)
    out = tmp_path / "short.mp4"
    write_video(out, frames[:, ::4, ::4], fps=info.fps, audio_from=FACE)
    with av.open(str(out)) as c:
        s = c.streams.audio[0]
        assert float(s.duration * s.time_base) == pytest.approx(1.0, abs=0.1)


def test_audio_source_without_audio_is_noted(tmp_path):
    src = tmp_path / "silent.mp4"
    write_video(src, numbered_frames(3), fps=10)
    writer = write_video(tmp_path / "o.mp4", numbered_frames(3), fps=10, audio_from=src)
    assert any("no audio" in note for note in writer.notes)
    assert not probe(tmp_path / "o.mp4").has_audio


def _tone(path: Path, codec: str, seconds: float = 2.0, rate: int = 8000) -> None:
    with av.open(str(path), "w") as c:
        s = c.add_stream(codec, rate=rate)
        s.layout = "mono"
        t = np.arange(int(seconds * rate)) / rate
        pcm = (np.sin(2 * np.pi * 440 * t) * 20000).astype(np.int16)[None]
        for start in range(0, pcm.shape[1], 1024):
            frame = av.AudioFrame.from_ndarray(
                np.ascontiguousarray(pcm[:, start : start + 1024]), format="s16", layout="mono"
            )
            frame.sample_rate = rate
            frame.pts = start
            c.mux(s.encode(frame))
        c.mux(s.encode(None))


def test_audio_the_container_cannot_hold_is_reencoded_to_aac(tmp_path):
    wav = tmp_path / "tone.wav"
    _tone(wav, "pcm_mulaw")  # mp4 cannot hold mu-law
    out = tmp_path / "o.mp4"
    writer = write_video(out, numbered_frames(30, 32, 32), fps=15, audio_from=wav)
    assert any("re-encoded to aac" in note for note in writer.notes)
    info = probe(out)
    assert info.audio_codec == "aac"
    with av.open(str(out)) as c:
        s = c.streams.audio[0]
        # Encoder padding adds up to one AAC frame (1024 samples = 0.128 s at 8 kHz).
        assert float(s.duration * s.time_base) == pytest.approx(2.0, abs=0.15)


# ---------------------------------------------------------------- read errors


def test_missing_file(tmp_path):
    with pytest.raises(VideoError, match="no such file"):
        probe(tmp_path / "nope.mp4")


def test_random_bytes_are_not_a_video(tmp_path):
    bad = tmp_path / "noise.mp4"
    bad.write_bytes(np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes())
    with pytest.raises(VideoError, match="noise.mp4"):
        VideoReader(bad)


def test_audio_only_file_has_no_video_stream(tmp_path):
    path = tmp_path / "tone.wav"
    _tone(path, "pcm_s16le", seconds=0.5)
    with pytest.raises(VideoError, match="no video stream"):
        probe(path)


@needs_face
def test_truncated_real_clip_without_index(tmp_path):
    # evm_face.mp4 keeps its index (moov) at the end: a cut copy fails at open.
    cut = tmp_path / "cut.mp4"
    data = FACE.read_bytes()
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(VideoError, match="truncated"):
        VideoReader(cut)


def test_truncated_clip_with_index_fails_mid_stream(tmp_path):
    # Our writer puts the index first (faststart): a cut copy opens, then must not
    # read as a shorter clip.
    full = tmp_path / "full.mp4"
    write_video(full, numbered_frames(40), fps=30)
    cut = tmp_path / "cut.mp4"
    data = full.read_bytes()
    with av.open(str(full)) as c:
        offsets = [p.pos for p in c.demux(video=0) if p.dts is not None]
    cut.write_bytes(data[: offsets[20]])  # a clean cut: the demuxer just stops early
    with VideoReader(cut) as reader:
        assert reader.info.frames == 40
        with pytest.raises(VideoError, match="ended after 20 of the 40 frames"):
            list(reader)


@needs_face
def test_corrupt_data_mid_stream_names_the_frame(tmp_path):
    data = bytearray(FACE.read_bytes())
    rng = np.random.default_rng(0)
    mid = len(data) // 2
    data[mid : mid + 20000] = rng.integers(0, 256, 20000, dtype=np.uint8).tobytes()
    bad = tmp_path / "corrupt.mp4"
    bad.write_bytes(bytes(data))
    with pytest.raises(VideoError, match=r"corrupt.mp4: decoding failed at frame \d+"):
        read_video(bad)


# ---------------------------------------------------------------- write errors


def test_exception_inside_with_leaves_nothing(tmp_path):
    out = tmp_path / "broken.mp4"
    with pytest.raises(RuntimeError, match="boom"):
        with VideoWriter(out, fps=30) as writer:
            for image in numbered_frames(3):
                writer.write(image)
            raise RuntimeError("boom")
    assert leftovers(tmp_path) == []


def test_zero_frames_raises_and_leaves_nothing(tmp_path):
    out = tmp_path / "empty.mp4"
    with pytest.raises(VideoError, match="no frames"):
        with VideoWriter(out, fps=30, size=(64, 48)):
            pass
    assert leftovers(tmp_path) == []


def test_refuses_to_overwrite(tmp_path):
    out = tmp_path / "exists.mp4"
    out.write_bytes(b"keep me")
    with pytest.raises(VideoError, match="overwrite=True"):
        VideoWriter(out, fps=30)
    assert out.read_bytes() == b"keep me"
    write_video(out, numbered_frames(2), fps=30, overwrite=True)
    assert probe(out).frames == 2


def test_temp_file_is_hidden_until_close(tmp_path):
    out = tmp_path / "clip.mp4"
    with VideoWriter(out, fps=30) as writer:
        # PyAV creates the file at the first packet, after x264's look-ahead.
        for image in numbered_frames(100, width=32, height=32):
            writer.write(image)
        assert leftovers(tmp_path) == [".clip.partial.mp4"]
    assert leftovers(tmp_path) == ["clip.mp4"]


@pytest.mark.parametrize(
    "image, match",
    [
        (np.zeros((48, 64), np.uint8), "grey"),
        (np.zeros((48, 64, 4), np.uint8), r"\(H, W, 3\)"),
        (np.zeros((48, 64, 3), np.float32), "dtype float32"),
        (np.zeros((50, 64, 3), np.uint8), "64x48"),
        ([[0, 0, 0]], "list"),
    ],
)
def test_bad_frames_raise_frame_error(tmp_path, image, match):
    with VideoWriter(tmp_path / "x.mp4", fps=30, size=(64, 48)) as writer:
        with pytest.raises(FrameError, match=match):
            writer.write(image)
        writer.write(numbered_frames(1)[0])


def test_unknown_codec_lists_known_ones(tmp_path):
    with pytest.raises(VideoError, match="h264"):
        VideoWriter(tmp_path / "x.mp4", fps=30, codec="prores")


def test_missing_output_folder(tmp_path):
    with pytest.raises(VideoError, match="does not exist"):
        VideoWriter(tmp_path / "no" / "x.mp4", fps=30)


def test_mpeg4_fallback_keeps_fine_timestamps(tmp_path):
    tb = Fraction(1, 90000)
    out = tmp_path / "m.mp4"
    writer = VideoWriter(out, fps=30, codec="mpeg4", time_base=tb)
    with writer:
        for i, image in enumerate(numbered_frames(4)):
            writer.write(image, pts=3000 * i)
    assert writer.codec_name == "mpeg4"
    assert any("1/60000" in note for note in writer.notes)
    with VideoReader(out) as reader:
        assert [f.time_s for f in reader] == pytest.approx([0, 1 / 30, 2 / 30, 3 / 30], abs=1e-4)


def test_h264_falls_back_to_mpeg4_with_a_warning(tmp_path, monkeypatch):
    import rtmag.video as video

    real = video._has_encoder
    monkeypatch.setattr(video, "_has_encoder", lambda name: name != "libx264" and real(name))
    with pytest.warns(RuntimeWarning, match="using mpeg4"):
        writer = VideoWriter(tmp_path / "x.mp4", fps=30)
    assert writer.codec_name == "mpeg4"
    writer.abort()
    assert not os.listdir(tmp_path)


def test_lossless_falls_back_to_ffv1(tmp_path, monkeypatch):
    import rtmag.video as video

    real = video._has_encoder
    monkeypatch.setattr(video, "_has_encoder", lambda name: name != "libx264rgb" and real(name))
    frames = numbered_frames(3)
    with pytest.warns(RuntimeWarning, match="using ffv1"):
        writer = write_video(tmp_path / "x.mkv", frames, fps=30, lossless=True)
    assert writer.codec_name == "ffv1"
    np.testing.assert_array_equal(read_video(tmp_path / "x.mkv")[0], frames)


def test_container_that_cannot_hold_the_codec(tmp_path):
    with VideoWriter(tmp_path / "x.webm", fps=30) as writer:
        with pytest.raises(VideoError, match="cannot hold libx264"):
            writer.write(numbered_frames(1)[0])
    assert leftovers(tmp_path) == []


def test_writer_x264_preset_and_threads(tmp_path):
    """The x264 preset and thread count reach the encoder (x264 writes its settings
    into the stream); the default is the fast preset; bad values get a clear error."""
    frames = np.random.default_rng(0).integers(0, 255, (6, 48, 64, 3), dtype=np.uint8)

    def settings(**kw):
        path = tmp_path / f"{len(list(tmp_path.iterdir()))}.mp4"
        with VideoWriter(path, 30, **kw) as w:
            for f in frames:
                w.write(f)
        data = path.read_bytes()
        return data[data.find(b"options:") :][:600]

    fast = settings(threads=1)
    assert b"subme=6" in fast and b"ref=2" in fast and b" threads=1 " in fast
    medium = settings(preset="medium")
    assert b"subme=7" in medium and b"ref=3" in medium
    with pytest.raises(VideoError, match="preset"):
        VideoWriter(tmp_path / "x.mp4", 30, preset="quick")
    with pytest.raises(VideoError, match="threads"):
        VideoWriter(tmp_path / "x.mp4", 30, threads=-1)
