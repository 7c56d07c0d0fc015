"""Figures of the experiments (matplotlib, Agg; no pyplot state, nothing shown).

Plot functions only draw: each takes what :mod:`gemkit.eval.analysis` computed (budget lines,
delta tables) or result rows, writes one PNG and returns its path, or ``None`` when there is
nothing to draw (e.g. no ``raw`` cells for the normalisation comparison).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.patches import Circle

from gemkit.config import PRESETS, SelectorConfig
from gemkit.eval.analysis import SweepAnalysis

__all__ = [
    "plot_ablation_deltas",
    "plot_budget",
    "plot_lambda_frontier",
    "plot_mass_scale",
    "plot_norm_deltas",
    "plot_quickstart",
    "plot_sweep",
    "plot_trajectories",
]

_TAB10 = tuple(f"C{i}" for i in range(10))
_AUDIT_PANELS = (
    ("score_mean", "normalised score"),
    ("support_z", "SupportZ"),
    ("violation", "Violation"),
    ("collapse_dist", "CollapseDist"),
    ("steps_per_s", "env steps / s"),
)


def _symlog_n(ax: Axes, ns: Sequence[float]) -> None:
    ax.set_xscale("symlog", linthresh=1.0)
    ticks = sorted({int(n) for n in ns})
    ax.set_xticks(ticks)
    ax.set_xticklabels([str(t) for t in ticks])
    ax.set_xlabel("N (sampled candidates)")


def _save(fig: Figure, path: str | Path) -> Path:
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(p, dpi=110, bbox_inches="tight")
    return p


def plot_budget(
    lines: Mapping[str, Sequence[Mapping[str, Any]]], ref: SelectorConfig, path: str | Path
) -> Path | None:
    """Score and the audits vs N, one line per label (:func:`gemkit.eval.analysis.budget_lines`
    at the reference knobs ``ref``)."""
    if not lines:
        return None
    fig = Figure(figsize=(4.0 * len(_AUDIT_PANELS), 3.4))
    axes = fig.subplots(1, len(_AUDIT_PANELS))
    all_n = [float(r["n"]) for pts in lines.values() for r in pts]
    for ax, (key, title) in zip(axes, _AUDIT_PANELS, strict=True):
        for label, pts in lines.items():
            x = [float(r["n"]) for r in pts]
            y = [float(r[key]) for r in pts]
            base = label.split("+")[0]
            color = _TAB10[list(PRESETS).index(base) % len(_TAB10)] if base in PRESETS else None
            style = "--" if "+" in label else "-"
            ax.plot(x, y, style, marker="o", color=color, label=label)
            if key == "score_mean":
                sd = np.array([float(r.get("score_std", 0.0) or 0.0) for r in pts])
                ax.fill_between(x, np.array(y) - sd, np.array(y) + sd, alpha=0.15)
        ax.set_title(title)
        _symlog_n(ax, all_n)
        if key == "steps_per_s":
            ax.set_yscale("log")
    axes[0].legend(fontsize=7)
    fig.suptitle(_ref_text(ref, skip=("n",)), fontsize=9)
    return _save(fig, path)


def _ref_text(ref: SelectorConfig, skip: Sequence[str] = ()) -> str:
    p = ref.to_dict()["params"]
    parts = [f"{k}={p[k]}" for k in ("n", "beta", "lam", "lam_T", "k", "support") if k not in skip]
    return "GEM reference: " + ", ".join(parts)


def plot_ablation_deltas(
    table: Sequence[Mapping[str, Any]], ref: SelectorConfig, path: str | Path
) -> Path | None:
    """Bar charts of each preset's score and Violation minus GEM's at ``ref`` (the table of
    :func:`gemkit.eval.analysis.ablation_deltas`)."""
    others = [t for t in table if t["preset"] != "gem"]
    if not others:
        return None
    fig = Figure(figsize=(10, 3.6))
    ax1, ax2 = fig.subplots(1, 2)
    names = [t["preset"] for t in others]
    y = np.arange(len(names))
    ax1.barh(y, [t["delta_score"] for t in others], color="tab:blue")
    ax1.set_yticks(y, names)
    ax1.axvline(0, color="k", lw=0.8)
    ax1.set_xlabel("score - GEM score")
    ax2.barh(y, [t["delta_violation"] for t in others], color="tab:red")
    ax2.set_yticks(y, names)
    ax2.axvline(0, color="k", lw=0.8)
    ax2.set_xlabel("Violation - GEM Violation")
    fig.suptitle(_ref_text(ref), fontsize=9)
    return _save(fig, path)


def plot_norm_deltas(
    table: Sequence[Mapping[str, Any]], ref: SelectorConfig, path: str | Path
) -> Path | None:
    """``raw`` minus ``zscore`` normalisation (score, Violation) vs N, other knobs at ``ref``
    (the table of :func:`gemkit.eval.analysis.norm_deltas`)."""
    if not table:
        return None
    fig = Figure(figsize=(8, 3.4))
    ax1, ax2 = fig.subplots(1, 2)
    x = [float(t["n"]) for t in table]
    ax1.plot(x, [t["delta_score"] for t in table], marker="o")
    ax1.axhline(0, color="k", lw=0.8)
    ax1.set_ylabel("score(raw) - score(zscore)")
    _symlog_n(ax1, x)
    ax2.plot(x, [t["violation_zscore"] for t in table], marker="o", label="zscore")
    ax2.plot(x, [t["violation_raw"] for t in table], marker="s", label="raw")
    ax2.set_ylabel("Violation")
    ax2.legend(fontsize=8)
    _symlog_n(ax2, x)
    fig.suptitle(_ref_text(ref, skip=("n", "support")), fontsize=9)
    return _save(fig, path)


def plot_lambda_frontier(
    table: Sequence[Mapping[str, Any]], ref: SelectorConfig, path: str | Path
) -> Path | None:
    """Score vs Violation of GEM as ``lambda_0``/``lambda_T`` vary, other knobs at ``ref`` (the
    table of :func:`gemkit.eval.analysis.lambda_frontier`)."""
    if len(table) < 2:
        return None
    fig = Figure(figsize=(5, 4))
    ax = fig.subplots()
    ax.plot([t["violation"] for t in table], [t["score_mean"] for t in table], "o-", alpha=0.7)
    for t in table:
        lab = f"{t['lam']:g}" if t["lam_T"] is None else f"{t['lam']:g}->{t['lam_T']:g}"
        ax.annotate(lab, (t["violation"], t["score_mean"]), fontsize=7, xytext=(3, 3),
                    textcoords="offset points")  # fmt: skip
    ax.set_xlabel("Violation (fraction of steps)")
    ax.set_ylabel("normalised score")
    ax.set_title("lambda frontier (labels: lambda_0 -> lambda_T)", fontsize=9)
    fig.suptitle(_ref_text(ref, skip=("lam", "lam_T")), fontsize=8)
    return _save(fig, path)


def _draw_fork(ax: Axes, obstacle_radius: float, goal: Sequence[float], goal_radius: float) -> None:
    ax.add_patch(Circle((0.0, 0.0), obstacle_radius, color="0.6", zorder=0))
    ax.add_patch(
        Circle(
            (float(goal[0]), float(goal[1])), goal_radius, color="tab:green", alpha=0.35, zorder=0
        )
    )
    ax.set_xlim(-1.3, 1.3)
    ax.set_ylim(-1.3, 1.3)
    ax.set_aspect("equal")
    ax.set_xlabel("x")
    ax.set_ylabel("y")


def _draw_paths(
    ax: Axes, paths: Mapping[str, Sequence[tuple[np.ndarray, bool]]], colors: Sequence[str]
) -> None:
    for (label, eps), color in zip(paths.items(), colors, strict=False):
        wins = sum(ok for _, ok in eps)
        for i, (xy, _) in enumerate(eps):
            lab = f"{label} ({wins}/{len(eps)} reach goal)" if i == 0 else None
            ax.plot(xy[:, 0], xy[:, 1], color=color, alpha=0.7, lw=1.2, label=lab)
            ax.plot(xy[-1, 0], xy[-1, 1], "x", color=color)
    ax.legend(fontsize=7, loc="lower right")


_COLORS = ("tab:blue", "tab:red", "tab:orange", "tab:purple", "tab:brown")


def plot_trajectories(
    paths: Mapping[str, Sequence[tuple[np.ndarray, bool]]],
    path: str | Path,
    *,
    obstacle_radius: float = 0.4,
    goal: Sequence[float] = (0.0, 1.0),
    goal_radius: float = 0.15,
) -> Path:
    """Fork-task paths (``(observations [T+1, 2], success)`` lists) per label, on one map."""
    fig = Figure(figsize=(5, 5))
    ax = fig.subplots()
    _draw_fork(ax, obstacle_radius, goal, goal_radius)
    _draw_paths(ax, paths, _COLORS)
    return _save(fig, path)


def plot_quickstart(
    paths: Mapping[str, Sequence[tuple[np.ndarray, bool]]],
    budget: Mapping[str, Sequence[Mapping[str, Any]]],
    path: str | Path,
    *,
    obstacle_radius: float = 0.4,
    goal: Sequence[float] = (0.0, 1.0),
    goal_radius: float = 0.15,
) -> Path:
    """The quickstart figure: fork trajectories (left) and score vs N per actor (right).

    Args:
        paths: per label, ``(observations, success)`` of each episode.
        budget: per label, rows with ``n``, ``score_mean`` and ``score_std``.
        path: the PNG to write.
        obstacle_radius: the fork obstacle's radius.
        goal: the goal position.
        goal_radius: the goal's radius.
    """
    fig = Figure(figsize=(11, 4.8))
    ax1, ax2 = fig.subplots(1, 2)
    _draw_fork(ax1, obstacle_radius, goal, goal_radius)
    _draw_paths(ax1, paths, _COLORS)
    ax1.set_title("fork task: paths from the start")
    ns: list[float] = []
    for (label, pts), color in zip(budget.items(), _COLORS, strict=False):
        x = [float(r["n"]) for r in pts]
        y = np.array([float(r["score_mean"]) for r in pts])
        sd = np.array([float(r.get("score_std", 0.0) or 0.0) for r in pts])
        ax2.plot(x, y, "o-", color=color, label=label)
        ax2.fill_between(x, y - sd, y + sd, color=color, alpha=0.15)
        ns += x
    if ns:
        _symlog_n(ax2, ns)
    ax2.set_ylabel("normalised score (mean +- std over seeds)")
    ax2.set_ylim(-5, 105)
    ax2.legend(fontsize=8)
    ax2.set_title("score vs candidate budget N (N = 0: single-shot)")
    return _save(fig, path)


def plot_mass_scale(rows: Sequence[Mapping[str, Any]], path: str | Path) -> Path | None:
    """Score vs MassScale factor, one line per ``label`` (rows need ``mass_scale``)."""
    by: dict[str, list[Mapping[str, Any]]] = {}
    for r in rows:
        if r.get("mass_scale") in (None, ""):
            continue
        by.setdefault(str(r["label"]), []).append(r)
    if not by:
        return None
    fig = Figure(figsize=(5, 3.6))
    ax = fig.subplots()
    for label, pts in by.items():
        pts = sorted(pts, key=lambda r: float(r["mass_scale"]))
        x = [float(r["mass_scale"]) for r in pts]
        y = np.array([float(r["score_mean"]) for r in pts])
        sd = np.array([float(r.get("score_std", 0.0) or 0.0) for r in pts])
        ax.errorbar(x, y, yerr=sd, marker="o", capsize=3, label=label)
    ax.set_xlabel("body mass scale (MassScale)")
    ax.set_ylabel("normalised score")
    ax.legend(fontsize=8)
    return _save(fig, path)


def plot_sweep(analysis: SweepAnalysis, out_dir: str | Path, prefix: str = "") -> list[Path]:
    """Every figure of a sweep's analysis: ``budget``, ``ablations``, ``normalization`` and
    ``lambda_frontier`` PNGs (``out_dir/<prefix><name>.png``), those with something to draw."""
    out = Path(out_dir)
    drawn = [
        plot_budget(analysis.lines, analysis.big, out / f"{prefix}budget.png"),
        plot_ablation_deltas(
            analysis.tables["ablations"], analysis.big, out / f"{prefix}ablations.png"
        ),
        plot_norm_deltas(
            analysis.tables["normalization"], analysis.ref, out / f"{prefix}normalization.png"
        ),
        plot_lambda_frontier(
            analysis.tables["lambda_frontier"], analysis.big, out / f"{prefix}lambda_frontier.png"
        ),
    ]
    return [p for p in drawn if p is not None]
