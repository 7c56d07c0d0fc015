"""The sweep's analysis as pure functions of aggregated rows (no matplotlib, no files).

Every function takes rows as :func:`gemkit.eval.sweep.aggregate_runs` returns them (or as read
back from ``sweep.csv``: rows are matched by :func:`gemkit.eval.results.config_key`) and a
reference GEM config, and returns plain tables; :mod:`gemkit.eval.plots` draws them and
:func:`analyze_sweep` makes the choices that ``gemkit sweep`` and the reproduction report share.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import attrs

from gemkit.config import PRESETS, SelectorConfig
from gemkit.eval.results import KNOBS, as_float, config_key

__all__ = [
    "SweepAnalysis",
    "ablation_deltas",
    "analyze_sweep",
    "budget_lines",
    "lambda_frontier",
    "norm_deltas",
]

Row = Mapping[str, Any]


def _params(cfg: SelectorConfig) -> dict[str, Any]:
    return cfg.to_dict()["params"]


def _index(rows: Sequence[Row]) -> dict[tuple[Any, ...], Row]:
    return {config_key(r): r for r in rows}


def _variant(ref: SelectorConfig, preset: str, **changes: Any) -> SelectorConfig | None:
    try:
        return SelectorConfig(**{**_params(ref), **changes, **PRESETS[preset]})
    except ValueError:
        return None


def budget_lines(rows: Sequence[Row], ref: SelectorConfig) -> dict[str, list[Row]]:
    """Rows grouped into lines vs N: each preset (and the other normalisation, labelled
    ``preset+raw``) at the reference knobs ``ref``; a line identical to an earlier one is
    dropped."""
    idx = _index(rows)
    ns = sorted({int(as_float(r["n"])) for r in rows})
    other = "raw" if ref.support != "raw" else "zscore"
    lines: dict[str, list[Row]] = {}
    seen: set[tuple[tuple[Any, ...], ...]] = set()
    for preset in PRESETS:
        if preset == "single_shot":
            continue
        for sup in (ref.support, other):
            label = preset if sup == ref.support else f"{preset}+{sup}"
            keys = []
            for n in ns:
                cfg = _variant(ref, preset, n=n, support=sup)
                if cfg is not None and config_key(_params(cfg)) in idx:
                    keys.append(config_key(_params(cfg)))
            if keys and tuple(keys) not in seen:
                seen.add(tuple(keys))
                lines[label] = [idx[k] for k in keys]
    return lines


def ablation_deltas(rows: Sequence[Row], ref: SelectorConfig) -> list[dict[str, Any]]:
    """Each preset's score and Violation minus GEM's, at the knobs ``ref`` (e.g. N = 1024).

    Returns:
        One dict per preset found (GEM first when present): ``preset``, ``score_mean``,
        ``score_std``, ``delta_score``, ``violation``, ``delta_violation``; empty without
        GEM's own cell.
    """
    idx = _index(rows)
    base = idx.get(config_key(_params(ref)))
    if base is None:
        return []
    table: list[dict[str, Any]] = []
    for preset in PRESETS:
        cfg = _variant(ref, preset)
        if cfg is None or config_key(_params(cfg)) not in idx:
            continue
        r = idx[config_key(_params(cfg))]
        table.append(
            {
                "preset": preset,
                "score_mean": as_float(r["score_mean"]),
                "score_std": as_float(r.get("score_std")),
                "delta_score": as_float(r["score_mean"]) - as_float(base["score_mean"]),
                "violation": as_float(r["violation"]),
                "delta_violation": as_float(r["violation"]) - as_float(base["violation"]),
            }
        )
    return table


def norm_deltas(rows: Sequence[Row], ref: SelectorConfig) -> list[dict[str, Any]]:
    """``raw`` minus ``zscore`` normalisation (score, Violation) vs N, other knobs at ``ref``.

    Returns:
        One dict per N with both cells: ``n``, ``zscore``, ``raw`` (their ``score_mean``),
        ``delta_score``, ``violation_zscore``, ``violation_raw``.
    """
    idx = _index(rows)
    table: list[dict[str, Any]] = []
    for n in sorted({int(as_float(r["n"])) for r in rows}):
        z = idx.get(config_key(_params(ref.evolve(n=n, support="zscore"))))
        r = idx.get(config_key(_params(ref.evolve(n=n, support="raw"))))
        if z is None or r is None:
            continue
        table.append(
            {
                "n": n,
                "zscore": as_float(z["score_mean"]),
                "raw": as_float(r["score_mean"]),
                "delta_score": as_float(r["score_mean"]) - as_float(z["score_mean"]),
                "violation_zscore": as_float(z["violation"]),
                "violation_raw": as_float(r["violation"]),
            }
        )
    return table


def lambda_frontier(rows: Sequence[Row], ref: SelectorConfig) -> list[dict[str, Any]]:
    """Score vs Violation of GEM as ``lambda_0``/``lambda_T`` vary, other knobs at ``ref``.

    Returns:
        One dict per point: ``lam``, ``lam_T`` (``None``: constant), ``score_mean``,
        ``score_std``, ``violation``; sorted by Violation, then by falling score.
    """
    fixed = [k for k in KNOBS if k not in ("lam", "lam_T")]
    want = config_key(_params(ref))
    at = [KNOBS.index(k) for k in fixed]
    table: list[dict[str, Any]] = []
    for r in rows:
        if r.get("preset") not in ("gem", "no_pw"):
            continue
        key = config_key(r)
        if all(key[i] == want[i] for i in at):
            lam_t = as_float(r.get("lam_T"))
            table.append(
                {
                    "lam": as_float(r["lam"]),
                    "lam_T": None if math.isnan(lam_t) else lam_t,
                    "score_mean": as_float(r["score_mean"]),
                    "score_std": as_float(r.get("score_std")),
                    "violation": as_float(r["violation"]),
                }
            )
    table.sort(key=lambda t: (t["violation"], -t["score_mean"]))
    return table


@attrs.frozen
class SweepAnalysis:
    """What a sweep's rows say, at the choices ``gemkit sweep`` and the report share.

    Attributes:
        ref: GEM at the first value of every axis (the normalisation baseline).
        big: ``ref`` at the largest ``N`` (ablations, the lambda frontier, the budget plot).
        lines: :func:`budget_lines` at ``big``.
        tables: ``ablations`` (:func:`ablation_deltas` at ``big``), ``normalization``
            (:func:`norm_deltas` at ``ref``), ``lambda_frontier`` (:func:`lambda_frontier` at
            ``big``).
    """

    ref: SelectorConfig
    big: SelectorConfig
    lines: dict[str, list[Row]]
    tables: dict[str, list[dict[str, Any]]]


def analyze_sweep(rows: Sequence[Row], ref: SelectorConfig, max_n: int) -> SweepAnalysis:
    """The sweep's budget lines and delta tables around the reference config ``ref``.

    Args:
        rows: aggregated sweep rows (a config found twice counts once).
        ref: the reference GEM config (:meth:`gemkit.eval.sweep.SweepGrid.reference`).
        max_n: the largest candidate budget of the sweep.
    """
    big = ref.evolve(n=max_n)
    rows = list(_index(rows[::-1]).values())[::-1]  # one row per config, the first seen
    return SweepAnalysis(
        ref=ref,
        big=big,
        lines=budget_lines(rows, big),
        tables={
            "ablations": ablation_deltas(rows, big),
            "normalization": norm_deltas(rows, ref),
            "lambda_frontier": lambda_frontier(rows, big),
        },
    )
