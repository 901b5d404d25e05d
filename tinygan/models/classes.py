"""Classes by name: what a class-conditional model calls its classes, and how a request for some is read.

A conditional model learns K classes, numbered 0..K−1 as in its training labels, each with a name:
Fashion-MNIST's ``Sneaker``, a digit's ``7``, the ``names`` of a user's data file, or ``"0"``…``"K−1"``
when none are given. A request names classes case-insensitively by name or by number, one or several
separated by commas: ``sneaker``, ``7``, ``3,5``. Names are matched first, so a user's class named
``"3"`` is that class, whatever its number; when every name is a number (a data file's labels kept as
names, ``3``, ``7``, ``100``), a request's number means only the class of that name. In Python an
integer is a class number ``0..K−1``, as ``fit``'s labels are.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence
from typing import Any

import numpy as np

UNPRINTABLE = ("Cc", "Cf", "Cs")  # Unicode categories refused in a name: control, format, surrogate
SHOWN_NAMES = 20  # names listed in an error message; the rest are counted


def default_names(n_classes: int) -> list[str]:
    """``"0"``, ``"1"``, … ``"K−1"``: the names of classes that were given none."""
    return [str(i) for i in range(n_classes)]


def names_problem(names: Any, n_classes: int | None = None) -> str:
    """What is wrong with ``names`` as the names of ``n_classes`` classes (any count if ``None``), or ``""``.

    Names are non-empty strings without commas (a request separates classes by commas) or control
    characters (a name is printed in messages), distinct when compared case-insensitively, and there
    is one per class. Linear in the number of names; a name quoted in the answer is quoted with ``repr``.
    """
    if not isinstance(names, (list, tuple)) or not all(isinstance(n, str) for n in names):
        return "expected a list of strings"
    if n_classes is not None and len(names) != n_classes:
        return f"expected {n_classes} names, one per class, got {len(names)}"
    seen: set[str] = set()
    for name in names:
        if not name.strip() or "," in name:
            return f"class name {name!r} is empty or holds a comma (commas separate classes in a request)"
        if any(unicodedata.category(ch) in UNPRINTABLE for ch in name):
            return f"class name {name!r} holds a control or formatting character"
        folded = name.strip().lower()
        if folded in seen:
            return f"class name {folded!r} appears more than once (names are compared case-insensitively)"
        seen.add(folded)
    return ""


def listed(names: Sequence[str]) -> str:
    """The valid names, for an error message (the first :data:`SHOWN_NAMES`, then how many more)."""
    shown = ", ".join(names[:SHOWN_NAMES])
    more = len(names) - SHOWN_NAMES
    return shown + (f" and {more} more" if more > 0 else "")


class ClassLookup:
    """Finds classes by name or number among ``names``, built once (linear), each look-up in constant time.

    A string is matched with the names first, case-insensitively; a string of digits that is no name
    means the class at that position -- unless every name is a number (labels kept as names: ``3``,
    ``7``, ``100``), where it means only the class so named. An integer is a class number ``0..K−1``,
    as the labels ``fit`` takes are.
    """

    def __init__(self, names: Sequence[str]) -> None:
        self.names = names
        self.index: dict[str, int] = {}
        for i, name in enumerate(names):
            self.index.setdefault(name.strip().lower(), i)
        self.numbered = bool(names) and all(name.strip().isdigit() for name in names)

    def __call__(self, item: Any) -> int:
        """The number of the class ``item`` names; ``ValueError`` listing the valid names."""
        k = len(self.names)
        if isinstance(item, (int, np.integer)) and not isinstance(item, (bool, np.bool_)) and 0 <= item < k:
            return int(item)  # a class number, as fit's labels are
        if isinstance(item, str):
            text = item.strip().lower()
            if text in self.index:
                return self.index[text]
            if text.isdigit() and text.isascii() and not self.numbered and int(text) < k:
                return int(text)
        numbers = "" if self.numbered and isinstance(item, str) else f" (or a class number 0..{k - 1})"
        raise ValueError(f"unknown class {item!r}: expected one of {listed(self.names)}{numbers}")


def class_index(item: Any, names: Sequence[str]) -> int:
    """The number of the class ``item`` names: a name (case-insensitive) or a class number (see :class:`ClassLookup`).

    Raises ``ValueError`` listing the valid names.
    """
    return ClassLookup(names)(item)


def class_indices(request: str | Sequence[Any], names: Sequence[str]) -> list[int]:
    """The classes ``request`` asks for: ``"sneaker"``, ``"3,5"``, or a sequence of names and numbers."""
    items = request.split(",") if isinstance(request, str) else list(request)
    if not items:
        raise ValueError(f"no class given: expected one or more of {listed(names)}")
    lookup = ClassLookup(names)
    return [lookup(item) for item in items]


def spread(n: int, classes: Sequence[int]) -> np.ndarray:
    """``n`` int64 labels spread as evenly as the count allows over ``classes``, class by class.

    The first ``n mod len(classes)`` classes get one sample more; ``spread(7, [3, 5])`` is
    ``[3, 3, 3, 3, 5, 5, 5]``.
    """
    classes = np.asarray(classes, np.int64)
    counts = np.full(len(classes), n // len(classes))
    counts[: n % len(classes)] += 1
    return np.repeat(classes, counts)


def sample_labels(n: int, labels: Any, names: Sequence[str]) -> np.ndarray:
    """The classes of ``n`` samples as int64 ``(n,)``: spread over every class when ``labels`` is ``None``,
    all of one class for one name or number, else one class per sample (names or numbers).

    Raises ``ValueError`` for an unknown class or a count that is not ``n``.
    """
    if labels is None:
        return spread(n, range(len(names)))
    lookup = ClassLookup(names)
    if isinstance(labels, np.ndarray) and labels.ndim == 0:
        labels = labels.item()
    if isinstance(labels, str) or not hasattr(labels, "__iter__"):  # one class, of any type: a wrong one is named
        return np.full(n, lookup(labels), np.int64)
    items = list(np.asarray(labels).reshape(-1)) if isinstance(labels, np.ndarray) else list(labels)
    if len(items) != n:
        raise ValueError(f"labels: expected one class per sample ({n}), got {len(items)}")
    return np.asarray([lookup(item) for item in items], np.int64)
