"""What a model setting may hold: each kind reads command-line text and checks a value, in one wording.

A config field declares its kind and help once, with :func:`setting`; the config checks every value
where it is made (Python, JSON or the command line), and the ``train`` command derives its options
from the same fields. A bad value raises :class:`SettingError`, a ``ValueError`` that names the field.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable
from dataclasses import MISSING, dataclass, field
from typing import Any

YES = {"yes": True, "no": False, "1": True, "0": False, "true": True, "false": False}


class SettingError(ValueError):
    """A setting out of its kind: ``setting`` names the field, ``value`` and ``problem`` what is wrong."""

    def __init__(self, family: str, setting: str, value: Any, problem: str) -> None:
        super().__init__(f"{family} config {setting} = {value!r}: {problem}")
        self.setting, self.value, self.problem = setting, value, problem


@dataclass(frozen=True)
class Kind:
    """The values a setting may hold (``valid``), said as ``expected``; ``parse`` reads command-line text."""

    expected: str
    valid: Callable[[Any], bool]
    parse: Callable[[str], Any] = str

    def problem(self, value: Any) -> str | None:
        return None if self.valid(value) else f"expected {self.expected}"

    def read(self, text: str) -> Any:
        """The value that command-line ``text`` gives, or ``ValueError`` saying what was expected."""
        try:
            value = self.parse(text)
        except ValueError:
            raise ValueError(f"expected {self.expected}, got {text!r}") from None
        if not self.valid(value):
            raise ValueError(f"expected {self.expected}, got {text}")
        return value


def setting(default: Any, kind: Kind, help: str | None = None) -> Any:  # noqa: A002  (argparse's word)
    """A config field of ``kind``; with ``help`` it is also a ``train`` option of the same name."""
    factory = (lambda: list(default)) if isinstance(default, list) else MISSING
    value = MISSING if factory is not MISSING else default
    return field(default=value, default_factory=factory, metadata={"kind": kind, "help": help})


def plain(value: Any) -> Any:
    """NumPy scalars as the Python numbers they hold (a config round-trips through JSON)."""
    if isinstance(value, numbers.Integral) and not isinstance(value, (bool, int)):
        return int(value)
    if isinstance(value, numbers.Real) and not isinstance(value, (bool, int, float)):
        return float(value)
    return value


# -- the kinds -----------------------------------------------------------------------------------


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_real(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _ints(text: str) -> list[int]:
    return [int(s) for s in text.split(",") if s.strip()]


def _words(text: str) -> bool | list[bool]:
    flags = [YES[w.strip().lower()] if w.strip().lower() in YES else None for w in text.split(",")]
    if None in flags:
        raise ValueError(text)
    return flags[0] if len(flags) == 1 else flags


def _yes_no(text: str) -> bool:
    if text.strip().lower() not in YES:
        raise ValueError(text)
    return YES[text.strip().lower()]


def _pair(text: str) -> tuple[float, ...]:
    pair = tuple(float(b) for b in text.split(","))
    if len(pair) != 2:
        raise ValueError(text)
    return pair


COUNT = Kind("a positive integer", lambda v: _is_int(v) and v >= 1, int)
CLASS_COUNT = Kind("a class count >= 0 (0 = unconditional)", lambda v: _is_int(v) and v >= 0, int)
SIZES = Kind("comma-separated positive layer sizes like 256,512",
             lambda v: isinstance(v, list) and all(_is_int(s) and s >= 1 for s in v), _ints)
FLAGS = Kind("yes/no, or one yes/no per hidden layer like no,yes,yes",
             lambda v: isinstance(v, bool) or (isinstance(v, list) and all(isinstance(f, bool) for f in v)), _words)
YES_NO = Kind("yes or no", lambda v: isinstance(v, bool), _yes_no)
POSITIVE = Kind("a positive number", lambda v: _is_real(v) and v > 0, float)
NON_NEGATIVE = Kind("a number >= 0", lambda v: _is_real(v) and v >= 0, float)
PROBABILITY = Kind("a number in [0, 1)", lambda v: _is_real(v) and 0 <= v < 1, float)
FRACTION = Kind("a number in [0, 1]", lambda v: _is_real(v) and 0 <= v <= 1, float)
MOMENTUM = Kind("a number in (0, 1]", lambda v: _is_real(v) and 0 < v <= 1, float)
LABEL = Kind("a number in (0.5, 1]", lambda v: _is_real(v) and 0.5 < v <= 1, float)
BETAS = Kind("two numbers in [0, 1) like 0.5,0.999",
             lambda v: isinstance(v, tuple) and len(v) == 2 and all(_is_real(b) and 0 <= b < 1 for b in v), _pair)
SHAPE = Kind("a non-empty tuple of positive sizes",
             lambda v: isinstance(v, tuple) and len(v) >= 1 and all(_is_int(s) and s >= 1 for s in v))
ANY = Kind("anything", lambda v: True)


def one_of(choices: tuple) -> Kind:
    """One of ``choices``; on the command line, one of those that are text."""

    def parse(text: str) -> str:
        if text not in choices:
            raise ValueError(text)
        return text

    return Kind(f"one of {', '.join(map(str, choices))}", lambda v: v in choices, parse)
