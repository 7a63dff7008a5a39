"""Exceptions that rtmag raises for bad input.

Every message says what was wrong and what to do. The CLI prints a ``UserError``
without a traceback and exits with status 2.
"""


class RtmagError(Exception):
    """Base class of rtmag's own errors."""


class UserError(RtmagError):
    """The user's input cannot be used (file, option, frame, camera, weights)."""


class VideoError(UserError):
    """A video file cannot be read or written."""


class WeightsError(UserError):
    """A network weight file is missing, corrupt or does not match."""


class FrameError(UserError, ValueError):
    """A frame pushed into rtmag has the wrong type, shape, size or order."""
