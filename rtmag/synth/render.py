"""Render synthetic physiology clips: the input, the ideal magnified clip, ground truth.

Skin follows the paper's Eq. 9 per pixel and channel::

    C(t) = I0 (1 + i(t)) (u_c c0 + u_s s(t) + u_p p(t)) + v_n(t)

``u_c c0`` is the shaded albedo (Lambertian, ambient + light), ``s(t)`` a
Blinn-Phong highlight that changes as the head moves, ``p(t)`` the pulse along
``u_p`` (0.33 : 0.77 : 0.53), weighted by a smooth per-region map and with a
per-region lag of up to 50 ms, zero off skin. ``v_n`` is Gaussian sensor noise,
then 8-bit rounding. The ideal clip multiplies the pulse term (mode "pulse") or the
breathing displacement (mode "respiration") by ``alpha``, with everything else,
the noise included, identical.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import cv2
import numpy as np

from rtmag.synth import scene as sc
from rtmag.synth.config import SynthConfig, resolve_config
from rtmag.synth.signals import Signals, make_signals

#: Per-frame truth keys (scalars) and mask keys ((H, W) bool) in ``truth_t``.
SCALAR_TRUTH = (
    "pulse",
    "respiration",
    "yaw_deg",
    "yaw_target_deg",
    "pitch_deg",
    "roll_deg",
    "illumination",
    "heart_rate_bpm_inst",
    "breathing_rate_bpm_inst",
    "mouth_open",
)
MASK_TRUTH = ("skin_mask", "head_mask", "torso_mask")
_SPEC_EXP = 40.0


@dataclass(frozen=True)
class SynthClip:
    """A rendered clip.

    Attributes:
        frames: input clip (T, H, W, 3) uint8 RGB (float32 when ``quantize=False``).
        ideal: the same clip with the source magnified by alpha, same shape/dtype.
        truth: per-frame ground truth, numpy arrays with T first: ``pulse`` (T,)
            relative reflectance change ``p(t)`` used in Eq. 9 (at lag 0),
            ``respiration`` (T,) upward chest displacement in pixels at the rendered
            size, ``skin_mask``, ``head_mask``, ``torso_mask`` (T, H, W) bool,
            ``yaw_deg``, ``yaw_target_deg``, ``pitch_deg``, ``roll_deg`` (T,) degrees,
            ``heart_rate_bpm_inst``, ``breathing_rate_bpm_inst`` (T,) per minute,
            ``illumination`` (T,) i(t), ``mouth_open`` (T,) 0..1, ``t`` (T,) seconds.
        meta: JSON-able description (fps, size, task, mode, alpha, seed, rates,
            codec once written, rtmag version, ``config``: every render parameter).
    """

    frames: np.ndarray
    ideal: np.ndarray
    truth: dict
    meta: dict


@dataclass(frozen=True)
class FrameLayers:
    """One rendered frame with its parts, for tests and training targets.

    ``frame``/``ideal`` (H, W, 3) uint8 (float32 if not quantised); ``frame_float``/
    ``ideal_float`` the same before rounding; ``pulse_term``/``ideal_pulse_term``
    (H, W, 3) float32 grey levels, the ``I0 (1 + i) u_p p`` term of Eq. 9 (zero off
    skin); ``noise`` (H, W, 3) float32 grey levels; ``torso_cover``/
    ``ideal_torso_cover`` (H, W) float32 visible clothing coverage 0..1;
    ``truth`` the per-frame truth dict (scalars and (H, W) bool masks).
    """

    frame: np.ndarray
    ideal: np.ndarray
    frame_float: np.ndarray
    ideal_float: np.ndarray
    pulse_term: np.ndarray
    ideal_pulse_term: np.ndarray
    noise: np.ndarray
    torso_cover: np.ndarray
    ideal_torso_cover: np.ndarray
    truth: dict


@dataclass
class _Composite:
    refl: np.ndarray  # (H, W, 3) shaded reflectance + specular s, before the light
    gain0: np.ndarray  # (H, W) premultiplied pulse gain at lag 0
    gain1: np.ndarray  # (H, W) premultiplied pulse gain at MAX_PULSE_LAG_S
    box: tuple[int, int, int, int] | None  # (x0, y0, x1, y1) holding all pulse gain
    head_vis: np.ndarray
    neck_vis: np.ndarray
    torso_vis: np.ndarray
    skin_vis: np.ndarray


def warp_layer(
    layer: sc.BodyLayer, dx: float, dy: float, sx: float, frame_size: tuple[int, int]
) -> tuple[tuple[int, int, int, int], np.ndarray] | None:
    """Move a :class:`~rtmag.synth.scene.BodyLayer` by (dx, dy) px, scale x by ``sx``.

    Bilinear resampling, so sub-pixel motion of the anti-aliased edges is kept.
    Returns ``((x0, y0, x1, y1), data)`` with ``data`` (y1-y0, x1-x0, C) float32, or
    None when the layer is off the frame.
    """
    w_img, h_img = frame_size
    lh, lw = layer.data.shape[:2]
    ox, oy = layer.origin
    px = layer.pivot_x
    # Frame-space bounds of the moved layer.
    xa = sx * (ox - px) + px + dx
    xb = sx * (ox + lw - px) + px + dx
    x0, x1 = max(int(np.floor(min(xa, xb))) - 1, 0), min(int(np.ceil(max(xa, xb))) + 1, w_img)
    y0, y1 = max(int(np.floor(oy + dy)) - 1, 0), min(int(np.ceil(oy + lh + dy)) + 1, h_img)
    if x1 <= x0 or y1 <= y0:
        return None
    # dst = M src, with src in layer pixels and dst in region pixels.
    M = np.array([[sx, 0.0, sx * (ox - px) + px + dx - x0], [0.0, 1.0, oy + dy - y0]], np.float64)
    data = layer.data
    if data.shape[2] <= 4:
        out = cv2.warpAffine(
            data, M, (x1 - x0, y1 - y0), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT
        )
    else:
        parts = [
            cv2.warpAffine(
                np.ascontiguousarray(data[..., i : i + 4]),
                M,
                (x1 - x0, y1 - y0),
                flags=cv2.INTER_LINEAR,
                borderMode=cv2.BORDER_CONSTANT,
            )
            for i in range(0, data.shape[2], 4)
        ]
        out = np.concatenate([p if p.ndim == 3 else p[..., None] for p in parts], axis=2)
    if out.ndim == 2:
        out = out[..., None]
    return (x0, y0, x1, y1), out


class Renderer:
    """Renders frame ``k`` of a clip on demand; holds only the static scene.

    Build it once per clip (backgrounds, textures, body layers and all per-frame
    signals are precomputed, which is cheap), then call :meth:`layers` with
    ``k = 0, 1, ...`` in order: the sensor noise is drawn in frame order.

    Args:
        cfg: the clip's configuration; ``None`` values are drawn from ``cfg.seed``.
    """

    def __init__(self, cfg: SynthConfig) -> None:
        self.cfg = resolve_config(cfg)
        cfg = self.cfg
        self.size = cfg.size
        self.scale = cfg.size[1] / 480.0
        self.signals: Signals = make_signals(cfg)
        ss = np.random.SeedSequence([int(cfg.seed), 0x5C3E])
        r_bg, r_tex, r_torso, r_noise = (np.random.default_rng(s) for s in ss.spawn(4))
        self.background = sc.make_background(cfg, r_bg)
        self.texture = sc.make_head_texture(cfg, r_tex, self.scale)
        tone = cfg.skin_tone - 1
        self.skin_rgb = sc.SKIN_ALBEDO[tone]
        #: c0 of Eq. 9 times the tone's relative pulse strength.
        self.pulse_c0 = float(self.skin_rgb.mean() * sc.SKIN_PULSE_GAIN[tone])
        self.torso = sc.make_torso(cfg, r_torso, self.scale)
        self.neck = sc.make_neck(cfg, self.scale, self.skin_rgb)
        neck = self.neck.data.copy()
        neck[..., 4] *= self.pulse_c0
        self.neck = sc.BodyLayer(data=neck, origin=self.neck.origin, pivot_x=self.neck.pivot_x)
        self.head_axes = tuple(a * self.scale for a in sc.HEAD_AXES)
        self._noise_rng = r_noise
        self._next = 0
        self.noise_std = cfg.noise_std

    @property
    def n_frames(self) -> int:
        return self.cfg.n_frames

    def _compose(self, k: int, breath_gain: float) -> _Composite:
        cfg, s = self.cfg, self.signals
        w, h = self.size
        d = breath_gain * float(s.respiration[k])
        hdx = float(s.head_dx[k])
        hdy = float(s.head_dy[k]) - sc.HEAD_BREATH * d
        refl = self.background.copy()
        gain0 = np.zeros((h, w), np.float32)
        gain1 = np.zeros((h, w), np.float32)
        boxes = []
        neck_vis = np.zeros((h, w), np.float32)
        torso_vis = np.zeros((h, w), np.float32)
        head_vis = np.zeros((h, w), np.float32)
        skin_vis = np.zeros((h, w), np.float32)

        wn = warp_layer(self.neck, hdx, float(s.head_dy[k]) - sc.NECK_BREATH * d, 1.0, self.size)
        if wn is not None:
            (x0, y0, x1, y1), nd = wn
            a = nd[..., 3]
            r = refl[y0:y1, x0:x1]
            r *= (1 - a)[..., None]
            r += nd[..., :3]
            gain0[y0:y1, x0:x1] = nd[..., 4]
            boxes.append((x0, y0, x1, y1))
            neck_vis[y0:y1, x0:x1] = a

        sx = 1.0 + 0.3 * d / (sc.SHOULDER_HALF_W * self.scale)
        wt = warp_layer(self.torso, 0.0, -d, sx, self.size)
        if wt is not None:
            (x0, y0, x1, y1), td = wt
            a = td[..., 3]
            inv = 1 - a
            r = refl[y0:y1, x0:x1]
            r *= inv[..., None]
            r += td[..., :3]
            gain0[y0:y1, x0:x1] *= inv
            neck_vis[y0:y1, x0:x1] *= inv
            torso_vis[y0:y1, x0:x1] = a

        centre = (w / 2.0 + hdx, sc.HEAD_CENTRE_Y * self.scale + hdy)
        rot = sc.rotation(s.yaw_deg[k], s.pitch_deg[k], s.roll_deg[k])
        hit = sc.raycast_head(centre, self.head_axes, rot, self.size, self.texture)
        if hit is not None:
            x0, y0, x1, y1 = hit.box
            tex = self.texture
            ta = cv2.remap(
                tex.tex_a, hit.u, hit.v, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE
            )
            tb = cv2.remap(
                tex.tex_b, hit.u, hit.v, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE
            )
            albedo, weight = ta[..., :3], ta[..., 3]
            lag, skin, ks, occl = tb[..., 0], tb[..., 1], tb[..., 2], tb[..., 3]
            m = float(s.mouth_open[k])
            if m > 0.02:
                md = np.sqrt((hit.lon_d / 12.0) ** 2 + ((hit.lat_d - 37.0) / (3.5 * m)) ** 2) - 1
                inside = np.clip(0.5 - md * 3.0, 0, 1)
                albedo = albedo * (1 - inside)[..., None] + tex.mouth_albedo * inside[..., None]
                weight = weight * (1 - inside)
                skin = skin * (1 - inside)
                ks = ks * (1 - inside)
            shade = (sc.AMBIENT + (1 - sc.AMBIENT) * hit.ndl) * occl
            c = hit.cover
            inv = 1 - c
            r = refl[y0:y1, x0:x1]
            r *= inv[..., None]
            r += albedo * (shade * c)[..., None]
            g = (self.pulse_c0 * c) * weight * shade
            gain0[y0:y1, x0:x1] = gain0[y0:y1, x0:x1] * inv + g * (1 - lag)
            gain1[y0:y1, x0:x1] = g * lag
            if cfg.specular:
                r += (ks * c * hit.ndh**_SPEC_EXP)[..., None]
            neck_vis[y0:y1, x0:x1] *= inv
            torso_vis[y0:y1, x0:x1] *= inv
            head_vis[y0:y1, x0:x1] = c
            skin_vis[y0:y1, x0:x1] = skin * c
            boxes.append(hit.box)
        skin_vis += neck_vis
        box = None
        if boxes:
            b = np.array(boxes)
            box = (b[:, 0].min(), b[:, 1].min(), b[:, 2].max(), b[:, 3].max())
        return _Composite(refl, gain0, gain1, box, head_vis, neck_vis, torso_vis, skin_vis)

    def _light(self, comp: _Composite, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Eq. 9 without noise: returns (base (H, W, 3), pulse_term (H, W, 3)) float32."""
        s = self.signals
        light = np.float32(sc.LIGHT_LEVEL * (1.0 + s.illumination[k]))
        base = cv2.multiply(comp.refl, tuple(float(v) for v in sc.U_S * light) + (0.0,))
        pulse_term = np.zeros(base.shape, np.float32)
        if comp.box is not None:
            x0, y0, x1, y1 = comp.box
            p = comp.gain0[y0:y1, x0:x1] * np.float32(s.pulse[k])
            p += comp.gain1[y0:y1, x0:x1] * np.float32(s.pulse_late[k])
            pulse_term[y0:y1, x0:x1] = p[..., None] * (sc.U_P * light)
        return base, pulse_term

    def _quantize(self, x: np.ndarray) -> np.ndarray:
        if not self.cfg.quantize:
            return np.clip(x, 0.0, 255.0)
        # Round to nearest (ties to even), saturating at 0 and 255; no dithering.
        return cv2.convertScaleAbs(cv2.max(x, 0.0))

    def draw_noise(self) -> np.ndarray:
        """Gaussian sensor noise (H, W, 3) float32, std :attr:`noise_std` grey levels.

        Drawn with OpenCV's generator (4x faster than numpy's here), seeded for each
        frame from this clip's numpy Generator, so the sequence depends only on
        ``cfg.seed`` and the frame index.
        """
        w, h = self.size
        noise = np.empty((h, w, 3), np.float32)
        seed = int(self._noise_rng.integers(0, 2**31 - 1))
        if self.noise_std > 0:
            cv2.setRNGSeed(seed)
            cv2.randn(noise.reshape(h, w * 3), 0.0, float(self.noise_std))
        else:
            noise[:] = 0
        return noise

    def layers(self, k: int) -> FrameLayers:
        """Render frame ``k`` (frames must be requested in order 0, 1, 2, ...)."""
        if k != self._next:
            raise ValueError(f"frames must be rendered in order: expected {self._next}, got {k}")
        self._next += 1
        cfg, s = self.cfg, self.signals
        comp = self._compose(k, 1.0)
        base, pt = self._light(comp, k)
        noise = self.draw_noise()
        common = cv2.add(base, noise)
        f_in = cv2.add(common, pt)
        alpha = np.float32(cfg.alpha)
        ideal_torso = comp.torso_vis
        if cfg.mode == "pulse" or cfg.alpha == 1.0:
            ideal_pt = pt * alpha if cfg.mode == "pulse" else pt
            f_id = common + ideal_pt
        else:
            comp_i = self._compose(k, float(cfg.alpha))
            base_i, ideal_pt = self._light(comp_i, k)
            f_id = cv2.add(cv2.add(base_i, noise), ideal_pt)
            ideal_torso = comp_i.torso_vis
        truth = {name: float(getattr(s, name)[k]) for name in SCALAR_TRUTH}
        truth["t"] = float(s.t[k])
        truth["skin_mask"] = comp.skin_vis > 0.5
        truth["head_mask"] = (comp.head_vis > 0) | (comp.neck_vis > 0)
        truth["torso_mask"] = comp.torso_vis > 0
        return FrameLayers(
            frame=self._quantize(f_in),
            ideal=self._quantize(f_id),
            frame_float=f_in,
            ideal_float=f_id,
            pulse_term=pt,
            ideal_pulse_term=ideal_pt,
            noise=noise,
            torso_cover=comp.torso_vis,
            ideal_torso_cover=ideal_torso,
            truth=truth,
        )

    def meta(self) -> dict:
        """JSON-able description of the clip (no codec yet); see :func:`clip_meta`."""
        return clip_meta(self.cfg, self.signals)


def clip_meta(cfg: SynthConfig, signals: Signals | None = None) -> dict:
    """JSON-able description of a clip: rates, sizes and the full resolved config."""
    from rtmag import __version__

    cfg = resolve_config(cfg)
    s = signals if signals is not None else make_signals(cfg)
    return {
        "fps": float(cfg.fps),
        "size": list(cfg.size),
        "n_frames": cfg.n_frames,
        "task": cfg.task,
        "mode": cfg.mode,
        "alpha": float(cfg.alpha),
        "seed": int(cfg.seed),
        "heart_rate_bpm": float(np.mean(s.heart_rate_bpm_inst)),
        "breathing_rate_bpm": float(np.mean(s.breathing_rate_bpm_inst)),
        "noise_std": float(cfg.noise_std),
        "pulse_color": [float(v) for v in sc.U_P],
        "codec": None,
        "rtmag_version": __version__,
        "config": cfg.to_dict(),
    }


def _iter_raw(cfg: SynthConfig) -> Iterator[tuple[np.ndarray, np.ndarray, dict]]:
    r = Renderer(cfg)
    for k in range(r.n_frames):
        lay = r.layers(k)
        yield lay.frame, lay.ideal, lay.truth


def iter_render(cfg: SynthConfig) -> Iterator[tuple[np.ndarray, np.ndarray, dict]]:
    """Render a clip frame by frame without holding it in memory.

    Yields ``(frame, ideal, truth_t)`` per frame: ``frame`` and ``ideal`` (H, W, 3)
    uint8 RGB, ``truth_t`` a dict of per-frame scalars (see :data:`SCALAR_TRUTH`,
    plus ``t`` in seconds) and (H, W) bool masks (see :data:`MASK_TRUTH`). With
    ``cfg.compress`` both clips pass through libx264 yuv420p at that CRF.
    """
    if cfg.compress is None:
        yield from _iter_raw(cfg)
        return
    from rtmag.synth.io import H264RoundTrip

    rt_in = H264RoundTrip(cfg.size, cfg.fps, int(cfg.compress))
    rt_id = H264RoundTrip(cfg.size, cfg.fps, int(cfg.compress))
    pending: list[dict] = []
    out_in: list[np.ndarray] = []
    out_id: list[np.ndarray] = []
    for frame, ideal, truth in _iter_raw(cfg):
        pending.append(truth)
        out_in += rt_in.push(frame)
        out_id += rt_id.push(ideal)
        while out_in and out_id:
            yield out_in.pop(0), out_id.pop(0), pending.pop(0)
    out_in += rt_in.flush()
    out_id += rt_id.flush()
    while out_in and out_id and pending:
        yield out_in.pop(0), out_id.pop(0), pending.pop(0)


def stack_truth(truths: list[dict]) -> dict:
    """Stack per-frame truth dicts into arrays with time first."""
    out = {}
    for key in truths[0]:
        vals = [t[key] for t in truths]
        if isinstance(vals[0], np.ndarray):
            out[key] = np.stack(vals).astype(bool)
        else:
            out[key] = np.asarray(vals, np.float64)
    return out


def render(cfg: SynthConfig) -> SynthClip:
    """Render a whole clip into memory. See :func:`iter_render` for long clips."""
    frames, ideals, truths = [], [], []
    for f, i, t in iter_render(cfg):
        frames.append(f)
        ideals.append(i)
        truths.append(t)
    meta = clip_meta(cfg)
    return SynthClip(
        frames=np.stack(frames), ideal=np.stack(ideals), truth=stack_truth(truths), meta=meta
    )
