"""Which half of gemkit's Phase I trails d3rlpy's IQL: swap critics and proposals between them.

On one maze, seed and step, evaluates on ``reproductions/mazes.py``'s test seeds (30 episodes)
GEM's selection rule (``beta = 1``, ``lambda``, N candidates) with

- gemkit's critic and gemkit's GEM actor (``N = 0``: the anchor alone, and ``N``),
- d3rlpy IQL's critic with gemkit's actor proposing,
- gemkit's critic with IQL's policy proposing (its action the anchor),

beside IQL's own action and GEM over IQL (``iql_reference.py test``). The support is always
gemkit's behavior GMM from the same run and step.

Usage::

    python reproductions/iql_cross.py --maze medium --seed 0 --step 180000 \
        --iql-runs RUNS/iql --gem-runs RUNS/mazes
"""

from __future__ import annotations

import argparse
from pathlib import Path

from gemkit.experiments import TEST_SEEDS, append_cell, dataset_id
from gemkit.experiments.runs import iql_snapshot


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--maze", required=True, choices=["umaze", "medium", "large"])
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--step", type=int, required=True)
    p.add_argument("--iql-runs", default="runs/iql")
    p.add_argument("--gem-runs", default="runs/mazes")
    p.add_argument("--n", type=int, default=64)
    p.add_argument("--lam", type=float, default=0.003)
    p.add_argument("--episodes", type=int, default=30)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--out", type=Path, default=None, help="append the rows to this JSONL file")
    args = p.parse_args(argv)

    import torch

    from gemkit import compose
    from gemkit.adapters import from_d3rlpy, load_d3rlpy, policy_from_d3rlpy
    from gemkit.eval.runs import evaluate_config
    from gemkit.models import load_models
    from gemkit.train import models_at

    torch.set_num_threads(args.threads)
    algo = load_d3rlpy(iql_snapshot(Path(args.iql_runs) / f"{args.maze}-s{args.seed}", args.step))
    anchor, source = policy_from_d3rlpy(algo)
    gem_run = Path(args.gem_runs) / f"{args.maze}-s{args.seed}"
    models = models_at(gem_run, args.step) or gem_run
    knobs = {"beta": 1.0, "lam": args.lam}

    def gem_models(iql_critic: bool = False) -> object:
        m = load_models(models)
        if iql_critic:
            m.critic = from_d3rlpy(algo)
        return m

    cells = [
        ("gemkit critic + gemkit actor, N=0", dict(models=gem_models(), n=0)),
        (f"gemkit critic + gemkit actor, N={args.n}", dict(models=gem_models(), n=args.n)),
        (f"IQL critic + gemkit actor proposing, N={args.n}",
         dict(models=gem_models(iql_critic=True), n=args.n)),
        (f"gemkit critic + IQL policy proposing, N={args.n}",
         dict(models=gem_models(), anchor=anchor, proposer=source, n=args.n)),
    ]  # fmt: skip
    for label, kw in cells:
        sel = compose(preset="gem", **kw, **knobs)
        s = evaluate_config(None, None, dataset_id(args.maze), episodes=args.episodes,
                            seeds=TEST_SEEDS, num_envs=min(args.episodes, 30),
                            policy=sel)  # fmt: skip
        row = {"maze": args.maze, "train_seed": args.seed, "step": args.step, "cell": label,
               "lam": args.lam, "episodes": args.episodes, "score_mean": s.score_mean}  # fmt: skip
        print(f"{label}: {s.score_mean:.1f}", flush=True)
        if args.out is not None:
            append_cell(Path(args.out), row)


if __name__ == "__main__":
    main()
