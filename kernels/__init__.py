"""Hand-written kernels for the per-element hot steps, each beside its torch reference.

Installed as ``rtmag.kernels`` (setup.py ``package_dir``). Each kernel module names its
reference; ``tests/test_kernels.py`` holds them equal (on the CPU through Triton's
interpreter, ``TRITON_INTERPRET=1``). Triton is optional: ``pip install rtmag[triton]``.

* :mod:`rtmag.kernels.ascent_step`: the fused L1-normalise + sign-correct + step update
  of Eq. 3, reference :func:`rtmag.ascent.ascent_step`.
"""
