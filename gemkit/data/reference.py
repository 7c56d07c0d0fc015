"""Reference scores and D4RL's normalised score.

``normalized_score = 100 * (R - R_random) / (R_expert - R_random)``: 0 is the random policy, 100
the expert controller. gemkit's datasets store both references in their Minari metadata as
``ref_min_score`` (random) and ``ref_max_score`` (expert), as Minari's D4RL datasets do.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, overload

import numpy as np
from numpy.typing import NDArray

from gemkit.errors import GemkitError

__all__ = ["normalized_score", "reference_scores"]


@overload
def normalized_score(returns: float, ref_min: float, ref_max: float) -> float: ...


@overload
def normalized_score(
    returns: NDArray[np.floating[Any]], ref_min: float, ref_max: float
) -> NDArray[np.float64]: ...


def normalized_score(returns: Any, ref_min: float, ref_max: float) -> Any:
    """``100 * (returns - ref_min) / (ref_max - ref_min)``, elementwise.

    Args:
        returns: one undiscounted episode return or an array of them.
        ref_min: the random policy's mean return.
        ref_max: the expert's mean return.

    Raises:
        GemkitError: ``ref_max == ref_min`` (the scores cannot be normalised).
    """
    if not np.isfinite(ref_min) or not np.isfinite(ref_max) or ref_max == ref_min:
        raise GemkitError(
            f"reference scores ref_min={ref_min}, ref_max={ref_max} cannot normalise a return."
        )
    out = 100.0 * (np.asarray(returns, dtype=np.float64) - ref_min) / (ref_max - ref_min)
    return float(out) if out.ndim == 0 else out


def reference_scores(source: Mapping[str, Any] | str) -> tuple[float, float] | None:
    """``(ref_min, ref_max)`` of a dataset, or ``None`` when it stores none.

    Args:
        source: a dataset id in the local Minari store, or a metadata mapping (Minari metadata or
            :attr:`Transitions.meta <gemkit.data.Transitions.meta>`).
    """
    if isinstance(source, str):
        from gemkit.data.minari_io import read_metadata

        source = read_metadata(source)
    lo, hi = source.get("ref_min_score"), source.get("ref_max_score")
    if lo is None or hi is None:
        return None
    return float(lo), float(hi)
