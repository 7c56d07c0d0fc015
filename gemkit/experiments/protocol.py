"""The paper's knob protocol and the suite's aggregation over cells.

:func:`choose_knobs` picks the suite's ``(beta, lambda_0, lambda_T, value)`` from validation
cells; :func:`aggregate` reduces test cells to mean +- std over training seeds; :func:`claims`
checks the paper's claims per task against them.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

__all__ = ["aggregate", "choose_knobs", "claims", "episode_count", "mean_std", "rank_knobs"]


def knob_key(knobs: dict[str, Any]) -> tuple[float, float, float, str]:
    """A knob setting's identity, ``(beta, lambda_0, lambda_T, value)``, from a cell's config
    or a :func:`rank_knobs` row (``value`` defaults to ``lcb``, as in cells that predate it)."""
    return knobs["beta"], knobs["lam"], knobs["lam_T"], knobs.get("value", "lcb")


def rank_knobs(rows: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """Every validated ``(beta, lambda_0, lambda_T, value)`` with its mean validation score,
    best first (ties in sorted ``(beta, lambda_0, lambda_T, value)`` order)."""
    scores: dict[tuple[float, float, float, str], list[float]] = {}
    for r in rows:
        if r["stage"] == "validate" and math.isfinite(r["score_mean"]):
            scores.setdefault(knob_key(r["config"]), []).append(r["score_mean"])
    if not scores:
        raise SystemExit("no validation cells yet: run the 'validate' stage first.")

    def mean(xs: list[float]) -> float:  # exactly rounded: the cells' order does not matter
        return math.fsum(xs) / len(xs)

    ranked = sorted(sorted(scores), key=lambda k: -mean(scores[k]))  # stable: ties keep order
    return [{"beta": k[0], "lam": k[1], "lam_T": k[2], "value": k[3],
             "val_score": mean(scores[k])} for k in ranked]  # fmt: skip


def choose_knobs(rows: Iterable[dict[str, Any]]) -> dict[str, Any]:
    """The suite's knobs: the ``(beta, lambda_0, lambda_T, value)`` with the best mean validation
    score (the first of :func:`rank_knobs`).

    Ties go to the first in sorted ``(beta, lambda_0, lambda_T, value)`` order.
    """
    return rank_knobs(rows)[0]


def mean_std(xs: Sequence[float]) -> tuple[float, float]:
    """Mean and (population) std of the finite values of ``xs``; NaNs when there are none."""
    a = np.array([x for x in xs if x is not None and math.isfinite(x)], dtype=float)
    if a.size == 0:
        return float("nan"), float("nan")
    return float(a.mean()), float(a.std())


def episode_count(row: dict[str, Any]) -> int:
    """The episodes behind a cell: its returns, or for a cell restored from a report's table
    (``returns`` None: the per-episode returns were not kept) its planned episodes."""
    if row.get("returns") is None:
        return int(row["episodes"]) * len(row["eval_seeds"])
    return len(row["returns"])


def aggregate(rows: Iterable[dict[str, Any]], by: Sequence[str]) -> list[dict[str, Any]]:
    """Mean +- std over training seeds of each group's per-checkpoint means.

    ``by`` names the grouping fields (``"n"``, ``"beta"``, ``"lam_T"`` are read from the
    config). Returns one dict per group with ``score``, ``score_std`` (over training seeds),
    ``violation``, ``support_z``, ``collapse_dist``, ``steps_per_s`` and ``train_seeds``.
    """
    groups: dict[tuple[Any, ...], list[dict[str, Any]]] = {}
    for r in rows:
        key = tuple(r["config"].get(f, "lcb") if f in ("n", "beta", "lam", "lam_T", "value")
                    else r[f] for f in by)  # fmt: skip
        groups.setdefault(key, []).append(r)
    out = []

    def order(key: tuple[Any, ...]) -> tuple[tuple[int, Any], ...]:
        return tuple((0, x) if isinstance(x, int | float) else (1, str(x)) for x in key)

    for key, rs in sorted(groups.items(), key=lambda kv: order(kv[0])):
        score, score_sd = mean_std([r["score_mean"] for r in rs])
        row = dict(zip(by, key, strict=True))
        row.update(
            score=score,
            score_std=score_sd,
            violation=mean_std([r["violation"] for r in rs])[0],
            support_z=mean_std([r["support_z"] for r in rs])[0],
            collapse_dist=mean_std([r["collapse_dist"] for r in rs])[0],
            success_rate=mean_std([r["success_rate"] for r in rs])[0],
            steps_per_s=mean_std([r["steps_per_s"] for r in rs])[0],
            train_seeds=len(rs),
            episodes=int(sum(episode_count(r) for r in rs)),
        )
        out.append(row)
    return out


def curve_means(curves: dict[str, list[dict[str, Any]]]) -> dict[str, dict[str, float]]:
    """Per series: the mean score over all its snapshots and over the later half of them
    (steps above half of the last step), so a summary picks no snapshot by hand."""
    out = {}
    for series, cells in curves.items():
        late = [c["score_mean"] for c in cells if c["step"] > cells[-1]["step"] / 2]
        out[series] = {"all": sum(c["score_mean"] for c in cells) / len(cells),
                       "later_half": sum(late) / len(late), "snapshots": len(cells)}  # fmt: skip
    return out


def seed_means(per_seed: dict[int, dict[str, dict[str, float]]]) -> dict[str, dict[str, Any]]:
    """Per series present in every seed: the mean and population std over seeds of each
    seed's :func:`curve_means` (``all`` and ``later_half``), with the seeds it covers."""
    seeds = sorted(per_seed)
    common = [s for s in per_seed[seeds[0]] if all(s in per_seed[k] for k in seeds)]
    out: dict[str, dict[str, Any]] = {}
    for series in common:
        row: dict[str, Any] = {"seeds": seeds}
        for part in ("all", "later_half"):
            xs = [per_seed[k][series][part] for k in seeds]
            mean = sum(xs) / len(xs)
            row[part] = mean
            row[f"{part}_std"] = (sum((x - mean) ** 2 for x in xs) / len(xs)) ** 0.5
        out[series] = row
    return out


def later_half(
    test: Iterable[dict[str, Any]], task: str, actor: str, final_step: int
) -> dict[str, Any] | None:
    """``actor``'s single-shot (N = 0) score over its snapshots above half of the last (the
    learning-curve cells up to ``final_step``, and the final test cell where a step has both),
    by the outside IQL reports' own :func:`curve_means` and :func:`seed_means`, so the two
    compare alike. ``None`` where there are no such cells."""
    at: dict[tuple[int, int], dict[str, Any]] = {}
    for r in sorted(test, key=lambda r: r["series"] != "curve"):  # test cells override curves
        if (r["task"] == task and r["actor"] == actor and r["config"]["n"] == 0
                and r["step"] <= final_step
                and (r["series"] == "curve" or (r["step"] == final_step
                                                and r["series"] in ("gem", "baseline")))):
            at[(r["train_seed"], r["step"])] = r  # fmt: skip
    per_seed: dict[int, dict[str, list[dict[str, Any]]]] = {}
    for (seed, _), r in sorted(at.items()):
        per_seed.setdefault(seed, {}).setdefault(actor, []).append(r)
    if not per_seed:
        return None
    m = seed_means({seed: curve_means(c) for seed, c in per_seed.items()})[actor]
    last = max(step for _, step in at)
    return {"score": m["later_half"], "score_std": m["later_half_std"], "seeds": m["seeds"],
            "snapshots": sorted({step for _, step in at if step > last / 2})}  # fmt: skip


def claims(
    test: list[dict[str, Any]], tasks: Sequence[str], big: int, base_n: int, budgets: Sequence[int]
) -> list[dict[str, Any]]:
    """The issue's claims per task, each with the measured figures and a verdict."""
    out = []
    for task in tasks:
        rows = [r for r in test if r["task"] == task and r["series"] not in ("curve", "mass")]
        gem = {a["n"]: a for a in aggregate([r for r in rows if r["series"] == "gem"], ["n"])}
        base = {a["n"]: a for a in aggregate([r for r in rows if r["actor"] == "baseline"], ["n"])}
        nopw = aggregate([r for r in rows if r["series"] == "no_pw"], ["n"])
        if not gem or not base:
            continue
        g64 = gem.get(base_n)
        b0 = base.get(0)
        if g64 is not None and b0 is not None:
            out.append(
                {
                    "task": task,
                    "claim": f"GEM N={base_n} above the fair unimodal baseline (single-shot)",
                    "measured": f"{g64['score']:.1f} ± {g64['score_std']:.1f}"
                    f" vs {b0['score']:.1f} ± {b0['score_std']:.1f}",
                    "holds": g64["score"] > b0["score"],
                }
            )
        bn = base.get(base_n)
        if g64 is not None and bn is not None:
            out.append(
                {
                    "task": task,
                    "claim": f"GEM N={base_n} above the fair unimodal baseline "
                    f"given the same N={base_n} candidates",
                    "measured": f"{g64['score']:.1f} ± {g64['score_std']:.1f} vs "
                    f"{bn['score']:.1f} ± {bn['score_std']:.1f}",
                    "holds": g64["score"] > bn["score"],
                }
            )
        ns = [n for n in budgets if n in gem]
        seq = [gem[n]["score"] for n in ns]
        # "non-decreasing" up to noise: no drop larger than one std over training seeds
        tol = [gem[n]["score_std"] for n in ns]
        mono = all(
            b >= a - max(ta, tb) for a, b, ta, tb in zip(seq, seq[1:], tol, tol[1:], strict=False)
        )
        out.append(
            {
                "task": task,
                "claim": "GEM score non-decreasing in N (within one seed-std)",
                "measured": " → ".join(f"N={n}: {s:.1f}" for n, s in zip(ns, seq, strict=True)),
                "holds": mono,
            }
        )
        if nopw and big in gem:
            v_g, v_n = gem[big]["violation"], nopw[0]["violation"]
            out.append(
                {
                    "task": task,
                    "claim": f"Violation at N={big}: GEM far below no_pw",
                    "measured": f"GEM {100 * v_g:.1f}% vs no_pw {100 * v_n:.1f}%",
                    "holds": bool(v_g < 0.5 * v_n),
                }
            )
    return out
