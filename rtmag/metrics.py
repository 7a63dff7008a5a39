"""Quality measures of a magnified clip against its input and its ideal.

All clips are ``(T, H, W, 3)`` arrays (uint8 or float, 0-255 scale). The measures
follow the issue's definitions:

* :func:`psnr`: the paper's Table 1 metric, per frame then averaged over frames.
* :func:`pulse_gain`: the in-band gain of the pulse on skin that the output shows: the
  band-passed change of the mean skin colour (output minus input) projected onto the
  band-passed true pulse term, plus 1.
* :func:`offskin_change_db` and :func:`out_of_band_change_db`: how much the output
  grew where it should not have: off the skin, and outside the band on the skin.
* :func:`ssim`: the paper's other Table 1 metric (Wang et al. 2004).
* :func:`artifact_db`: the energy of the change that is not the source's in-band
  change (off the source, or outside the band on it), in dB re one grey level.
"""

from __future__ import annotations

import math

import numpy as np


def psnr(a: np.ndarray, b: np.ndarray, peak: float = 255.0) -> float:
    """Mean over frames of the per-frame PSNR in dB (identical frames count as 100 dB).

    Args:
        a, b: ``(T, H, W, C)`` or ``(H, W, C)`` arrays on a 0..``peak`` scale.
    """
    a = np.asarray(a, np.float64)
    b = np.asarray(b, np.float64)
    if a.shape != b.shape:
        raise ValueError(f"shapes differ: {a.shape} vs {b.shape}")
    if a.ndim == 3:
        a, b = a[None], b[None]
    mse = ((a - b) ** 2).reshape(a.shape[0], -1).mean(axis=1)
    vals = [100.0 if m == 0 else 10 * math.log10(peak * peak / m) for m in mse]
    return float(np.mean(vals))


def masked_mean(frames: np.ndarray, masks: np.ndarray) -> np.ndarray:
    """Mean colour of each frame over its mask: ``(T, H, W, 3)``, ``(T, H, W)`` -> ``(T, 3)``.

    Frames whose mask is empty get NaN.
    """
    frames = np.asarray(frames, np.float64)
    m = np.asarray(masks, bool)
    cnt = m.reshape(m.shape[0], -1).sum(axis=1)
    s = np.einsum("thwc,thw->tc", frames, m.astype(np.float64))
    with np.errstate(invalid="ignore", divide="ignore"):
        return s / cnt[:, None]


def _bandpassed(x: np.ndarray, fps: float, band) -> np.ndarray:
    from rtmag.filters import design_bandpass, zero_phase

    x = np.asarray(x, np.float64)
    x = np.where(np.isfinite(x), x, np.nanmean(x, axis=0, keepdims=True))
    return zero_phase(design_bandpass(band[0], band[1], fps), x - x.mean(axis=0), axis=0)


def pulse_gain(
    output: np.ndarray,
    input: np.ndarray,
    pulse_term: np.ndarray,
    fps: float,
    band=(0.7, 2.5),
    skip: int = 0,
) -> float:
    """In-band gain of the pulse on skin that ``output`` shows relative to ``input``.

    Args:
        output, input: ``(T, 3)`` mean skin colour per frame (:func:`masked_mean`).
        pulse_term: ``(T, 3)`` mean over the skin of the true pulse term (the synthetic
            renderer's ``I0 (1 + i) u_p p``) in the same units.
        fps: frame rate; band: the pulse band in Hz.
        skip: frames at the start to leave out (a causal filter's transient).

    Returns:
        ``1 + <F(out - in), F p> / <F p, F p>``: 1 for an unchanged clip, exactly A for
        a clip whose skin pulse term is A times stronger (the ideal), whatever else
        the input holds. The projection onto the true pulse ignores added noise and
        motion that are not correlated with it.

    The first form, ``<F out, F p> / <F in, F p>``, put the input's own projection in
    the denominator; head motion's in-band shading, correlated with ``p`` by chance,
    made that up to 4 times ``<F p, F p>`` on synthetic task D, so that the ideal
    clip itself read a gain of 5.6-8.2 for 20 (14.5-18.7 on task C). The two forms
    agree on a still clip, and when ``pulse_term`` is the input itself (a real clip,
    no truth: the gain of the whole in-band skin colour).
    """
    return 1.0 + paired_gain(output, input, pulse_term, fps, band, skip=skip)


def _projection_ratio(output, input, truth, fps: float, band, skip: int = 0) -> float:
    """``<F out, F r> / <F in, F r>``: a gain whose ``truth`` may have any scale."""
    fo = _bandpassed(output, fps, band)[skip:]
    fi = _bandpassed(input, fps, band)[skip:]
    fr = _bandpassed(truth, fps, band)[skip:]
    den = float((fi * fr).sum())
    return float((fo * fr).sum() / den) if den != 0 else float("nan")


def paired_gain(
    output: np.ndarray,
    output_without: np.ndarray,
    source_term: np.ndarray,
    fps: float,
    band=(0.7, 2.5),
    skip: int = 0,
) -> float:
    """Gain of the source from a pair of outputs: of the clip, and of the same clip
    rendered without the source (everything else, noise included, identical).

    ``<F(out - out_without), F p> / <F p, F p>`` with ``F`` the zero-phase band-pass
    and ``p`` the true source term (``(T, K)``, e.g. the mean pulse term over the
    skin). The difference holds only what the source caused in the output, so the
    method's response to the clip's other in-band changes (head motion, illumination,
    noise), which a projection of one output onto ``p`` would count by their chance
    correlation with ``p``, cancels: 1 for the input pair, ``A`` for a method that
    multiplies the source by ``A``.

    Args:
        output, output_without: ``(T, K)`` e.g. mean skin colour per frame.
        source_term: ``(T, K)``; fps, band: as :func:`pulse_gain`; skip: frames left out.
    """
    d = np.asarray(output, np.float64) - np.asarray(output_without, np.float64)
    fd = _bandpassed(d, fps, band)[skip:]
    fp = _bandpassed(source_term, fps, band)[skip:]
    den = float((fp * fp).sum())
    return float((fd * fp).sum() / den) if den > 0 else float("nan")


def offskin_change_db(output: np.ndarray, input: np.ndarray, skin: np.ndarray) -> float:
    """Growth in dB of the temporal variance of pixels that are never skin.

    ``10 log10(sum var_t(out) / sum var_t(in))`` over pixels where ``skin`` is False
    in every frame (background, hair, clothes). 0 dB: nothing changed there.
    """
    never = ~np.asarray(skin, bool).any(axis=0)
    if not never.any():
        return 0.0
    vo = np.asarray(output, np.float64)[:, never].var(axis=0).sum()
    vi = np.asarray(input, np.float64)[:, never].var(axis=0).sum()
    return float(10 * math.log10(max(vo, 1e-12) / max(vi, 1e-12)))


def out_of_band_change_db(
    output: np.ndarray, input: np.ndarray, fps: float, band=(0.7, 2.5)
) -> float:
    """Growth in dB of the skin-colour power outside the band (``(T, 3)`` means).

    Power of ``x - F(x)`` (everything but the band, mean removed), output over input.
    """

    def oob(x):
        x = np.asarray(x, np.float64)
        x = x - x.mean(axis=0)
        r = x - _bandpassed(x, fps, band)
        return float((r * r).sum())

    return float(10 * math.log10(max(oob(output), 1e-12) / max(oob(input), 1e-12)))


def shoulder_boxes(torso: np.ndarray, head: np.ndarray) -> list[tuple[int, int, int, int]]:
    """Boxes ``(y0, y1, x0, x1)`` on the left and right shoulder.

    From ``torso`` and ``head`` masks ``(T, H, W)`` (a synthetic clip's truth): rows
    from a tenth of the frame above the torso's top edge to a fifth below it (the
    edge moves with the breath), columns of the torso outside every column the head
    or neck ever covers (the head turns; the shoulders should not see it).
    """
    torso = np.asarray(torso, bool)
    head = np.asarray(head, bool)
    h, w = torso.shape[1:]
    ys, xs = np.nonzero(torso[0])
    if len(ys) == 0:
        raise ValueError("the torso mask is empty: no shoulders to measure")
    top = int(ys.min())
    y0, y1 = max(0, top - h // 10), min(h, top + h // 5)
    head_cols = np.nonzero(head.any(axis=(0, 1)))[0]
    hx0, hx1 = (int(head_cols.min()), int(head_cols.max())) if len(head_cols) else (w, -1)
    margin = w // 40
    tx0, tx1 = int(xs.min()), int(xs.max())
    boxes = []
    if hx0 - margin - tx0 >= 8:
        boxes.append((y0, y1, tx0, hx0 - margin))
    if tx1 - (hx1 + margin) >= 8:
        boxes.append((y0, y1, hx1 + margin + 1, tx1 + 1))
    if not boxes:
        raise ValueError("the head covers the torso's whole width: no shoulders to measure")
    return boxes


def vertical_displacement(
    frames: np.ndarray,
    box: tuple[int, int, int, int],
    mask: np.ndarray | None = None,
    scale: int | None = None,
) -> np.ndarray:
    """Vertical shift (pixels, down positive) of the content of a box against frame 0.

    Phase-based (Fleet & Jepson): the band of the complex steerable pyramid at
    ``scale`` and orientation 90 degrees (vertical motion) of each frame's luma; the
    phase change of each coefficient since frame 0, weighted by its squared amplitude
    over the box (and ``mask`` ``(H, W)``, e.g. the torso eroded, so that a still
    background beside an edge does not pull the mean to 0), converted to pixels by the
    band's centre wavelength. ``scale`` None: 3 at 240 rows, one more per doubling
    (wavelength 32 px at 240 rows: shifts up to +-16 px do not wrap). ``frames``
    ``(T, H, W, 3)`` or ``(T, H, W)``. Returns ``(T,)``.
    """
    import torch

    from rtmag.representations.pyramid import build_scale, centre_wavelength, max_scales

    f = np.asarray(frames, np.float32)
    if f.ndim == 4:
        f = f @ np.array([0.299, 0.587, 0.114], np.float32)
    h, w = f.shape[1:]
    if scale is None:
        scale = int(max(0, round(3 + math.log2(h / 240.0))))
    scale = min(scale, max_scales((h, w)) - 1)
    y0, y1, x0, x1 = box
    m = np.zeros((h, w), bool)
    m[y0:y1, x0:x1] = True
    if mask is not None:
        m &= np.asarray(mask, bool)
    if not m.any():
        raise ValueError("the mask is empty inside the box")
    with torch.no_grad():
        band = build_scale(torch.from_numpy(np.ascontiguousarray(f))[:, None], scale)[:, 2]
    bh, bw = band.shape[-2:]
    ys = (np.arange(bh) * h / bh).astype(int)
    xs = (np.arange(bw) * w / bw).astype(int)
    mb = torch.from_numpy(m[np.ix_(ys, xs)])
    if not bool(mb.any()):
        raise ValueError("the box is smaller than one coefficient at this scale")
    z = band[:, mb].to(torch.complex128)
    amp2 = z[0].abs() ** 2
    dphi = torch.angle(z * z[0].conj())
    d = -(dphi * amp2).sum(dim=1) / amp2.sum() * centre_wavelength(scale) / (2 * math.pi)
    return d.numpy()


def displacement_gain(
    output: np.ndarray, input: np.ndarray, truth: np.ndarray, fps: float, band=(0.16, 0.5)
) -> float:
    """In-band gain of a measured displacement: ``<F out, F r> / <F in, F r>``.

    ``output``, ``input``: ``(T,)`` displacements measured in the output and the input
    (:func:`vertical_displacement`); ``truth`` ``(T,)`` the true breathing
    displacement (any scale: only its shape is used), so the input's own projection is
    the reference; it carries the bias :func:`pulse_gain` describes, which
    ``rtmag.quality`` cancels by dividing by the same measure of the ideal clip.
    """
    return _projection_ratio(output, input, truth, fps, band)


def masked_psnr(a: np.ndarray, b: np.ndarray, masks: np.ndarray, peak: float = 255.0) -> float:
    """PSNR in dB over the pixels where ``masks`` ``(T, H, W)`` is True, all frames
    together (100 dB when identical there)."""
    m = np.asarray(masks, bool)
    d = np.asarray(a, np.float64)[m] - np.asarray(b, np.float64)[m]
    mse = float((d * d).mean()) if d.size else 0.0
    return 100.0 if mse == 0 else float(10 * math.log10(peak * peak / mse))


# SSIM constants of Wang et al. (2004) and of scikit-image's gaussian_weights=True
_SSIM_SIGMA = 1.5
_SSIM_RADIUS = 5  # 11-tap window; the border this leaves is cropped, as scikit-image
_SSIM_K1, _SSIM_K2 = 0.01, 0.03


def _ssim_frame(a: np.ndarray, b: np.ndarray, peak: float) -> float:
    import cv2

    c1, c2 = (_SSIM_K1 * peak) ** 2, (_SSIM_K2 * peak) ** 2
    k = 2 * _SSIM_RADIUS + 1

    def blur(x):
        return cv2.GaussianBlur(
            x, (k, k), _SSIM_SIGMA, sigmaY=_SSIM_SIGMA, borderType=cv2.BORDER_REFLECT_101
        )

    mu_a, mu_b = blur(a), blur(b)
    va = blur(a * a) - mu_a * mu_a
    vb = blur(b * b) - mu_b * mu_b
    cov = blur(a * b) - mu_a * mu_b
    s = ((2 * mu_a * mu_b + c1) * (2 * cov + c2)) / (
        (mu_a * mu_a + mu_b * mu_b + c1) * (va + vb + c2)
    )
    r = _SSIM_RADIUS
    return float(s[r:-r, r:-r].mean())


def ssim(a: np.ndarray, b: np.ndarray, peak: float = 255.0) -> float:
    """Mean over frames of the structural similarity (Wang et al. 2004), the paper's
    Table 1 metric beside PSNR.

    Per frame and colour channel: local means, variances and covariance under a
    Gaussian window (sigma 1.5 pixels, 11 taps, population statistics), ``K1 = 0.01``,
    ``K2 = 0.03``, the SSIM map averaged over the frame less a 5-pixel border, then
    over channels (scikit-image's ``structural_similarity(gaussian_weights=True,
    sigma=1.5, use_sample_covariance=False, channel_axis=-1)``).

    Args:
        a, b: ``(T, H, W, C)`` or ``(H, W, C)`` on a 0..``peak`` scale, ``H, W >= 11``.
    """
    a = np.asarray(a)
    b = np.asarray(b)
    if a.shape != b.shape:
        raise ValueError(f"shapes differ: {a.shape} vs {b.shape}")
    if a.ndim == 3:
        a, b = a[None], b[None]
    if a.ndim != 4 or min(a.shape[1:3]) < 2 * _SSIM_RADIUS + 1:
        raise ValueError(f"ssim needs (T, H, W, C) frames of at least 11x11, got {a.shape}")
    vals = []
    for fa, fb in zip(a, b):
        fa32, fb32 = fa.astype(np.float64), fb.astype(np.float64)
        vals.append(
            np.mean([_ssim_frame(fa32[..., c], fb32[..., c], peak) for c in range(a.shape[-1])])
        )
    return float(np.mean(vals))


def artifact_db(
    output: np.ndarray,
    input: np.ndarray,
    source: np.ndarray,
    fps: float,
    band=(0.7, 2.5),
    floor_db: float = -100.0,
) -> float:
    """Energy of the change that is not the source's in-band change, dB re 1 grey level².

    The change ``d = output - input`` is split into what may be the magnified source
    and what may not. Counted as artifact, per frame, pixel and channel:

    * off the source: all of ``d`` where ``source`` is False in that frame
      (background, hair, clothes; for respiration: off the torso);
    * on the source: at pixels that are source in every frame, the part of ``d``
      outside the band (``d - F(d)``, zero-phase Butterworth over time).

    Returns ``10 log10(mean of those squared values)`` (0 dB: an RMS change of one grey
    level), at least ``floor_db`` (an unchanged clip).

    Args:
        output, input: ``(T, H, W, 3)`` on the 0-255 scale.
        source: ``(T, H, W)`` bool, the source's pixels per frame (skin or torso).
        fps, band: frame rate and the source's band in Hz.
    """
    from rtmag.filters import design_bandpass, zero_phase

    output = np.asarray(output)
    input = np.asarray(input)
    src = np.asarray(source, bool)
    if output.shape != input.shape or src.shape != output.shape[:3]:
        raise ValueError(
            f"artifact_db: output {output.shape}, input {input.shape} and source "
            f"{src.shape} must be (T, H, W, 3), (T, H, W, 3), (T, H, W)"
        )
    energy, count = 0.0, 0
    for t in range(len(output)):
        d = output[t].astype(np.float32) - input[t].astype(np.float32)
        off = d[~src[t]]
        energy += float(np.square(off, dtype=np.float64).sum())
        count += off.size
    always = src.all(axis=0)
    if always.any():
        sos = design_bandpass(band[0], band[1], fps)
        idx = np.flatnonzero(always.ravel())
        step = max(1, (1 << 22) // (len(output) * 3))
        for j in range(0, len(idx), step):
            cols = idx[j : j + step]
            d = (
                output.reshape(len(output), -1, 3)[:, cols].astype(np.float64)
                - input.reshape(len(input), -1, 3)[:, cols]
            )
            r = d - zero_phase(sos, d - d.mean(axis=0), axis=0)
            energy += float((r * r).sum())
            count += r.size
    if count == 0 or energy <= 0:
        return float(floor_db)
    return float(max(10 * math.log10(energy / count), floor_db))
