"""What a diverged run says: what it keeps, and remedies that this run's model accepts.

The wording belongs to the command line; what a family may change comes from its config class
(``LEARNING_RATES``, its options and its presets), so no remedy names an option the run refuses.
"""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Any

from ..io.errors import DivergenceError
from .options import MODEL_OPTIONS


def divergence_advice(error: DivergenceError, config: Any, preset: str, run_dir: Path, last_saved: int | None) -> str:
    """What a run that diverged says: what is kept (the checkpoint of step ``last_saved``, if any) and
    what to try, each remedy one that this run's model takes."""
    lower, more = _remedies(config, preset)
    if last_saved is None:
        kept = "no checkpoint had been written yet"
        retry = f"start again with lower learning rates ({lower})"
    else:
        kept = f"the last good checkpoint (step {last_saved}) is kept in {run_dir / 'checkpoint.npz'}"
        retry = (
            f"continue from it with lower learning rates: python -m tinygan train "
            f"--resume {shlex.quote(str(run_dir))} {lower}"
        )
    return f"{error}; {kept}. Remedies: {retry}{more}"


OUTSIZED = 100  # a setting this many times its preset's value (or this large where the preset has 0) is suspect


def _remedies(config: Any, preset: str) -> tuple[str, str]:
    """(lower learning-rate options, further remedies) for a run of ``config`` that diverged: learning rates
    a tenth of the run's, at most the preset's; the settings far above the preset's named; label smoothing
    and BatchNorm in G where the run's objective and G take them."""
    base = type(config).from_preset(preset, config.data_shape, config.data_kind)
    lower = {name: min(getattr(config, name) / 10, getattr(base, name)) for name in config.LEARNING_RATES}
    options = " ".join(f"--{name.replace('_', '-')} {value:g}" for name, value in lower.items())
    more = [f"--{name.replace('_', '-')} {getattr(config, name):g} (the preset has {getattr(base, name):g})"
            for name in MODEL_OPTIONS
            if name not in lower and _outsized(getattr(config, name, None), getattr(base, name, None))]
    more = [f"a smaller {', '.join(more)}"] if more else []
    if getattr(config, "loss", None) == "bce" and config.real_label == 1.0:
        more.append("label smoothing (--real-label 0.9)")
    if getattr(config, "g_batchnorm", True) in (False, [False] * len(getattr(config, "g_hidden", []))):
        more.append("in a new run, BatchNorm in the generator (--g-batchnorm yes)")
    return options, "".join(f"; {remedy}" for remedy in more)


def _outsized(value: Any, preset: Any) -> bool:
    numbers = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in (value, preset))
    return numbers and value > 0 and value >= OUTSIZED * (preset or 1)
