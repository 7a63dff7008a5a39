"""End-to-end benchmark: each stage and whole files, per mode x engine x size x batch.

What runs (all on one synthetic clip per resolution, rendered once and cached):

* the clip: ``rtmag.synth`` task A (still person, pulse 72 beats/min, breathing 15
  breaths/min, patterned background), ``--seconds`` long for the pulse and its first
  ``--resp-seconds`` for respiration, encoded by :class:`rtmag.video.VideoWriter`
  (H.264 yuv420p crf 18: what a camera or phone file is). The skin masks and the true
  pulse term of every frame are kept beside it (for the gain measure). Cached under
  ``<tmp>/rtmag-bench-clips`` keyed by size, length and a hash of ``rtmag/synth``.
* stages, one causal pass per case, each stage timed on its own, batch by batch:
  ``decode`` (:class:`rtmag.video.VideoReader`, B frames), ``analyse``
  (:meth:`rtmag.magnifier.Magnifier.analyse`: representation, step size, ascent, the
  network's reading), ``ascent`` (the whole Eq. 3 ascent inside ``analyse``, alone:
  :meth:`rtmag.magnifier.PairAnalyser.ascend`, the first gradient and the engine),
  ``filter`` (the causal band-pass/integration of the mode's path), ``render``
  (:meth:`Magnifier.render`), ``encode`` (:func:`rtmag.process.mirror_writer`, H.264,
  its closing flush included). Also ``filter_offline``: the whole-clip zero-phase
  filter of the two-pass file path, on the deltas of that pass.
* end to end: :func:`rtmag.process.magnify_file` offline (two passes, default) and
  causal (``causal=True``), decode and encode included, timed as the function reports
  it (``FileResult.seconds``); per-batch latency from its progress calls.
* baselines on the same pulse clip: ``rtmag.baselines`` EVM and VAM through
  :func:`rtmag.baselines.file.magnify_file_with_method`, offline and causal, and the
  PyPI peers ``vidmag`` (CPU backend) and ``pyeulervid`` when they import; a peer
  that does not import is listed with the error, never faked.
* did it magnify: the in-band gain of the pulse on skin of every pulse output
  (:func:`rtmag.metrics.pulse_gain`, decoded output against decoded input, projected on
  the clip's true pulse). Baselines and peers run at alpha 19 (gain 20) in the band
  0.7-2.5 Hz. Our networks are random-init (``rtmag.nets.create_net(mode)``, no
  shipped weights needed; same arithmetic, so the same cost) with the default step
  calibration: their gain says the output changed, not how well.

Numbers: ``fps`` = frames / total seconds in the stage (the ascent: pairs / seconds);
``ms median``/``ms p95`` = per call on one batch (the latency a batch spends in the
stage; batch 1 = per frame). The end-to-end causal latency is the time per batch
between progress calls (decode + magnify + encode); the offline path's output needs
the whole clip, its latency is the run. The ascent's "of limit" compares its rate with
the FLOPs per frame against a matmul rate measured in the same run (as
``bench/bench_engines.py``), times ``--workers`` (each worker thread has its own
core(s)). Goals are reported, not asserted. The 1-minute load
average is recorded before and after every case: above the free cores, the numbers
include waiting for a core (``under_load`` in the JSON).

Run: ``python -m bench`` or ``python bench/bench_e2e.py [--modes pulse respiration]
[--engines adjoint eager] [--sizes 320x240 640x480 1280x720] [--batches 1 8 32]
[--seconds 10] [--resp-seconds 3]``; writes ``bench/results/e2e-<date>.json``, ``.md``
and ``.png`` (``--out`` to choose the JSON path; the others go beside it).
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # before torch starts its pool

import argparse  # noqa: E402
import datetime as dt  # noqa: E402
import hashlib  # noqa: E402
import itertools  # noqa: E402
import json  # noqa: E402
import math  # noqa: E402
import platform  # noqa: E402
import shutil  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
import traceback  # noqa: E402
from pathlib import Path  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))  # _machine, also under python -m

import numpy as np  # noqa: E402
import torch  # noqa: E402
from _machine import cpu_model, git_revision, load_average, under_load  # noqa: E402
from bench_engines import ascent_flops_per_frame, matmul_rate  # noqa: E402

import rtmag  # noqa: E402

FPS = 30.0
SEED = 11
HEART_BPM = 72.0
BREATH_BPM = 15.0
PULSE_AMPLITUDE = 0.01
BAND = (0.7, 2.5)
BASELINE_ALPHA = 19.0  # gain 1 + alpha = 20, the pulse mode's default magnification
CLIP_FORMAT = 1  # bump when the cached clip's content or files change
GOALS = {
    "pulse_e2e_640x480_fps": 60.0,
    "respiration_e2e_640x480_fps": 15.0,
    "ascent_of_matmul_limit": 0.5,
}
# What installing each PyPI peer here gave when this bench was written (only shown
# next to the import error of a peer that does not import).
PEER_INSTALL_NOTES = {
    "pyeulervid": "2026-11-29: `pip download --no-deps pyeulervid` finds only 0.1.0, which "
    "requires Python >= 3.12 (this environment: 3.11)",
    "vidmag": "2026-11-29: sdist only (0.2.0, scikit-build-core); builds CPU-only with "
    "`pip install --no-deps --target DIR vidmag` when no nvcc is on PATH (with nvcc and "
    "no GPU its CMake fails); then run the bench with PYTHONPATH=DIR",
}
STAGES = ("decode", "analyse", "ascent", "filter", "render", "encode")


_T0 = time.perf_counter()


def log(msg: str) -> None:
    print(f"[{time.perf_counter() - _T0:7.1f} s] {msg}", file=sys.stderr, flush=True)


def parse_size(s: str) -> tuple[int, int]:
    try:
        w, h = (int(v) for v in s.lower().split("x"))
    except ValueError:
        raise SystemExit(f"size {s!r}: expected WIDTHxHEIGHT, e.g. 640x480") from None
    if w < 16 or h < 16:
        raise SystemExit(f"size {s!r}: at least 16x16")
    return w, h


def summary(samples: list[tuple[float, int]]) -> dict:
    """``samples`` = (seconds, frames) per call -> fps, ms median/p95, counts."""
    if not samples:
        return {"fps": None, "ms_median": None, "ms_p95": None, "calls": 0, "frames": 0}
    sec = np.array([s for s, _ in samples], np.float64)
    n = int(sum(k for _, k in samples))
    total = float(sec.sum())
    return {
        "fps": n / total if total > 0 else None,
        "ms_median": 1000 * float(np.median(sec)),
        "ms_p95": 1000 * float(np.percentile(sec, 95)),
        "calls": len(samples),
        "frames": n,
        "seconds": total,
    }


# ---------------------------------------------------------------- the synthetic clip


def synth_fingerprint() -> str:
    root = Path(rtmag.__file__).resolve().parent
    h = hashlib.sha256(f"format {CLIP_FORMAT}".encode())
    for p in sorted((root / "synth").glob("*.py")) + [root / "video.py"]:
        h.update(p.read_bytes())
    return h.hexdigest()[:12]


def make_clip(
    size, seconds: float, resp_seconds: float, cache: Path, lossless: bool = False
) -> dict:
    """Render (or find in ``cache``) the clip of ``size``: ``pulse.mp4`` (``seconds``),
    ``respiration.mp4`` (its first ``resp_seconds``), skin masks and pulse term."""
    from rtmag.synth import Renderer, SynthConfig
    from rtmag.video import VideoWriter

    w, h = size
    length = max(seconds, resp_seconds)
    codec = "lossless" if lossless else "h264"
    key = f"{w}x{h}-{seconds:g}s-{resp_seconds:g}s-{FPS:g}fps-seed{SEED}-{codec}-{synth_fingerprint()}"
    d = cache / key
    done = d / "clip.json"
    if done.exists():
        return json.loads(done.read_text())
    d.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    scfg = SynthConfig(
        task="A",
        seconds=length,
        fps=FPS,
        size=(w, h),
        seed=SEED,
        heart_rate_bpm=HEART_BPM,
        breathing_rate_bpm=BREATH_BPM,
        pulse_amplitude=PULSE_AMPLITUDE,
    )
    r = Renderer(scfg)
    n = r.n_frames
    n_pulse, n_resp = round(seconds * FPS), round(resp_seconds * FPS)
    masks, pterm = [], []
    with (
        VideoWriter(d / "pulse.mp4", fps=FPS, size=(w, h), overwrite=True, lossless=lossless) as wp,
        VideoWriter(
            d / "respiration.mp4", fps=FPS, size=(w, h), overwrite=True, lossless=lossless
        ) as wr,
    ):
        for k in range(n):
            lay = r.layers(k)
            m = lay.truth["skin_mask"]
            if k < n_pulse:
                wp.write(lay.frame)
                masks.append(np.packbits(m))
                pterm.append(lay.pulse_term[m].mean(axis=0) if m.any() else np.full(3, np.nan))
            if k < n_resp:
                wr.write(lay.frame)
    np.savez_compressed(d / "truth.npz", skin=np.stack(masks), pulse_term=np.stack(pterm))
    info = {
        "dir": str(d),
        "pulse": str(d / "pulse.mp4"),
        "respiration": str(d / "respiration.mp4"),
        "frames": {"pulse": n_pulse, "respiration": n_resp},
        "size": [w, h],
        "fps": FPS,
        "synth": {k: v for k, v in scfg.__dict__.items() if k != "size"},
        "encoder": {"codec": wp.codec_name, "lossless": lossless, "notes": list(wp.notes)},
        "render_s": time.perf_counter() - t0,
    }
    done.write_text(json.dumps(info, indent=1, default=str))
    return info


class SkinTruth:
    """Skin masks and mean pulse term of a cached clip; mean skin colour of a file."""

    def __init__(self, clip: dict):
        with np.load(Path(clip["dir"]) / "truth.npz") as z:
            self.skin = z["skin"]
            self.pulse_term = z["pulse_term"]
        self.w, self.h = clip["size"]
        self._input = None
        self.src = clip["pulse"]

    def skin_means(self, path) -> np.ndarray:
        from rtmag.video import VideoReader

        out = []
        with VideoReader(path) as reader:
            for fr in reader:
                if fr.index >= len(self.skin):
                    break
                m = np.unpackbits(self.skin[fr.index])[: self.h * self.w]
                m = m.reshape(self.h, self.w).astype(bool)
                out.append(fr.image[m].mean(axis=0) if m.any() else np.full(3, np.nan))
        return np.asarray(out, np.float64)

    def gain(self, path, skip: int = 0) -> dict:
        """In-band gain of the pulse on skin of the file ``path`` against the input:
        ``gain`` in phase with the true pulse (:func:`rtmag.metrics.pulse_gain`; a
        causal filter's lag lowers it, half a period makes it negative) and
        ``gain_any_phase``, the same projection on the analytic (Hilbert) pulse in
        magnitude: how much stronger the pulse is, whatever its delay."""
        from scipy.signal import hilbert

        from rtmag.filters import design_bandpass, zero_phase
        from rtmag.metrics import pulse_gain

        short = {"gain": None, "gain_any_phase": None, "gain_note": "clip too short"}
        if len(self.skin) - skip < 2 * FPS:
            return short
        if self._input is None:
            self._input = self.skin_means(self.src)
        m_out = self.skin_means(path)
        n = min(len(m_out), len(self._input))
        if n - skip < 2 * FPS:
            return short
        m_in, p = self._input[:n], self.pulse_term[:n]
        sos = design_bandpass(BAND[0], BAND[1], FPS)

        def bp(x):
            x = np.where(np.isfinite(x), x, np.nanmean(x, axis=0, keepdims=True))
            return zero_phase(sos, x - x.mean(axis=0), axis=0)[skip:]

        fo, fi, fp = bp(m_out[:n]), bp(m_in), hilbert(bp(p), axis=0)
        den = abs(complex((fi * fp).sum()))
        return {
            "gain": finite(pulse_gain(m_out[:n], m_in, p, FPS, BAND, skip=skip)),
            "gain_any_phase": finite(abs(complex((fo * fp).sum())) / den) if den else None,
        }


def finite(v):
    v = float(v)
    return v if math.isfinite(v) else None


# ---------------------------------------------------------------- our magnifier


class TimedAscent:
    """Wraps a :class:`~rtmag.magnifier.PairAnalyser`'s ``ascend`` (the first gradient,
    which also gives the reading and the step size, plus the engine's other steps: the
    whole Eq. 3 ascent) and adds up the wall time of its calls."""

    def __init__(self, ascend):
        self.ascend = ascend
        self.seconds = 0.0
        self.pairs = 0

    def __call__(self, x, *args, **kwargs):
        t0 = time.perf_counter()
        out = self.ascend(x, *args, **kwargs)
        if getattr(out[0], "is_cuda", False):
            torch.cuda.synchronize(out[0].device)
        self.seconds += time.perf_counter() - t0
        self.pairs += len(x)
        return out


def make_magnifier(
    mode: str, engine: str, n_iter: int, batch: int, trained: bool = False, workers: int = 1
):
    """A magnifier of ``mode`` with its ascent timed; the network is random-init unless
    ``trained`` and the mode has shipped weights. Returns (magnifier, timer, network
    description)."""
    from rtmag.magnifier import Magnifier, MagnifierConfig, load_net
    from rtmag.nets import create_net, default_weights_path

    cfg = MagnifierConfig(
        mode=mode, fps=FPS, engine=engine, n_iter=n_iter, max_batch=batch, workers=workers
    )
    if trained and default_weights_path(mode).exists():
        net, meta = load_net(cfg)
        what = f"shipped {default_weights_path(mode).name}"
    else:
        torch.manual_seed(0)
        net, meta = create_net(mode).eval(), {}
        for p in net.parameters():
            p.requires_grad_(False)
        what = "random-init" + (" (no shipped weights)" if trained else "")
    mag = Magnifier(cfg, net=net, meta=meta)
    timer = TimedAscent(mag.path.analyser.ascend)
    mag.path.analyser.ascend = timer
    return mag, timer, what


def warm_up(mag, src: str) -> None:
    """One untimed analyse and render on the clip's first frames (engine build,
    export or compile happen here), then a fresh stream."""
    from rtmag.video import VideoReader

    with VideoReader(src) as reader:
        # respiration: two analysed frames at least, so that the ascent runs
        n = 2 * getattr(mag.path, "k", 1) + 1 if mag.config.mode == "respiration" else 8
        frs = list(itertools.islice(reader, max(2, n)))
    images = np.stack([f.image for f in frs])
    times = [f.time_s for f in frs]
    if mag.config.mode == "respiration":
        mag.path.check_size(images.shape[1:3])
    mag.push_many(list(images), times)
    mag.flush()
    mag.reset()


def staged_pass(mag, timer, src: str, dst: str, batch: int) -> dict:
    """One causal pass over ``src`` with every stage timed on its own (see module)."""
    from rtmag.process import mirror_writer
    from rtmag.video import VideoReader, probe

    info = probe(src)
    t = {s: [] for s in STAGES}
    deltas, delta_times, frame_times = [], [], []
    pending = []  # [image, slot, box, pts]
    last_value = None
    mag.reset()
    if mag.config.mode == "respiration":
        mag.path.check_size((info.height, info.width))

    def emit(writer, final: bool):
        nonlocal last_value
        ready = []
        while pending and (pending[0][1].value is not None or final):
            img, slot, box, pts = pending.pop(0)
            if slot.value is not None:
                last_value = slot.value
            ready.append((img, last_value, box, pts))
        if not ready or ready[0][1] is None:
            return
        t0 = time.perf_counter()
        out = mag.render(
            np.stack([r[0] for r in ready]), np.stack([r[1] for r in ready]), [r[2] for r in ready]
        )
        t["render"].append((time.perf_counter() - t0, len(ready)))
        t0 = time.perf_counter()
        for img, r in zip(out, ready):
            writer.write(img, pts=r[3])
        t["encode"].append((time.perf_counter() - t0, len(ready)))

    writer = mirror_writer(src, dst, info, overwrite=True)
    with writer, VideoReader(src) as reader:
        it = iter(reader)
        while True:
            t0 = time.perf_counter()
            frs = list(itertools.islice(it, batch))
            t1 = time.perf_counter()
            if not frs:
                break
            t["decode"].append((t1 - t0, len(frs)))
            images = np.stack([f.image for f in frs])
            times = [f.time_s for f in frs]
            timer.seconds, timer.pairs = 0.0, 0
            t0 = time.perf_counter()
            a = mag.analyse(images, times)
            t["analyse"].append((time.perf_counter() - t0, len(frs)))
            if timer.pairs:
                t["ascent"].append((timer.seconds, timer.pairs))
            t0 = time.perf_counter()
            slots = mag.path.causal(a, times)
            t["filter"].append((time.perf_counter() - t0, len(frs)))
            deltas.append(a.delta)
            delta_times.extend(times[i] for i in a.at)
            frame_times.extend(times)
            pending.extend([f.image, s, b, f.pts] for f, s, b in zip(frs, slots, a.boxes))
            emit(writer, final=False)
        t0 = time.perf_counter()
        mag.path.flush()
        t["filter"][-1] = (t["filter"][-1][0] + time.perf_counter() - t0, t["filter"][-1][1])
        emit(writer, final=True)
        t0 = time.perf_counter()
        writer.close()  # the encoder's buffered frames: part of the last batch's encoding
        t["encode"][-1] = (t["encode"][-1][0] + time.perf_counter() - t0, t["encode"][-1][1])
    out = {s: summary(v) for s, v in t.items()}
    notes: list[str] = []
    t0 = time.perf_counter()
    states = mag.path.offline(np.concatenate(deltas), delta_times, frame_times, notes)
    for i in range(0, len(frame_times), batch):
        states(np.arange(i, min(i + batch, len(frame_times))))
    out["filter_offline"] = summary([(time.perf_counter() - t0, len(frame_times))])
    out["filter_offline"]["notes"] = notes
    return out


def e2e(mag, src: str, dst: str, causal: bool) -> dict:
    """:func:`rtmag.process.magnify_file` once; fps from its own timing, per-batch
    intervals from its progress calls."""
    from rtmag.process import magnify_file

    mag.reset()
    stamps = []
    t0 = time.perf_counter()
    res = magnify_file(
        src,
        dst,
        magnifier=mag,
        causal=causal,
        overwrite=True,
        progress=lambda k: stamps.append(time.perf_counter()),
    )
    wall = time.perf_counter() - t0
    return {
        "frames": res.frames,
        "seconds": res.seconds,
        "wall_s": wall,
        "fps": res.frames / res.seconds,
        **batch_latency(stamps, t0, res.seconds, causal, mag.config.max_batch),
        "codec": res.codec,
        "notes": res.notes,
        "output": dst,
    }


def batch_latency(stamps, t0, seconds, causal: bool, batch: int) -> dict:
    if not causal:  # the first output frame waits for the first pass over the clip
        return {
            "latency_ms_median": 1000 * seconds,
            "latency_ms_p95": 1000 * seconds,
            "latency": "whole run (offline: every output frame needs the whole clip)",
        }
    iv = np.diff([t0, *stamps])
    return {
        "latency_ms_median": 1000 * float(np.median(iv)) if len(iv) else None,
        "latency_ms_p95": 1000 * float(np.percentile(iv, 95)) if len(iv) else None,
        "latency": f"per batch of {batch} frames: decode + magnify + encode (progress calls)",
    }


# ---------------------------------------------------------------- baselines and peers


def run_baseline(method: str, src: str, dst: str, causal: bool, batch: int) -> dict:
    from rtmag.baselines.file import magnify_file_with_method

    stamps = []
    t0 = time.perf_counter()
    res = magnify_file_with_method(
        src,
        dst,
        method,
        causal=causal,
        overwrite=True,
        batch=batch,
        band=BAND,
        alpha=BASELINE_ALPHA,
        progress=lambda k: stamps.append(time.perf_counter()),
    )
    return {
        "frames": res.frames,
        "seconds": res.seconds,
        "fps": res.frames / res.seconds,
        **batch_latency(stamps, t0, res.seconds, causal, batch),
        "settings": {k: v for k, v in res.settings.items() if isinstance(v, (str, int, float))},
        "output": dst,
    }


def peer_status(name: str) -> tuple[object | None, str | None]:
    try:
        mod = __import__(name)
    except Exception as e:  # absent or broken: the reason is the result
        note = PEER_INSTALL_NOTES.get(name)
        return None, f"does not import: {type(e).__name__}: {e}" + (f"; {note}" if note else "")
    return mod, None


def run_vidmag(mod, src: str, dst: str, frames: int) -> dict:
    t0 = time.perf_counter()
    out = mod.magnify(
        src, preset="pulse", backend="cpu", out=dst, alpha=BASELINE_ALPHA, fl=BAND[0], fh=BAND[1]
    )
    sec = time.perf_counter() - t0
    return {
        "frames": int(len(out)),
        "frames_in": frames,
        "seconds": sec,
        "fps": len(out) / sec,
        "latency_ms_median": 1000 * sec,
        "latency_ms_p95": 1000 * sec,
        "latency": "whole run (reads the whole clip into memory, ideal FFT filter)",
        "settings": {
            "preset": "pulse",
            "backend": "cpu",
            "alpha": BASELINE_ALPHA,
            "fl": BAND[0],
            "fh": BAND[1],
            "version": getattr(mod, "__version__", None),
        },
        "output": dst,
    }


# ---------------------------------------------------------------- tables and plot


def fmt(v, spec=".1f") -> str:
    return "-" if v is None or (isinstance(v, float) and not math.isfinite(v)) else format(v, spec)


def markdown(res: dict) -> str:
    m = res["machine"]
    lines = [
        f"rtmag end-to-end benchmark, {res['date']}, git {res['git_revision']}",
        "",
        f"{m['cpu']}, {m['cores']} cores, torch threads {res['threads']}, ascent workers "
        f"{res.get('workers', 1)}, load average "
        f"{fmt(m['load_average_before'][0], '.2f')} before, "
        f"{fmt(m['load_average_after'][0], '.2f')} after"
        + (" (UNDER LOAD: the numbers include waiting for a core)" if res["under_load"] else ""),
        "",
        f"Clip: synthetic task A, {'lossless RGB' if res['settings']['lossless_clip'] else 'H.264 crf 18'}, {res['settings']['seconds']:g} s (pulse), "
        f"{res['settings']['resp_seconds']:g} s (respiration) at {FPS:g} fps; networks: "
        f"{res['settings']['networks']}; N = {res['settings']['n_iter']}.",
        "",
        "End to end (`magnify_file`, decode and encode included), frames/s; causal "
        "latency per batch in ms (median / p95):",
        "",
        "| mode | engine | size | batch | offline fps | causal fps | causal ms med / p95 "
        "| ascent fps | of limit | gain offline (in phase / any phase) |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for c in res["cases"]:
        if "error" in c:
            lines.append(
                f"| {c['mode']} | {c['engine']} | {c['size']} | {c['batch']} | "
                f"error: {c['error']} | | | | | |"
            )
            continue
        off, cau, asc = c["e2e_offline"], c["e2e_causal"], c["stages"]["ascent"]
        lines.append(
            f"| {c['mode']} | {c['engine']} | {c['size']} | {c['batch']} | {fmt(off['fps'])} | "
            f"{fmt(cau['fps'])} | {fmt(cau['latency_ms_median'], '.0f')} / "
            f"{fmt(cau['latency_ms_p95'], '.0f')} | {fmt(asc['fps'])} | "
            f"{fmt(100 * c['ascent_of_limit'] if c['ascent_of_limit'] else None, '.0f')}% | "
            f"{fmt(off.get('gain'), '.2f')} / {fmt(off.get('gain_any_phase'), '.2f')} |"
        )
    lines += [
        "",
        "Stages (one causal pass; ms per call on one batch):",
        "",
        "| mode | engine | size | batch | stage | fps | ms median | ms p95 |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for c in res["cases"]:
        for s, v in c.get("stages", {}).items():
            lines.append(
                f"| {c['mode']} | {c['engine']} | {c['size']} | {c['batch']} | {s} | "
                f"{fmt(v['fps'])} | {fmt(v['ms_median'])} | {fmt(v['ms_p95'])} |"
            )
    lines += [
        "",
        f"Baselines and peers on the pulse clip (alpha {BASELINE_ALPHA:g}, band "
        f"{BAND[0]}-{BAND[1]} Hz; gain = in-band pulse gain on skin, output vs input):",
        "",
        "| method | size | path | fps | latency ms med / p95 | gain in phase / any phase |",
        "|---|---|---|---|---|---|",
    ]
    for b in res["baselines"]:
        if "error" in b:
            lines.append(f"| {b['method']} | {b['size']} | {b['path']} | error: {b['error']} | | |")
            continue
        lines.append(
            f"| {b['method']} | {b['size']} | {b['path']} | {fmt(b['fps'])} | "
            f"{fmt(b['latency_ms_median'], '.0f')} / {fmt(b['latency_ms_p95'], '.0f')} | "
            f"{fmt(b.get('gain'), '.2f')} / {fmt(b.get('gain_any_phase'), '.2f')} |"
        )
    for name, why in res["peers_not_run"].items():
        lines.append(f"| {name} | - | - | not run: {why} | | |")
    lines += ["", "Goals (reported, not asserted):", ""]
    for k, g in res["goals"].items():
        lines.append(
            f"- {k}: goal {g['goal']:g}, measured {fmt(g['measured'], '.3g')} "
            f"({g['where']}) -> {'met' if g['met'] else 'not met' if g['met'] is False else 'not measured'}"
        )
    return "\n".join(lines) + "\n"


def plot(res: dict, path: Path) -> str | None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except Exception as e:  # no matplotlib: the JSON and table still stand
        return f"no plot: {type(e).__name__}: {e}"
    cases = [c for c in res["cases"] if "error" not in c]
    fig, axes = plt.subplots(1, 2, figsize=(13, 4.8))
    ax = axes[0]
    groups = sorted({(c["mode"], c["engine"], c["batch"]) for c in cases})
    sizes = list(dict.fromkeys(c["size"] for c in cases))
    for g in groups:
        for kind, style in (("e2e_causal", "-o"), ("e2e_offline", "--s")):
            ys = []
            for s in sizes:
                hit = [
                    c for c in cases if (c["mode"], c["engine"], c["batch"]) == g and c["size"] == s
                ]
                ys.append(hit[0][kind]["fps"] if hit else np.nan)
            ax.plot(sizes, ys, style, label=f"{g[0]} {g[1]} b{g[2]} {kind[4:]}")
    for b in res["baselines"]:
        if "error" not in b and b["path"] == "offline":
            ax.plot([b["size"]], [b["fps"]], "k^", ms=5)
    ax.axhline(GOALS["pulse_e2e_640x480_fps"], color="grey", lw=0.8, ls=":")
    ax.axhline(GOALS["respiration_e2e_640x480_fps"], color="grey", lw=0.8, ls=":")
    ax.set_yscale("log")
    ax.set_ylabel("frames/s (end to end)")
    ax.set_title("magnify_file (triangles: baselines offline; dotted: goals 60, 15)")
    ax.legend(fontsize=6, ncol=2)
    ax = axes[1]
    names = ["decode", "analyse", "filter", "render", "encode"]
    labels, bottoms = [], None
    rows = [c for c in cases if c["size"] == ("640x480" if "640x480" in sizes else sizes[-1])]
    ms = np.array(
        [
            [1000 / c["stages"][s]["fps"] if c["stages"][s]["fps"] else 0 for s in names]
            for c in rows
        ]
    ).reshape(len(rows), len(names))
    labels = [f"{c['mode'][:5]} {c['engine']} b{c['batch']}" for c in rows]
    bottoms = np.zeros(len(rows))
    for j, s in enumerate(names):
        ax.bar(range(len(rows)), ms[:, j], bottom=bottoms, label=s)
        bottoms += ms[:, j]
    ax.set_xticks(range(len(rows)), labels, rotation=60, ha="right", fontsize=7)
    ax.set_ylabel("ms per frame (stage totals / frames)")
    ax.set_title(f"stages at {rows[0]['size'] if rows else '-'}")
    ax.legend(fontsize=7)
    fig.suptitle(
        f"rtmag e2e, {res['machine']['cpu']}, {res['machine']['cores']} cores, "
        f"load {res['machine']['load_average_before'][0]:.1f}, git {res['git_revision']}",
        fontsize=9,
    )
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return None


def goals(res: dict) -> dict:
    out = {}
    for mode, key in (
        ("pulse", "pulse_e2e_640x480_fps"),
        ("respiration", "respiration_e2e_640x480_fps"),
    ):
        best, where = None, "no case at 640x480"
        for c in res["cases"]:
            if "error" in c or c["mode"] != mode or c["size"] != "640x480":
                continue
            for kind in ("e2e_offline", "e2e_causal"):
                if best is None or c[kind]["fps"] > best:
                    best = c[kind]["fps"]
                    where = f"{c['engine']}, batch {c['batch']}, {kind[4:]}"
        out[key] = {
            "goal": GOALS[key],
            "measured": best,
            "where": where,
            "met": None if best is None else best >= GOALS[key],
        }
    best, where = None, "no ascent measured"
    for c in res["cases"]:
        if "error" not in c and c["ascent_of_limit"] is not None:
            if best is None or c["ascent_of_limit"] > best:
                best = c["ascent_of_limit"]
                where = f"{c['mode']} {c['engine']} {c['size']} batch {c['batch']}"
    out["ascent_of_matmul_limit"] = {
        "goal": GOALS["ascent_of_matmul_limit"],
        "measured": best,
        "where": where,
        "met": None if best is None else best >= GOALS["ascent_of_matmul_limit"],
    }
    return out


# ---------------------------------------------------------------- main


def save_partial(res: dict, path: Path) -> None:
    """The results so far (``"complete": false``): a long run that is stopped keeps them."""
    path.write_text(json.dumps({**res, "complete": False}, indent=1, default=str) + "\n")


def versions() -> dict:
    out = {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "numpy": np.__version__,
        "rtmag": rtmag.__version__,
    }
    for mod in ("av", "cv2", "scipy", "matplotlib", "vidmag", "pyeulervid"):
        try:
            out[mod] = __import__(mod).__version__
        except Exception:
            out[mod] = None
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument(
        "--modes", nargs="*", default=["pulse", "respiration"], choices=["pulse", "respiration"]
    )
    p.add_argument(
        "--engines",
        nargs="+",
        default=["adjoint", "eager"],
        help="ascent engines (add 'compile': about 1 min cold compile per case)",
    )
    p.add_argument("--sizes", nargs="+", default=["320x240", "640x480", "1280x720"])
    p.add_argument("--batches", nargs="+", type=int, default=[1, 8, 32])
    p.add_argument(
        "--resp-engines", nargs="+", default=None, help="respiration's (default: --engines)"
    )
    p.add_argument(
        "--resp-batches",
        nargs="+",
        type=int,
        default=None,
        help="respiration's (default: --batches)",
    )
    p.add_argument("--seconds", type=float, default=10.0, help="pulse clip length")
    p.add_argument("--resp-seconds", type=float, default=3.0, help="respiration clip length")
    p.add_argument("--n-iter", type=int, default=20, help="N, the ascent's iterates")
    p.add_argument(
        "--matmul-seconds", type=float, default=1.0, help="time spent measuring the matmul rate"
    )
    p.add_argument("--threads", type=int, default=None, help="torch intra-op threads")
    p.add_argument(
        "--workers",
        type=int,
        default=1,
        help="ascent worker threads (MagnifierConfig.workers); the matmul limit is then "
        "the measured rate times the workers",
    )
    p.add_argument("--baselines", nargs="*", default=["evm", "vam"])
    p.add_argument("--peers", nargs="*", default=["vidmag", "pyeulervid"])
    p.add_argument(
        "--trained",
        action="store_true",
        help="use the shipped weights where the mode has them (the gain is then a quality "
        "figure; the cost is the same)",
    )
    p.add_argument(
        "--lossless-clip",
        action="store_true",
        help="encode the clip losslessly (libx264rgb qp 0) instead of H.264 crf 18",
    )
    p.add_argument("--no-gain", action="store_true", help="skip the gain measure (faster)")
    p.add_argument("--cache", default=None, help="clip cache (default <tmp>/rtmag-bench-clips)")
    p.add_argument("--out", default=None, help="JSON path (default bench/results/e2e-<date>.json)")
    args = p.parse_args(argv)
    sizes = [parse_size(s) for s in args.sizes]
    if args.threads:
        torch.set_num_threads(args.threads)
    cache = Path(args.cache or Path(tempfile.gettempdir()) / "rtmag-bench-clips")
    out_json = (
        Path(args.out)
        if args.out
        else (
            Path(__file__).resolve().parent / "results" / f"e2e-{dt.date.today().isoformat()}.json"
        )
    )
    out_json.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="rtmag-bench-out-"))
    load0 = load_average()
    threads = torch.get_num_threads()
    rate = matmul_rate(torch.float32, "cpu", seconds=args.matmul_seconds)
    res = {
        "benchmark": "e2e",
        "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "git_revision": git_revision(),
        "machine": {
            "cpu": cpu_model(),
            "cores": os.cpu_count(),
            "platform": platform.platform(),
            "load_average_before": load0,
            "omp_num_threads": os.environ.get("OMP_NUM_THREADS"),
            "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY"),
        },
        "versions": versions(),
        "threads": threads,
        "workers": args.workers,
        "matmul_flops_per_s": rate,
        "settings": {
            "modes": args.modes,
            "engines": args.engines,
            "sizes": args.sizes,
            "batches": args.batches,
            "resp_engines": args.resp_engines or args.engines,
            "resp_batches": args.resp_batches or args.batches,
            "seconds": args.seconds,
            "resp_seconds": args.resp_seconds,
            "lossless_clip": args.lossless_clip,
            "n_iter": args.n_iter,
            "fps": FPS,
            "baseline_alpha": BASELINE_ALPHA,
            "band_hz": list(BAND),
            "networks": "shipped weights where present (--trained)"
            if args.trained
            else "random-init rtmag.nets.create_net(mode), meta={} (default step calibration)",
        },
        "clips": {},
        "cases": [],
        "baselines": [],
        "peers_not_run": {},
    }
    try:
        for (w, h), name in zip(sizes, args.sizes):
            log(f"clip {name} ...")
            res["clips"][name] = make_clip(
                (w, h), args.seconds, args.resp_seconds, cache, args.lossless_clip
            )
        flops = {}
        for mode in args.modes:
            from rtmag.nets import create_net

            flops[mode] = ascent_flops_per_frame(create_net(mode), args.n_iter)
        res["flops_per_frame"] = flops
        res["limit_fps"] = {m: rate / f for m, f in flops.items()}
        for mode in args.modes:
            for name in args.sizes:
                clip = res["clips"][name]
                src = clip[mode]
                truth = SkinTruth(clip) if mode == "pulse" and not args.no_gain else None
                engines, batches = args.engines, args.batches
                if mode == "respiration":
                    engines = args.resp_engines or engines
                    batches = args.resp_batches or batches
                for engine in engines:
                    for batch in batches:
                        case = {
                            "mode": mode,
                            "engine": engine,
                            "size": name,
                            "batch": batch,
                            "frames": clip["frames"][mode],
                        }
                        log(f"{mode} {engine} {name} batch {batch} ...")
                        case["load_average_before"] = load_average()
                        try:
                            t0 = time.perf_counter()
                            mag, timer, case["network"] = make_magnifier(
                                mode, engine, args.n_iter, batch, args.trained, args.workers
                            )
                            warm_up(mag, src)
                            case["build_s"] = time.perf_counter() - t0
                            case["decimate"] = int(getattr(mag.path, "k", 1))
                            stem = f"{mode}-{engine}-{name}-b{batch}"
                            staged = str(work / f"{stem}-staged.mp4")
                            case["stages"] = staged_pass(mag, timer, src, staged, batch)
                            os.remove(staged)
                            asc = case["stages"]["ascent"]["fps"]
                            limit = res["limit_fps"][mode] * args.workers
                            case["ascent_of_limit"] = asc / limit if asc else None
                            for kind, causal in (("e2e_offline", False), ("e2e_causal", True)):
                                dst = str(work / f"{stem}-{kind}.mp4")
                                case[kind] = e2e(mag, src, dst, causal)
                                if truth is not None:
                                    case[kind].update(
                                        truth.gain(dst, skip=int(2 * FPS) if causal else 0)
                                    )
                                os.remove(dst)
                        except Exception as e:
                            case["error"] = f"{type(e).__name__}: {e}"
                            case["traceback"] = traceback.format_exc()
                            log(case["traceback"])
                        case["load_average_after"] = load_average()
                        res["cases"].append(case)
                        save_partial(res, out_json)
        for name in args.sizes:
            clip = res["clips"][name]
            truth = None if args.no_gain else SkinTruth(clip)
            for method in args.baselines:
                for path, causal in (("offline", False), ("causal", True)):
                    log(f"baseline {method} {name} {path} ...")
                    row = {
                        "method": f"rtmag.baselines {method}",
                        "size": name,
                        "path": path,
                        "load_average_before": load_average(),
                    }
                    dst = str(work / f"{method}-{name}-{path}.mp4")
                    try:
                        row.update(run_baseline(method, clip["pulse"], dst, causal, 32))
                        if truth is not None:
                            row.update(truth.gain(dst, skip=int(2 * FPS) if causal else 0))
                        os.remove(dst)
                    except Exception as e:
                        row["error"] = f"{type(e).__name__}: {e}"
                    row["load_average_after"] = load_average()
                    res["baselines"].append(row)
                    save_partial(res, out_json)
            for peer in args.peers:
                mod, why = peer_status(peer)
                if mod is None:
                    res["peers_not_run"][peer] = why
                    continue
                if peer != "vidmag":
                    res["peers_not_run"][peer] = "imports, but this bench has no runner for it yet"
                    continue
                log(f"peer {peer} {name} ...")
                row = {
                    "method": f"{peer} (PyPI)",
                    "size": name,
                    "path": "offline",
                    "load_average_before": load_average(),
                }
                dst = str(work / f"{peer}-{name}.mp4")
                try:
                    row.update(run_vidmag(mod, clip["pulse"], dst, clip["frames"]["pulse"]))
                    if truth is not None:
                        row.update(truth.gain(dst))
                    os.remove(dst)
                except Exception as e:
                    row["error"] = f"{type(e).__name__}: {e}"
                row["load_average_after"] = load_average()
                res["baselines"].append(row)
                save_partial(res, out_json)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    loads = [load0[0]] + [c["load_average_after"][0] for c in res["cases"] + res["baselines"]]
    res["machine"]["load_average_after"] = load_average()
    res["under_load"] = under_load(loads, threads)
    res["goals"] = goals(res)
    md_path, png_path = out_json.with_suffix(".md"), out_json.with_suffix(".png")
    why = plot(res, png_path)
    res["plot"] = why or str(png_path)
    res["complete"] = True
    out_json.write_text(json.dumps(res, indent=1, default=str) + "\n")
    table = markdown(res)
    md_path.write_text(table)
    print(table)
    print(f"written {out_json}, {md_path}" + (f", {png_path}" if not why else f" ({why})"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
