"""Synthetic physiology videos with ground truth (training data and tests).

A person (ray-cast ellipsoid head with face features, neck, shoulders in clothing)
in front of a patterned or plain background, with a pulse in the skin colour
(paper Eq. 9, along u_p = 0.33 : 0.77 : 0.53) and breathing motion of the chest,
performing one of the paper's motion tasks A-D. Each clip comes with an *ideal*
output in which the chosen source is magnified by ``alpha`` and nothing else
changes, the same sensor noise included.

>>> from rtmag.synth import SynthConfig, render
>>> clip = render(SynthConfig(task="B", seconds=2, size=(144, 144), alpha=10, seed=1))
>>> clip.frames.shape, clip.frames.dtype
((60, 144, 144, 3), dtype('uint8'))
"""

from rtmag.synth.config import SynthConfig, resolve_config
from rtmag.synth.io import ClipWriter, read_clip, write_clip
from rtmag.synth.render import (
    FrameLayers,
    Renderer,
    SynthClip,
    clip_meta,
    iter_render,
    render,
)
from rtmag.synth.signals import Signals, make_signals

__all__ = [
    "ClipWriter",
    "FrameLayers",
    "Renderer",
    "Signals",
    "SynthClip",
    "SynthConfig",
    "clip_meta",
    "iter_render",
    "make_signals",
    "read_clip",
    "render",
    "resolve_config",
    "write_clip",
]
