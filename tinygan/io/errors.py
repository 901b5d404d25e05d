"""The error types tinygan raises for bad input or a failed run, in one place.

Each message is one line that names what was wrong (the file, the array, the step), so the
command line can print it as is. This module imports nothing from tinygan, so any module
can raise these errors without pulling in others.
"""

from __future__ import annotations


def printable(text: str) -> str:
    r"""``text`` with every character that would act on a terminal instead of showing (a control or
    formatting character, a lone surrogate) written as its escape: a NUL byte as the four characters ``\x00``."""
    return "".join(ch if ch.isprintable() else ch.encode("unicode_escape", "backslashreplace").decode("ascii")
                   for ch in text)


class _Printable:
    """An error whose message is one printable line: line breaks and control characters in text it quotes
    (a file's, a user's) are shown escaped, never acted on by a terminal."""

    def __init__(self, message: object = "") -> None:
        super().__init__(printable(str(message)))


class DataError(_Printable, ValueError):
    """A dataset could not be found, loaded or validated (message is one explanatory line)."""


class CheckpointError(_Printable, ValueError):
    """A checkpoint file that cannot be read or does not fit: the message names the file.

    The message is one line: line breaks in text quoted from the file are shown escaped.
    """


class DivergenceError(RuntimeError):
    """Training produced a non-finite loss or parameter; the message names the step and the quantity."""


class UsageError(_Printable, ValueError):
    """An option or setting that cannot be used; the message names the option."""


class MemoryRequestError(_Printable, ValueError, MemoryError):
    """A size asked for (a model's widths, a class count, a batch, a sample count) that would take more memory
    than the process can have, refused before anything is allocated; the message names the request.

    A ``ValueError`` for the Python API, where sizes are values like any other, and a ``MemoryError``.
    """
