"""The errors minivit raises on bad input.

Every message names what is at fault (the file, the key, the argument) and what
was expected. Callers catch `MinivitError` to handle them all; the command line
prints the message on one line and exits non-zero.
"""


class MinivitError(Exception):
    """Base class of every error minivit raises on purpose."""


class WeightsError(MinivitError):
    """A checkpoint or weights file is unreadable, or does not fit the model."""


class ImageError(MinivitError):
    """An image file is missing, unreadable or refused."""


class InputError(MinivitError, ValueError):
    """An array or argument given to a model or function is not acceptable."""
