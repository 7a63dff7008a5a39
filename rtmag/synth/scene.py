"""The static parts of a synthetic scene and the head ray caster (pure functions).

Coordinates: pixels of the rendered frame, x to the right, y down, z towards the
camera; the camera is orthographic, looking along -z. Lengths are given at a
480-row frame and scaled by ``u = H / 480``. The head is an ellipsoid; its surface
texture lives in (longitude, latitude) of the ellipsoid (longitude 0 faces the
camera at yaw 0, latitude positive downwards), so features rotate with the head and
a yaw turn changes shading, foreshortening and visibility.

Reflectances are float32 in [0, 1]; the renderer multiplies them by the light.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from rtmag.synth.config import SynthConfig

#: Skin albedo (R, G, B) for Fitzpatrick types I..VI (display-referred reflectance).
SKIN_ALBEDO = np.array(
    [
        [0.95, 0.80, 0.72],
        [0.90, 0.72, 0.60],
        [0.80, 0.60, 0.47],
        [0.66, 0.46, 0.33],
        [0.48, 0.32, 0.22],
        [0.30, 0.20, 0.14],
    ],
    dtype=np.float32,
)
#: Relative pulse strength per Fitzpatrick type (melanin absorbs part of the signal).
SKIN_PULSE_GAIN = np.array([1.0, 1.0, 0.92, 0.82, 0.68, 0.55], dtype=np.float32)
#: Pulse colour direction u_p (paper, section 3.2): unit vector along 0.33:0.77:0.53.
U_P = (np.array([0.33, 0.77, 0.53]) / np.linalg.norm([0.33, 0.77, 0.53])).astype(np.float32)
#: Light-source colour (u_s of Eq. 7, also the tint of diffuse light).
U_S = np.array([1.0, 0.97, 0.92], dtype=np.float32)
#: Direction towards the light (from the upper left, in front).
LIGHT_DIR = (np.array([-0.35, -0.45, 0.82]) / np.linalg.norm([-0.35, -0.45, 0.82])).astype(
    np.float32
)
HALF_VEC = (LIGHT_DIR + np.array([0, 0, 1], np.float32)) / np.linalg.norm(
    LIGHT_DIR + np.array([0, 0, 1], np.float32)
)
AMBIENT = 0.35
#: Light level I_0 in grey levels for a reflectance of 1.
LIGHT_LEVEL = 215.0

# Geometry at 480 rows, relative to the frame centre column.
HEAD_AXES = (68.0, 90.0, 78.0)  # semi-axes x, y, z
HEAD_CENTRE_Y = 195.0
NECK_HALF_W = 36.0
NECK_TOP_Y = 245.0
SHOULDER_Y = 322.0
SHOULDER_HALF_W = 175.0
#: How much of the chest's breathing displacement the neck and the head follow.
NECK_BREATH = 0.5
HEAD_BREATH = 0.25

# Texture channels (atlas in lon/lat): tex_a = albedo RGB + pulse weight,
# tex_b = pulse lag (0..1 of MAX_PULSE_LAG_S), skin, specular strength, occlusion.


def _smoothstep_edge(d: np.ndarray, width: float) -> np.ndarray:
    """Coverage 1 inside (d < 0), 0 outside, linear over ``width`` around d = 0."""
    return np.clip(0.5 - d / width, 0.0, 1.0).astype(np.float32)


def _ellipse_d(x, y, cx, cy, rx, ry):
    """Approximate signed distance (in the units of rx) to an axis-aligned ellipse."""
    return (np.sqrt(((x - cx) / rx) ** 2 + ((y - cy) / ry) ** 2) - 1.0) * rx


@dataclass(frozen=True)
class HeadTexture:
    """Head surface texture atlas.

    ``tex_a`` (Nlat, Nlon + 2*pad, 4) float32: albedo R, G, B and pulse weight (0..1).
    ``tex_b`` (same shape): pulse lag (0..1), skin (0..1), specular strength, occlusion.
    Column ``pad + j`` holds longitude ``-pi + (j + 0.5) * 2pi/Nlon``; row ``i`` latitude
    ``-pi/2 + (i + 0.5) * pi/Nlat``. The pad columns wrap around.
    """

    tex_a: np.ndarray
    tex_b: np.ndarray
    n_lat: int
    n_lon: int
    pad: int
    mouth_albedo: np.ndarray


def make_head_texture(cfg: SynthConfig, rng: np.random.Generator, scale: float) -> HeadTexture:
    """Paint the face: skin, hair, eyes, brows, nose shading, lips, ears, glasses.

    Resolution follows the head's size in pixels (about one texel per pixel at the
    face centre) so small renders are not aliased.
    """
    ay = HEAD_AXES[1] * scale
    n_lat = int(np.clip(round(ay * np.pi * 1.1), 24, 1200))
    n_lon = 2 * n_lat
    pad = 2
    lat = (-np.pi / 2 + (np.arange(n_lat) + 0.5) * np.pi / n_lat)[:, None]
    lon = (-np.pi + (np.arange(n_lon) + 0.5) * 2 * np.pi / n_lon)[None, :]
    lat_d = np.degrees(lat) * np.ones_like(lon)
    lon_d = np.degrees(lon) * np.ones_like(lat)
    aw = 360.0 / n_lon * 1.5  # anti-aliasing width in degrees

    tone = cfg.skin_tone - 1
    skin = SKIN_ALBEDO[tone] * np.float32(rng.uniform(0.96, 1.04))
    albedo = np.empty((n_lat, n_lon, 3), np.float32)
    albedo[:] = skin
    # Blotches and cheek redness.
    blot = cv2.GaussianBlur(
        rng.standard_normal((n_lat, n_lon)).astype(np.float32), (0, 0), max(2.0, n_lat / 40)
    )
    blot /= blot.std() + 1e-6
    albedo *= (1.0 + 0.012 * blot)[..., None]
    cheeks = np.exp(-(((np.abs(lon_d) - 30) / 14) ** 2 + ((lat_d - 15) / 12) ** 2))
    albedo *= (1 + cheeks[..., None] * np.array([0.03, -0.04, -0.03], np.float32)).astype(
        np.float32
    )
    weight = 0.55 + 0.3 * cheeks + 0.35 * np.exp(-(((lon_d) / 35) ** 2 + ((lat_d + 35) / 14) ** 2))
    weight = np.clip(weight - 0.25 * np.clip((np.abs(lon_d) - 60) / 60, 0, 1), 0.2, 1.0)
    skin_cov = np.ones((n_lat, n_lon), np.float32)
    spec = np.full((n_lat, n_lon), 0.22, np.float32)
    spec += 0.12 * np.exp(-((lon_d / 12) ** 2 + ((lat_d + 38) / 14) ** 2))  # forehead shine
    spec += 0.10 * np.exp(-((lon_d / 5) ** 2 + ((lat_d - 8) / 10) ** 2))  # nose
    occl = np.ones((n_lat, n_lon), np.float32)

    # Lag: smooth random field, 0 (early) .. 1 (MAX_PULSE_LAG_S later).
    p1, p2 = rng.uniform(0, 2 * np.pi, 2)
    lag = 0.5 + 0.3 * np.sin(2 * lon + p1) * np.cos(lat) + 0.2 * np.sin(1.5 * lat + p2)
    lag = np.clip(lag, 0, 1).astype(np.float32)

    def paint(cov, rgb, w=0.0, sk=0.0, sp=None):
        cov = cov.astype(np.float32)[..., None]
        albedo[:] = albedo * (1 - cov) + np.asarray(rgb, np.float32) * cov
        c = cov[..., 0]
        weight[:] = weight * (1 - c) + w * c
        skin_cov[:] = skin_cov * (1 - c) + sk * c
        if sp is not None:
            spec[:] = spec * (1 - c) + sp * c

    # Nose: shade on the side away from the light, nostrils.
    occl *= 1 - 0.3 * np.exp(-(((lon_d - 7) / 4) ** 2 + ((lat_d - 10) / 11) ** 2))
    occl *= 1 - 0.35 * np.exp(-(((np.abs(lon_d) - 5) / 3) ** 2 + ((lat_d - 22) / 2.5) ** 2))
    # Eye sockets.
    occl *= 1 - 0.15 * np.exp(-(((np.abs(lon_d) - 22) / 12) ** 2 + ((lat_d + 6) / 7) ** 2))

    # Ears (skin, less pulse, a shadowed rim).
    ear_d = _ellipse_d(np.abs(lon_d), lat_d, 92, 6, 7, 13)
    paint(_smoothstep_edge(ear_d, aw), skin * 0.93, w=0.5, sk=1.0)
    occl *= 1 - 0.25 * np.exp(-(((ear_d + 2) / 2.0) ** 2))

    # Lips (not skin for the mask, little pulse).
    lip_d = _ellipse_d(lon_d, lat_d, 0, 37, 17, 4.5)
    lip_rgb = skin * np.array([0.92, 0.62, 0.66], np.float32)
    paint(_smoothstep_edge(lip_d, aw), lip_rgb, w=0.15, sk=0.0, sp=0.35)
    paint(_smoothstep_edge(np.abs(lat_d - 37) - 0.5, aw) * (lip_d < 0), lip_rgb * 0.5, w=0.0)

    # Eyes: sclera, iris, pupil.
    iris_rgb = rng.choice(
        np.array([[0.25, 0.15, 0.08], [0.15, 0.25, 0.35], [0.2, 0.3, 0.15]], np.float32)
    )
    for sx in (-1, 1):
        ex = 22 * sx
        eye_d = _ellipse_d(lon_d, lat_d, ex, -4, 10, 3.8)
        paint(_smoothstep_edge(eye_d, aw), [0.85, 0.83, 0.80], sp=0.6)
        iris_d = _ellipse_d(lon_d, lat_d, ex, -4, 3.8, 3.8)
        paint(_smoothstep_edge(iris_d, aw) * (eye_d < 0.5), iris_rgb, sp=0.8)
        pupil_d = _ellipse_d(lon_d, lat_d, ex, -4, 1.6, 1.6)
        paint(_smoothstep_edge(pupil_d, aw), [0.03, 0.03, 0.03], sp=0.9)
        lid_d = np.abs(eye_d + 0.3) - 0.7
        paint(_smoothstep_edge(lid_d, aw) * 0.7, skin * 0.55)

    # Hair.
    if tone >= 4:
        hair_rgb = np.array([0.06, 0.05, 0.05], np.float32)
    else:
        hair_rgb = rng.choice(
            np.array(
                [[0.07, 0.06, 0.05], [0.25, 0.16, 0.09], [0.55, 0.42, 0.25], [0.45, 0.20, 0.08]],
                np.float32,
            )
        )
    hair_tex = cv2.GaussianBlur(
        rng.standard_normal((n_lat, n_lon)).astype(np.float32), (0, 0), sigmaX=0.6, sigmaY=4
    )
    hairline = -36 + 10 * (np.abs(lon_d) / 90) ** 2 + 3 * np.sin(np.radians(lon_d) * 5 + p1)
    front = lat_d - hairline  # < 0: hair
    sides = np.where(np.abs(lon_d) > 78, lat_d - (2 + 40 * ((np.abs(lon_d) - 78) / 102)), 1e3)
    back = np.where(np.abs(lon_d) > 105, lat_d - 55, 1e3)
    hair_d = np.minimum(np.minimum(front, sides), back)
    ear_keep = ear_d < 0
    hair_cov = _smoothstep_edge(hair_d, aw * 2) * ~ear_keep
    hair_col = hair_rgb * (1 + 0.25 * hair_tex[..., None])
    cov = hair_cov[..., None]
    albedo[:] = albedo * (1 - cov) + hair_col * cov
    weight *= 1 - hair_cov
    skin_cov *= 1 - hair_cov
    spec[:] = spec * (1 - hair_cov) + 0.12 * hair_cov

    # Brows.
    for sx in (-1, 1):
        bx = 22 * sx
        arch = -14 - 3 * (1 - ((lon_d - bx) / 12) ** 2)
        brow_d = np.maximum(np.abs(lat_d - arch) - 1.6, np.abs(lon_d - bx) - 12)
        paint(_smoothstep_edge(brow_d, aw) * 0.9, hair_rgb * 1.1, w=0.0, sk=0.0, sp=0.1)

    if cfg.glasses:
        frame_rgb = rng.choice(np.array([[0.05, 0.05, 0.05], [0.3, 0.15, 0.05]], np.float32))
        for sx in (-1, 1):
            gx = 22 * sx
            ring = _ellipse_d(lon_d, lat_d, gx, -4, 14, 9)
            lens = _smoothstep_edge(ring, aw)
            albedo *= (1 - 0.12 * lens)[..., None]
            weight *= 1 - 0.3 * lens
            spec[:] = np.maximum(spec, 0.9 * lens)
            paint(_smoothstep_edge(np.abs(ring) - 1.0, aw), frame_rgb, sp=0.5)
        bridge = np.maximum(np.abs(lat_d + 6) - 1.0, np.abs(lon_d) - 8)
        paint(_smoothstep_edge(bridge, aw), frame_rgb, sp=0.5)
        temple = np.maximum(np.abs(lat_d + 6) - 1.0, np.abs(np.abs(lon_d) - 63) - 27)
        paint(_smoothstep_edge(temple, aw), frame_rgb, sp=0.5)

    tex_a = np.concatenate([albedo, weight.astype(np.float32)[..., None]], axis=2)
    tex_b = np.stack([lag, skin_cov, spec, occl], axis=2).astype(np.float32)
    tex_a = np.concatenate([tex_a[:, -pad:], tex_a, tex_a[:, :pad]], axis=1)
    tex_b = np.concatenate([tex_b[:, -pad:], tex_b, tex_b[:, :pad]], axis=1)
    return HeadTexture(
        tex_a=np.ascontiguousarray(tex_a, np.float32),
        tex_b=np.ascontiguousarray(tex_b, np.float32),
        n_lat=n_lat,
        n_lon=n_lon,
        pad=pad,
        mouth_albedo=(skin * np.array([0.25, 0.12, 0.12], np.float32)).astype(np.float32),
    )


def rotation(yaw_deg: float, pitch_deg: float, roll_deg: float) -> np.ndarray:
    """Head rotation (3, 3) float64: yaw about y, then pitch about x, then roll about z.

    Positive yaw turns the face towards +x (the image's right).
    """
    y, p, r = np.radians([yaw_deg, pitch_deg, roll_deg])
    ry = np.array([[np.cos(y), 0, np.sin(y)], [0, 1, 0], [-np.sin(y), 0, np.cos(y)]])
    rx = np.array([[1, 0, 0], [0, np.cos(p), -np.sin(p)], [0, np.sin(p), np.cos(p)]])
    rz = np.array([[np.cos(r), -np.sin(r), 0], [np.sin(r), np.cos(r), 0], [0, 0, 1]])
    return rz @ rx @ ry


@dataclass(frozen=True)
class HeadHit:
    """Ray-cast head inside a bounding box ``(x0, y0, x1, y1)`` (x1, y1 exclusive).

    All arrays are (h, w) float32: ``cover`` silhouette coverage 0..1; ``u, v`` texel
    coordinates for :func:`cv2.remap`; ``lon_d, lat_d`` surface coordinates in
    degrees; ``ndl`` the cosine to the light (>= 0); ``ndh`` the cosine to the
    Blinn half vector (>= 0).
    """

    box: tuple[int, int, int, int]
    cover: np.ndarray
    u: np.ndarray
    v: np.ndarray
    lon_d: np.ndarray
    lat_d: np.ndarray
    ndl: np.ndarray
    ndh: np.ndarray


def raycast_head(
    centre: tuple[float, float],
    axes: tuple[float, float, float],
    rot: np.ndarray,
    frame_size: tuple[int, int],
    tex: HeadTexture,
) -> HeadHit | None:
    """Intersect orthographic camera rays with the rotated ellipsoid head.

    The ellipsoid ``q^T diag(1/a^2) q = 1`` in head coordinates ``q = R^T (p - c)``
    is ``p^T A p = 1`` with ``A = R diag(1/a^2) R^T``. Along a ray ``(X, Y, z)`` this
    is a quadratic in z; the nearer (larger z) root is the visible surface. The
    silhouette is the ellipse of the Schur complement of A, whose signed distance
    gives anti-aliased coverage. Returns None when the head is outside the frame.
    """
    w_img, h_img = frame_size
    cx, cy = centre
    a = np.asarray(axes, np.float64)
    A = rot @ np.diag(1.0 / a**2) @ rot.T
    Ms = A[:2, :2] - np.outer(A[:2, 2], A[2, :2]) / A[2, 2]
    Minv = np.linalg.inv(Ms)
    hx, hy = np.sqrt(Minv[0, 0]), np.sqrt(Minv[1, 1])
    x0, x1 = max(int(np.floor(cx - hx)) - 1, 0), min(int(np.ceil(cx + hx)) + 2, w_img)
    y0, y1 = max(int(np.floor(cy - hy)) - 1, 0), min(int(np.ceil(cy + hy)) + 2, h_img)
    if x1 <= x0 or y1 <= y0:
        return None
    X = (np.arange(x0, x1, dtype=np.float32) + 0.5 - np.float32(cx))[None, :]
    Y = (np.arange(y0, y1, dtype=np.float32) + 0.5 - np.float32(cy))[:, None]
    Ms32 = Ms.astype(np.float32)
    Q = Ms32[0, 0] * X * X + 2 * Ms32[0, 1] * X * Y + Ms32[1, 1] * Y * Y
    f = np.sqrt(Q) + np.float32(1e-6)
    gx = (Ms32[0, 0] * X + Ms32[0, 1] * Y) / f
    gy = (Ms32[0, 1] * X + Ms32[1, 1] * Y) / f
    cover = np.clip(0.5 + (1.0 - f) / (np.sqrt(gx * gx + gy * gy) + 1e-6), 0.0, 1.0)
    # Nearer root z = (-b + sqrt(b^2 - Azz c)) / Azz, with b^2 - Azz c = Azz (1 - Q).
    Azz = np.float32(A[2, 2])
    b = np.float32(A[2, 0]) * X + np.float32(A[2, 1]) * Y
    z = (-b + np.sqrt(np.maximum(Azz * (1.0 - Q), 0.0))) / Azz
    Rt = rot.T.astype(np.float32)
    qx = Rt[0, 0] * X + Rt[0, 1] * Y + Rt[0, 2] * z
    qy = Rt[1, 0] * X + Rt[1, 1] * Y + Rt[1, 2] * z
    qz = Rt[2, 0] * X + Rt[2, 1] * Y + Rt[2, 2] * z
    ex, ey, ez = qx / np.float32(a[0]), qy / np.float32(a[1]), qz / np.float32(a[2])
    lon = np.arctan2(ex, ez)
    lat = np.arcsin(np.clip(ey, -1.0, 1.0))
    # Normal in head coordinates q / a^2, then to camera coordinates.
    nx, ny, nz = ex / np.float32(a[0]), ey / np.float32(a[1]), ez / np.float32(a[2])
    R32 = rot.astype(np.float32)
    wx = R32[0, 0] * nx + R32[0, 1] * ny + R32[0, 2] * nz
    wy = R32[1, 0] * nx + R32[1, 1] * ny + R32[1, 2] * nz
    wz = R32[2, 0] * nx + R32[2, 1] * ny + R32[2, 2] * nz
    inv = 1.0 / (np.sqrt(wx * wx + wy * wy + wz * wz) + 1e-12)
    wx, wy, wz = wx * inv, wy * inv, wz * inv
    ndl = np.maximum(LIGHT_DIR[0] * wx + LIGHT_DIR[1] * wy + LIGHT_DIR[2] * wz, 0.0)
    ndh = np.maximum(HALF_VEC[0] * wx + HALF_VEC[1] * wy + HALF_VEC[2] * wz, 0.0)
    u = (lon + np.float32(np.pi)) * np.float32(tex.n_lon / (2 * np.pi)) - 0.5 + tex.pad
    v = (lat + np.float32(np.pi / 2)) * np.float32(tex.n_lat / np.pi) - 0.5
    return HeadHit(
        box=(x0, y0, x1, y1),
        cover=cover.astype(np.float32),
        u=u.astype(np.float32),
        v=v.astype(np.float32),
        lon_d=np.degrees(lon).astype(np.float32),
        lat_d=np.degrees(lat).astype(np.float32),
        ndl=ndl.astype(np.float32),
        ndh=ndh.astype(np.float32),
    )


@dataclass(frozen=True)
class BodyLayer:
    """A static, premultiplied layer moved each frame by an affine warp.

    ``data`` (h, w, C) float32 with channels: R, G, B premultiplied reflectance,
    coverage, then (neck only) premultiplied pulse gain. ``origin`` is the frame
    position (x, y) of the layer's pixel (0, 0); ``pivot_x`` the frame column about
    which the layer scales horizontally (chest expansion).
    """

    data: np.ndarray
    origin: tuple[int, int]
    pivot_x: float


def _supersample(fn, w: int, h: int, k: int) -> np.ndarray:
    """Evaluate ``fn(x, y)`` (pixel-centre coordinates) at k x k samples per pixel."""
    xs = (np.arange(w * k, dtype=np.float32) + 0.5) / k
    ys = (np.arange(h * k, dtype=np.float32) + 0.5) / k
    img = fn(xs[None, :], ys[:, None]).astype(np.float32)
    if k > 1:
        img = cv2.resize(img, (w, h), interpolation=cv2.INTER_AREA)
    return img


def make_torso(cfg: SynthConfig, rng: np.random.Generator, scale: float) -> BodyLayer:
    """Shoulders and chest in clothing, with a round neckline, as a :class:`BodyLayer`.

    The layer extends below the frame so that moving it up reveals more clothing.
    """
    w_img, h_img = cfg.size
    cxf = w_img / 2.0
    y_top = int(max(0, np.floor((SHOULDER_Y - 45) * scale)))
    extra = int(np.ceil(30 * scale)) + 2
    h = h_img - y_top + extra
    k = int(np.clip(np.ceil(4 / max(scale, 0.25)), 2, 8)) if scale < 1 else 2
    sw, sy = SHOULDER_HALF_W * scale, SHOULDER_Y * scale

    def coverage(x, y):
        xf, yf = x, y + y_top
        dx = np.abs(xf - cxf)
        top = sy + 28 * scale * np.clip(dx / sw, 0, 1.3) ** 3
        half = sw + 0.25 * np.maximum(yf - sy, 0)
        inside = (yf > top) & (dx < half)
        shoulder_round = _ellipse_d(
            dx, yf, sw - 30 * scale, sy + 30 * scale, 30 * scale, 30 * scale
        )
        corner = (dx > sw - 30 * scale) & (yf < sy + 30 * scale) & (shoulder_round > 0)
        neckline = _ellipse_d(dx, yf, 0, sy - 10 * scale, 44 * scale, 40 * scale) < 0
        return (inside & ~corner & ~neckline).astype(np.float32)

    cover = _supersample(coverage, w_img, h, k)
    palette = np.array(
        [
            [0.20, 0.30, 0.55],
            [0.55, 0.12, 0.12],
            [0.15, 0.40, 0.25],
            [0.35, 0.35, 0.38],
            [0.75, 0.72, 0.65],
            [0.60, 0.45, 0.20],
            [0.10, 0.10, 0.12],
        ],
        np.float32,
    )
    cloth = palette[rng.integers(len(palette))] * np.float32(rng.uniform(0.85, 1.1))
    xs = (np.arange(w_img, dtype=np.float32) + 0.5 - cxf)[None, :]
    ys = (np.arange(h, dtype=np.float32) + 0.5 + y_top)[:, None]
    # Cylindrical shading across the chest, darker folds, fine weave.
    shade = 0.55 + 0.45 * np.sqrt(np.clip(1 - (xs / (sw * 1.25)) ** 2, 0, 1)) + 0.05 * (xs < 0)
    shade = shade * (1 - 0.12 * np.exp(-(((ys - sy) / (60 * scale)) ** 2))) * np.ones_like(ys)
    folds = cv2.GaussianBlur(
        rng.standard_normal((h, w_img)).astype(np.float32),
        (0, 0),
        sigmaX=6 * scale + 0.5,
        sigmaY=18 * scale + 0.5,
    )
    folds /= folds.std() + 1e-6
    weave = cv2.GaussianBlur(rng.standard_normal((h, w_img)).astype(np.float32), (0, 0), 0.7)
    tex = shade * (1 + 0.06 * folds + 0.03 * weave)
    rgb = cloth[None, None, :] * tex[..., None]
    data = np.concatenate([rgb * cover[..., None], cover[..., None]], axis=2)
    return BodyLayer(data=np.ascontiguousarray(data, np.float32), origin=(0, y_top), pivot_x=cxf)


def make_neck(cfg: SynthConfig, scale: float, skin_rgb: np.ndarray) -> BodyLayer:
    """The neck: a vertical skin cylinder from under the chin into the neckline.

    Channels: premultiplied reflectance RGB, coverage, premultiplied pulse gain
    (shading times pulse weight 0.7; the lag is 0 there).
    """
    w_img, h_img = cfg.size
    cxf = w_img / 2.0
    r = NECK_HALF_W * scale
    x0 = int(max(0, np.floor(cxf - r - 3)))
    x1 = int(min(w_img, np.ceil(cxf + r + 3)))
    y0 = int(max(0, np.floor(NECK_TOP_Y * scale)))
    y1 = int(min(h_img + 4, np.ceil((SHOULDER_Y + 40) * scale)))
    w, h = x1 - x0, y1 - y0
    k = 4

    def coverage(x, y):
        return (np.abs(x + x0 - cxf) < r).astype(np.float32) * np.ones_like(y)

    cover = _supersample(coverage, w, h, k)
    xs = (np.arange(w, dtype=np.float32) + 0.5 + x0 - cxf)[None, :] / r
    ys = (np.arange(h, dtype=np.float32) + 0.5 + y0)[:, None]
    nz = np.sqrt(np.clip(1 - xs**2, 0, 1))
    ndl = np.clip(LIGHT_DIR[0] * xs + LIGHT_DIR[2] * nz, 0, 1)
    # Shadow under the chin.
    chin = 1 - 0.45 * np.exp(
        -(((ys - (HEAD_CENTRE_Y + HEAD_AXES[1] - 4) * scale) / (14 * scale)) ** 2)
    )
    shade = (AMBIENT + (1 - AMBIENT) * ndl) * 0.92 * chin
    rgb = skin_rgb[None, None, :] * shade[..., None]
    gain = 0.7 * shade
    data = np.concatenate(
        [rgb * cover[..., None], cover[..., None], (gain * cover)[..., None]], axis=2
    )
    return BodyLayer(data=np.ascontiguousarray(data, np.float32), origin=(x0, y0), pivot_x=cxf)


def make_background(cfg: SynthConfig, rng: np.random.Generator) -> np.ndarray:
    """Static background reflectance (H, W, 3) float32.

    "plain": a nearly black backdrop with a faint gradient (paper tasks B, C).
    "patterned": a wall with shelves of coloured boxes, a poster and stripes.
    """
    w, h = cfg.size
    ys = np.linspace(0, 1, h, dtype=np.float32)[:, None, None]
    xs = np.linspace(0, 1, w, dtype=np.float32)[None, :, None]
    if cfg.background == "plain":
        return np.ascontiguousarray(
            (0.035 + 0.01 * xs + 0.008 * ys)
            * np.array([1.0, 1.0, 1.05], np.float32)
            * np.ones((h, w, 3), np.float32)
        )
    k = 2 if h >= 240 else int(np.ceil(480 / h))
    W, H = w * k, h * k
    wall = np.array(rng.uniform([0.55, 0.5, 0.45], [0.8, 0.78, 0.75]), np.float32)
    img = np.empty((H, W, 3), np.float32)
    img[:] = wall
    # Diagonal wallpaper stripes.
    yy, xx = np.mgrid[0:H, 0:W].astype(np.float32)
    period = H / rng.uniform(10, 18)
    stripes = 0.5 + 0.5 * np.sin(2 * np.pi * (xx + yy) / period)
    img *= (0.9 + 0.1 * stripes)[..., None]
    # Shelves with boxes and books.
    n_shelves = 3
    for s in range(n_shelves):
        y_shelf = int(H * (0.15 + 0.28 * s))
        cv2.rectangle(img, (0, y_shelf), (W, y_shelf + max(2, H // 60)), (0.35, 0.25, 0.15), -1)
        x = int(rng.uniform(0, W * 0.05))
        while x < W:
            bw = int(W * rng.uniform(0.012, 0.05))
            bh = int(H * rng.uniform(0.08, 0.2))
            col = tuple(float(c) for c in rng.uniform(0.05, 0.9, 3))
            cv2.rectangle(img, (x, y_shelf - bh), (x + bw, y_shelf), col, -1, cv2.LINE_AA)
            x += bw + int(W * rng.uniform(0.0, 0.03))
    # A poster with circles.
    px, py = int(W * rng.uniform(0.02, 0.15)), int(H * 0.55)
    cv2.rectangle(img, (px, py), (px + W // 6, py + H // 4), (0.9, 0.88, 0.8), -1)
    for _ in range(6):
        c = (int(px + rng.uniform(0.1, 0.9) * W / 6), int(py + rng.uniform(0.1, 0.9) * H / 4))
        col = tuple(float(v) for v in rng.uniform(0.1, 0.9, 3))
        cv2.circle(img, c, int(H * rng.uniform(0.01, 0.04)), col, -1, cv2.LINE_AA)
    img = cv2.resize(img, (w, h), interpolation=cv2.INTER_AREA)
    vignette = 1 - 0.25 * ((xs - 0.5) ** 2 + (ys - 0.5) ** 2)
    return np.ascontiguousarray(np.clip(img * vignette, 0, 1), np.float32)
