"""One name per metric, one identity per selector config, one reduction over seeds.

Every experiment result (an evaluation, a cell or a CSV row read back, a summary over seeds, a
table row) names its metrics as :data:`METRICS`; :func:`config_key` is the one identity of a
configuration, typed or read back from CSV; :func:`reduce_seeds` is the one place where per-seed
values become a mean and a spread (:func:`gemkit.eval.runs.summarize`,
:func:`gemkit.eval.sweep.aggregate_runs` and the reproduction report all call it).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import attrs

from gemkit.config import SelectorConfig

__all__ = ["KNOBS", "METRICS", "as_float", "config_key", "reduce_seeds", "std_name"]

KNOBS: tuple[str, ...] = tuple(f.name for f in attrs.fields(SelectorConfig))
_DEFAULTS: dict[str, Any] = {f.name: f.default for f in attrs.fields(SelectorConfig)}
"""The selector knobs a result records (``SelectorConfig`` fields, e.g. ``lam_T``)."""

METRICS: tuple[str, ...] = (
    "score_mean",
    "return_mean",
    "success_rate",
    "support_z",
    "violation",
    "collapse_dist",
    "steps_per_s",
    "critic_evals",
)
"""The metrics of one evaluation, by their only names: mean normalised score, mean return,
success rate, the three audits (SupportZ, Violation, CollapseDist), environment steps/s and
the candidates scored per decision (the compute a selector's budget costs)."""


def _norm(v: Any) -> Any:
    """One spelling per knob value: numbers (typed or read back from CSV) as floats, ``""``
    (an empty CSV cell) as ``None``, names as strings."""
    if isinstance(v, bool) or v is None or v == "":
        return None if v == "" else v
    if isinstance(v, int | float):
        return float(v)
    try:
        return float(v)
    except ValueError:
        return str(v)


def config_key(knobs: Mapping[str, Any]) -> tuple[Any, ...]:
    """Hashable identity of a selector config: its :data:`KNOBS`, from a config's params, a
    result row or a CSV row (``"4"``, ``4`` and ``4.0`` are the same ``n``); a knob missing
    from a row (a CSV written before the knob existed) counts as its default."""
    return tuple(_norm(knobs.get(k, _DEFAULTS[k])) for k in KNOBS)


def as_float(x: Any) -> float:
    """A metric value as a float: ``None``, ``""`` and ``"None"`` (undefined) are NaN."""
    if x is None or x in ("", "None"):
        return math.nan
    return float(x)


def std_name(metric: str) -> str:
    """The spread column of ``metric``: ``score_mean`` -> ``score_std``, ``violation`` ->
    ``violation_std``."""
    return metric.removesuffix("_mean") + "_std"


def reduce_seeds(
    per_seed: Sequence[Mapping[str, Any]], spread: Sequence[str] = ("score_mean",)
) -> dict[str, float]:
    """Mean over seeds of every metric in :data:`METRICS`, and the spread of some.

    Undefined values (``None``, NaN, empty CSV cells) are left out; a metric undefined for every
    seed is NaN.

    Args:
        per_seed: one mapping per seed holding (some of) :data:`METRICS`, typed or CSV strings.
        spread: metrics whose population std over seeds is reported too, as :func:`std_name`.

    Returns:
        ``{metric: mean}`` for :data:`METRICS`, plus ``{std_name(m): std}`` for ``spread``.
    """
    out: dict[str, float] = {}
    for m in (*METRICS, *(s for s in spread if s not in METRICS)):
        vals = [v for v in (as_float(r.get(m)) for r in per_seed) if math.isfinite(v)]
        mean = sum(vals) / len(vals) if vals else math.nan
        if m in METRICS:
            out[m] = mean
        if m in spread:
            out[std_name(m)] = (
                math.sqrt(sum((v - mean) ** 2 for v in vals) / len(vals)) if vals else math.nan
            )
    return out
