"""``rtmag contact-sheet``: a picture of the synthetic tasks A-D and the six skin tones."""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from rtmag.errors import UserError

#: Times (s) shown for each task: they span a sweep of B and several D targets.
TIMES = (0.0, 1.6, 3.2, 4.8, 6.4)


def contact_sheet(tile: tuple[int, int] = (152, 114), seed: int = 3) -> np.ndarray:
    """Render the contact sheet as an (H, W, 3) uint8 RGB image.

    Rows: tasks A-D at :data:`TIMES` (yaw and target in each label), then one frame per
    Fitzpatrick skin tone 1-6.
    """
    import cv2

    from rtmag.synth import Renderer, SynthConfig

    def label(img: np.ndarray, text: str) -> np.ndarray:
        img = img.copy()
        cv2.putText(img, text, (4, 14), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (0, 0, 0), 3, cv2.LINE_AA)
        cv2.putText(
            img, text, (4, 14), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (255, 255, 255), 1, cv2.LINE_AA
        )
        return img

    fps = 10.0
    rows = []
    for i, task in enumerate("ABCD"):
        cfg = SynthConfig(
            task=task,
            seconds=max(TIMES) + 0.2,
            fps=fps,
            size=tile,
            seed=seed + i,
            glasses=(task == "C"),
            talking=(task == "D"),
        )
        r = Renderer(cfg)
        want = {int(round(t * fps)) for t in TIMES}
        tiles = []
        for k in range(r.n_frames):
            lay = r.layers(k)
            if k in want:
                yaw = lay.truth["yaw_deg"]
                tiles.append(label(lay.frame, f"{task} t={k / fps:.1f}s yaw={yaw:+.0f}"))
        rows.append(np.hstack(tiles))
    tone_tiles = []
    for tone in range(1, 7):
        cfg = SynthConfig(
            task="A", seconds=0.2, fps=fps, size=tile, seed=seed + 10 + tone, skin_tone=tone
        )
        lay = Renderer(cfg).layers(0)
        tone_tiles.append(label(lay.frame, f"skin tone {tone}"))
    width = rows[0].shape[1]
    tones = np.hstack(tone_tiles)
    scale = width / tones.shape[1]
    tones = cv2.resize(
        tones, (width, int(round(tones.shape[0] * scale))), interpolation=cv2.INTER_AREA
    )
    return np.vstack(rows + [tones])


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", default="docs/contact_sheet.png", help="PNG to write")
    parser.add_argument("--seed", type=int, default=3, help="random seed (3)")
    parser.add_argument("--tile", default="152x114", help="tile size WIDTHxHEIGHT (152x114)")


def run(args: argparse.Namespace) -> int:
    import cv2

    from rtmag.commands.synth import parse_size

    out = Path(args.out)
    if out.suffix.lower() != ".png":
        raise UserError(f"--out {out}: the contact sheet is written as PNG; use a .png name")
    img = contact_sheet(parse_size(args.tile), args.seed)
    out.parent.mkdir(parents=True, exist_ok=True)
    if not cv2.imwrite(
        str(out), cv2.cvtColor(img, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_PNG_COMPRESSION, 9]
    ):
        raise UserError(f"could not write {out}")
    print(f"wrote {out} ({img.shape[1]}x{img.shape[0]})")
    return 0
