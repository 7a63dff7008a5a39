"""Motion representations: frames -> X and the inverse, X -> magnified frames.

* :mod:`rtmag.representations.colour` — pulse mode: normalised difference of
  area-downsampled RGB frames (paper Eq. 14) and its log-domain inverse
  (Eq. 15-17, rebuilt as DESIGN.md "Filter the integral, not the derivative").
"""
