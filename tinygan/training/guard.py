"""The divergence guard: what "diverged" means, checked before a state may be logged or saved.

A training state has diverged when

* a loss or metric is NaN or infinite, or a loss exceeds :data:`LOSS_LIMIT` (the losses are
  binary cross-entropies on logits: a loss of 1,000 means logits about 1,000 on the wrong
  side, where a healthy run stays within a few units and a discriminator that wins outright
  still stays under about 30);
* a parameter of a network, or of its averaged copy, is NaN or infinite or exceeds
  :data:`PARAM_LIMIT` in magnitude (healthy runs of every preset stay within a few units,
  see ``docs/reliability.md``).

The trainer checks the losses at every log interval and the parameters there and before
every checkpoint, so an exploded state, finite or not, never replaces the last good one.
"""

from __future__ import annotations

import math
from typing import Any

from ..io.errors import DivergenceError

LOSS_LIMIT = 1e3
PARAM_LIMIT = 1e4


def check_record(step: int, record: dict[str, float]) -> None:
    """Raise :class:`DivergenceError` if a metric of ``record`` is not finite or a loss is beyond the limit."""
    for key, value in record.items():
        if not math.isfinite(value):
            raise DivergenceError(f"training diverged at step {step}: {key} is {value}")
    for key, value in record.items():
        if key.endswith("_loss") and abs(value) > LOSS_LIMIT:
            raise DivergenceError(
                f"training diverged at step {step}: {key} is {value:.3g}, beyond {LOSS_LIMIT:g} (the losses exploded)"
            )


def check_parameters(model: Any) -> None:
    """Raise :class:`DivergenceError` if a parameter of ``model`` (averages included) is not finite or too large."""
    xp = model.xp
    weights = {model.describe(k): net.params for k, net in model.nets.items()}
    weights.update({f"averaged {model.describe(k)}": a.params for k, a in model.averaged.items()})
    for name, params in weights.items():
        if params.size == 0:
            continue
        largest = float(xp.max(xp.abs(params)))  # one host read per network
        if not math.isfinite(largest):
            raise DivergenceError(f"training diverged at step {model.step}: {name} parameters are not finite")
        if largest > PARAM_LIMIT:
            raise DivergenceError(
                f"training diverged at step {model.step}: {name} parameters reach {largest:.3g}, "
                f"beyond ±{PARAM_LIMIT:g}"
            )
