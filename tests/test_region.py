"""Face region: Box geometry, crop/feather/paste helpers and the Haar face tracker."""

from pathlib import Path

import cv2
import numpy as np
import pytest

from rtmag.errors import FrameError, UserError
from rtmag.region import Box, FaceTracker, crop_resize, feather_mask, paste_log_gain
from rtmag.representations.colour import downsample

EVM_FACE = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "evm_face.mp4"


def _box_mask(H, W, box):
    return feather_mask(H, W, box, feather_frac=0.0) > 0


# ---------------------------------------------------------------- Box


def test_box_geometry():
    b = Box(10, 20, 50, 40)
    assert (b.width, b.height, b.centre) == (40.0, 20.0, (30.0, 30.0))
    e = b.expand(0.5)
    assert e.centre == b.centre and (e.width, e.height) == (60.0, 30.0)
    assert Box(-5, -5, 700, 20).clip(640, 480) == Box(0, 0, 640, 20)
    assert Box(700, 10, 800, 20).clip(640, 480).width == 0
    assert Box(0.4, 0.5, 10.49, 10.5).to_int() == (0, 1, 10, 11)
    assert Box(3.2, 3.2, 3.3, 3.3).to_int() == (3, 3, 4, 4)  # never empty
    assert Box.from_centre(5, 5, 4) == Box(3, 3, 7, 7)
    assert Box(0, 0, 2, 2).iou(Box(1, 0, 3, 2)) == pytest.approx(1 / 3)
    with pytest.raises(UserError):
        Box(10, 0, 5, 5)
    with pytest.raises(UserError):
        Box(0, 0, float("nan"), 5)


# ---------------------------------------------------------------- crop_resize


def test_crop_resize_constant_and_integer_box():
    const = np.full((120, 160, 3), (10, 100, 200), np.uint8)
    for box in (Box(10.3, 5.7, 90.2, 85.9), Box(-30, -20, 60, 70), Box(150, 100, 250, 200)):
        out = crop_resize(const, box)
        assert out.shape == (36, 36, 3) and out.dtype == np.float32
        # float32 area weights: the constant up to rounding of the last bit
        np.testing.assert_allclose(out, np.broadcast_to([10, 100, 200], out.shape), rtol=1e-6)

    f = np.random.default_rng(0).integers(0, 256, (120, 160, 3), dtype=np.uint8)
    np.testing.assert_array_equal(crop_resize(f, Box(12, 7, 100, 95)), downsample(f[7:95, 12:100]))
    np.testing.assert_array_equal(crop_resize(f, Box(0, 0, 160, 120)), downsample(f))
    assert crop_resize(f, Box(0, 0, 40, 40), size=8).shape == (8, 8, 3)


def test_crop_resize_pads_by_edge_replication():
    f = np.random.default_rng(1).integers(0, 256, (40, 50, 3), dtype=np.uint8)
    padded = cv2.copyMakeBorder(f, 10, 0, 6, 0, cv2.BORDER_REPLICATE)  # 6 left, 10 top
    ref = downsample(padded[0:36, 0:36])
    np.testing.assert_array_equal(crop_resize(f, Box(-6, -10, 30, 26)), ref)


# ---------------------------------------------------------------- feather_mask


def test_feather_mask_values_symmetry_outside():
    H, W = 100, 120
    box = Box(20, 10, 100, 90)  # 80 x 80, centred at (60, 50)
    m = feather_mask(H, W, box, feather_frac=0.15)  # feather 12 px
    assert m.shape == (H, W) and m.dtype == np.float32
    assert m.min() >= 0 and m.max() <= 1
    assert np.all(m[:, :20] == 0) and np.all(m[:, 100:] == 0)
    assert np.all(m[:10] == 0) and np.all(m[90:] == 0)
    assert np.all(m[22:78, 32:88] == 1)  # the box shrunk by the feather width
    np.testing.assert_allclose(m, m[::-1, ::-1], atol=1e-7)  # symmetric about the centre
    np.testing.assert_allclose(m[:, 20:100], m[:, 20:100][:, ::-1], atol=1e-7)
    # raised cosine: half-way into the feather the weight is 0.5
    assert m[50, 26] == pytest.approx(0.5 - 0.5 * np.cos(np.pi * 6.5 / 12), abs=1e-6)
    row = m[50, 20:33]
    assert np.all(np.diff(row) > 0)  # rises monotonically to 1
    hard = feather_mask(H, W, box, feather_frac=0.0)
    assert hard.sum() == 80 * 80 and set(np.unique(hard)) == {0.0, 1.0}
    with pytest.raises(UserError):
        feather_mask(H, W, box, feather_frac=0.7)


# ---------------------------------------------------------------- paste_log_gain


def test_paste_log_gain_zero_outside_and_centre():
    H, W = 480, 640
    rng = np.random.default_rng(2)
    g = (rng.standard_normal((36, 36, 3)) * 0.01).astype(np.float32)
    box = Box(200, 100, 380, 280)  # 180 x 180
    out = paste_log_gain(g, box, H, W, feather=0.15)
    assert out.shape == (H, W, 3) and out.dtype == np.float32
    outside = ~_box_mask(H, W, box)
    assert np.all(out[outside] == 0)
    up = cv2.resize(g, (180, 180), interpolation=cv2.INTER_LINEAR)
    np.testing.assert_array_equal(out[190, 290], up[90, 90])  # feather is 1 at the centre
    np.testing.assert_allclose(
        out[100:280, 200:380], up * feather_mask(H, W, box)[100:280, 200:380, None], atol=1e-7
    )
    # a precomputed mask gives the same result
    np.testing.assert_array_equal(paste_log_gain(g, box, H, W, feather_mask(H, W, box)), out)


def test_paste_log_gain_box_leaving_frame():
    g = np.ones((36, 36, 3), np.float32)
    out = paste_log_gain(g, Box(-50, -50, 50, 50), 100, 120, feather=0.0)
    assert np.all(out[:50, :50] == 1) and np.all(out[50:] == 0) and np.all(out[:, 50:] == 0)
    assert np.all(paste_log_gain(g, Box(200, 200, 300, 300), 100, 120) == 0)
    with pytest.raises(FrameError):
        paste_log_gain(np.ones((36, 36)), Box(0, 0, 10, 10), 100, 120)


# ---------------------------------------------------------------- FaceTracker


@pytest.fixture(scope="module")
def evm_frames():
    if not EVM_FACE.is_file():
        pytest.skip(f"real clip {EVM_FACE} not present (research-licence data, not in the repo)")
    from rtmag.video import read_video

    frames, info = read_video(EVM_FACE, max_frames=60)
    return frames, info.fps


def test_tracker_real_face_found_and_still(evm_frames):
    frames, fps = evm_frames
    tr = FaceTracker()
    boxes = [tr.update(f, i / fps) for i, f in enumerate(frames)]
    assert tr.attempts == 20 and tr.hits >= 0.9 * tr.attempts
    assert sum(b is not None for b in boxes) >= 0.9 * len(boxes)
    H, W = frames.shape[1:3]
    centres = np.array([b.centre for b in boxes if b is not None])
    assert np.std(np.diff(centres, axis=0), axis=0).max() < 1.0  # frame-to-frame jitter
    for b in boxes:
        if b is not None:
            assert b.width == pytest.approx(b.height)  # square
            assert b.x0 >= 0 and b.y0 >= 0 and b.x1 <= W and b.y1 <= H
    # the face (eyes to mouth) of this clip is roughly x 40-435, y 80-470
    assert boxes[-1].iou(Box(40, 80, 435, 470).expand(0.3)) > 0.6


def test_tracker_keeps_box_then_loses_it(evm_frames):
    frames, fps = evm_frames
    tr = FaceTracker(detect_every=1, lost_after_s=1.0)
    box = tr.update(frames[0], 0.0)
    assert box is not None
    blank = np.full_like(frames[0], 128)
    assert tr.update(blank, 0.5) == box and tr.detected is False  # kept
    assert tr.update(blank, 1.0) == box
    assert tr.update(blank, 1.1) is None  # more than lost_after_s after the detection
    assert tr.update(blank, 1.2) is None and tr.face is None


def test_tracker_synthetic_head_iou():
    synth = pytest.importorskip("rtmag.synth")
    clip = synth.render(synth.SynthConfig(task="A", seconds=0.3, size=(320, 240)))
    tr = FaceTracker(detect_every=1)
    box = None
    for i, f in enumerate(clip.frames[:6]):
        box = tr.update(f, i / 30)
    assert box is not None
    head = clip.truth["head_mask"][5]
    mask = _box_mask(240, 320, box)
    iou = (mask & head).sum() / (mask | head).sum()
    assert iou > 0.3


def test_tracker_smoothing_follows_timestamps_and_deadzone():
    # Drive the smoother directly with detections (no cascade) to check its arithmetic.
    tr = FaceTracker(smoothing_halflife_s=0.5, margin=0.0, deadzone_px=1.0)
    tr._smooth(Box.from_centre(100, 100, 50), 0.0)
    tr._smooth(Box.from_centre(100.6, 99.5, 50.4), 0.1)  # sub-pixel: the output holds
    np.testing.assert_array_equal(tr._out, [100, 100, 50])
    tr._smooth(Box.from_centre(140, 100, 50), 0.6)  # one half-life later
    x = tr._state[0]
    prev = 100 + (100.6 - 100) * (1 - 2 ** (-0.2))
    assert x == pytest.approx(prev + (140 - prev) * 0.5)
    assert tr._out[0] == pytest.approx(x - 1.0)  # follows at the dead-zone's edge


def test_tracker_errors(tmp_path):
    frame = np.zeros((120, 160, 3), np.uint8)
    tr = FaceTracker()
    tr.update(frame, 1.0)
    with pytest.raises(FrameError, match="backwards"):
        tr.update(frame, 0.9)
    with pytest.raises(FrameError, match="size changed"):
        tr.update(np.zeros((100, 160, 3), np.uint8), 2.0)
    with pytest.raises(FrameError):
        tr.update(np.zeros((120, 160), np.uint8), 3.0)
    tr.reset()
    assert tr.update(np.zeros((100, 160, 3), np.uint8), 0.0) is None
    with pytest.raises(UserError, match="haarcascade_frontalface_default.xml"):
        FaceTracker(cascade_dir=tmp_path)
    with pytest.raises(UserError, match="detect_every"):
        FaceTracker(detect_every=0)
    with pytest.raises(UserError, match="min_face_frac"):
        FaceTracker(min_face_frac=0)
