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
import sys
import time
from pathlib import Path
from typing import Any

from gemkit.experiments import TEST_SEEDS, append_cell, dataset_id, mean_std, read_cell_file
from gemkit.experiments.figures import plot_probe_curves
from gemkit.experiments.plan import log
from gemkit.experiments.runs import iql_snapshot
from gemkit.experiments.runs import parse_labelled_run as run_arg

STATS_TRANSITIONS = 20_000


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
    from gemkit.data import load
    from gemkit.eval.critic_stats import checkpoint_statistics, fixed_transitions
    from gemkit.experiments.outside import iql_statistics

    batch = fixed_transitions(load(dataset_id(args.maze)), STATS_TRANSITIONS)
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
        append_cell(args.cells, row)
        done[key] = row
        log(f"{run} {step} {series}: {s.score_mean:.1f} ({time.perf_counter() - t0:.0f}s)")

    knobs = {"beta": 1.0, "lam": args.lam, "lam_T": args.lam}
    names = ["fair baseline, N=0", "GEM anchor, N=0", f"GEM, N={args.n}"]
    for step in args.steps:
        for label, run_dir in args.run:
            keys = [f"{args.maze}|{label}|{step}|{name}|{args.lam:g}" for name in names]
            where = models_at(run_dir, step)
            if where is None or all(k in done for k in keys):
                continue  # no snapshot there, or every cell cached: load nothing
            m = load_models(where)
            stats = checkpoint_statistics(m, batch)
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

                cell(key, label, step, "own action", own, iql_statistics(algo, batch))
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
    plot_probe_curves(rows, args.out.with_suffix(".png"), args.maze, suite)
    log(f"wrote {args.out} and {args.out.with_suffix('.png')}")


if __name__ == "__main__":
    main()
