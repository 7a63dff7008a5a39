"""Heart and breathing rate from the network's output signal.

:func:`estimate_rate` finds the dominant frequency of a signal in a band (the pulse
band 0.7-2.5 Hz = 42-150 bpm, or breathing 0.16-0.5 Hz = 10-30 breaths/min) from a
Hann-windowed, zero-padded FFT with parabolic peak interpolation, and says how much
of the in-band power sits at that peak. :class:`RateTracker` keeps a sliding window
over a stream and re-estimates every ``update_every_s`` seconds.

Units: time in seconds, sampling rate ``fs`` in samples (frames) per second, rates
in per-minute (bpm, breaths/min), frequencies in Hz.
"""

from __future__ import annotations

import collections
import math
from dataclasses import dataclass

import numpy as np
from scipy import signal as sps

from rtmag.errors import UserError
from rtmag.filters import design_bandpass, min_zero_phase_length, zero_phase

__all__ = [
    "PULSE_BAND",
    "RESPIRATION_BAND",
    "RateEstimate",
    "estimate_rate",
    "RateTracker",
    "RELIABLE_CONFIDENCE",
    "pos_pulse",
]

PULSE_BAND = (0.7, 2.5)
"""Heart rate band in Hz (42-150 bpm), the paper's."""
RESPIRATION_BAND = (0.16, 0.5)
"""Breathing band in Hz (about 10-30 breaths/min), the paper's."""
RELIABLE_CONFIDENCE = 0.55
"""The confidence from which a network reading is trusted (printed without
"unreliable", followed by the phase lock): the network's reading of pulse-free
synthetic clips (tasks A and D, 10 s, the pulse window, 24 clips) scored at most 0.50."""


@dataclass(frozen=True)
class RateEstimate:
    """One rate estimate.

    Attributes:
        rate_bpm: the rate in cycles per minute (bpm or breaths/min), ``None`` when
            the signal was too short or had no in-band power.
        confidence: in ``[0, 1]``: the fraction of the in-band power within
            ``+-halfwidth`` of the peak (see :func:`estimate_rate`). 0 when
            ``rate_bpm`` is None.
        freq_hz: the same rate in Hz, or ``None``.
    """

    rate_bpm: float | None
    confidence: float
    freq_hz: float | None


_NONE = RateEstimate(None, 0.0, None)


def _uniform(
    signal: np.ndarray, t: np.ndarray, fs: float | None
) -> tuple[np.ndarray, float | None]:
    """Resample ``signal`` at times ``t`` onto a uniform grid by linear interpolation."""
    t = np.asarray(t, dtype=np.float64)
    if t.shape != signal.shape:
        raise UserError(f"timestamps t have shape {t.shape}, signal has {signal.shape}")
    if not np.all(np.isfinite(t)) or np.any(np.diff(t) <= 0):
        raise UserError("timestamps t must be finite and strictly increasing (seconds)")
    if fs is None:
        if len(t) < 2:
            return signal, None
        fs = 1.0 / float(np.median(np.diff(t)))
    n = int(math.floor((t[-1] - t[0]) * fs + 1e-9)) + 1
    grid = t[0] + np.arange(n) / fs
    return np.interp(grid, t, signal), float(fs)


def estimate_rate(
    signal: np.ndarray,
    fs: float | None = None,
    band: tuple[float, float] = PULSE_BAND,
    t: np.ndarray | None = None,
    *,
    halfwidth_hz: float = 0.1,
    min_periods: float = 2.0,
    resolution_hz: float = 0.005,
    bandpass: bool = True,
    derivative: bool = False,
) -> RateEstimate:
    """Dominant rate of ``signal`` in ``band``.

    Steps: (timestamps given: linear interpolation onto a uniform grid at ``fs``);
    linear detrend; zero-phase Butterworth band-pass (6th order; skipped when the
    signal is shorter than :func:`rtmag.filters.min_zero_phase_length`); Hann window;
    FFT zero-padded to a bin spacing of at most ``resolution_hz``; the largest
    in-band power bin, refined by a parabola through the log power of it and its two
    neighbours (exact for a Gaussian-shaped peak, close for Hann's main lobe).

    ``derivative=True`` reads a first difference ``x[t+1] - x[t]`` (what the pulse
    and breathing networks output, rtmag.train) as the rate of the signal it is the
    difference of: the running sum is analysed instead (before the detrend, which
    takes its drift). Differencing multiplies the k-th harmonic's power by about
    k^2, so read as it is a pulse whose wave has a second harmonic (a dicrotic notch)
    reads at twice its rate when the fundamental is weak (60 bpm read as 120).
    Summing in time, not dividing the windowed spectrum by the difference's response
    ``4 sin^2(pi f / fs)``, keeps the window's main lobe from being tilted (that
    read 0.3-0.5 bpm low).

    Confidence is the fraction of the in-band power (of the windowed spectrum) that
    lies within ``+-w`` of the peak, ``w = max(halfwidth_hz, 1 / duration)`` (a short
    window cannot resolve finer than ``1 / duration``). A clean sinusoid gives ~0.9-1;
    white noise gives about ``2 w / (high - low)`` plus a little (0.1-0.3 for the pulse
    band and 10-30 s windows): treat values below ~0.5 as unreliable. A running sum
    (``derivative=True``) tilts noise towards the band's low edge, so it scores
    higher: the network's reading of 10 s synthetic clips without a pulse scored up
    to 0.50, and readings under :data:`RELIABLE_CONFIDENCE` (0.55) are called
    unreliable.

    Args:
        signal: ``(T,)`` samples, any real dtype.
        fs: sampling rate in samples/s. With ``t`` it is the rate of the uniform grid
            (default: 1 / median spacing of ``t``); without ``t`` it is required.
        band: ``(low_hz, high_hz)`` search band, ``0 < low < high < fs / 2``.
        t: optional ``(T,)`` timestamps in seconds, strictly increasing (variable
            frame rate).
        halfwidth_hz: half width of the peak for the confidence, Hz.
        min_periods: signals shorter than this many periods of ``band[0]`` return
            ``RateEstimate(None, 0.0, None)``.
        resolution_hz: the most FFT bin spacing after zero padding, Hz.
        bandpass: band-pass before the FFT (default True).
        derivative: ``signal`` is a first difference: analyse its running sum, as
            above (default False).

    Returns:
        :class:`RateEstimate`.

    Raises:
        UserError: bad ``fs``, band or timestamps.
    """
    x = np.asarray(signal, dtype=np.float64).ravel()
    if t is not None:
        x, fs = _uniform(x, t, fs)
        if fs is None:  # fewer than two timestamps and no fs: nothing to estimate from
            return _NONE
    if fs is None:
        raise UserError("estimate_rate needs fs (samples/s) or timestamps t (seconds)")
    fs = float(fs)
    low, high = float(band[0]), float(band[1])
    sos = design_bandpass(low, high, fs)  # validates fs and band (UserError)
    n = x.shape[0]
    duration = n / fs
    if n < 4 or duration < min_periods / low or not np.all(np.isfinite(x)):
        return _NONE
    if derivative:  # the signal the difference is of (its drift goes with the detrend)
        x = np.cumsum(x)
    x = sps.detrend(x, type="linear")
    if bandpass and n >= min_zero_phase_length(sos):
        x = zero_phase(sos, x)
    xw = x * np.hanning(n)
    nfft = 1 << int(math.ceil(math.log2(max(n, fs / resolution_hz))))
    p = np.abs(np.fft.rfft(xw, nfft)) ** 2
    freqs = np.fft.rfftfreq(nfft, 1.0 / fs)
    inband = np.nonzero((freqs >= low) & (freqs <= high))[0]
    total = float(p[inband].sum())
    if inband.size == 0 or not total > 0:
        return _NONE
    k = int(inband[np.argmax(p[inband])])
    f_peak = freqs[k]
    if 0 < k < len(p) - 1:
        lp = np.log(p[k - 1 : k + 2] + 1e-300)
        denom = lp[0] - 2 * lp[1] + lp[2]
        if denom < 0:
            delta = 0.5 * (lp[0] - lp[2]) / denom
            f_peak = freqs[k] + float(np.clip(delta, -0.5, 0.5)) * (fs / nfft)
    f_peak = float(np.clip(f_peak, low, high))
    w = max(halfwidth_hz, 1.0 / duration)
    near = inband[np.abs(freqs[inband] - f_peak) <= w]
    confidence = float(np.clip(p[near].sum() / total, 0.0, 1.0))
    return RateEstimate(60.0 * f_peak, confidence, f_peak)


class RateTracker:
    """Sliding-window rate over a stream: ``push(value, t)``, read ``.current``.

    Keeps the last ``window_s`` seconds of samples and re-runs :func:`estimate_rate`
    every ``update_every_s`` seconds of stream time. Until the window holds
    ``min_periods`` periods of the band's low edge, ``.current`` has ``rate_bpm``
    None. The reported rate describes the window, i.e. it lags the signal by about
    ``window_s / 2``.

    Args:
        fs: nominal sampling rate in samples/s (the uniform grid when timestamps
            are given; the clock when they are not: sample ``i`` is at ``i / fs``).
        window_s: window length in seconds.
        band: ``(low_hz, high_hz)``.
        update_every_s: seconds of stream between estimates.
        **estimate_kwargs: passed to :func:`estimate_rate`.
    """

    def __init__(
        self,
        fs: float,
        window_s: float = 10.0,
        band: tuple[float, float] = PULSE_BAND,
        update_every_s: float = 1.0,
        **estimate_kwargs,
    ) -> None:
        design_bandpass(band[0], band[1], fs)  # validate early
        if not window_s > 0 or not update_every_s > 0:
            raise UserError("window_s and update_every_s must be positive seconds")
        self.fs = float(fs)
        self.window_s = float(window_s)
        self.band = (float(band[0]), float(band[1]))
        self.update_every_s = float(update_every_s)
        self.estimate_kwargs = estimate_kwargs
        self.reset()

    def reset(self) -> None:
        """Forget the stream."""
        self._t: collections.deque[float] = collections.deque()
        self._v: collections.deque[float] = collections.deque()
        self._n = 0
        self._timestamps: bool | None = None
        self._last_update: float | None = None
        self.current = _NONE
        """The latest :class:`RateEstimate`."""
        self.updated_at: float | None = None
        """Stream time (s) of the sample that ended the window of ``current``."""

    def push(self, value: float, t: float | None = None) -> RateEstimate:
        """Add one sample (at time ``t`` seconds, or ``n / fs``); returns ``.current``."""
        has_t = t is not None
        if self._timestamps is None:
            self._timestamps = has_t
        elif self._timestamps != has_t:
            raise UserError("give timestamps t for every sample or for none")
        if t is None:
            t = self._n / self.fs
        t = float(t)
        if self._t and not t > self._t[-1]:
            raise UserError(f"timestamp {t} s is not after the previous {self._t[-1]} s")
        self._n += 1
        self._t.append(t)
        self._v.append(float(value))
        while self._t and self._t[0] < t - self.window_s:
            self._t.popleft()
            self._v.popleft()
        if self._last_update is None:
            self._last_update = t
        elif t - self._last_update >= self.update_every_s - 1e-9:
            self._last_update = t
            v = np.fromiter(self._v, float, len(self._v))
            times = np.fromiter(self._t, float, len(self._t)) if self._timestamps else None
            self.current = estimate_rate(v, self.fs, self.band, t=times, **self.estimate_kwargs)
            self.updated_at = t
        return self.current

    def extend(self, values: np.ndarray, t: np.ndarray | None = None) -> RateEstimate:
        """Push several samples ``(T,)`` (with timestamps ``(T,)``); returns ``.current``."""
        values = np.asarray(values, dtype=np.float64).ravel()
        if t is None:
            for v in values:
                self.push(v)
        else:
            for v, ti in zip(values, np.asarray(t, dtype=np.float64).ravel()):
                self.push(v, ti)
        return self.current


_POS_PROJECTION = np.array([[0.0, 1.0, -1.0], [-2.0, 1.0, 1.0]])


def pos_pulse(rgb: np.ndarray, fps: float, window_s: float = 1.6) -> np.ndarray:
    """The POS pulse signal (Wang et al. 2017, "Algorithmic principles of remote PPG").

    An independent, classical estimate to check the network against: per sliding
    window of ``window_s`` seconds, the mean skin colour is divided by its temporal
    mean, projected onto the plane orthogonal to the skin tone
    (``[[0, 1, -1], [-2, 1, 1]]``), the two projections are combined with their
    standard-deviation ratio (alpha tuning), and the windows are overlap-added.

    Args:
        rgb: ``(T, 3)`` mean skin colour per frame (R, G, B; any scale > 0).
        fps: frame rate in frames/s.
        window_s: window length in seconds (1.6 s, the paper's 32 frames at 20 fps).

    Returns:
        ``(T,)`` float64 pulse signal (arbitrary units, blood volume up).
    """
    rgb = np.asarray(rgb, dtype=np.float64)
    if rgb.ndim != 2 or rgb.shape[1] != 3:
        raise UserError(f"pos_pulse needs mean colours of shape (T, 3), got {rgb.shape}")
    n = rgb.shape[0]
    win = max(2, int(round(window_s * fps)))
    h = np.zeros(n)
    for start in range(0, max(n - win + 1, 0)):
        c = rgb[start : start + win]
        mean = c.mean(axis=0)
        if np.any(mean <= 0):
            continue
        s = (c / mean) @ _POS_PROJECTION.T  # (win, 2)
        sd = s.std(axis=0)
        p = s[:, 0] + (sd[0] / sd[1] if sd[1] > 0 else 0.0) * s[:, 1]
        h[start : start + win] += p - p.mean()
    return h
