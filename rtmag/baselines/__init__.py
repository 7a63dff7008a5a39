"""Frequency-based baseline magnifiers, chosen by name (``rtmag magnify --method``).

>>> from rtmag.baselines import create_method
>>> evm = create_method("evm", fps=30.0, band=(0.7, 2.5), alpha=20.0)
>>> out = evm(frames)  # (T, H, W, 3) uint8 -> (T, H, W, 3) uint8

Registered: ``evm`` (Wu et al. 2012, colour), ``vam`` (Zhang et al. 2017, colour),
``phase`` (Wadhwa et al. 2013, motion), ``vam-motion`` (Zhang et al. 2017 on the
steerable pyramid's phase, motion).
"""

from rtmag.baselines import evm as _evm  # noqa: F401  (registers "evm")
from rtmag.baselines import phase as _phase  # noqa: F401  (registers "phase")
from rtmag.baselines import vam as _vam  # noqa: F401  (registers "vam", "vam-motion")
from rtmag.baselines._registry import create_method, list_methods, register_method
from rtmag.baselines.colour import ColourMagnifier, gaussian_stack, render_colour
from rtmag.baselines.evm import EVMColour, evm_colour, ideal_bandpass
from rtmag.baselines.phase import PhaseMagnifier, phase_magnify
from rtmag.baselines.vam import VAMColour, VAMPhase, dog_kernel, dog_response, vam_colour

__all__ = [
    "register_method",
    "create_method",
    "list_methods",
    "ColourMagnifier",
    "gaussian_stack",
    "render_colour",
    "EVMColour",
    "evm_colour",
    "ideal_bandpass",
    "VAMColour",
    "dog_kernel",
    "dog_response",
    "vam_colour",
    "PhaseMagnifier",
    "phase_magnify",
    "VAMPhase",
]
