"""Hand-written kernels for the per-element hot steps, each beside its torch reference.

Installed as ``rtmag.kernels`` (setup.py ``package_dir``). Each kernel module names its
reference; ``tests/test_kernels.py`` holds them equal (on the CPU through Triton's
interpreter, ``TRITON_INTERPRET=1``). Triton is optional: ``pip install rtmag[triton]``.

* :mod:`rtmag.kernels.ascent_step`: the fused L1-normalise + sign-correct + step update
  of Eq. 3, reference :func:`rtmag.ascent.ascent_step`.
* :mod:`rtmag.kernels.biquad`: the causal biquad cascade with per-element state,
  reference :func:`rtmag.filters.sosfilt_step`.

Not yet: the colour reconstruction kernel, and a fused CPU path (no benchmark yet
shows that the per-element steps matter beside the convolutions on a CPU).
"""
