"""The suite report's figures: score and Violation against N, learning curves, the lambda
frontier (one panel per task, drawn from test cells)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from gemkit.experiments.protocol import aggregate
from gemkit.experiments.tasks import reference_scores

__all__ = [
    "lambda_label",
    "plot_budget",
    "plot_curves",
    "plot_frontier",
    "plot_iql_curves",
    "plot_oracle_bins",
    "plot_probe_curves",
]


def plot_budget(
    test: list[dict[str, Any]], tasks: Sequence[str], paper: Mapping[str, Any], path: Path
) -> Path:
    from matplotlib.figure import Figure

    fig = Figure(figsize=(4.2 * len(tasks), 6.4))
    axes = fig.subplots(2, len(tasks), squeeze=False)
    for j, task in enumerate(tasks):
        rows = [r for r in test if r["task"] == task and r["series"] not in ("curve", "mass")]
        gem = aggregate([r for r in rows if r["series"] == "gem"], ["n"])
        base = aggregate([r for r in rows if r["actor"] == "baseline"], ["n"])
        nopw = aggregate([r for r in rows if r["series"] == "no_pw"], ["n"])
        x = np.array([max(a["n"], 0.5) for a in gem])
        ax = axes[0, j]
        y, sd = np.array([a["score"] for a in gem]), np.array([a["score_std"] for a in gem])
        ax.plot(x, y, "o-", color="C0", label="GEM (K-GMM actor)")
        ax.fill_between(x, y - sd, y + sd, color="C0", alpha=0.15)
        for a in base:
            ax.errorbar(
                [max(a["n"], 0.5)],
                [a["score"]],
                [a["score_std"]],
                fmt="s",
                color="C1",
                capsize=3,
                label="fair unimodal baseline" if a is base[0] else None,
            )
        for a in nopw:
            ax.plot([a["n"]], [a["score"]], "x", color="C3", ms=9, label="no_pw")
        if task in paper:
            ax.axhline(paper[task]["GEM"], color="C0", ls=":", lw=1, label="paper GEM (D4RL, 1M)")
            ax.axhline(paper[task]["IQL"], color="C2", ls=":", lw=1, label="paper IQL (D4RL, 1M)")
        ax.set_xscale("log")
        ax.set_title(f"{task}: normalised score")
        ax.set_xlabel("candidates N (N=0 plotted at 0.5)")
        axv = axes[1, j]
        axv.plot(x, [100 * a["violation"] for a in gem], "o-", color="C0", label="GEM")
        for a in nopw:
            axv.plot([a["n"]], [100 * a["violation"]], "x", color="C3", ms=9, label="no_pw")
        axv.set_xscale("log")
        axv.set_title(f"{task}: Violation (% of steps)")
        axv.set_xlabel("candidates N")
    axes[0, 0].legend(fontsize=7)
    axes[1, 0].legend(fontsize=7)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    return path


def plot_curves(
    test: list[dict[str, Any]],
    tasks: Sequence[str],
    final_steps: dict[str, int],
    n_curve: int,
    path: Path,
) -> Path:
    from matplotlib.figure import Figure

    fig = Figure(figsize=(4.2 * len(tasks), 3.4))
    axes = fig.subplots(1, len(tasks), squeeze=False)[0]
    series = (
        ("gem", 0, "GEM actor, single-shot (N=0)", "C0", "-"),
        ("baseline", 0, "fair unimodal baseline (N=0)", "C1", "-"),
    )
    for ax, task in zip(axes, tasks, strict=True):
        for actor, n, label, color, style in series:
            rows = [
                r
                for r in test
                if r["task"] == task
                and r["actor"] == actor
                and r["config"]["n"] == n
                and (
                    r["series"] == "curve"
                    or (r["step"] == final_steps[task] and r["series"] in ("gem", "baseline"))
                )
            ]
            # the final point: the test cells' first episodes, the same starts as the curve cells
            pts = aggregate([_first_episodes(r, n_curve) for r in rows], ["step"])
            if not pts:
                continue
            x = np.array([p["step"] for p in pts])
            y, sd = np.array([p["score"] for p in pts]), np.array([p["score_std"] for p in pts])
            ax.plot(x, y, style, marker="o", ms=3, color=color, label=label)
            ax.fill_between(x, y - sd, y + sd, color=color, alpha=0.12)
        ax.set_title(f"{task}: score vs gradient steps")
        ax.set_xlabel("gradient steps")
    axes[0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    return path


def _first_episodes(row: dict[str, Any], n: int) -> dict[str, Any]:
    """A test cell reduced to its first ``n`` episodes (environments seeded 0..n-1: the same
    starts as a learning-curve cell of ``n`` episodes); a cell restored from a report's table
    (no per-episode returns) stays whole."""
    if row.get("returns") is None or len(row["returns"]) <= n:
        return row
    first = row["returns"][:n]
    ref = reference_scores(row["task"])
    score = float(np.mean([100 * (x - ref[0]) / (ref[1] - ref[0]) for x in first]))
    return {**row, "score_mean": score, "returns": first}


def lambda_label(p: dict[str, Any]) -> str:
    """``0.3`` for a constant lambda, ``1 -> 0`` for a schedule (its start and end)."""
    return f"{p['lam']:g}" if p["lam"] == p["lam_T"] else f"{p['lam']:g} -> {p['lam_T']:g}"


def plot_frontier(test: list[dict[str, Any]], tasks: Sequence[str], n: int, path: Path) -> Path:
    from matplotlib.figure import Figure

    fig = Figure(figsize=(4.2 * len(tasks), 3.4))
    axes = fig.subplots(1, len(tasks), squeeze=False)[0]
    for ax, task in zip(axes, tasks, strict=True):
        rows = [
            r
            for r in test
            if r["task"] == task
            and r["actor"] == "gem"
            and r["config"]["n"] == n
            and r["series"] in ("gem", "frontier")
        ]
        pts = aggregate(rows, ["lam", "lam_T"])  # the chosen knobs may be a schedule
        ax.plot([100 * p["violation"] for p in pts], [p["score"] for p in pts], "o-")
        for p in pts:
            ax.annotate(f"λ={lambda_label(p)}", (100 * p["violation"], p["score"]), fontsize=7)
        ax.set_xlabel("Violation (% of steps)")
        ax.set_ylabel("normalised score")
        ax.set_title(f"{task}: λ frontier at N={n}")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    return path


def _legend_right_and_save(fig: Any, row: Sequence[Any], path: Path, dpi: int) -> Path:
    """One legend for a row of panels (each label once), right of its last panel; saves."""
    handles: dict[str, Any] = {}
    for ax in row:
        for h, lab in zip(*ax.get_legend_handles_labels(), strict=True):
            handles.setdefault(lab, h)
    row[-1].legend(handles.values(), handles.keys(), fontsize=7, loc="upper left",
                   bbox_to_anchor=(1.01, 1.0))  # fmt: skip
    fig.tight_layout()
    fig.savefig(path, dpi=dpi)
    return path


def plot_iql_curves(
    per_seed: Mapping[int, Mapping[str, list[dict[str, Any]]]], name: str, ylabel: str, path: Path
) -> Path:
    """The outside IQL reference per snapshot: one panel per seed, IQL's own action beside
    GEM's rule over its critic at each N (:func:`gemkit.experiments.outside.iql_curves`)."""
    from matplotlib.figure import Figure

    seeds = list(per_seed)
    fig = Figure(figsize=(4.6 * len(seeds) + 2.4, 4.2))
    axes = fig.subplots(1, len(seeds), sharey=True, squeeze=False)
    gem = [c[0] for curves in per_seed.values() for c in curves.values() if c[0]["n"] is not None]
    colour = {n: f"C{i}" for i, n in enumerate(sorted({c["n"] for c in gem}))}
    line = dict(zip(sorted({(c["value"], c["lam"]) for c in gem}), ("-", ":", "-.", "--"),
                    strict=False))  # fmt: skip
    for ax, (seed, curves) in zip(axes[0], per_seed.items(), strict=True):
        for cells in curves.values():
            first = cells[0]
            own = first["n"] is None
            label = "IQL, its own action" if own else (
                f"GEM over IQL, N = {first['n']}, {first['value']}, lambda = {first['lam']:g}")
            style: dict[str, Any] = dict(color="k", ls="--", marker="s") if own else dict(
                marker="o", color=colour[first["n"]],
                ls=line.get((first["value"], first["lam"]), "-"))  # fmt: skip
            ax.plot([c["step"] for c in cells], [c["score_mean"] for c in cells], ms=3,
                    label=label, **style)  # fmt: skip
        ax.set_title(f"{name}, IQL seed {seed}", fontsize=9)
        ax.set_xlabel("IQL gradient steps")
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel(ylabel)
    return _legend_right_and_save(fig, axes[0], path, dpi=120)


def plot_probe_curves(rows: list[dict[str, Any]], path: Path, maze: str,
                suite: list[dict[str, Any]] | None = None) -> None:  # fmt: skip
    """``reproductions/phase1_probe.py``'s curves: score vs gradient steps, one panel per
    series kind, one line per run (and the suite's curve, mean +- std over its training seeds,
    where ``suite`` has it)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    kinds = ["fair baseline, N=0", "GEM anchor, N=0"]
    kinds += sorted({r["series"] for r in rows if r["series"].startswith("GEM, N=")})
    fig, axes = plt.subplots(1, len(kinds), figsize=(4.2 * len(kinds), 3.4), sharey=True)
    for ax, kind in zip(axes, kinds, strict=True):
        for run in sorted({r["run"] for r in rows if r["series"] == kind}):
            pts = sorted((r["step"], r["score_mean"]) for r in rows
                         if r["run"] == run and r["series"] == kind)  # fmt: skip
            ax.plot(*zip(*pts, strict=True), marker="o", ms=3, label=run)
        iql_runs = sorted({r["run"] for r in rows if r["series"] == "own action"})
        # greys from black to light, as many as there are IQL runs (a fixed list dropped runs)
        shades = [f"{0.75 * i / max(len(iql_runs) - 1, 1):.2f}" for i in range(len(iql_runs))]
        for shade, run in zip(shades, iql_runs, strict=True):
            pts = sorted((r["step"], r["score_mean"]) for r in rows if r["run"] == run)
            ax.plot(*zip(*pts, strict=True), "--", color=shade, marker="s", ms=3,
                    label=run + ", own action")  # fmt: skip
        curve = [r for r in suite or [] if r["series"] == kind]
        if curve:
            x = np.array([r["step"] for r in curve])
            y = np.array([r["score_mean"] for r in curve])
            sd = np.array([r["score_std"] for r in curve])
            label = f"suite ({curve[0]['train_seeds']} seeds x {curve[0]['episodes']} episodes)"
            ax.plot(x, y, color="C3", marker="o", ms=3, label=label)
            ax.fill_between(x, y - sd, y + sd, color="C3", alpha=0.12)
        ax.set_title(kind)
        ax.set_xlabel("gradient steps")
        ax.grid(alpha=0.3)
    axes[0].set_ylabel(f"normalised score ({maze}, test seeds)")
    axes[-1].legend(fontsize=7)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)


def plot_lab_frontier(flat: list[dict[str, Any]], path: Path, chain_n: int = 64) -> Path:
    """The selection lab's frontier (rows of :func:`gemkit.experiments.lab.lab_rows`): score
    against critic evaluations per decision and against environment steps per second, one line
    per rule over ``N``; dashed, each generative rule over its sampler's chain lengths at
    ``N = chain_n`` (where the lab swept them)."""
    from matplotlib.figure import Figure

    from gemkit.experiments.lab import is_swept

    fig = Figure(figsize=(10, 3.6))
    axes = fig.subplots(1, 2)
    for i, rule in enumerate(sorted({f["rule"] for f in flat})):
        mine = [f for f in flat if f["rule"] == rule]
        pts = sorted((f for f in mine if not is_swept(f)), key=lambda f: f["n"])
        style = {"marker": "o", "color": f"C{i}", "label": rule}
        axes[0].plot([f["critic_evals"] for f in pts], [f["score"] for f in pts], **style)
        axes[1].plot([f["env_steps_per_s"] for f in pts], [f["score"] for f in pts], **style)
        chain = sorted((f for f in mine if f["n"] == chain_n and f["chain_steps"] is not None),
                       key=lambda f: f["chain_steps"])  # fmt: skip
        if any(is_swept(f) for f in chain):
            axes[1].plot([f["env_steps_per_s"] for f in chain], [f["score"] for f in chain],
                         ls="--", marker="x", color=f"C{i}")  # fmt: skip
            for f in chain:
                axes[1].annotate(str(f["chain_steps"]), (f["env_steps_per_s"], f["score"]),
                                 fontsize=6, color=f"C{i}")  # fmt: skip
    from matplotlib.ticker import NullFormatter

    axes[0].set_xscale("log")
    axes[0].set_xlabel("critic evaluations per decision")
    axes[1].set_xscale("log")
    axes[1].xaxis.set_minor_formatter(NullFormatter())
    axes[1].set_xlabel("env steps/s (one CPU thread); dashed: chain length")
    for ax in axes:
        ax.set_ylabel("normalised score")
    axes[0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    return path


def plot_oracle_bins(bins: Sequence[Mapping[str, Any]], path: Path) -> Path:
    """The candidate oracle's :func:`~gemkit.eval.oracle.value_bins`: per task (and snapshot),
    each candidate's branch return (standardised within its set) and fall rate against its
    place in the critic's order of the set, one line per N. Flat lines: the critic's order says
    nothing about the outcome."""
    from matplotlib.figure import Figure

    groups = sorted({(b["task"], str(b["step"])) for b in bins})
    fig = Figure(figsize=(3.0 * len(groups) + 1.6, 5.6))
    axes = fig.subplots(2, len(groups), sharey="row", squeeze=False)
    ns = sorted({b["n"] for b in bins})
    for col, (task, step) in enumerate(groups):
        for b in (b for b in bins if (b["task"], str(b["step"])) == (task, step)):
            x = (np.arange(len(b["fell"])) + 0.5) / len(b["fell"])
            style = dict(marker="o", ms=3, color=f"C{ns.index(b['n'])}", label=f"N = {b['n']}")
            axes[0][col].plot(x, b["return_z"], **style)
            axes[1][col].plot(x, b["fell"], **style)
        axes[0][col].set_title(task + ("" if step == "final" else f"\n(snapshot {step})"),
                               fontsize=8)  # fmt: skip
        axes[0][col].axhline(0.0, color="k", lw=0.5)
        axes[1][col].set_xlabel("critic's rank in the set\n(0 lowest, 1 highest)", fontsize=8)
        for ax in axes[:, col]:
            ax.grid(alpha=0.3)
    axes[0][0].set_ylabel("branch return, z within the set")
    axes[1][0].set_ylabel("fraction of branches that fell")
    return _legend_right_and_save(fig, axes[0], path, dpi=110)
