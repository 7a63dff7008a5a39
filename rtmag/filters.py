"""Temporal band-pass filters: causal (streaming, with visible state) and zero-phase.

The paper (Sec. 3.2, Eq. 15) filters the accumulated change with a zero-phase
"sixth-order Butterworth" band-pass. Live, a causal IIR band-pass in second-order
sections (SOS) with per-element state takes its place (DESIGN.md, "What streaming
changes"); offline files may still use the zero-phase form.

Conventions
-----------
* Time is axis 0 of every signal: a chunk has shape ``(T, *shape)``, e.g.
  ``(T, 36, 36, 3)`` for the pulse representation.
* ``sos`` is a ``float64`` array of shape ``(n_sections, 6)`` in scipy's layout
  ``[b0, b1, b2, 1, a1, a2]``.
* Filter state has shape ``(n_sections, 2, *shape)`` (scipy's ``zi`` layout for
  ``axis=0``), ``float64``; one independent filter per element.
* Frequencies are in Hz, the sampling rate ``fs`` in frames per second (fps),
  delays in seconds.

Pure functions come first; :class:`StreamingBandpass` and :class:`RunningSum` are
thin holders of state over them.

Variable frame rate
-------------------
Cameras and network streams do not deliver frames at exact intervals.
:class:`VariableRateBandpass` is the same Butterworth band-pass as a continuous-time
state space (:func:`analog_bandpass_ss`) discretised per sample with that sample's
own time step: the trapezoidal rule (the bilinear transform, per step) on the
analog prototype pre-warped for the nominal rate. With uniform timestamps at the
nominal rate it *is* :func:`design_bandpass`'s filter (to rounding); under jitter
it follows the continuous-time filter instead of treating the samples as uniform.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import signal

from rtmag.errors import FrameError, UserError

__all__ = [
    "design_bandpass",
    "sosfilt_step",
    "zero_phase",
    "min_zero_phase_length",
    "group_delay_s",
    "band_centre",
    "alignment_delay_s",
    "lock_delay_s",
    "steady_state",
    "StreamingBandpass",
    "analog_bandpass_ss",
    "VariableRateBandpass",
    "RunningSum",
    "ema_rate",
]

# Chunks up to this many frames take the vectorised numpy path in sosfilt_step;
# longer ones go to scipy's compiled loop.
_NUMPY_MAX_T = 4


def ema_rate(halflife: float, dt: float) -> float:
    """The step ``a`` of an exponential running mean ``m <- m + a (x - m)`` whose weight
    halves every ``halflife`` (in the units of ``dt``, the time between updates):
    ``1 - 2 ** (-dt / halflife)``; 1 (no memory) when ``halflife <= 0``."""
    return 1.0 - 0.5 ** (dt / halflife) if halflife > 0 else 1.0


def design_bandpass(low_hz: float, high_hz: float, fs: float, order: int = 6) -> np.ndarray:
    """Design a Butterworth band-pass as second-order sections.

    ``order`` is the *total* order of the band-pass, as in the paper's "sixth-order
    Butterworth" (Sec. 3.2): the prototype low-pass has order ``order // 2``, i.e.
    ``order=6`` is ``scipy.signal.butter(3, [low, high], btype="band", fs=fs)``.
    The gain is -3 dB at ``low_hz`` and ``high_hz``.

    Args:
        low_hz: lower cut-off frequency in Hz, ``0 < low_hz < high_hz``.
        high_hz: upper cut-off frequency in Hz, ``high_hz < fs / 2``.
        fs: sampling rate in frames per second (fps), ``> 0``.
        order: total (band-pass) order, an even integer ``>= 2``.

    Returns:
        ``sos``: ``float64`` array of shape ``(order // 2, 6)``.

    Raises:
        UserError: the band or order is outside the valid range (the message gives it).
    """
    fs = float(fs)
    if not math.isfinite(fs) or fs <= 0:
        raise UserError(f"sampling rate fs must be a positive number of frames/s, got {fs!r}")
    low, high = float(low_hz), float(high_hz)
    nyq = fs / 2.0
    if not (math.isfinite(low) and math.isfinite(high) and 0.0 < low < high < nyq):
        raise UserError(
            f"band-pass band ({low_hz!r}, {high_hz!r}) Hz is invalid at fs={fs:g} fps: "
            f"need 0 < low < high < fs/2 = {nyq:g} Hz"
        )
    if int(order) != order or order < 2 or order % 2:
        raise UserError(f"band-pass order must be an even integer >= 2, got {order!r}")
    sos = signal.butter(int(order) // 2, [low, high], btype="band", fs=fs, output="sos")
    return np.ascontiguousarray(sos, dtype=np.float64)


def _check_sos(sos: np.ndarray) -> np.ndarray:
    sos = np.asarray(sos, dtype=np.float64)
    if sos.ndim != 2 or sos.shape[1] != 6 or sos.shape[0] < 1:
        raise ValueError(f"sos must have shape (n_sections, 6), got {sos.shape}")
    if not np.all(sos[:, 3] == 1.0):
        raise ValueError("sos[:, 3] (a0 of every section) must be 1")
    return sos


def steady_state(sos: np.ndarray, x0: np.ndarray) -> np.ndarray:
    """State of the filter after an infinitely long constant input ``x0``.

    Args:
        sos: ``(n_sections, 6)``.
        x0: the constant input, shape ``shape`` (any array-like).

    Returns:
        ``zi`` of shape ``(n_sections, 2, *shape)``, ``float64``
        (``scipy.signal.sosfilt_zi(sos)`` scaled per element).
    """
    sos = _check_sos(sos)
    x0 = np.asarray(x0, dtype=np.float64)
    zi = signal.sosfilt_zi(sos)  # (n_sections, 2)
    return zi.reshape(zi.shape + (1,) * x0.ndim) * x0


def sosfilt_step(
    sos: np.ndarray, x: np.ndarray, zi: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Causally filter one chunk of a stream, carrying the state to the next chunk.

    Filtering a stream chunk by chunk (any chunk sizes, including one frame at a
    time) gives the same result as ``scipy.signal.sosfilt`` over the whole stream.
    Chunks of a few frames (the live case) use a vectorised direct-form-II-transposed
    loop over sections in numpy; longer chunks use ``scipy.signal.sosfilt``. Both
    apply the same recurrence in float64 and agree to rounding.

    Args:
        sos: ``(n_sections, 6)`` second-order sections.
        x: chunk of shape ``(T, *shape)``, time along axis 0; any real dtype
            (computed in float64).
        zi: state of shape ``(n_sections, 2, *shape)`` or ``None`` for zeros
            (the filter at rest). Not modified.

    Returns:
        ``(y, zf)``: ``y`` of shape ``(T, *shape)`` float64, ``zf`` the new state of
        shape ``(n_sections, 2, *shape)`` float64.
    """
    sos = _check_sos(sos)
    x = np.asarray(x, dtype=np.float64)
    if x.ndim < 1:
        raise ValueError("x must have a time axis 0: shape (T, *shape)")
    n_sections = sos.shape[0]
    state_shape = (n_sections, 2) + x.shape[1:]
    if zi is None:
        zi = np.zeros(state_shape)
    else:
        zi = np.asarray(zi, dtype=np.float64)
        if zi.shape != state_shape:
            raise ValueError(
                f"state zi has shape {zi.shape}, expected {state_shape} for x of shape {x.shape}"
            )
    if x.shape[0] == 0:
        return x.copy(), zi.copy()
    if x.shape[0] > _NUMPY_MAX_T:
        y, zf = signal.sosfilt(sos, x, axis=0, zi=zi)
        return y, zf

    # Direct form II transposed, as scipy's _sosfilt, vectorised over elements.
    z = zi.copy()
    y = np.empty_like(x)
    b = sos[:, :3]
    a = sos[:, 4:]
    for t in range(x.shape[0]):
        cur = x[t]
        for s in range(n_sections):
            z0, z1 = z[s, 0], z[s, 1]
            new = b[s, 0] * cur + z0
            # z0 <- b1*x - a1*y + z1 ; z1 <- b2*x - a2*y (same order as scipy)
            z[s, 0] = b[s, 1] * cur - a[s, 0] * new + z1
            z[s, 1] = b[s, 2] * cur - a[s, 1] * new
            cur = new
        y[t] = cur
    return y, z


def min_zero_phase_length(sos: np.ndarray) -> int:
    """Fewest frames :func:`zero_phase` accepts: scipy's default pad length + 1."""
    sos = _check_sos(sos)
    ntaps = 2 * sos.shape[0] + 1
    ntaps -= min(int((sos[:, 2] == 0).sum()), int((sos[:, 5] == 0).sum()))
    return 3 * ntaps + 1


def _impulse_decay_length(sos: np.ndarray, tol: float = 1e-3, max_len: int = 1 << 16) -> int:
    """Samples until the impulse response's magnitude stays below ``tol`` x its peak."""
    n = 256
    while True:
        imp = np.zeros(n)
        imp[0] = 1.0
        h = np.abs(signal.sosfilt(sos, imp))
        above = np.nonzero(h > tol * h.max())[0]
        last = int(above[-1]) + 1
        if last < n // 2 or n >= max_len:
            return min(last, max_len)
        n *= 2


def zero_phase(
    sos: np.ndarray, x: np.ndarray, axis: int = 0, padlen: int | None = None
) -> np.ndarray:
    """Zero-phase (forward-backward) filtering of a whole clip, for offline files.

    ``scipy.signal.sosfiltfilt`` with odd padding. The magnitude response is the
    square of the causal filter's (a 6th-order band-pass becomes -6 dB at its cut-offs)
    and there is no delay.

    The default pad length is the length of the filter's impulse response (until it
    decays below 1e-3 of its peak), which for a 0.7 Hz band edge is several seconds
    and much longer than scipy's default of ``3 * ntaps`` samples; it removes most of
    the edge transient. *Fallback for short clips:* when the clip is shorter than that,
    the pad length is cut to ``n - 1`` frames and the first and last second or so carry
    a transient. A clip shorter than :func:`min_zero_phase_length` (scipy's minimum)
    raises :class:`~rtmag.errors.UserError`.

    Args:
        sos: ``(n_sections, 6)``.
        x: clip, time along ``axis``; any real dtype (computed in float64).
        axis: the time axis.
        padlen: frames of odd extension at each end; ``None`` for the default above.

    Returns:
        float64 array of ``x``'s shape.
    """
    sos = _check_sos(sos)
    x = np.asarray(x, dtype=np.float64)
    n = x.shape[axis]
    need = min_zero_phase_length(sos)
    if n < need:
        raise UserError(
            f"clip has {n} frames; zero-phase filtering needs at least {need} "
            "(use a longer clip or the causal filter)"
        )
    if padlen is None:
        padlen = _impulse_decay_length(sos)
    padlen = int(min(padlen, n - 1))
    return signal.sosfiltfilt(sos, x, axis=axis, padtype="odd", padlen=padlen)


def _poly_group_delay(coeffs: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Group delay in samples of the polynomial sum_k c_k z^-k at angular frequencies w.

    tau(w) = Re( sum_k k c_k e^{-jwk} / sum_k c_k e^{-jwk} ), the exact derivative of
    -arg, evaluated per (short) section so it stays well conditioned.
    """
    k = np.arange(coeffs.shape[-1])
    e = np.exp(-1j * np.outer(w, k))  # (n_w, K)
    num = e @ (k * coeffs)
    den = e @ coeffs
    return np.real(num / den)


def group_delay_s(sos: np.ndarray, freq_hz: float | np.ndarray, fs: float) -> float | np.ndarray:
    """Group delay of a causal SOS filter, in seconds, at one or more frequencies.

    Computed analytically per section (numerator delay minus denominator delay, each
    from its three coefficients) and summed over sections, which stays accurate where
    the high-order transfer function's polynomial form would not. Undefined exactly
    at a zero of the response (0 Hz and fs/2 for a band-pass).

    Args:
        sos: ``(n_sections, 6)``.
        freq_hz: frequency in Hz, scalar or array.
        fs: sampling rate in fps.

    Returns:
        delay in seconds; a float for a scalar ``freq_hz``, else an array of its shape.
    """
    sos = _check_sos(sos)
    f = np.asarray(freq_hz, dtype=np.float64)
    w = 2.0 * np.pi * f.ravel() / float(fs)
    tau = np.zeros_like(w)
    for sec in sos:
        tau += _poly_group_delay(sec[:3], w) - _poly_group_delay(sec[3:], w)
    out = (tau / float(fs)).reshape(f.shape)
    return float(out) if out.ndim == 0 else out


def band_centre(low_hz: float, high_hz: float) -> float:
    """Geometric centre ``sqrt(low * high)`` of a band, in Hz (a band-pass's peak)."""
    return math.sqrt(float(low_hz) * float(high_hz))


def _phase_rad(sos: np.ndarray, freq_hz: float, fs: float) -> float:
    """Phase of the causal filter's response at ``freq_hz``, radians in ``(-pi, pi]``."""
    _, h = signal.sosfreqz(sos, worN=[2.0 * np.pi * freq_hz / fs])
    return float(np.angle(h[0]))


def alignment_delay_s(sos: np.ndarray, band: tuple[float, float], fs: float) -> float:
    """The display delay that puts a causal band-pass's output in phase with its input
    at the band's centre ``f0`` (:func:`band_centre`), in seconds (``>= 0``).

    A frame shown ``D`` seconds late carries the filter's output for ``D`` seconds
    after it, so a sinusoid at ``f0`` sits on its frame with the phase error
    ``phi(f0) + 2 pi f0 D``: ``D`` is the filter's phase lag at ``f0`` over ``2 pi f0``,
    wrapped into one period. A lead of up to 45 degrees (which cannot be undone by
    showing frames early) gives 0 rather than most of a period of latency.

    For the Butterworth band-pass of :func:`design_bandpass` this is 0: it passes its
    centre with almost no phase shift (a lead of 0.7-4 degrees at rtmag's bands).
    Away from the centre the phase error grows both ways (for 0.7-2.5 Hz at 30 fps,
    cos of it 0.64 at 1 Hz, 0.23 at 2 Hz), and no fixed delay removes it. Why not the
    group delay (what ``align`` used before): that is the delay of a wave packet's
    envelope, not of its phase; a frame held back by it (0.35 s here) met a change
    2 pi f0 0.35 s = 176 degrees out of phase, so the pulse came out inverted (a
    synthetic clip's gain -18 for 20; 20.5 with no delay).
    """
    sos = _check_sos(sos)
    low, high = float(band[0]), float(band[1])
    if not (0.0 < low < high < fs / 2.0):
        raise UserError(f"band {band} must satisfy 0 < low < high < fs/2 = {fs / 2.0}")
    f0 = band_centre(low, high)
    phi = _phase_rad(sos, f0, fs)
    if 0.0 <= phi <= np.pi / 4:
        return 0.0
    return float(((-phi) % (2.0 * np.pi)) / (2.0 * np.pi * f0))


def lock_delay_s(
    sos: np.ndarray, freq_hz: float, fs: float, frame_delay_s: float = 0.0, min_deg: float = 15.0
) -> float:
    """How much older a causal band-pass's output to show with each frame so that a
    sinusoid at ``freq_hz`` sits on its frame in phase, in seconds, in ``[0, 1 /
    freq_hz)``: the "phase lock" of the live path.

    The filter passes ``f`` with phase ``phi(f)`` (a lead below its centre, a lag
    above); frames shown ``frame_delay_s`` late add ``2 pi f frame_delay_s``. A lead
    is undone by pairing each frame with the output of ``phi / (2 pi f)`` seconds
    before; a lag by the output of one period less that (the same phase of a steady
    rhythm, one cycle earlier), so neither costs latency. Within ``min_deg`` of
    in phase it returns 0 (cos 15 degrees = 0.97).

    Args:
        sos: the causal filter ``(n_sections, 6)``.
        freq_hz: the source's rate in Hz (``0 < freq_hz < fs / 2``).
        fs: its sampling rate in samples/s.
        frame_delay_s: the display delay of the frames (``align``), seconds.
        min_deg: the phase error left alone, degrees.
    """
    sos = _check_sos(sos)
    f = float(freq_hz)
    if not (0.0 < f < fs / 2.0):
        raise UserError(f"freq_hz {f} must lie between 0 and fs/2 = {fs / 2.0}")
    phi = _phase_rad(sos, f, fs) + 2.0 * np.pi * f * float(frame_delay_s)
    wrapped = (phi + np.pi) % (2.0 * np.pi) - np.pi
    if abs(wrapped) <= np.radians(min_deg):
        return 0.0
    return float((phi % (2.0 * np.pi)) / (2.0 * np.pi * f))


class StreamingBandpass:
    """Causal Butterworth band-pass over a stream, one independent filter per element.

    A thin holder of ``sos`` and the state; the work is :func:`sosfilt_step`.
    The state is created (zeros, or steady state for the first sample when
    ``init="steady"``) at the first call, shaped like the frames; a later chunk with
    another per-frame shape raises :class:`~rtmag.errors.FrameError` until
    :meth:`reset`.

    Args:
        low_hz, high_hz, fs, order: as :func:`design_bandpass`.
        init: ``"zeros"`` (filter at rest; right for signals that start at 0) or
            ``"steady"`` (as if the first sample had been there forever; avoids the
            step transient of a signal with a large offset).

    Example:
        >>> bp = StreamingBandpass(0.7, 2.5, fs=30.0)
        >>> y = bp(np.zeros((1, 36, 36, 3)))  # one frame; y.shape == (1, 36, 36, 3)
    """

    def __init__(
        self, low_hz: float, high_hz: float, fs: float, order: int = 6, init: str = "zeros"
    ) -> None:
        self._setup(design_bandpass(low_hz, high_hz, fs, order), fs, init)
        self.band = (float(low_hz), float(high_hz))

    @classmethod
    def from_sos(cls, sos: np.ndarray, fs: float, init: str = "zeros") -> StreamingBandpass:
        """Build from existing second-order sections ``(n_sections, 6)``."""
        obj = cls.__new__(cls)
        obj._setup(_check_sos(sos).copy(), fs, init)
        obj.band = None
        return obj

    def _setup(self, sos: np.ndarray, fs: float, init: str) -> None:
        if init not in ("zeros", "steady"):
            raise UserError(f"init must be 'zeros' or 'steady', got {init!r}")
        self.sos = sos
        self.fs = float(fs)
        self.init = init
        self.state: np.ndarray | None = None  # (n_sections, 2, *shape) float64

    def reset(self) -> None:
        """Forget the stream: the next call starts from a fresh state."""
        self.state = None

    def __call__(self, x: np.ndarray) -> np.ndarray:
        """Filter the next chunk ``(T, *shape)``; returns float64 ``(T, *shape)``."""
        x = np.asarray(x, dtype=np.float64)
        if x.ndim < 1:
            raise FrameError("a chunk needs a time axis 0: shape (T, *shape); use x[None]")
        if self.state is not None and self.state.shape[2:] != x.shape[1:]:
            raise FrameError(
                f"chunk frames have shape {x.shape[1:]}, but this filter's stream has "
                f"{self.state.shape[2:]}; call reset() to start a new stream"
            )
        if self.state is None:
            if self.init == "steady" and x.shape[0] > 0:
                self.state = steady_state(self.sos, x[0])
            else:
                self.state = np.zeros((self.sos.shape[0], 2) + x.shape[1:])
        y, self.state = sosfilt_step(self.sos, x, self.state)
        return y

    def group_delay_s(self, freq_hz: float | None = None) -> float:
        """Group delay in seconds at ``freq_hz`` (default: the band centre)."""
        if freq_hz is None:
            if self.band is None:
                raise UserError("give freq_hz: this filter was built from sos, not a band")
            freq_hz = band_centre(*self.band)
        return group_delay_s(self.sos, freq_hz, self.fs)


def _pair_roots(roots: np.ndarray) -> list[tuple[complex, complex]]:
    """Pair roots of a real polynomial into conjugate pairs, then real roots two by two."""
    roots = list(np.asarray(roots, dtype=np.complex128))
    pairs, reals = [], []
    while roots:
        r = roots.pop(0)
        if abs(r.imag) <= 1e-9 * max(1.0, abs(r)):
            reals.append(r.real)
            continue
        j = int(np.argmin([abs(q - np.conj(r)) for q in roots]))
        pairs.append((r, roots.pop(j)))
    reals.sort()
    pairs += [(complex(reals[i]), complex(reals[i + 1])) for i in range(0, len(reals), 2)]
    return pairs


def analog_bandpass_ss(
    low_hz: float, high_hz: float, fs: float, order: int = 6, prewarp: bool = True
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Continuous-time Butterworth band-pass as a real state space ``(A, B, C)``.

    ``dx/dt = A x + B u``, ``y = C x`` (no direct term: a band-pass has none), time in
    seconds. Built as a cascade of ``order // 2`` second-order sections
    ``g s / (s^2 + a1 s + a0)`` (one zero at 0 each, a pole pair each) in controllable
    form, which stays well conditioned where the order-6 polynomial would not.

    Args:
        low_hz, high_hz, fs, order: as :func:`design_bandpass` (validated there).
        prewarp: place the analog cut-offs at ``2 fs tan(pi f / fs)`` rad/s, so that
            the trapezoidal rule at ``dt = 1 / fs`` gives exactly
            :func:`design_bandpass`'s filter (scipy pre-warps the same way). False:
            the analog Butterworth with cut-offs ``2 pi f`` (the ideal continuous
            filter).

    Returns:
        ``A`` ``(n, n)``, ``B`` ``(n,)``, ``C`` ``(n,)`` float64, ``n = order``.
    """
    design_bandpass(low_hz, high_hz, fs, order)  # validates (UserError)
    fs = float(fs)
    edges = np.array([float(low_hz), float(high_hz)])
    w = 2.0 * fs * np.tan(np.pi * edges / fs) if prewarp else 2.0 * np.pi * edges
    z, p, k = signal.butter(int(order) // 2, w, btype="band", analog=True, output="zpk")
    if len(z) != len(p) // 2 or np.any(np.abs(z) > 1e-9 * max(1.0, float(np.max(np.abs(p))))):
        raise AssertionError("a Butterworth band-pass has order/2 zeros at s = 0")
    sections = []
    for p1, p2 in _pair_roots(p):
        a1, a0 = float(-(p1 + p2).real), float((p1 * p2).real)
        sections.append([a1, a1, a0])  # g = a1: unit gain at the section's peak
    sections[0][0] *= float(np.real(k)) / float(np.prod([s[1] for s in sections]))
    n = 2 * len(sections)
    A, B, C = np.zeros((n, n)), np.zeros(n), np.zeros(n)
    B[1] = 1.0
    for i, (_g, a1, a0) in enumerate(sections):
        j = 2 * i
        A[j, j + 1] = 1.0
        A[j + 1, j], A[j + 1, j + 1] = -a0, -a1
        if i > 0:  # input of this section = output g * x' of the one before
            A[j + 1, j - 1] = sections[i - 1][0]
    C[n - 1] = sections[-1][0]
    return A, B, C


class VariableRateBandpass:
    """Causal Butterworth band-pass that follows each sample's timestamp.

    The filter of :func:`analog_bandpass_ss` (pre-warped for the nominal ``fs``),
    stepped from sample to sample with the trapezoidal rule over the sample's own
    ``dt``. One independent filter per element, so it runs on whole arrays
    (``(T, *shape)`` chunks, state ``(n, *shape)``). Properties:

    * uniform timestamps ``1 / fs`` apart give :func:`design_bandpass`'s filter
      (``scipy.signal.sosfilt``) to rounding;
    * a jittered ``dt`` is integrated as it is, not as ``1 / fs``;
    * a step longer than the nominal period (dropped frames, a stalled camera) is
      taken as ``round(dt * fs)`` sub-steps with the input interpolated linearly
      between the two samples, i.e. as if the missing frames had been there;
    * a gap longer than ``max_gap_s`` restarts the filter in the steady state of
      the new sample (output 0, no transient): by then the old state would have
      decayed anyway.

    The first sample of a stream is one nominal period after a filter at rest
    (``init="zeros"``, as :class:`StreamingBandpass`) or starts in its steady state
    (``init="steady"``).

    Args:
        low_hz, high_hz, fs, order: as :func:`design_bandpass`; ``fs`` is the nominal
            rate in samples per second.
        init: ``"zeros"`` or ``"steady"``.
        max_gap_s: longest gap bridged by sub-steps, seconds.

    Example:
        >>> bp = VariableRateBandpass(0.7, 2.5, fs=30.0)
        >>> y = bp(np.zeros((2, 36, 36, 3)), times=[0.0, 0.031])
    """

    def __init__(
        self,
        low_hz: float,
        high_hz: float,
        fs: float,
        order: int = 6,
        init: str = "zeros",
        max_gap_s: float = 10.0,
    ) -> None:
        if init not in ("zeros", "steady"):
            raise UserError(f"init must be 'zeros' or 'steady', got {init!r}")
        if not (max_gap_s > 0 and math.isfinite(max_gap_s)):
            raise UserError(f"max_gap_s must be a positive number of seconds, got {max_gap_s!r}")
        self.A, self.B, self.C = analog_bandpass_ss(low_hz, high_hz, fs, order)
        self.fs = float(fs)
        self.band = (float(low_hz), float(high_hz))
        self.order = int(order)
        self.init = init
        self.max_gap_s = float(max_gap_s)
        self._steady = -np.linalg.solve(self.A, self.B)  # x for a constant unit input
        self._cache: tuple[float, np.ndarray, np.ndarray] | None = None
        self.reset()

    def reset(self) -> None:
        """Forget the stream: the next call starts from a fresh state."""
        self.state: np.ndarray | None = None  # (n, *shape) float64
        self.last_input: np.ndarray | None = None  # (*shape,)
        self.last_time: float | None = None

    def _step_matrices(self, h: float) -> tuple[np.ndarray, np.ndarray]:
        """Trapezoidal step of ``h`` seconds: ``x' = Ad x + Bd (u_prev + u)``."""
        if self._cache is not None and self._cache[0] == h:
            return self._cache[1], self._cache[2]
        n = self.A.shape[0]
        m = np.eye(n) - 0.5 * h * self.A
        ad = np.linalg.solve(m, np.eye(n) + 0.5 * h * self.A)
        bd = np.linalg.solve(m, 0.5 * h * self.B)
        self._cache = (h, ad, bd)
        return ad, bd

    def _advance(self, u: np.ndarray, dt: float) -> None:
        """Move the state from ``last_input`` to ``u`` over ``dt`` seconds."""
        if dt > self.max_gap_s:
            self.state = np.multiply.outer(self._steady, u)
            self.last_input = u
            return
        steps = max(1, int(round(dt * self.fs)))
        ad, bd = self._step_matrices(dt / steps)
        x, u0 = self.state, self.last_input
        flat = x.reshape(x.shape[0], -1)
        for j in range(1, steps + 1):
            u_prev = u0 + (u - u0) * ((j - 1) / steps) if j > 1 else u0
            u_next = u if j == steps else u0 + (u - u0) * (j / steps)
            flat = ad @ flat + np.multiply.outer(bd, (u_prev + u_next).ravel())
        self.state = flat.reshape(x.shape)
        self.last_input = u

    def _start(self, u: np.ndarray) -> None:
        n = self.A.shape[0]
        if self.init == "steady":
            self.state = np.multiply.outer(self._steady, u)
            self.last_input = u.copy()
        else:
            self.state = np.zeros((n,) + u.shape)
            self.last_input = np.zeros(u.shape)
            self._advance(u, 1.0 / self.fs)

    def __call__(self, x: np.ndarray, times) -> np.ndarray:
        """Filter the next chunk ``x`` ``(T, *shape)`` sampled at ``times`` ``(T,)``
        (seconds, strictly increasing, also across chunks); returns float64
        ``(T, *shape)``.

        Raises:
            FrameError: a chunk without a time axis, per-frame shape other than the
                stream's, a timestamp count that does not match, or a timestamp that
                is not finite or does not increase. Nothing is consumed then.
        """
        x = np.asarray(x, dtype=np.float64)
        if x.ndim < 1:
            raise FrameError("a chunk needs a time axis 0: shape (T, *shape); use x[None]")
        t = np.asarray(times, dtype=np.float64).ravel()
        if t.shape[0] != x.shape[0]:
            raise FrameError(f"got {x.shape[0]} samples but {t.shape[0]} timestamps")
        if self.state is not None and self.state.shape[1:] != x.shape[1:]:
            raise FrameError(
                f"chunk frames have shape {x.shape[1:]}, but this filter's stream has "
                f"{self.state.shape[1:]}; call reset() to start a new stream"
            )
        prev = self.last_time
        for ti in t:
            if not math.isfinite(ti) or (prev is not None and ti <= prev):
                raise FrameError(
                    f"timestamps must be finite and increase: got {ti} s after {prev} s; "
                    "drop repeated frames or call reset() for a new stream"
                )
            prev = float(ti)
        y = np.empty_like(x)
        for i in range(x.shape[0]):
            if self.state is None:
                self._start(x[i])
            else:
                self._advance(x[i], float(t[i]) - self.last_time)
            self.last_time = float(t[i])
            y[i] = np.tensordot(self.C, self.state, axes=1)
        return y

    def group_delay_s(self, freq_hz: float | None = None) -> float:
        """Group delay in seconds at ``freq_hz`` (default: the band centre), at the
        nominal rate (:func:`group_delay_s` of the equivalent digital filter)."""
        f = band_centre(*self.band) if freq_hz is None else freq_hz
        return group_delay_s(design_bandpass(*self.band, self.fs, self.order), f, self.fs)


class RunningSum:
    """Exclusive running sum over a stream, float64: ``S(t) = sum_{tau < t} x(tau)``.

    ``__call__(x)`` with ``x`` of shape ``(T, *shape)`` returns the sums that
    *include* each chunk frame, i.e. ``S(t + 1)`` for each ``x(t)``; ``.total``
    (the state) is the sum so far, ``None`` before the first call.
    """

    def __init__(self) -> None:
        self.total: np.ndarray | None = None

    def reset(self) -> None:
        self.total = None

    def __call__(self, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x, dtype=np.float64)
        if self.total is None:
            self.total = np.zeros(x.shape[1:])
        elif self.total.shape != x.shape[1:]:
            raise FrameError(
                f"chunk frames have shape {x.shape[1:]}, expected {self.total.shape}; "
                "call reset() to start a new stream"
            )
        s = np.cumsum(x, axis=0)
        s += self.total
        if x.shape[0]:
            self.total = s[-1].copy()
        return s
