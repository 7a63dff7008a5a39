"""The respiration path of the magnifier: phase differences in, phase offsets out.

Paper section 3.3, as a stream (DESIGN.md "What streaming changes", item 5):

1. Every k-th frame (``decimate``; the *analysed* frames) goes to grey (luma) and to
   the band at scale r0 of the complex steerable pyramid; the pair (t - k, t) gives
   X_1, the wrapped phase differences of the four orientations resampled to
   123x123 (Eq. 19, :mod:`rtmag.representations.phase`). The breathing band ends at
   0.5 Hz, so pairs at 7.5 Hz (k = 4 at 30 fps, the rate the network was trained at)
   lose nothing of it, and the ascent costs a quarter.
2. X_1 is pushed N-1 times along the breathing network's sign-corrected, L1-normalised
   input gradient (Eq. 3), as for the pulse.
3. The running sum of X_N - X_1 (Eq. 20 without the original phase: the magnified
   change only) is band-passed at the pair rate, causally for a stream or zero-phase
   for a file (Eq. 21), giving the phase offset o(t_j) of each analysed frame. The
   causal filter follows the analysed frames' timestamps
   (:class:`~rtmag.filters.VariableRateBandpass`), so jitter and dropped frames are
   integrated as they happened.
4. A frame between two analysed frames gets the offset interpolated linearly in
   *time* between them (timestamps, not frame counts: variable frame rates work), so
   a frame waits for the next analysed frame: up to k - 1 frames (0.1 s at 30 fps).
5. Each frame's luma goes through the whole pyramid (every scale the frame allows);
   every band gets ``exp(i o_r)``
   with the offset amplitude-weighted, resampled to the scale, scaled by
   0.5^(r - r0) and gated at 2 pi (Eq. 22, :func:`~rtmag.representations.phase.apply_phase_offsets`);
   the change of luma it makes is added to R, G and B alike (colour edges keep their
   chroma: cheaper than three pyramids, and breathing motion is seen in luma). The
   change is computed directly, frame by frame
   (:func:`~rtmag.representations.phase.render_change`), not by rebuilding the frame.
"""

from __future__ import annotations

import numpy as np
import torch

PAIR_RATE_HZ = 7.5
"""Rate of frame pairs the breathing network was trained at (``rtmag.train``)."""

MAX_BAND_FRACTION = 0.45
"""The band's top must stay below this fraction of the pair rate (Nyquist is 0.5)."""


def choose_decimation(
    fps: float, band: tuple[float, float], target_hz: float = PAIR_RATE_HZ
) -> int:
    """``k``: analyse every k-th frame. The k whose pair rate ``fps / k`` is nearest
    ``target_hz``, made smaller until the band's top is under ``MAX_BAND_FRACTION``
    of the pair rate; at least 1.

    >>> choose_decimation(30.0, (0.16, 0.5))
    4
    >>> choose_decimation(30.0, (0.4, 3.0))  # an infant's faster breathing
    4
    >>> choose_decimation(15.0, (0.16, 0.5))
    2
    """
    k = max(1, int(round(fps / target_hz)))
    while k > 1 and band[1] >= MAX_BAND_FRACTION * fps / k:
        k -= 1
    return k


def luma(frames: np.ndarray) -> torch.Tensor:
    """Grey frames ``(B, 1, H, W)`` float32 (Rec. 601 luma, 0-255) of RGB ``(B, H, W, 3)`` uint8."""
    f = torch.from_numpy(np.ascontiguousarray(frames)).float()
    y = f[..., 0] * 0.299 + f[..., 1] * 0.587 + f[..., 2] * 0.114
    return y[:, None]


class MotionPath:
    """Phase representation, ascent on every k-th frame, interpolated offsets.

    The interface of :class:`rtmag.magnifier.ColourPath` (``analyse``, ``causal``,
    ``flush``, ``offline``, ``render``); see the module docstring for the method.

    Args:
        net: frozen ``BreathNet``.
        config: the magnifier's settings (``mode="respiration"``).
        gamma_per_gain: calibration of the step size (see ``PairAnalyser``).
    """

    def __init__(self, net, config, gamma_per_gain: float):
        from rtmag.filters import (
            RunningSum,
            VariableRateBandpass,
            band_centre,
            design_bandpass,
            group_delay_s,
        )
        from rtmag.magnifier import PairAnalyser

        self.config = config
        self.k = config.decimate or choose_decimation(config.fps, config.band)
        self.signal_rate = config.fps / self.k
        self.analyser = PairAnalyser(net, config, gamma_per_gain, pair_rate=self.signal_rate)
        low, high = config.band
        self.sum = RunningSum()
        # follows the analysed frames' timestamps (variable frame rate, dropped frames)
        self.bandpass = VariableRateBandpass(low, high, self.signal_rate)
        # the same filter at the nominal pair rate, for its delays
        self._sos = design_bandpass(low, high, self.signal_rate)
        self._delay = float(group_delay_s(self._sos, band_centre(low, high), self.signal_rate))
        self.size = int(getattr(net, "in_size", 123))
        self.geometry = None
        self.num_scales = None
        self.reset()

    def alignment_delay_s(self) -> float:
        """The display delay that puts the offsets in phase with the breath at the band
        centre (:func:`rtmag.filters.alignment_delay_s` of the filter at the pair rate)."""
        from rtmag.filters import alignment_delay_s

        return alignment_delay_s(self._sos, self.config.band, self.signal_rate)

    def lock_delay_s(self, freq_hz: float, frame_delay_s: float = 0.0) -> float:
        """The phase lock's state delay at the breathing rate ``freq_hz``
        (:func:`rtmag.filters.lock_delay_s` of the filter at the pair rate)."""
        from rtmag.filters import lock_delay_s

        return lock_delay_s(self._sos, freq_hz, self.signal_rate, frame_delay_s)

    def group_delay_s(self) -> float:
        # the causal filter's delay, plus on average half a pair interval of waiting
        return self._delay + 0.5 * (self.k - 1) / self.config.fps

    def reset(self) -> None:
        self.analyser.reset()
        self.sum.reset()
        self.bandpass.reset()
        self._count = 0  # frames seen in this stream
        self._prev_band = None  # band at r0 of the last analysed frame
        self._last = None  # (time, offset) of the last analysed frame
        self._waiting: list[tuple[float, object]] = []  # (time, Slot) of frames between

    def check_size(self, frame_hw: tuple[int, int]) -> None:
        """Fix the geometry for frames of ``(H, W)``; FrameError when too small."""
        from rtmag.representations.phase import representation_size
        from rtmag.representations.pyramid import max_scales

        geo = representation_size(tuple(frame_hw), size=self.size)
        self.geometry = geo
        # every scale the frame allows: a magnified breath (10 x 1-2 px) is more than
        # the fine bands can carry without wrapping, so the coarse ones must carry it
        # (4 scales instead: gain 4.7 / 2.5 / 9.1 on tasks A / B / D, 5: 5.1 / 2.8 / 8.7)
        self.num_scales = max(geo.r0 + 1, max_scales(tuple(frame_hw)))

    def _bands(self, frames: np.ndarray) -> torch.Tensor:
        from rtmag.representations.pyramid import build_scale

        if self.geometry is None or tuple(frames.shape[1:3]) != self.geometry.frame_hw:
            self.check_size(frames.shape[1:3])
        with torch.no_grad():
            return build_scale(luma(frames), self.geometry.r0)

    def analyse(self, frames: np.ndarray, times):
        """Ascent on the pairs (t - k, t) of the analysed frames in this batch."""
        from rtmag.magnifier import Analysis
        from rtmag.representations.phase import phase_difference

        b = len(frames)
        pos = [i for i in range(b) if (self._count + i) % self.k == 0]
        self._count += b
        empty = np.zeros((0, 4, self.size, self.size), np.float32)
        if not pos:
            return Analysis(empty, np.zeros(0), np.zeros(0), [None] * b, np.zeros(0, int))
        bands = self._bands(frames[pos])
        if self._prev_band is not None:
            bands_all = torch.cat([self._prev_band[None], bands])
            at = pos
        else:
            bands_all = bands
            at = pos[1:]
        self._prev_band = bands[-1].clone()
        if len(at) == 0:
            return Analysis(empty, np.zeros(0), np.zeros(0), [None] * b, np.zeros(0, int))
        with torch.no_grad():
            x1 = phase_difference(
                bands_all[:-1], bands_all[1:], self.geometry.r0, self.size, self.geometry.fit
            ).float()
        delta, y, gamma = self.analyser.ascend(x1)
        return Analysis(delta.cpu().numpy(), y, gamma, [None] * b, np.asarray(at, int))

    def causal(self, a, times) -> list:
        """Slots of the batch's frames: analysed frames get their offset now, the ones
        between get theirs when the next analysed frame comes (linear in time)."""
        from rtmag.magnifier import Slot

        slots = [Slot() for _ in times]
        offsets = {}
        first = self._count - len(times)
        at = {int(i) for i in a.at}
        for i in range(len(times)):
            if (first + i) % self.k == 0 and i not in at:  # the stream's first analysed
                zero = np.zeros((1, 4, self.size, self.size))  # frame: S = 0 at its time
                self.bandpass(zero, times=[float(times[i])])
        if len(a.delta):
            t_at = [float(times[i]) for i in a.at]
            o = self.bandpass(self.sum(a.delta), times=t_at).astype(np.float32)
            offsets = {int(i): o[j] for j, i in enumerate(a.at)}
        for i, (t, slot) in enumerate(zip(times, slots)):
            if i in offsets:
                self._resolve(t, offsets[i])
                slot.value = offsets[i]
            elif (first + i) % self.k == 0:  # the stream's first analysed frame
                self._resolve(t, np.zeros((4, self.size, self.size), np.float32))
                slot.value = self._last[1]
            else:
                self._waiting.append((t, slot))
        return slots

    def _resolve(self, t: float, offset: np.ndarray) -> None:
        if self._last is not None:
            t0, o0 = self._last
            for tw, slot in self._waiting:
                w = (tw - t0) / (t - t0) if t > t0 else 1.0
                slot.value = ((1.0 - w) * o0 + w * offset).astype(np.float32)
        self._waiting = []
        self._last = (t, offset)

    def flush(self) -> None:
        """End of stream: frames after the last analysed one keep its offset."""
        hold = self._last[1] if self._last is not None else None
        for _, slot in self._waiting:
            slot.value = (
                hold if hold is not None else np.zeros((4, self.size, self.size), np.float32)
            )
        self._waiting = []

    def offline(self, deltas: np.ndarray, delta_times, frame_times, notes: list):
        """Zero-phase offsets of a whole clip (Eq. 21 with the paper's filter), as a
        function of frame indices giving ``(n, 4, 123, 123)``.

        ``deltas`` are those of the analysed frames at ``delta_times``; the first
        analysed frame (no pair) is at ``frame_times[0]`` with offset 0. Offsets are
        kept at the pair rate only (memory: a quarter of a frame-rate array) and
        interpolated per frame when asked.
        """
        from rtmag.filters import design_bandpass, min_zero_phase_length, zero_phase

        cfg = self.config
        shape = (4, self.size, self.size)
        s = np.zeros((len(deltas) + 1, *shape))
        if len(deltas):
            s[1:] = np.cumsum(np.asarray(deltas, np.float64), axis=0)
        sos = design_bandpass(cfg.band[0], cfg.band[1], self.signal_rate)
        if len(s) >= min_zero_phase_length(sos):
            o = zero_phase(sos, s)
        else:
            notes.append(
                f"clip of {len(s)} analysed frames is shorter than the zero-phase filter "
                f"needs ({min_zero_phase_length(sos)}); used the causal filter"
            )
            from rtmag.filters import StreamingBandpass

            o = StreamingBandpass.from_sos(sos, self.signal_rate)(s)
        o = o.astype(np.float32)
        t_dec = np.concatenate([[frame_times[0]], np.asarray(delta_times, np.float64)])
        ft = np.asarray(frame_times, np.float64)

        def at(idx):
            idx = np.atleast_1d(np.asarray(idx))
            out = np.empty((len(idx), *shape), np.float32)
            for n, i in enumerate(idx):
                t = ft[i]
                j = int(np.searchsorted(t_dec, t, side="right")) - 1
                if j < 0:
                    out[n] = o[0]
                elif j >= len(t_dec) - 1:
                    out[n] = o[-1]
                else:
                    w = (t - t_dec[j]) / (t_dec[j + 1] - t_dec[j])
                    out[n] = (1.0 - w) * o[j] + w * o[j + 1]
            return out

        return at

    def render(self, frames: np.ndarray, offsets: np.ndarray, boxes=None) -> np.ndarray:
        """Frames ``(B, H, W, 3)`` uint8 with the phase offsets ``(B, 4, s, s)`` applied
        to their luma's pyramid (Eq. 22); the luma change is added to R, G and B."""
        from rtmag.representations.phase import render_change

        frames = np.asarray(frames)
        offsets = torch.as_tensor(np.asarray(offsets, np.float32))
        if self.geometry is None or tuple(frames.shape[1:3]) != self.geometry.frame_hw:
            self.check_size(frames.shape[1:3])
        if not bool(offsets.abs().amax() > 0):
            return frames.copy()
        out = np.empty_like(frames)

        def one(i: int) -> None:
            with torch.no_grad():  # thread-local: set in the thread that computes
                y = luma(frames[i : i + 1])
                # reconstruct(apply_phase_offsets(build(y), ...)) - y, computed directly
                dy = render_change(
                    y, offsets[i : i + 1], self.geometry.r0, self.num_scales, fit=self.geometry.fit
                )
                res = torch.from_numpy(frames[i].astype(np.float32)).add_(dy[0, 0, :, :, None])
                out[i] = res.round_().clamp_(0, 255).to(torch.uint8).numpy()

        # one frame at a time (the working tensors stay small), frames spread over the
        # ascent's workers when there are several
        self.analyser.map(one, range(len(frames)))
        return out


__all__ = ["MotionPath", "choose_decimation", "luma", "PAIR_RATE_HZ"]
