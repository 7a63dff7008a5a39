"""Quality measures of a magnified clip against its input and its ideal.

All clips are ``(T, H, W, 3)`` arrays (uint8 or float, 0-255 scale). The measures
follow the issue's definitions:

* :func:`psnr`: the paper's Table 1 metric, per frame then averaged over frames.
* :func:`pulse_gain`: the in-band gain of the pulse on skin that the output shows: the
  regression of the band-passed mean skin colour onto the band-passed true pulse term,
  output against input.
* :func:`offskin_change_db` and :func:`out_of_band_change_db`: how much the output
  grew where it should not have: off the skin, and outside the band on the skin.
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
        ``<F out, F p> / <F in, F p>``: 1 for an unchanged clip, A for a clip whose
        skin pulse is A times stronger. The projection onto the true pulse ignores
        noise and motion that are not correlated with it.
    """
    fo = _bandpassed(output, fps, band)[skip:]
    fi = _bandpassed(input, fps, band)[skip:]
    fp = _bandpassed(pulse_term, fps, band)[skip:]
    den = float((fi * fp).sum())
    return float((fo * fp).sum() / den) if den != 0 else float("nan")


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
