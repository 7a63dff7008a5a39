"""Train the pulse or breathing network on synthetic clips (``rtmag train --mode ...``).

**Pulse** (``--mode pulse``):

Data: clips of ``rtmag.synth`` over all four motion tasks, both backgrounds, all six
skin tones, with and without compression, talking and flicker. Each clip is rendered
small (``render_size``, with the noise of a 640x480 camera after downsampling), then
cut into ``crops_per_clip`` views: the whole frame, as the paper, and crops around the
head at random zoom, so that the network sees faces that fill 15% to 90% of the
frame. Each view is area-downsampled to 36x36 and turned into normalised frame
differences X(t) (Eq. 14). The target is y(t) = p(t+1) - p(t), the derivative of the
true pulse, divided by its standard deviation over the clip (DeepPhys's label
normalisation). X is scaled by one global constant (``x_scale``, stored in the
network) so that the network's input has unit variance on the training set.

**Respiration** (``--mode respiration``): clips of the four tasks in breathing mode,
rendered at 320x240 (the pyramid scale r0 = 1, whose band is 120x160: the same band
size as r0 = 2 of a 640x480 camera) and at the representation rate
``RESPIRATION_RATE_HZ`` (7.5 Hz: the ascent runs on every k-th frame of a stream,
DESIGN.md item 5). Each consecutive pair of grey (luma) frames gives the phase
differences at r0 of the four orientations, resampled to 123x123 (Eq. 19,
``rtmag.representations.phase``). The target is the derivative of the true chest
displacement, normalised per clip as for the pulse. Breathing is drawn stronger than
the renderer's default (``breathing_amplitude``) so the network finds the chest.

Validation uses clips of seeds that training never sees (different synthetic
subjects). The score is the Pearson correlation of the network's output with the
true derivative, both band-passed to the mode's band, per clip, per task.
"""

from __future__ import annotations

import dataclasses
import json
import math
import multiprocessing as mp
import pathlib
import time
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from rtmag.errors import UserError

TASKS = ("A", "B", "C", "D")
MODES = ("pulse", "respiration")
VAL_SEED_OFFSET = 1_000_000  # validation subjects' seeds: never used in training
RESPIRATION_RATE_HZ = 7.5
"""Rate of the respiration representation: frame pairs 1/7.5 s apart (k = 4 at 30 fps)."""
BANDS = {"pulse": (0.7, 2.5), "respiration": (0.16, 0.5)}

#: Settings of ``TrainConfig`` that differ for respiration (``TrainConfig.for_mode``).
RESPIRATION_DEFAULTS = {
    "clips": 96,
    "val_clips": 16,
    "seconds": 40.0,
    "fps": RESPIRATION_RATE_HZ,
    "render_size": (320, 240),
    "crops_per_clip": 1,
    "epochs": 6,
    "batch": 64,
    "lr": 3e-4,
    "curriculum_epochs": 1,
    "out": "rtmag/weights/respiration.pt",
}


@dataclass
class TrainConfig:
    """Settings of a training run.

    Attributes:
        mode: "pulse" or "respiration" (use :meth:`for_mode` for a mode's defaults).
        clips: number of training clips (each ``seconds`` long).
        val_clips: number of held-out validation clips (a multiple of 4 covers A-D).
        seconds, fps: clip length in seconds and frame rate.
        render_size: (W, H) the clips are rendered at before cropping.
        crops_per_clip: views per clip (whole frame + head crops at random zoom).
        epochs: passes over the training set.
        batch: minibatch size.
        lr: peak learning rate of AdamW (warm-up for one epoch, then cosine decay).
        weight_decay: AdamW weight decay.
        curriculum_epochs: first epochs train on easy clips only: still or slow (tasks
            A, B) with a strong pulse (relative amplitude >= 0.01).
        max_minutes: stop training after this long (data generation not counted).
        seed: base seed of clips and initialisation.
        workers: processes rendering clips.
        pulse_amplitude: (lo, hi) relative pulse amplitude of training clips, drawn
            log-uniformly (stronger than the renderer's default 0.003-0.012, so that
            the network finds the skin; validation keeps the default); None: default.
        breathing_amplitude: (lo, hi) peak chest displacement in pixels at 480 rows
            for respiration training clips, drawn log-uniformly (renderer default
            0.6-2.5; validation keeps the default).
        init: a weight file of the same mode to start from (fine-tuning) instead of a
            random network. Its input scale ``x_scale`` is kept, it is scored on the
            validation clips before the first epoch, and a weight file is written
            only when an epoch beats that score. The file's calibration is not
            carried over: calibrate the result (``rtmag quality --calibrate``).
        out: where the weight file goes.
    """

    mode: str = "pulse"
    clips: int = 96
    val_clips: int = 16
    seconds: float = 20.0
    fps: float = 30.0
    render_size: tuple[int, int] = (160, 120)
    crops_per_clip: int = 2
    epochs: int = 20
    batch: int = 256
    lr: float = 5e-4
    weight_decay: float = 1e-4
    curriculum_epochs: int = 2
    max_minutes: float | None = None
    seed: int = 0
    workers: int = 2
    pulse_amplitude: tuple[float, float] | None = (0.004, 0.04)
    breathing_amplitude: tuple[float, float] | None = (1.0, 5.0)
    init: str | None = None
    out: str = "rtmag/weights/pulse.pt"

    @classmethod
    def for_mode(cls, mode: str, **overrides) -> TrainConfig:
        """The defaults of ``mode`` (respiration: ``RESPIRATION_DEFAULTS``), then
        ``overrides`` (fields left ``None`` keep the mode's default)."""
        base = dict(RESPIRATION_DEFAULTS) if mode == "respiration" else {}
        base.update({k: v for k, v in overrides.items() if v is not None})
        return cls(mode=mode, **base)

    def __post_init__(self):
        if self.mode not in MODES:
            raise UserError(
                f"unknown training mode {self.mode!r}; choose one of {', '.join(MODES)}"
            )
        for name in ("clips", "val_clips", "epochs", "batch", "crops_per_clip", "workers"):
            if int(getattr(self, name)) < 1:
                raise UserError(f"{name} must be >= 1 (got {getattr(self, name)})")
        if not 0 < self.lr < 1:
            raise UserError(f"lr must be in (0, 1) (got {self.lr})")
        if self.seconds * self.fps < 64:
            raise UserError("clips need at least 64 frames (seconds * fps)")
        if int(self.curriculum_epochs) < 0:
            raise UserError(f"curriculum_epochs must be >= 0 (got {self.curriculum_epochs})")
        for name in ("pulse_amplitude", "breathing_amplitude"):
            rng = getattr(self, name)
            if rng is not None and not (len(rng) == 2 and 0 < rng[0] <= rng[1]):
                raise UserError(f"{name} must be (lo, hi) with 0 < lo <= hi (got {rng})")


def clip_config(
    index: int,
    base_seed: int,
    seconds: float,
    fps: float,
    size,
    val: bool,
    amplitude=None,
    mode: str = "pulse",
):
    """The synthetic clip number ``index`` of a dataset: tasks, tones and options cycle
    so that every combination is covered; seeds of validation clips are disjoint.

    ``amplitude`` (lo, hi): draw the source's amplitude (pulse: relative reflectance;
    respiration: chest pixels at 480 rows) log-uniformly from this range instead of
    the renderer's default (validation clips keep the default)."""
    from rtmag.synth import SynthConfig

    seed = base_seed + index + (VAL_SEED_OFFSET if val else 0)
    rng = np.random.default_rng(seed)
    task = TASKS[index % 4]
    amp = None
    if amplitude is not None and not val:
        amp = float(np.exp(rng.uniform(np.log(amplitude[0]), np.log(amplitude[1]))))
    key = "pulse_amplitude" if mode == "pulse" else "breathing_amplitude_px"
    return SynthConfig(
        **{key: amp},
        task=task,
        mode=mode,
        seconds=seconds,
        fps=fps,
        size=tuple(size),
        seed=seed,
        skin_tone=int(1 + (index // 4) % 6),
        background=str(rng.choice(["patterned", "plain"])),
        talking=bool(rng.random() < 0.25),
        flicker=bool(rng.random() < 0.15),
        glasses=bool(rng.random() < 0.2),
        compress=None if rng.random() < 0.5 else int(rng.integers(16, 28)),
        sensor_noise=float(rng.uniform(1.0, 3.0)),
    )


def _crop_boxes(head_mask: np.ndarray, n: int, rng: np.random.Generator, w: int, h: int):
    """``n`` crop boxes (x0, y0, x1, y1): the whole frame, then boxes around the head."""
    boxes = [(0, 0, w, h)]
    ys, xs = np.nonzero(head_mask)
    cx, cy = (xs.mean(), ys.mean()) if len(xs) else (w / 2, h / 2)
    for _ in range(n - 1):
        zoom = rng.uniform(1.3, 2.6)
        cw, ch = int(round(w / zoom)), int(round(h / zoom))
        x0 = int(np.clip(cx - cw / 2 + rng.normal(0, 0.08 * cw), 0, w - cw))
        y0 = int(np.clip(cy - ch / 2 + rng.normal(0, 0.08 * ch), 0, h - ch))
        boxes.append((x0, y0, x0 + cw, y0 + ch))
    return boxes


def clip_examples(cfg, crops: int):
    """Render one clip and return its training examples.

    Returns:
        list of ``(x, y)`` per view: ``x`` (T-1, 3, 36, 36) float32 normalised frame
        differences, ``y`` (T-1,) float32 normalised pulse derivative.
    """
    from rtmag.representations.colour import downsample, x_from_sequence
    from rtmag.synth import render

    clip = render(cfg)
    pulse = np.asarray(clip.truth["pulse"], dtype=np.float64)
    dy = np.diff(pulse)
    dy = (dy - dy.mean()) / (dy.std() + 1e-12)
    rng = np.random.default_rng(cfg.seed + 7)
    h, w = clip.frames.shape[1:3]
    out = []
    for x0, y0, x1, y1 in _crop_boxes(clip.truth["head_mask"][0], crops, rng, w, h):
        low = downsample(np.ascontiguousarray(clip.frames[:, y0:y1, x0:x1]))
        x = x_from_sequence(low).transpose(0, 3, 1, 2).astype(np.float32)
        out.append((np.ascontiguousarray(x), dy.astype(np.float32)))
    return out


def respiration_examples(cfg):
    """Render one breathing clip and return its one view ``[(x, y)]``: ``x``
    ``(T-1, 4, 123, 123)`` float16 phase differences (Eq. 19), ``y`` ``(T-1,)``
    float32 normalised chest-displacement derivative."""
    from rtmag.motion import luma
    from rtmag.representations.phase import phase_representation
    from rtmag.synth import render

    clip = render(cfg)
    resp = np.asarray(clip.truth["respiration"], dtype=np.float64)
    dy = np.diff(resp)
    dy = (dy - dy.mean()) / (dy.std() + 1e-12)
    with torch.inference_mode():
        x = phase_representation(luma(clip.frames)).numpy().astype(np.float16)
    return [(np.ascontiguousarray(x), dy.astype(np.float32))]


def _render_job(args):
    index, base_seed, seconds, fps, size, val, crops, amplitude, mode = args
    torch.set_num_threads(1)
    cfg = clip_config(index, base_seed, seconds, fps, size, val, amplitude, mode)
    from rtmag.synth.config import resolve_config

    r = resolve_config(cfg)
    if mode == "pulse":
        easy = cfg.task in ("A", "B") and r.pulse_amplitude >= 0.01
        return index, cfg.task, easy, clip_examples(cfg, 1 if val else crops)
    easy = cfg.task in ("A", "B") and r.breathing_amplitude_px >= 1.5
    return index, cfg.task, easy, respiration_examples(cfg)


def build_dataset(cfg: TrainConfig, val: bool, progress=None):
    """Render the training (or validation) clips.

    Returns:
        lists per view: ``x`` (T-1, 3, 36, 36), ``y`` (T-1,), task letter, and whether
        the clip is easy (curriculum).
    """
    n = cfg.val_clips if val else cfg.clips
    jobs = [
        (
            i,
            cfg.seed,
            cfg.seconds,
            cfg.fps,
            cfg.render_size,
            val,
            cfg.crops_per_clip,
            cfg.pulse_amplitude if cfg.mode == "pulse" else cfg.breathing_amplitude,
            cfg.mode,
        )
        for i in range(n)
    ]
    xs, ys, tasks, easy = [], [], [], []
    ctx = mp.get_context("spawn")
    with ctx.Pool(cfg.workers) as pool:
        for _index, task, is_easy, views in pool.imap_unordered(_render_job, jobs):
            for x, y in views:
                xs.append(x)
                ys.append(y)
                tasks.append(task)
                easy.append(is_easy)
            if progress is not None:
                progress.update(1)
    return xs, ys, tasks, easy


def bandpassed_correlation(
    pred: np.ndarray, target: np.ndarray, fps: float, band=(0.7, 2.5)
) -> float:
    """Pearson correlation of two signals after the zero-phase pulse band-pass."""
    from rtmag.filters import design_bandpass, zero_phase

    sos = design_bandpass(band[0], band[1], fps)
    a = zero_phase(sos, np.asarray(pred, np.float64))
    b = zero_phase(sos, np.asarray(target, np.float64))
    a, b = a - a.mean(), b - b.mean()
    den = math.sqrt(float((a * a).sum() * (b * b).sum()))
    return float((a * b).sum() / den) if den > 0 else 0.0


def evaluate_net(net: nn.Module, xs, ys, tasks, fps: float, band=(0.7, 2.5)) -> dict:
    """Band-passed correlation per validation clip, averaged per task and overall."""
    net.eval()
    per_task: dict[str, list[float]] = {t: [] for t in TASKS}
    with torch.inference_mode():
        for x, y, task in zip(xs, ys, tasks):
            pred = torch.cat(
                [net(torch.from_numpy(x[i : i + 128]).float()) for i in range(0, len(x), 128)]
            ).numpy()
            per_task[task].append(bandpassed_correlation(pred, y, fps, band))
    res = {t: float(np.mean(v)) for t, v in per_task.items() if v}
    res["all"] = float(np.mean([c for v in per_task.values() for c in v]))
    return res


def draw_curve(history: list[dict], path: pathlib.Path) -> None:
    """Loss curve (train loss, validation correlation per epoch) as a PNG, with OpenCV."""
    import cv2

    w, h, m = 720, 360, 50
    img = np.full((h, w, 3), 255, np.uint8)
    cv2.rectangle(img, (m, m // 2), (w - m, h - m), (0, 0, 0), 1)
    n = max(len(history), 2)

    def pts(values, lo, hi, first=0):
        return np.array(
            [
                (
                    m + (first + i) * (w - 2 * m) / (n - 1),
                    h - m - (v - lo) / max(hi - lo, 1e-9) * (h - 1.5 * m),
                )
                for i, v in enumerate(values)
            ],
            np.int32,
        )

    # a fine-tuning run's epoch 0 (the starting weights) has a score but no loss
    first = int(bool(history) and history[0]["train_loss"] is None)
    loss = [r["train_loss"] for r in history[first:]]
    corr = [r["val"]["all"] for r in history]
    if loss:
        cv2.polylines(img, [pts(loss, 0, max(loss), first)], False, (200, 0, 0), 2)
        cv2.polylines(img, [pts(corr, 0, 1)], False, (0, 140, 0), 2)
    cv2.putText(
        img, "train loss (red, 0..max)", (m, 18), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (200, 0, 0), 1
    )
    cv2.putText(
        img,
        "val band-passed corr (green, 0..1)",
        (m + 250, 18),
        cv2.FONT_HERSHEY_SIMPLEX,
        0.5,
        (0, 140, 0),
        1,
    )
    cv2.putText(
        img, f"epochs: {len(history)}", (m, h - 15), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 0, 0), 1
    )
    cv2.imwrite(str(path), img[:, :, ::-1])


def train(cfg: TrainConfig, log=print) -> tuple[nn.Module, list[dict]]:
    """Run a whole training; writes the weight file, a JSON history and a loss curve.

    Returns:
        (best network by validation correlation, history of epochs).
    """
    from tqdm import tqdm

    from rtmag.nets import create_net

    torch.manual_seed(cfg.seed)
    # a wrong starting file fails here, before minutes of rendering
    net, parent = _start_from(cfg, log) if cfg.init is not None else (None, None)
    t0 = time.time()
    with tqdm(total=cfg.clips + cfg.val_clips, desc="rendering clips", unit="clip") as bar:
        xs, ys, tasks, easy_clip = build_dataset(cfg, val=False, progress=bar)
        vxs, vys, vtasks, _ = build_dataset(cfg, val=True, progress=bar)
    t_data = time.time() - t0
    x_all = np.concatenate(xs)
    y_all = np.concatenate(ys)
    easy_all = np.concatenate([np.full(len(y), e) for y, e in zip(ys, easy_clip)])
    x_std = float(np.sqrt(np.mean([np.mean(np.square(x, dtype=np.float64)) for x in xs])))
    log(
        f"data: {len(x_all)} training pairs, {sum(map(len, vys))} validation pairs, "
        f"X std {x_std:.3g}, rendered in {t_data:.0f} s"
    )
    band = BANDS[cfg.mode]
    if parent is not None:
        x_std = 1.0 / float(net.x_scale)  # keep the input scale the network learned
    else:
        net = create_net(cfg.mode, x_scale=1.0 / x_std)
    opt = torch.optim.AdamW(net.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    x_t = torch.from_numpy(x_all)
    y_t = torch.from_numpy(y_all)
    easy = torch.from_numpy(easy_all)
    steps_per_epoch = math.ceil(len(x_all) / cfg.batch)
    total = steps_per_epoch * cfg.epochs

    def lr_at(step):
        if step < steps_per_epoch:
            return cfg.lr * (step + 1) / steps_per_epoch
        p = (step - steps_per_epoch) / max(1, total - steps_per_epoch)
        return cfg.lr * (0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * p)))

    history: list[dict] = []
    best, best_state = -2.0, None
    if parent is not None:
        val = evaluate_net(net, vxs, vys, vtasks, cfg.fps, band)
        history.append({"epoch": 0, "train_loss": None, "val": val, "minutes": 0.0})
        log("starting weights: val corr " + "  ".join(f"{k} {v:.3f}" for k, v in val.items()))
        best = val["all"]
        best_state = {k: v.detach().clone() for k, v in net.state_dict().items()}
    step = 0
    t_train = time.time()
    for epoch in range(cfg.epochs):
        net.train()
        pool = torch.nonzero(easy).flatten() if epoch < cfg.curriculum_epochs else None
        order = pool[torch.randperm(len(pool))] if pool is not None else torch.randperm(len(x_all))
        losses = []
        bar = tqdm(
            range(0, len(order), cfg.batch), desc=f"epoch {epoch + 1}/{cfg.epochs}", leave=False
        )
        for i in bar:
            if cfg.max_minutes is not None and (time.time() - t_train) / 60 > cfg.max_minutes:
                break  # out of time: validate and keep what this epoch learned
            idx = order[i : i + cfg.batch]
            for g in opt.param_groups:
                g["lr"] = lr_at(step)
            loss = nn.functional.mse_loss(net(x_t[idx].float()), y_t[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            nn.utils.clip_grad_norm_(net.parameters(), 5.0)
            opt.step()
            losses.append(loss.item())
            step += 1
            if len(losses) % 20 == 0:
                bar.set_postfix(loss=f"{np.mean(losses[-20:]):.3f}")
        val = evaluate_net(net, vxs, vys, vtasks, cfg.fps, band)
        rec = {
            "epoch": epoch + 1,
            "train_loss": float(np.mean(losses)),
            "val": val,
            "minutes": (time.time() - t_train) / 60,
        }
        history.append(rec)
        log(
            f"epoch {epoch + 1}: loss {rec['train_loss']:.4f}  val corr "
            + "  ".join(f"{k} {v:.3f}" for k, v in val.items())
        )
        if val["all"] > best:
            best = val["all"]
            best_state = {k: v.detach().clone() for k, v in net.state_dict().items()}
            # written after every improving epoch: an interrupted run keeps its best
            _write_result(cfg, net, best_state, history, x_std, band, t_train, t_data, parent)
        if cfg.max_minutes is not None and rec["minutes"] > cfg.max_minutes:
            log(f"stopping: {cfg.max_minutes} minutes of training reached")
            break
    net.load_state_dict(best_state)
    net.eval()
    if not any(r["val"]["all"] > history[0]["val"]["all"] for r in history[1:]) and parent:
        log(
            f"no epoch beat the starting weights {cfg.init} (validation correlation"
            f" {best:.3f}); nothing written: try a lower --lr or more clips"
        )
    else:
        log(f"wrote {cfg.out} (best validation correlation {best:.3f})")
    return net, history


def _start_from(cfg: TrainConfig, log) -> tuple[nn.Module, dict]:
    """Load ``cfg.init`` for fine-tuning: ``(network in training mode, parent record)``.
    The parent record (file, its SHA-256, its recipe and validation) goes into the new
    file's recipe so that the result can be rebuilt."""
    import hashlib

    from rtmag.nets import load_weights

    net, meta = load_weights(cfg.init, cfg.mode)
    for prm in net.parameters():
        prm.requires_grad_(True)
    net.train()
    digest = hashlib.sha256(pathlib.Path(cfg.init).read_bytes()).hexdigest()
    log(f"starting from {cfg.init} (sha256 {digest[:12]})")
    return net, {
        "path": str(cfg.init),
        "sha256": digest,
        "recipe": meta.get("recipe"),
        "validation": meta.get("validation"),
        "calibration": meta.get("calibration"),  # not carried over
    }


def _write_result(cfg, net, best_state, history, x_std, band, t_train, t_data, parent=None):
    """Write the weight file (best state so far), its history JSON and loss curve."""
    from rtmag import __version__
    from rtmag.nets import create_net, save_weights

    out = pathlib.Path(cfg.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    best_net = create_net(cfg.mode, x_scale=1.0 / x_std)
    best_net.load_state_dict(best_state)
    best_net.eval()
    if cfg.mode == "pulse":
        rep = {"kind": "normalized_difference", "size": 36, "downsample": "area", "channels": "RGB"}
    else:
        rep = {
            "kind": "phase_difference",
            "size": 123,
            "orientations": 4,
            "r0": "choose_r0 (band short side nearest 123)",
            "fit": "resize",
            "channels": "luma",
            "pair_rate_hz": cfg.fps,
        }
    meta = {
        "rtmag_version": __version__,
        "representation": rep,
        "normalisation": {"x_scale": 1.0 / x_std, "y": f"{cfg.mode} derivative / its clip std"},
        "band_hz": list(band),
        "fps": cfg.fps,
        "recipe": {
            **dataclasses.asdict(cfg),
            "render_size": list(cfg.render_size),
            "net": type(net).__name__,
            "optimizer": "AdamW",
            "loss": "MSE",
            "schedule": "warm-up + cosine",
            "init": parent,
        },
        "seed": cfg.seed,
        "validation": history[int(np.argmax([r["val"]["all"] for r in history]))],
        "training_minutes": (time.time() - t_train) / 60,
        "data_minutes": t_data / 60,
    }
    save_weights(out, best_net, meta)
    (out.with_suffix(".history.json")).write_text(json.dumps(history, indent=1))
    draw_curve(history, out.with_suffix(".loss.png"))
