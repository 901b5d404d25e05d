"""The error types tinygan raises for bad input or a failed run, in one place.

Each message is one line that names what was wrong (the file, the array, the step), so the
command line can print it as is. This module imports nothing from tinygan, so any module
can raise these errors without pulling in others.
"""

from __future__ import annotations


class DataError(ValueError):
    """A dataset could not be found, loaded or validated (message is one explanatory line)."""


class CheckpointError(ValueError):
    """A checkpoint file that cannot be read or does not fit: the message names the file.

    The message is one line: line breaks in text quoted from the file are shown escaped.
    """

    def __init__(self, message: str) -> None:
        super().__init__(message.replace("\r", "\\r").replace("\n", "\\n"))


class DivergenceError(RuntimeError):
    """Training produced a non-finite loss or parameter; the message names the step and the quantity."""


class UsageError(ValueError):
    """An option or setting that cannot be used; the message names the option."""


class MemoryRequestError(ValueError, MemoryError):
    """A size asked for (a model's widths, a class count, a batch, a sample count) that would take more memory
    than the process can have, refused before anything is allocated; the message names the request.

    A ``ValueError`` for the Python API, where sizes are values like any other, and a ``MemoryError``.
    """
