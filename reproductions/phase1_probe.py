"""Phase I recipes side by side: learning curves and critic statistics against d3rlpy's IQL.

Each ``--run LABEL=DIR`` is a ``gemkit train`` run (with ``--snapshot-every``) on one maze; each
``--iql LABEL=DIR`` a ``reproductions/iql_reference.py train`` run on the same data. At
every ``--steps`` step where a run has a snapshot, this scores on ``reproductions/mazes.py``'s
test seeds (30 episodes):

- gemkit runs: the fair unimodal baseline single-shot (``Models.unimodal()``, ``N = 0``), GEM's
  anchor (``N = 0``) and GEM at ``N = --n`` (``beta = 1``, ``lambda = --lam`` constant);
- the IQL runs: their own deterministic action;

``--suite-csv`` (``docs/results/mazes_cells.csv``, the committed table of
``reproductions/mazes.py``) adds the suite's own learning curves for the maze (its ``curve``
cells: GEM's anchor and the fair baseline, single-shot, mean +- std over training seeds), so an
IQL run can be set beside the suite without the suite's checkpoints. It also
measures each critic on the same 20,000 dataset transitions
(:func:`gemkit.eval.critic_statistics`: the level of ``min_e Q_e`` and ``V``, the advantage
spread, the guidance weights' effective sample size, the Bellman residual). Scores are cached
in ``--cells`` (JSONL; finished cells are skipped), so a run still training can be scored
again later. Writes ``--out`` JSON (every cell and statistic, the commands) and a PNG of the
curves beside it.

Usage::

    python reproductions/phase1_probe.py --maze medium \
        --run "E=5 128x128=RUNS/ckpt/medium-s0" --run "E=2 256x256=RUNS/probe/medium-e2w256-s0" \
        --iql "d3rlpy IQL (2 x 256x256)=RUNS/iql/medium-s0" --steps 20000 40000 ... 200000 \
        --cells RUNS/probe/cells.jsonl --out docs/results/phase1_probe.json
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

from gemkit.experiments import TEST_SEEDS, dataset_id, mean_std, read_cell_file
from gemkit.experiments.runs import iql_snapshot
from gemkit.experiments.runs import parse_labelled_run as run_arg

STATS_TRANSITIONS = 20_000


def _log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def _batch(maze: str) -> dict[str, Any]:
    """The fixed transitions every critic is measured on (raw observations)."""
    import torch

    from gemkit.data import load

    tr = load(dataset_id(maze))
    g = torch.Generator().manual_seed(0)
    n = min(STATS_TRANSITIONS, tr.observations.shape[0])
    idx = torch.randperm(tr.observations.shape[0], generator=g)[:n]
    return {
        "obs": tr.observations[idx].float(),
        "act": tr.actions[idx].float(),
        "next_obs": tr.next_observations[idx].float(),
        "rewards": tr.rewards[idx].float(),
        "terminals": tr.terminals[idx].float(),
    }


def gemkit_stats(models: Any, batch: dict[str, Any]) -> dict[str, Any]:
    """Critic statistics of a gemkit checkpoint (its own observation and reward scaling)."""
    import torch

    from gemkit.eval.critic_stats import critic_statistics

    cfg = models.meta.get("train_config", {})
    with torch.no_grad():
        obs, nxt = models.normalize_obs(batch["obs"]), models.normalize_obs(batch["next_obs"])
        q = models.critic(obs, batch["act"])
        v, nv = models.value(obs), models.value(nxt)
    rewards = batch["rewards"] * float(models.meta.get("reward_scale", 1.0))
    return critic_statistics(q, v, nv, rewards, batch["terminals"],
                             alpha=cfg.get("alpha", 3.0),
                             discount=cfg.get("discount", 0.99)).row()  # fmt: skip


def iql_stats(algo: Any, batch: dict[str, Any]) -> dict[str, Any]:
    """Critic statistics of a d3rlpy IQL (its online critics, value and observation scaler)."""
    import torch

    from gemkit.eval.critic_stats import critic_statistics

    mods = algo.impl.modules
    scaler = algo.observation_scaler
    with torch.no_grad():
        obs, nxt = scaler.transform(batch["obs"]), scaler.transform(batch["next_obs"])
        q = torch.stack([f(obs, batch["act"]).q_value.squeeze(-1) for f in mods.q_funcs])
        v = mods.value_func(obs).squeeze(-1)
        nv = mods.value_func(nxt).squeeze(-1)
    return critic_statistics(q, v, nv, batch["rewards"], batch["terminals"],
                             alpha=algo.config.weight_temp,
                             discount=algo.config.gamma).row()  # fmt: skip


SUITE_SERIES = {"baseline": "fair baseline, N=0", "gem": "GEM anchor, N=0"}


def suite_curves(path: Path, maze: str) -> list[dict[str, Any]]:
    """The suite's learning curves for ``maze`` from ``mazes.py``'s cells CSV: per step and actor,
    the mean and std over training seeds of the single-shot ``curve`` cells."""
    import csv

    groups: dict[tuple[str, int], list[float]] = {}
    episodes: dict[tuple[str, int], int] = {}
    with path.open() as f:
        for r in csv.DictReader(f):
            if r["maze"] == maze and r["series"] == "curve" and r["actor"] in SUITE_SERIES:
                key = (SUITE_SERIES[r["actor"]], int(r["step"]))
                groups.setdefault(key, []).append(float(r["score_mean"]))
                episodes[key] = int(r["episodes_per_seed"])
    if not groups:
        raise SystemExit(f"{path} has no learning-curve cells for {maze}: give the CSV that "
                         "`python reproductions/mazes.py report` wrote.")  # fmt: skip
    out = []
    for (series, step), scores in sorted(groups.items()):
        mean, std = mean_std(scores)
        out.append({"series": series, "step": step, "score_mean": mean, "score_std": std,
                    "train_seeds": len(scores),
                    "episodes": episodes[series, step]})  # fmt: skip
    return out


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--maze", required=True, choices=["umaze", "medium", "large"])
    p.add_argument("--run", type=run_arg, action="append", default=[], metavar="LABEL=DIR")
    p.add_argument("--iql", type=run_arg, action="append", default=[], metavar="LABEL=DIR",
                   help="a reproductions/iql_reference.py run")
    p.add_argument("--steps", type=int, nargs="+", required=True)
    p.add_argument("--n", type=int, default=64)
    p.add_argument("--lam", type=float, default=0.003)
    p.add_argument("--episodes", type=int, default=30)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--suite-csv", type=Path, default=None,
                   help="mazes.py's cells CSV: add the suite's learning curves")  # fmt: skip
    p.add_argument("--cells", type=Path, required=True, help="JSONL cache of finished cells")
    p.add_argument("--out", type=Path, required=True, help="JSON of cells and statistics")
    args = p.parse_args(argv)
    if not args.run and not args.iql:
        p.error("give at least one --run or --iql")
    if args.suite_csv is not None and not args.suite_csv.is_file():
        p.error(f"--suite-csv {args.suite_csv}: no such file")

    import torch

    from gemkit import compose
    from gemkit.eval.runs import evaluate_config
    from gemkit.models import load_models
    from gemkit.train import models_at

    torch.set_num_threads(args.threads)
    batch = _batch(args.maze)
    done = read_cell_file(args.cells)
    args.cells.parent.mkdir(parents=True, exist_ok=True)

    def cell(key: str, run: str, step: int, series: str, policy: Any, stats: dict[str, Any]
             ) -> None:  # fmt: skip
        if key in done:
            return
        t0 = time.perf_counter()
        s = evaluate_config(None, None, dataset_id(args.maze), episodes=args.episodes,
                            seeds=TEST_SEEDS, num_envs=min(args.episodes, 30),
                            policy=policy)  # fmt: skip
        row = {"key": key, "maze": args.maze, "run": run, "step": step, "series": series,
               "score_mean": s.score_mean, "success_rate": s.row().get("success_rate"),
               "episodes": args.episodes, "eval_seeds": list(TEST_SEEDS),
               "critic": stats}  # fmt: skip
        with args.cells.open("a") as f:
            f.write(json.dumps(row) + "\n")
        done[key] = row
        _log(f"{run} {step} {series}: {s.score_mean:.1f} ({time.perf_counter() - t0:.0f}s)")

    knobs = {"beta": 1.0, "lam": args.lam, "lam_T": args.lam}
    names = ["fair baseline, N=0", "GEM anchor, N=0", f"GEM, N={args.n}"]
    for step in args.steps:
        for label, run_dir in args.run:
            keys = [f"{args.maze}|{label}|{step}|{name}|{args.lam:g}" for name in names]
            where = models_at(run_dir, step)
            if where is None or all(k in done for k in keys):
                continue  # no snapshot there, or every cell cached: load nothing
            m = load_models(where)
            stats = gemkit_stats(m, batch)
            selectors = [
                compose(preset="gem", models=m.unimodal(), n=0, **knobs),
                compose(preset="gem", models=m, n=0, **knobs),
                compose(preset="gem", models=m, n=args.n, **knobs),
            ]
            for key, name, sel in zip(keys, names, selectors, strict=True):
                cell(key, label, step, name, sel, stats)
        for label, iql_dir in args.iql:
            key = f"{args.maze}|{label}|{step}|own action"
            snap = iql_snapshot(iql_dir, step)
            if snap.is_file() and key not in done:
                from gemkit.adapters import load_d3rlpy

                algo = load_d3rlpy(snap)

                def own(states: torch.Tensor, algo: Any = algo) -> torch.Tensor:
                    return torch.as_tensor(algo.predict(states.cpu().numpy()))

                cell(key, label, step, "own action", own, iql_stats(algo, batch))
    write_outputs(args, list(done.values()))


def write_outputs(args: argparse.Namespace, rows: list[dict[str, Any]]) -> None:
    """The JSON of the cells of this maze and these runs, and the PNG of the curves."""
    from gemkit.eval.io import write_json

    runs = {label for label, _ in [*args.run, *args.iql]}
    rows = sorted((r for r in rows if r["maze"] == args.maze and r["run"] in runs),
                  key=lambda r: (r["run"], r["series"], r["step"]))  # fmt: skip
    suite = suite_curves(args.suite_csv, args.maze) if args.suite_csv else []
    write_json(args.out, {
        "what": "Phase I recipes against d3rlpy's IQL: scores on the test seeds and critic "
                f"statistics on {STATS_TRANSITIONS} fixed dataset transitions",
        "command": "python reproductions/phase1_probe.py " + " ".join(sys.argv[1:]),
        "cells": rows,
        **({"suite_curves": suite, "suite_csv": str(args.suite_csv)} if suite else {}),
    })  # fmt: skip
    plot_curves(rows, args.out.with_suffix(".png"), args.maze, suite)
    _log(f"wrote {args.out} and {args.out.with_suffix('.png')}")


def plot_curves(rows: list[dict[str, Any]], path: Path, maze: str,
                suite: list[dict[str, Any]] | None = None) -> None:  # fmt: skip
    """Score vs gradient steps, one panel per series kind, one line per run (and the suite's
    curve, mean +- std over its training seeds, where ``suite`` has it)."""
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
        pts = [r for r in suite or [] if r["series"] == kind]
        if pts:
            import numpy as np

            x = np.array([r["step"] for r in pts])
            y = np.array([r["score_mean"] for r in pts])
            sd = np.array([r["score_std"] for r in pts])
            label = f"suite ({pts[0]['train_seeds']} seeds x {pts[0]['episodes']} episodes)"
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


if __name__ == "__main__":
    main()
