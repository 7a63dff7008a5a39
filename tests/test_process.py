"""``rtmag magnify`` and the file path: frames, timestamps, report, refusals, bad files."""

from __future__ import annotations

import json

import numpy as np
import pytest

from rtmag.cli import main
from rtmag.errors import VideoError
from rtmag.video import probe, read_video, write_video

from .test_magnifier import clip


@pytest.fixture
def small_video(tmp_path):
    path = tmp_path / "in.mp4"
    write_video(path, clip(t=45, h=48, w=64), fps=30, lossless=True)
    return path


def magnify(args):
    return main(["magnify", *map(str, args), "--quiet"])


@pytest.mark.parametrize("causal", [False, True])
def test_magnify_keeps_count_size_fps_and_reports(tmp_path, small_video, pulse_weights, causal):
    out = tmp_path / "out.mp4"
    rep = tmp_path / "rep.json"
    args = [small_video, "-o", out, "--weights", pulse_weights, "--report", rep]
    assert magnify(args + (["--causal"] if causal else [])) == 0
    a, b = probe(small_video), probe(out)
    assert (b.width, b.height, b.frames) == (a.width, a.height, a.frames)
    assert b.fps == pytest.approx(a.fps)
    report = json.loads(rep.read_text())
    for key in (
        "heart_rate_bpm",
        "heart_rate_confidence",
        "frames",
        "fps",
        "magnification",
        "engine",
        "seconds",
    ):
        assert key in report
    assert report["frames"] == 45 and report["causal"] is causal


def test_causal_file_path_equals_the_magnifier(tmp_path, small_video, pulse_net):
    from rtmag.magnifier import Magnifier, MagnifierConfig
    from rtmag.process import magnify_file

    cfg = MagnifierConfig(gamma=1.0, fps=30.0)
    out = tmp_path / "out.mp4"
    magnify_file(
        small_video, out, causal=True, magnifier=Magnifier(cfg, net=pulse_net), lossless=True
    )
    frames, _ = read_video(small_video)
    mag = Magnifier(cfg, net=pulse_net)
    ref = np.stack([o.image for o in mag.push_many(list(frames)) + mag.flush()])
    got, _ = read_video(out)
    np.testing.assert_array_equal(got, ref)
    assert np.abs(got.astype(int) - frames).max() > 0


def test_refuses_to_overwrite_without_force(tmp_path, small_video, pulse_weights, capsys):
    out = tmp_path / "out.mp4"
    out.write_bytes(b"precious")
    assert magnify([small_video, "-o", out, "--weights", pulse_weights]) == 2
    assert "--force" in capsys.readouterr().err
    assert out.read_bytes() == b"precious"
    assert magnify([small_video, "-o", out, "--weights", pulse_weights, "--force"]) == 0
    assert probe(out).frames == 45


def test_corrupt_input_gives_an_error_and_no_output(tmp_path, pulse_weights, capsys):
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(np.random.default_rng(0).bytes(5000))
    out = tmp_path / "out.mp4"
    assert magnify([bad, "-o", out, "--weights", pulse_weights]) == 2
    assert "bad.mp4" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.mp4", "pulse.pt"]


def test_truncated_real_clip(tmp_path, shared_clip, pulse_weights, capsys):
    src = shared_clip("evm_face.mp4")
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(src.read_bytes()[: src.stat().st_size // 2])
    out = tmp_path / "out.mp4"
    assert magnify([cut, "-o", out, "--weights", pulse_weights]) == 2
    assert "cut.mp4" in capsys.readouterr().err
    assert not out.exists()


def test_one_frame_file(tmp_path, pulse_weights):
    src = tmp_path / "one.mp4"
    write_video(src, clip(t=1), fps=30, lossless=True)
    out = tmp_path / "out.mp4"
    assert magnify([src, "-o", out, "--weights", pulse_weights]) == 0
    got, _ = read_video(out)
    assert got.shape[0] == 1


def test_missing_input(tmp_path, pulse_weights, capsys):
    assert (
        magnify([tmp_path / "none.mp4", "-o", tmp_path / "o.mp4", "--weights", pulse_weights]) == 2
    )
    assert "none.mp4" in capsys.readouterr().err


def test_wrong_weight_file(tmp_path, small_video, capsys):
    w = tmp_path / "w.pt"
    w.write_text("not a network")
    assert magnify([small_video, "-o", tmp_path / "o.mp4", "--weights", w]) == 2
    assert "w.pt" in capsys.readouterr().err
    assert not (tmp_path / "o.mp4").exists()


def test_audio_is_passed_through(tmp_path, shared_clip, pulse_weights):
    src = shared_clip("evm_face.mp4")
    frames, info = read_video(src, max_frames=40)
    short = tmp_path / "short.mp4"
    from rtmag.video import VideoWriter

    with VideoWriter(short, fps=info.fps, audio_from=src) as w:
        for f in frames:
            w.write(f)
    out = tmp_path / "out.mp4"
    assert magnify([short, "-o", out, "--weights", pulse_weights]) == 0
    assert probe(out).has_audio


def test_magnify_rejects_errors_in_options(tmp_path, small_video, pulse_weights, capsys):
    assert (
        magnify([small_video, "-o", tmp_path / "o.mp4", "--weights", pulse_weights, "--align"]) == 2
    )
    assert "--causal" in capsys.readouterr().err


def test_video_error_is_a_user_error():
    from rtmag.errors import UserError

    assert issubclass(VideoError, UserError)


def test_env_reports_versions_engines_kernels_and_weights(capsys, monkeypatch):
    """`rtmag env --json`: what a bug report needs, the shipped weights checked."""
    import sys

    assert main(["env", "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    for key in ("rtmag", "torch", "opencv", "pyav", "onnxruntime", "triton", "kernels"):
        assert key in info
    assert {"adjoint", "eager", "onnx"} <= set(info["engines"])
    assert info["encoders"]["libx264"] is True
    assert all(w["ok"] and w["calibrated"] for w in info["weights"].values())
    monkeypatch.setitem(sys.modules, "triton", None)
    assert main(["env"]) == 0
    assert "kernels: triton is not installed" in capsys.readouterr().out
