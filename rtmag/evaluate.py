"""The paper's evaluation (Table 1, Table 2, Fig. 5/7) on synthetic clips rendered here.

Protocol (:func:`evaluate`), per mode:

1. **Match the magnification on task A.** Each method has one strength ``s``
   (DeepMag: ``magnification - 1``; the baselines: ``alpha``). On held-out task-A
   clips (their own seeds) the achieved gain of the source (below) is measured and ``s`` is
   rescaled ``s <- s (target - 1) / (gain - 1)``, ``rounds`` times, so that every
   method shows the same gain (``target``) on the still task -- the paper's "equivalent
   to the magnification using EVM".
2. **Tasks A-D** on other held-out clips (seeds never used in training or matching),
   each method at its matched strength: PSNR and SSIM against the input (Table 1),
   PSNR against the ideal clip (the source magnified by ``target`` and nothing else),
   the achieved gain, and :func:`rtmag.metrics.artifact_db` (the change off the
   source or outside the band). The ideal itself is scored as a row ("ideal"): what a
   perfect magnifier would get.
3. **Step-size sweep (Table 2)**: DeepMag (or, without it, the first method) on the
   task-C clips at 0.5, 1, 2 and 4 times its matched step (``magnification - 1``
   scales the step size gamma linearly).

Modes are rows of :data:`MODES` (:class:`ModeSpec`): the methods, the source mask,
the band and the gain measure. ``pulse``: deepmag, evm, vam; the gain is the in-band
gain of the pulse on skin.

*Gain from a pair.* Every clip is rendered twice from one seed: as it is, and without
the source (pulse amplitude 0; breathing amplitude 0), everything else -- head motion,
light, sensor noise -- identical. Each method runs on both; the source's gain is read
from the difference of the two outputs (:func:`rtmag.metrics.paired_gain`). A single
output projected onto the true pulse would also count the method's response to the
clip's other in-band changes by their chance correlation with the pulse: EVM at one
alpha read 6 on one task-A clip and 24 on another that way, 17 on both from pairs. ``phase`` and
``vam-motion`` are motion methods: they leave a colour change alone (their gain on the
pulse is 1 at any alpha, tests/test_phase_baselines.py), so they cannot be matched on
pulse. ``respiration`` (deepmag, phase, vam-motion; the shoulder displacement gain,
:func:`shoulder_displacement`) runs once the respiration magnifier exists
(``MagnifierConfig(mode="respiration")``); until then it raises a clear error.

Sizes. The synthetic frame size is an option; the Gaussian level of EVM and VAM keeps
their stack near 40x30 pixels whatever the size (level 4 at 640x480, the MIT
default; :func:`gaussian_level`), and the phase pyramids use every scale the frame
allows.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from rtmag.errors import UserError

#: Seeds: training uses < 1_100_000, ``rtmag quality`` 5_000_000 + ...
EVAL_SEED_BASE = 6_000_000
MATCH_SEED_BASE = 6_500_000
TASKS = ("A", "B", "C", "D")
SWEEP = (0.5, 1.0, 2.0, 4.0)
METRICS = ("psnr_input", "ssim_input", "psnr_ideal", "gain", "artifact_db")


# ------------------------------------------------------------------------ clips


@dataclass
class Clip:
    """A rendered synthetic clip with what the measures need.

    Attributes:
        frames, ideal: ``(T, H, W, 3)`` uint8 input and ideal output (source x target).
        without: ``(T, H, W, 3)`` uint8, the input rendered without the source.
        source: ``(T, H, W)`` bool, skin (pulse) or torso (respiration) per frame.
        pulse_term: ``(T, 3)`` mean true pulse term over the skin (pulse mode).
        truth: per-frame truth arrays (``respiration``, ``torso_mask``...).
        fps, task, seed: as rendered.
    """

    frames: np.ndarray
    ideal: np.ndarray
    without: np.ndarray
    source: np.ndarray
    pulse_term: np.ndarray
    truth: dict
    fps: float
    task: str
    seed: int


def render_clip(scfg) -> Clip:
    """Render ``scfg`` (a :class:`~rtmag.synth.SynthConfig`) into a :class:`Clip`, and
    again without its source (:func:`without_source`)."""
    from rtmag.synth.render import Renderer, stack_truth

    r = Renderer(scfg)
    frames, ideal, skin, torso, pterm, truths = [], [], [], [], [], []
    for k in range(r.n_frames):
        lay = r.layers(k)
        frames.append(lay.frame)
        ideal.append(lay.ideal)
        m = lay.truth["skin_mask"]
        skin.append(m)
        torso.append(lay.truth["torso_mask"])
        pterm.append(lay.pulse_term[m].mean(axis=0) if m.any() else np.full(3, np.nan))
        truths.append({k2: v for k2, v in lay.truth.items() if not isinstance(v, np.ndarray)})
    truth = stack_truth(truths)
    truth["skin_mask"], truth["torso_mask"] = np.stack(skin), np.stack(torso)
    source = truth["torso_mask"] if scfg.mode == "respiration" else truth["skin_mask"]
    r0 = Renderer(without_source(scfg))
    without = np.stack([r0.layers(k).frame for k in range(r0.n_frames)])
    return Clip(
        np.stack(frames),
        np.stack(ideal),
        without,
        source,
        np.stack(pterm),
        truth,
        float(scfg.fps),
        scfg.task,
        int(scfg.seed),
    )


def without_source(scfg):
    """``scfg`` with the source's amplitude 0 (every other draw is the same)."""
    from rtmag.synth import resolve_config

    cfg = resolve_config(scfg)
    if cfg.mode == "respiration":
        return dataclasses.replace(cfg, breathing_amplitude_px=0.0)
    return dataclasses.replace(cfg, pulse_amplitude=0.0)


def clip_tones(per_task: int) -> list[int]:
    """Skin tones of a task's ``per_task`` clips, the same in every task: spread evenly
    over I-VI (1 clip: IV; 3: II, IV, VI; 4: I, III, IV, VI), cycling past 6 clips.

    The same in every task because the paper's protocol has every subject do every
    task, so the fall from A to D measures motion. (They used to cycle with the task,
    tones I-III on A and IV-VI on D, which mixed skin tone into that fall.)"""
    if per_task > 6:
        return [1 + k % 6 for k in range(per_task)]
    return [1 + ((2 * k + 1) * 6) // (2 * per_task) for k in range(per_task)]


def clip_configs(mode, tasks, per_task, seconds, size, fps, target, base=EVAL_SEED_BASE):
    """Held-out :class:`~rtmag.synth.SynthConfig` s, ``per_task`` per task, with the
    same skin tones in every task (:func:`clip_tones`), the ideal at ``alpha =
    target``."""
    from rtmag.synth import SynthConfig

    tones = clip_tones(per_task)

    return [
        SynthConfig(
            task=task,
            mode=mode,
            seconds=seconds,
            fps=fps,
            size=tuple(size),
            seed=base + ti * 1000 + k,
            skin_tone=tones[k],
            alpha=float(target),
        )
        for ti, task in enumerate(tasks)
        for k in range(per_task)
    ]


# ------------------------------------------------------------------------ gain measures


def pulse_clip_gain(clip: Clip, out: np.ndarray, out_without: np.ndarray, band) -> float:
    """In-band gain of the pulse on skin: :func:`rtmag.metrics.paired_gain` of the mean
    skin colour of the two outputs onto the mean true pulse term."""
    from rtmag import metrics

    m = metrics.masked_mean(out, clip.source)
    m0 = metrics.masked_mean(out_without, clip.source)
    return metrics.paired_gain(m, m0, clip.pulse_term, clip.fps, band)


def shoulder_columns(torso: np.ndarray, head: np.ndarray | None = None) -> np.ndarray:
    """Columns on the shoulders: torso in the time-mean mask, away from the neck/head
    (``|x - centre|`` between 55% and 85% of the torso's half width)."""
    mean = np.asarray(torso, bool).mean(axis=0) > 0.5
    cols = np.flatnonzero(mean.any(axis=0))
    if len(cols) == 0:
        raise UserError("no torso in this clip: the shoulder displacement cannot be measured")
    c, half = (cols[0] + cols[-1]) / 2, (cols[-1] - cols[0]) / 2
    x = np.arange(mean.shape[1])
    sel = (np.abs(x - c) >= 0.55 * half) & (np.abs(x - c) <= 0.85 * half) & mean.any(axis=0)
    if head is not None:
        sel &= ~np.asarray(head, bool).any(axis=(0, 1))
    return np.flatnonzero(sel)


def shoulder_displacement(
    frames: np.ndarray, torso: np.ndarray, window: int | None = None
) -> np.ndarray:
    """Upward displacement (pixels) of the shoulder edge in each frame, ``(T,)``.

    On the shoulder columns (:func:`shoulder_columns`) of the time-mean torso mask,
    the edge's mean row is the first torso row. In each frame the grey profile of each
    column over ``±window`` rows around it (default: 6% of the frame height) is
    differentiated and the edge put at the centroid of the squared derivative; the
    columns' positions are averaged, sign flipped (up is positive, as the truth's
    ``respiration``).
    """
    frames = np.asarray(frames)
    torso = np.asarray(torso, bool)
    cols = shoulder_columns(torso)
    mean = torso.mean(axis=0) > 0.5
    h = frames.shape[1]
    win = int(window or max(4, round(0.06 * h)))
    top = np.array([np.argmax(mean[:, c]) for c in cols])
    rows = np.clip(top[None, :] + np.arange(-win, win + 1)[:, None], 0, h - 1)  # (R, C)
    grey = frames.astype(np.float32).mean(axis=-1)  # (T, H, W)
    prof = grey[:, rows, cols[None, :]]  # (T, R, C)
    g2 = np.diff(prof, axis=1) ** 2
    ypos = (rows[:-1] + rows[1:]) / 2.0  # (R-1, C)
    w = g2.sum(axis=1)
    centroid = (g2 * ypos[None]).sum(axis=1) / np.maximum(w, 1e-12)
    return -centroid.mean(axis=1)


def respiration_clip_gain(clip: Clip, out: np.ndarray, out_without: np.ndarray, band) -> float:
    """Shoulder displacement gain: the :func:`shoulder_displacement` that breathing
    causes in the output (output minus its pair), projected on the true respiration,
    over the same for the input (which cancels the measure's own scale)."""
    from rtmag import metrics

    torso = clip.truth["torso_mask"]

    def caused(a, b):
        return (shoulder_displacement(a, torso) - shoulder_displacement(b, torso))[:, None]

    r = np.asarray(clip.truth["respiration"], np.float64)[:, None]
    zero = np.zeros_like(r)
    g_out = metrics.paired_gain(caused(out, out_without), zero, r, clip.fps, band)
    g_in = metrics.paired_gain(caused(clip.frames, clip.without), zero, r, clip.fps, band)
    return g_out / g_in


@dataclass(frozen=True)
class ModeSpec:
    """What ``evaluate`` runs for one mode: methods, band, source and gain measure."""

    mode: str
    band: tuple[float, float]
    methods: tuple[str, ...]
    source: str
    gain_name: str
    gain: Callable[[Clip, np.ndarray, np.ndarray, tuple], float]
    target: float


MODES: dict[str, ModeSpec] = {
    "pulse": ModeSpec(
        "pulse",
        (0.7, 2.5),
        ("deepmag", "evm", "vam"),
        "skin",
        "pulse gain on skin",
        pulse_clip_gain,
        20.0,
    ),
    "respiration": ModeSpec(
        "respiration",
        (0.16, 0.5),
        ("deepmag", "phase", "vam-motion"),
        "torso",
        "shoulder displacement gain",
        respiration_clip_gain,
        10.0,
    ),
}


def mode_spec(mode: str) -> ModeSpec:
    if mode not in MODES:
        raise UserError(f"unknown mode {mode!r}; evaluate knows {', '.join(MODES)}")
    return MODES[mode]


# ------------------------------------------------------------------------ methods


def gaussian_level(width: int) -> int:
    """EVM/VAM Gaussian level that keeps the stack about 40 pixels wide (4 at 640)."""
    return max(1, int(round(math.log2(max(width, 2) / 40.0))))


@dataclass
class MethodRunner:
    """Runs one method on a clip at strength ``s`` (see the module docstring)."""

    name: str
    mode: str
    band: tuple[float, float]
    weights: str | None = None
    engine: str = "eager"
    _net: tuple | None = None

    def initial_strength(self, target: float) -> float:
        return float(target) - 1.0

    def net(self):
        if self._net is None:
            from rtmag.nets import default_weights_path, load_weights

            path = self.weights or str(default_weights_path(self.mode))
            self._net = load_weights(path, mode=self.mode)
        return self._net

    def __call__(self, clip: Clip, s: float) -> np.ndarray:
        """The method's output of ``clip.frames`` at strength ``s``."""
        return self.run(clip.frames, clip.fps, s)

    def pair(self, clip: Clip, s: float) -> tuple[np.ndarray, np.ndarray]:
        """Outputs of the clip and of its source-free twin."""
        return self.run(clip.frames, clip.fps, s), self.run(clip.without, clip.fps, s)

    def run(self, frames: np.ndarray, fps: float, s: float) -> np.ndarray:
        if self.name == "deepmag":
            return self._deepmag(frames, fps, s)
        from rtmag.baselines import create_method

        kw = dict(fps=fps, band=self.band, alpha=float(s))
        if self.name in ("evm", "vam"):
            kw["level"] = gaussian_level(frames.shape[2])
        return create_method(self.name, **kw)(frames)

    def _deepmag(self, frames: np.ndarray, fps: float, s: float) -> np.ndarray:
        from rtmag.magnifier import Magnifier, MagnifierConfig
        from rtmag.process import magnify_frames

        net, meta = self.net()
        cfg = MagnifierConfig(
            mode=self.mode,
            magnification=1.0 + float(s),
            band=self.band,
            fps=fps,
            engine=self.engine,
        )
        out, _ = magnify_frames(frames, Magnifier(cfg, net=net, meta=meta))
        return out


def measure(clip: Clip, out: np.ndarray, out_without: np.ndarray, spec: ModeSpec) -> dict:
    """The Table-1 measures of one output and its source-free twin (module docstring)."""
    from rtmag import metrics

    return {
        "psnr_input": metrics.psnr(out, clip.frames),
        "ssim_input": metrics.ssim(out, clip.frames),
        "psnr_ideal": metrics.psnr(out, clip.ideal),
        "gain": spec.gain(clip, out, out_without, spec.band),
        "artifact_db": metrics.artifact_db(out, clip.frames, clip.source, clip.fps, spec.band),
    }


# ------------------------------------------------------------------------ matching


def match_strengths(
    spec: ModeSpec,
    runners: dict[str, MethodRunner],
    clips: list[Clip],
    target: float,
    rounds: int = 2,
    log: Callable[[str], None] = print,
) -> dict[str, dict]:
    """Strength of each method that gives gain ``target`` on the task-A ``clips``.

    Returns ``{method: {"strength": s, "gains": [...], "history": [(s, median gain)]}}``
    where ``s`` is the strength tried whose median gain came nearest ``target`` and
    ``gains`` the task-A gains measured at it. The nearest, not the last: a method
    whose gain saturates or falls as its strength grows (a phase-based magnifier
    of motions larger than its bands carry) would otherwise be matched where the
    secant step overshot, at its worst.
    """
    out = {}
    for name, run in runners.items():
        s = run.initial_strength(target)
        tried = []  # (strength, gains, median gain) of every round
        for r in range(rounds + 1):
            gains = [spec.gain(c, *run.pair(c, s), spec.band) for c in clips]
            g = float(np.median(gains))
            tried.append((s, gains, g))
            log(f"match {name}: strength {s:.4g} -> task-A gain {g:.2f} (target {target:g})")
            if r == rounds:
                break
            if not math.isfinite(g) or g <= 1.0 + 1e-3:
                s *= 4.0
                continue
            s *= (target - 1.0) / (g - 1.0)
        finite = [t for t in tried if math.isfinite(t[2])] or tried
        s, gains, _ = min(finite, key=lambda t: abs(t[2] - target))
        if s != tried[-1][0]:
            log(f"match {name}: keeping strength {s:.4g}, the nearest to the target")
        out[name] = {"strength": s, "gains": gains, "history": [(t[0], t[2]) for t in tried]}
    return out


# ------------------------------------------------------------------------ one clip


def evaluate_clip(job: dict) -> dict:
    """Render one clip and measure every method on it (a worker's unit of work).

    ``job``: ``scfg`` (SynthConfig), ``mode``, ``strengths`` ({method: s}),
    ``weights``, ``engine``, ``sweep`` (a method name for the step sweep, or None).
    """
    import torch

    torch.set_num_threads(1)
    spec = mode_spec(job["mode"])
    clip = render_clip(job["scfg"])
    rows = {"ideal": measure(clip, clip.ideal, clip.without, spec)}
    sweep = {}
    for name, s in job["strengths"].items():
        run = MethodRunner(
            name, spec.mode, spec.band, job.get("weights"), job.get("engine", "eager")
        )
        rows[name] = measure(clip, *run.pair(clip, s), spec)
        if name == job.get("sweep"):
            for k in SWEEP:
                sweep[k] = rows[name] if k == 1.0 else measure(clip, *run.pair(clip, k * s), spec)
    return {"task": clip.task, "seed": clip.seed, "rows": rows, "sweep": sweep}


def _mean_rows(items: list[dict]) -> dict:
    return {k: float(np.mean([r[k] for r in items])) for k in items[0]}


def summarise(clips: list[dict], methods: list[str]) -> tuple[dict, dict]:
    """``(results[method][task], sweep[multiple][...])``: means over clips."""
    res: dict = {}
    for m in ["ideal", *methods]:
        res[m] = {}
        for task in sorted({c["task"] for c in clips}):
            rs = [c["rows"][m] for c in clips if c["task"] == task]
            res[m][task] = {**_mean_rows(rs), "clips": len(rs)}
    sw = {}
    for k in SWEEP:
        rs = [c["sweep"][k] for c in clips if c["sweep"]]
        if rs:
            sw[str(k)] = {**_mean_rows(rs), "clips": len(rs)}
    return res, sw


def check_goals(res: dict, baselines: list[str]) -> dict:
    """The issue's goals: DeepMag's PSNR vs input falls <= 2 dB from A to D, EVM's by
    >= 10 dB; DeepMag beats every baseline on PSNR vs the ideal on B-D."""
    g: dict = {}
    if "deepmag" in res and {"A", "D"} <= set(res["deepmag"]):
        drop = res["deepmag"]["A"]["psnr_input"] - res["deepmag"]["D"]["psnr_input"]
        g["deepmag_psnr_input_drop_A_to_D_db"] = drop
        g["deepmag_drop_at_most_2db"] = bool(drop <= 2.0)
    if "evm" in res and {"A", "D"} <= set(res["evm"]):
        drop = res["evm"]["A"]["psnr_input"] - res["evm"]["D"]["psnr_input"]
        g["evm_psnr_input_drop_A_to_D_db"] = drop
        g["evm_drop_at_least_10db"] = bool(drop >= 10.0)
    if "deepmag" in res:
        wins = {}
        for task in ("B", "C", "D"):
            if task in res["deepmag"]:
                best = max(res[b][task]["psnr_ideal"] for b in baselines)
                wins[task] = bool(res["deepmag"][task]["psnr_ideal"] > best)
        g["deepmag_best_psnr_ideal_B_to_D"] = wins
    judged = [
        v if isinstance(v, bool) else all(v.values())
        for k, v in g.items()
        if k.endswith(("2db", "10db", "B_to_D"))
    ]
    g["met"] = all(judged) if judged else None  # None: nothing here to judge
    return g


# ------------------------------------------------------------------------ whole run


@dataclass
class EvalConfig:
    """Settings of :func:`evaluate` (``quick()`` for the small version)."""

    mode: str = "pulse"
    methods: tuple[str, ...] | None = None
    target: float | None = None
    per_task: int = 4
    match_clips: int = 3
    seconds: float = 10.0
    size: tuple[int, int] = (640, 480)
    fps: float = 30.0
    rounds: int = 2
    weights: str | None = None
    engine: str = "eager"
    workers: int = 1
    sweep: bool = True

    def __post_init__(self):
        spec = mode_spec(self.mode)
        methods = tuple(self.methods or spec.methods)
        bad = [m for m in methods if m not in spec.methods]
        if bad:
            raise UserError(
                f"method(s) {', '.join(bad)} are not evaluated in mode {self.mode}; "
                f"choose from {', '.join(spec.methods)}"
            )
        self.methods = methods
        if self.target is None:
            self.target = spec.target
        if not (math.isfinite(self.target) and self.target > 1.0):
            raise UserError(f"target gain must be > 1, got {self.target}")
        for name in ("per_task", "match_clips", "workers"):
            if int(getattr(self, name)) < 1:
                raise UserError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.rounds < 0:
            raise UserError(f"rounds must be >= 0, got {self.rounds}")

    @classmethod
    def quick(cls, **kw) -> EvalConfig:
        base = dict(per_task=1, match_clips=1, seconds=8.0, size=(320, 240), rounds=2)
        return cls(**{**base, **kw})


def evaluate(
    cfg: EvalConfig,
    log: Callable[[str], None] = print,
    progress: Callable[[int], None] | None = None,
) -> dict:
    """Run the protocol (module docstring); returns the JSON-able result."""
    import time

    spec = mode_spec(cfg.mode)
    t0 = time.perf_counter()
    runners = {
        m: MethodRunner(m, spec.mode, spec.band, cfg.weights, cfg.engine) for m in cfg.methods
    }
    if "deepmag" in runners:
        runners["deepmag"].net()  # fails early (clear error) without weights/mode
    match_cfgs = clip_configs(
        cfg.mode, "A", cfg.match_clips, cfg.seconds, cfg.size, cfg.fps, cfg.target, MATCH_SEED_BASE
    )
    match_clips = [render_clip(c) for c in match_cfgs]
    matched = match_strengths(spec, runners, match_clips, cfg.target, cfg.rounds, log)
    del match_clips
    strengths = {m: matched[m]["strength"] for m in cfg.methods}
    jobs = [
        {
            "scfg": c,
            "mode": cfg.mode,
            "strengths": strengths,
            "weights": cfg.weights,
            "engine": cfg.engine,
            "sweep": _traced_method(cfg.methods) if cfg.sweep and c.task == "C" else None,
        }
        for c in clip_configs(
            cfg.mode, TASKS, cfg.per_task, cfg.seconds, cfg.size, cfg.fps, cfg.target
        )
    ]
    done = []
    if cfg.workers > 1:
        import multiprocessing as mp
        from concurrent.futures import ProcessPoolExecutor, as_completed

        with ProcessPoolExecutor(cfg.workers, mp_context=mp.get_context("spawn")) as ex:
            for fut in as_completed([ex.submit(evaluate_clip, j) for j in jobs]):
                done.append(fut.result())
                if progress:
                    progress(1)
    else:
        for j in jobs:
            done.append(evaluate_clip(j))
            if progress:
                progress(1)
    done.sort(key=lambda c: (c["task"], c["seed"]))
    res, sweep = summarise(done, list(cfg.methods))
    baselines = [m for m in cfg.methods if m != "deepmag"]
    settings = dataclasses.asdict(cfg)
    settings["size"] = list(cfg.size)
    settings["methods"] = list(cfg.methods)
    from rtmag.magnifier import MagnifierConfig, step_rule

    # DeepMag's step rule, smoothing and colour axis (the defaults; the runs compare
    # over time)
    dm = MagnifierConfig(mode=cfg.mode)
    settings["deepmag_rule"] = {**step_rule(dm), "colour_axis": dm.colour_axis}
    return {
        "settings": settings,
        "mode_spec": {
            "band_hz": list(spec.band),
            "source": spec.source,
            "gain": spec.gain_name,
            "strength": "deepmag: magnification - 1; baselines: alpha",
        },
        "matching": {
            m: {
                "strength": v["strength"],
                "task_A_gains": v["gains"],
                "history": [list(h) for h in v["history"]],
            }
            for m, v in matched.items()
        },
        "results": {cfg.mode: res},
        "step_sweep": {cfg.mode: sweep},
        "goals": {cfg.mode: check_goals(res, baselines) if baselines else {}},
        "clips": done,
        "seconds": time.perf_counter() - t0,
    }


# ------------------------------------------------------------------------ reports


def markdown(result: dict) -> str:
    """Tables: one per measure (rows: methods, columns: tasks), then the step sweep."""
    names = {
        "psnr_input": "PSNR vs input (dB, Table 1)",
        "ssim_input": "SSIM vs input (Table 1)",
        "psnr_ideal": "PSNR vs ideal (dB)",
        "gain": "achieved gain",
        "artifact_db": "artifact energy (dB re 1 grey level²)",
    }
    lines = []
    for mode, res in result["results"].items():
        tasks = sorted(next(iter(res.values())))
        spec = result["mode_spec"]
        lines.append(
            f"### {mode}: matched to gain {result['settings']['target']:g} on task A "
            f"({spec['gain']}); {result['settings']['per_task']} clip(s) per task, "
            f"{result['settings']['size'][0]}x{result['settings']['size'][1]}, "
            f"{result['settings']['seconds']:g} s"
        )
        lines.append("")
        lines.append("| measure | method | " + " | ".join(tasks) + " |")
        lines.append("|---|---|" + "---|" * len(tasks))
        for key, title in names.items():
            for m, per in res.items():
                fmt = "{:.3f}" if key == "ssim_input" else "{:.1f}"
                vals = " | ".join(fmt.format(per[t][key]) for t in tasks)
                lines.append(f"| {title} | {m} | {vals} |")
        lines.append("")
        sw = result["step_sweep"].get(mode) or {}
        if sw:
            traced = _traced_method(result["settings"]["methods"])
            lines.append(f"Step-size sweep, {traced} on task C (Table 2):")
            lines.append("")
            lines.append("| step | " + " | ".join(f"{k}γ" for k in sw) + " |")
            lines.append("|---|" + "---|" * len(sw))
            for key in ("psnr_input", "ssim_input", "gain"):
                fmt = "{:.3f}" if key == "ssim_input" else "{:.1f}"
                lines.append(
                    f"| {names[key]} | "
                    + " | ".join(fmt.format(v[key]) for v in sw.values())
                    + " |"
                )
            lines.append("")
        goals = result["goals"].get(mode) or {}
        if goals:
            lines.append("Goals: " + ", ".join(f"{k} = {_fmt(v)}" for k, v in goals.items()))
    return "\n".join(lines)


def _fmt(v) -> str:
    if isinstance(v, float):
        return f"{v:.2f}"
    if isinstance(v, dict):
        return "{" + ", ".join(f"{k}: {w}" for k, w in v.items()) + "}"
    return str(v)


# ------------------------------------------------------------------------ figures


def _traced_method(methods) -> str:
    return "deepmag" if "deepmag" in methods else methods[0]


def _centre_pixel(mask: np.ndarray, upper: bool) -> tuple[int, int]:
    """A pixel that is in ``mask`` ``(T, H, W)`` in most frames: the most persistent one
    in the upper third of the region (forehead) or at its top centre (shoulder)."""
    frac = np.asarray(mask, bool).mean(axis=0)
    ys, xs = np.nonzero(frac > 0)
    if len(ys) == 0:
        raise UserError("the source never appears in this clip: no pixel to trace")
    y0, y1 = ys.min(), ys.max()
    band = frac.copy()
    if upper:
        band[int(y0 + (y1 - y0) / 3) :] = 0
    y, x = np.unravel_index(np.argmax(band), band.shape)
    return int(y), int(x)


def figures(
    result: dict, outdir, log: Callable[[str], None] = print, name: str | None = None
) -> list[str]:
    """The paper's figures for ``result`` (from :func:`evaluate`), as small PNGs;
    ``<mode>`` in the file names below is ``name`` when given (``pulse_quick``).

    * ``scanlines_<mode>.png`` (Fig. 5/6): one task-D (pulse) or task-B (respiration)
      clip: a horizontal line through the cheeks (pulse) or a vertical line through
      a shoulder (respiration), over time, for the input, each method and the ideal.
    * ``pixel_traces_<mode>.png`` (Fig. 7): a forehead pixel of a task-B clip in R, G
      and B, input and the traced method (DeepMag) at 0.5, 1, 2, 4 times its step.
    * ``phase_traces_<mode>.png`` (Fig. 8, respiration): the phase at scale r0 of a
      shoulder pixel of a task-C clip per orientation, same multiples.
    * ``step_sweep_<mode>.png`` (Table 2): PSNR and SSIM vs input against the step.

    Needs matplotlib (``pip install rtmag[plot]``).
    """
    import pathlib

    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as exc:
        raise UserError("figures need matplotlib: pip install 'rtmag[plot]'") from exc

    out = pathlib.Path(outdir)
    out.mkdir(parents=True, exist_ok=True)
    s = result["settings"]
    mode = s["mode"]
    spec = mode_spec(mode)
    strengths = {m: v["strength"] for m, v in result["matching"].items()}
    runners = {m: MethodRunner(m, mode, spec.band, s["weights"], s["engine"]) for m in strengths}
    written = []

    def cfg_for(task):
        return clip_configs(mode, task, 1, s["seconds"], s["size"], s["fps"], s["target"])[0]

    # Fig. 5/6: scan lines
    task = "D" if mode == "pulse" else "B"
    clip = render_clip(cfg_for(task))
    outs = {"input": clip.frames}
    outs.update({m: runners[m](clip, strengths[m]) for m in strengths})
    outs["ideal"] = clip.ideal
    if mode == "pulse":
        y, _ = _centre_pixel(clip.source, upper=False)
        lines = {k: v[:, y] for k, v in outs.items()}  # (T, W, 3)
        where = f"row {y} (x across, time down)"
    else:
        x = int(shoulder_columns(clip.source)[0])
        lines = {k: v[:, :, x].transpose(1, 0, 2) for k, v in outs.items()}  # (H, T, 3)
        where = f"column {x} (time across, y down)"
    fig, axes = plt.subplots(len(lines), 1, figsize=(6, 1.3 * len(lines)), squeeze=False)
    for ax, (k, img) in zip(axes[:, 0], lines.items()):
        ax.imshow(img, aspect="auto", interpolation="nearest")
        ax.set_ylabel(k, rotation=0, ha="right", va="center", fontsize=8)
        ax.set_xticks([])
        ax.set_yticks([])
    axes[0, 0].set_title(f"task {task}, scan line at {where} over {s['seconds']:g} s", fontsize=9)
    fig.tight_layout()
    written.append(_save(fig, out / f"scanlines_{name or mode}.png", plt))

    traced = _traced_method(list(strengths))
    run, st = runners[traced], strengths[traced]
    if mode == "pulse":
        # Fig. 7: pixel traces in R, G, B on a task-B clip
        clip = render_clip(cfg_for("B"))
        y, x = _centre_pixel(clip.source, upper=True)
        t = np.arange(len(clip.frames)) / clip.fps
        traces = {"input": clip.frames[:, y, x].astype(float)}
        for k in SWEEP:
            traces[f"{k:g}γ"] = run(clip, k * st)[:, y, x].astype(float)
        fig, axes = plt.subplots(3, 1, figsize=(6, 5), sharex=True)
        for c, (ax, channel) in enumerate(zip(axes, "RGB")):
            for label, tr in traces.items():
                ax.plot(t, tr[:, c], lw=0.8, label=label, color="k" if label == "input" else None)
            ax.set_ylabel(channel)
        axes[0].legend(fontsize=7, ncol=5, loc="upper right")
        axes[0].set_title(f"task B, pixel (x={x}, y={y}), {traced}", fontsize=9)
        axes[-1].set_xlabel("time (s)")
        fig.tight_layout()
        written.append(_save(fig, out / f"pixel_traces_{name or mode}.png", plt))
    else:
        # Fig. 8: phase traces per orientation at a shoulder pixel, task C
        import torch

        from rtmag.representations.phase import choose_r0
        from rtmag.representations.pyramid import build_scale, centre_wavelength

        clip = render_clip(cfg_for("C"))
        cols = shoulder_columns(clip.source)
        x = int(cols[len(cols) // 2])
        y = int(np.argmax(clip.source.mean(axis=0)[:, x] > 0.5))
        r0 = choose_r0(clip.frames.shape[1:3])
        traces = {"input": clip.frames}
        traces.update({f"{k:g}γ": run(clip, k * st) for k in SWEEP})
        t = np.arange(len(clip.frames)) / clip.fps
        fig, axes = plt.subplots(4, 1, figsize=(6, 6), sharex=True)
        for label, fr in traces.items():
            g = torch.from_numpy(fr.astype(np.float32).mean(axis=-1))[:, None]
            band = build_scale(g, r0)  # (T, 4, h, w)
            yy, xx = y >> r0, x >> r0
            c = band[:, :, yy, xx]
            ph = torch.angle(c * c[:1].conj()).numpy()
            for k, ax in enumerate(axes):
                ax.plot(t, ph[:, k], lw=0.8, label=label, color="k" if label == "input" else None)
        for k, ax in enumerate(axes):
            ax.set_ylabel(f"{45 * k}°")
        axes[0].legend(fontsize=7, ncol=5, loc="upper right")
        axes[0].set_title(
            f"task C, phase at scale {r0} (wavelength {centre_wavelength(r0):g} px), "
            f"pixel (x={x}, y={y}), {traced}",
            fontsize=9,
        )
        axes[-1].set_xlabel("time (s)")
        fig.tight_layout()
        written.append(_save(fig, out / f"phase_traces_{name or mode}.png", plt))

    sw = result["step_sweep"].get(mode) or {}
    if sw:
        ks = [float(k) for k in sw]
        fig, ax = plt.subplots(1, 2, figsize=(6, 2.4))
        ax[0].plot(ks, [v["psnr_input"] for v in sw.values()], "o-")
        ax[0].set_ylabel("PSNR vs input (dB)")
        ax[1].plot(ks, [v["ssim_input"] for v in sw.values()], "o-")
        ax[1].set_ylabel("SSIM vs input")
        for a in ax:
            a.set_xscale("log", base=2)
            a.set_xlabel("step (multiple of γ)")
        fig.suptitle(f"{mode}: {traced} step-size sweep, task C (Table 2)", fontsize=9)
        fig.tight_layout()
        written.append(_save(fig, out / f"step_sweep_{name or mode}.png", plt))
    for w in written:
        log(f"wrote {w}")
    return written


def _save(fig, path, plt) -> str:
    """Write ``fig`` as a small PNG: 80 dpi, 256-colour palette (Pillow, matplotlib's
    own dependency)."""
    import io

    from PIL import Image

    buf = io.BytesIO()
    fig.savefig(buf, dpi=80, format="png")
    plt.close(fig)
    buf.seek(0)
    Image.open(buf).convert("RGB").quantize(256).save(path, optimize=True)
    return str(path)
