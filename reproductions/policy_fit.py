"""How closely each single-shot Gaussian policy fits the dataset's actions.

For gemkit runs (the fair ``K = 1`` baseline, ``--run LABEL=DIR``) and d3rlpy IQL runs
(``--iql LABEL=DIR``, its policy), at each ``--steps`` step with a snapshot: the mean squared
error of the policy's mean action to the dataset action, and the mean negative log-likelihood
of the dataset action under the policy's Gaussian, on 100,000 fixed transitions. Prints a table
and writes ``--out`` (JSON).

Usage::

    python reproductions/policy_fit.py --maze medium \
        --run "E=2 256x256=RUNS/probe/medium-e2w256-s0" --iql "d3rlpy IQL=RUNS/iql/medium-s0" \
        --steps 160000 180000 200000 --out fit.json
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from gemkit.experiments import dataset_id
from gemkit.experiments.runs import iql_snapshot
from gemkit.experiments.runs import parse_labelled_run as run_arg

TRANSITIONS = 100_000


def gaussian_fit(mean: Tensor, log_std: Tensor, actions: Tensor) -> dict[str, float]:
    """``mse`` of ``mean [B, A]`` to ``actions [B, A]`` and the mean ``nll`` of the actions under
    ``Normal(mean, exp(log_std))`` (``log_std`` broadcasts), summed over action dims."""
    var = torch.exp(2 * log_std)
    nll = 0.5 * ((actions - mean).square() / var + 2 * log_std + math.log(2 * math.pi))
    return {"mse": float((mean - actions).square().mean()), "nll": float(nll.sum(-1).mean())}


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--maze", default="medium", choices=["umaze", "medium", "large"])
    p.add_argument("--run", type=run_arg, action="append", default=[], metavar="LABEL=DIR")
    p.add_argument("--iql", type=run_arg, action="append", default=[], metavar="LABEL=DIR")
    p.add_argument("--steps", type=int, nargs="+", required=True)
    p.add_argument("--out", type=Path, required=True)
    args = p.parse_args(argv)

    from gemkit.data import load
    from gemkit.eval.io import write_json
    from gemkit.models import load_models
    from gemkit.train import models_at

    torch.set_num_threads(1)
    tr = load(dataset_id(args.maze))
    g = torch.Generator().manual_seed(3)
    idx = torch.randperm(tr.observations.shape[0], generator=g)[:TRANSITIONS]
    obs, act = tr.observations[idx].float(), tr.actions[idx].float()
    rows: list[dict[str, Any]] = []
    with torch.no_grad():
        for step in args.steps:
            for label, run in args.run:
                where = models_at(run, step)
                if where is None:
                    continue
                m = load_models(where)
                params = m.unimodal().actor(m.normalize_obs(obs))
                fit = gaussian_fit(params.means[:, 0], params.log_std[0], act)
                rows.append({"run": label, "step": step, **fit})
            for label, run in args.iql:
                snap = iql_snapshot(run, step)
                if not snap.is_file():
                    continue
                from gemkit.adapters import load_d3rlpy

                algo = load_d3rlpy(snap)
                out = algo.impl.modules.policy(algo.observation_scaler.transform(obs))
                fit = gaussian_fit(out.squashed_mu, out.logstd, act)
                rows.append({"run": label, "step": step, **fit})
    for r in rows:
        print(f"{r['run']:<32} {r['step']:>8} mse {r['mse']:.4f} nll {r['nll']:.4f}")
    write_json(args.out, {"what": __doc__.split("\n")[0], "transitions": TRANSITIONS,
                          "command": "python reproductions/policy_fit.py " + " ".join(sys.argv[1:]),
                          "rows": rows})  # fmt: skip


if __name__ == "__main__":
    main()
