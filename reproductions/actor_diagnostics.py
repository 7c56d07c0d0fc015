"""Why does GEM's GMM actor trail the unimodal one? Measurements on trained checkpoints.

For each checkpoint ``<runs>/<maze>-s<seed>`` (the maze reproduction's runs), on ``--states``
dataset states drawn with a seeded generator, it compares GEM's K-component actor with the fair
same-critic unimodal baseline trained in the same run:

- ``clipped_data``: share of the dataset's action coordinates at the box edge (|a| >= 0.999);
- ``sat_mode`` / ``sat_baseline``: share of coordinates of the actor's mode (the anchor) / the
  baseline's mean at the edge (|a| >= 0.99);
- ``eff_components``: ``exp(H(w(s)))``, the effective number of gating components; ``w_max``: the
  mean top gating weight;
- ``logstd_mode`` / ``logstd_baseline``: mean log sigma of the anchor's component / the baseline;
- ``nll_actor`` / ``nll_baseline``: mean negative log-likelihood of the dataset actions;
- ``q_mode`` / ``q_baseline`` / ``q_data``: the ensemble-mean Q (the same critic) of the anchor,
  the baseline's mean and the dataset action; the critic's own view of which is better;
- ``dist_mode_baseline``: mean Euclidean distance between the anchor and the baseline's mean;
  ``dist_mode_data`` / ``dist_baseline_data``: from the anchor / the baseline's mean to the
  dataset action;
- ``q_spread``: on the first 2,000 states, the std over 64 actor candidates of the
  ensemble-mean Q (how much the critic tells candidates apart), against ``q_ens_std``, the
  ensemble's std at a candidate (its disagreement), and ``adv_std``, the std of
  ``Q(s, a_data) - V(s)`` (what the guidance weight ``exp(alpha A)`` sees).

With ``--iql DIR`` it also measures d3rlpy IQL runs of ``reproductions/iql_reference.py``
(``DIR/<task>-s<seed>``, the snapshot at ``--step``, default the last) on the same states, with
the same critic columns: ``q_mode`` is then IQL's deterministic action, ``q_spread`` is over 64
samples of its policy, ``q_ens_std`` over its two critics; whether one critic tells candidate
actions apart better than the other.

Usage::

    python reproductions/actor_diagnostics.py --runs runs/ckpt \
        --out docs/results/actor_diagnostics.json
    python reproductions/actor_diagnostics.py --runs runs/ckpt --only medium-s0 medium-s1 \
        medium-s2 --step 20000 60000 100000 200000 300000 --out docs/results/actor_evolution.json
"""

from __future__ import annotations

import argparse
import functools
import json
import math
from pathlib import Path
from typing import Any

import torch

ROOT = Path(__file__).resolve().parents[1]


@functools.lru_cache(maxsize=2)
def _data(dataset_id: str) -> Any:
    from gemkit.data import load

    return load(dataset_id)


def diagnose(run: Path, states: int, seed: int, step: int | None = None) -> dict[str, Any]:
    from gemkit.models import load_models
    from gemkit.train import models_at

    found = run if step is None else models_at(run, step)
    if found is None:
        raise KeyError(f"no models at step {step}")
    models = load_models(found)
    data = _data(models.meta["dataset_id"])  # one read per dataset
    g = torch.Generator().manual_seed(seed)
    idx = torch.randint(0, len(data), (states,), generator=g)
    s = models.normalize_obs(data.observations[idx])
    a = data.actions[idx].float()
    actor, base, critic = models.actor, models.baseline, models.critic
    assert actor is not None and base is not None and critic is not None
    with torch.no_grad():
        pi = actor(s)
        w = pi.log_weights.exp()  # [B, K]
        k = w.argmax(-1)
        rows = torch.arange(states)
        mode = pi.means[rows, k]  # [B, A]
        b = base(s)
        bmean = b.means[:, 0]
        ent = -(w * pi.log_weights).sum(-1)
        nll_actor = -actor.log_prob(s, a)
        nll_base = -base.log_prob(s, a)

        def q(act: torch.Tensor) -> float:
            return float(critic(s, act).mean().item())

        out = {
            "run": run.name,
            "step": models.meta.get("step"),
            "clipped_data": float((a.abs() >= 0.999).float().mean()),
            "sat_mode": float((mode.abs() >= 0.99).float().mean()),
            "sat_baseline": float((bmean.abs() >= 0.99).float().mean()),
            "eff_components": float(ent.exp().mean()),
            "w_max": float(w.max(-1).values.mean()),
            "logstd_mode": float(pi.log_std[k].mean()),
            "logstd_baseline": float(b.log_std[0].mean()),
            "nll_actor": float(nll_actor.mean()),
            "nll_baseline": float(nll_base.mean()),
            "q_mode": q(mode),
            "q_baseline": q(bmean),
            "q_data": q(a),
            "dist_mode_baseline": float((mode - bmean).norm(dim=-1).mean()),
            "dist_mode_data": float((mode - a).norm(dim=-1).mean()),
            "dist_baseline_data": float((bmean - a).norm(dim=-1).mean()),
        }
        assert models.value is not None
        out.update(critic_stats(critic, models.value, s, a, actor.sample, g))
    return out


def critic_stats(critic: Any, value: Any, s: torch.Tensor, a: torch.Tensor, sample: Any,
                 g: torch.Generator) -> dict[str, float]:
    """The critic columns: ``q_spread`` (std over 64 candidates of ``sample``, on the first
    2,000 states, of the ensemble-mean Q), ``q_ens_std`` (the members' std at a candidate) and
    ``adv_std`` (std of the ensemble-mean ``Q(s, a_data) - V(s)``). ``critic`` maps
    ``[B, M, S], [B, M, A] -> [E, B, M]``; ``s`` is what it and ``value`` take."""  # fmt: skip
    m = min(len(s), 2_000)
    cands = sample(s[:m], 64, generator=g)  # [m, 64, A]
    qs = critic(s[:m].unsqueeze(1).expand(-1, 64, -1), cands)  # [E, m, 64]
    adv = critic(s.unsqueeze(1), a.unsqueeze(1)).mean(0)[:, 0] - value(s).reshape(-1)
    return {"q_spread": float(qs.mean(0).std(-1).mean()),
            "q_ens_std": float(qs.std(0, unbiased=False).mean()),
            "adv_std": float(adv.std())}  # fmt: skip


def diagnose_iql(run: Path, states: int, seed: int, step: int | None = None) -> dict[str, Any]:
    """The critic columns (and its action's) of a d3rlpy IQL run's snapshot at ``step``."""
    from gemkit.adapters import from_d3rlpy, policy_from_d3rlpy
    from gemkit.experiments.outside import iql_snapshot
    from gemkit.experiments.tasks import dataset_id

    if step is None:
        step = int(json.loads((run / "state.json").read_text())["step"])
    path = iql_snapshot(run, step)
    if not path.is_file():
        raise KeyError(f"no IQL snapshot at step {step}")
    critic = from_d3rlpy(path)
    anchor, source = policy_from_d3rlpy(critic.algo)
    data = _data(dataset_id(run.name.rsplit("-s", 1)[0]))
    g = torch.Generator().manual_seed(seed)
    idx = torch.randint(0, len(data), (states,), generator=g)  # the same states as diagnose()
    s, a = data.observations[idx].float(), data.actions[idx].float()
    v_func, scaler = critic.algo.impl.modules.value_func, critic.algo.config.observation_scaler

    def value(x: torch.Tensor) -> torch.Tensor:  # IQL's V on its scaled observations
        return v_func(scaler.transform(x) if scaler else x)

    with torch.no_grad():
        pi = anchor(s)

        def q(act: torch.Tensor) -> float:
            return float(critic(s.unsqueeze(1), act.unsqueeze(1)).mean().item())

        out = {"run": f"iql:{run.name}", "step": step,
               "sat_mode": float((pi.abs() >= 0.99).float().mean()),
               "q_mode": q(pi), "q_data": q(a),
               "dist_mode_data": float((pi - a).norm(dim=-1).mean())}  # fmt: skip
        out.update(critic_stats(critic, value, s, a, source.sample, g))
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--runs", type=Path, required=True)
    p.add_argument("--out", type=Path, default=ROOT / "docs" / "results" / "actor_diagnostics.json")
    p.add_argument("--states", type=int, default=20_000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--step", type=int, nargs="*", default=[None],
                   help="use each run's snapshot at these steps (one row per run and step)")
    p.add_argument("--only", nargs="*", default=None, help="only these run names")
    p.add_argument("--iql", type=Path, default=None,
                   help="also d3rlpy IQL runs of iql_reference.py here (the --only tasks' seeds)")
    args = p.parse_args()
    torch.set_num_threads(1)
    def gemkit_done(run: Path) -> bool:
        return (run / "done").is_file() or (run / "models.json").is_file()

    sources = [(args.runs, diagnose, gemkit_done, "", (AssertionError, KeyError))]
    if args.iql is not None:
        sources.append((args.iql, diagnose_iql, lambda run: True, "iql:", (KeyError,)))
    rows = []
    for root, fn, ready, tag, skippable in sources:
        for run in sorted(root.iterdir()):
            if (args.only is not None and run.name not in args.only) or not ready(run):
                continue
            for step in args.step:
                try:
                    rows.append(fn(run, args.states, args.seed, step))
                except skippable as exc:
                    print(f"skip {tag}{run.name} at step {step}: {exc!r}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(rows, indent=2) + "\n")
    keys = list(dict.fromkeys(k for r in rows for k in r if k != "run"))
    print("run".ljust(12) + "".join(k[:14].rjust(15) for k in keys))
    for r in rows:
        cells = [
            f"{r[k]:.3f}" if isinstance(r.get(k), float) and math.isfinite(r[k])
            else str(r.get(k, "-"))
            for k in keys
        ]
        print(r["run"].ljust(12) + "".join(c.rjust(15) for c in cells))


if __name__ == "__main__":
    main()
