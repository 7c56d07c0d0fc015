"""The actor update alone: advantage-weighted regression on fixed guidance weights.

Separates the actor half of Phase I from its critic. The guidance weights
``g = min(exp(alpha * A), 100)`` of every dataset transition are computed once from a frozen
critic and value (a gemkit checkpoint, a d3rlpy IQL snapshot, or all ones: behaviour
cloning), then a ``K = 1`` Gaussian actor is trained on them alone (Adam 3e-4, batch 256,
256x256, standardised observations, initialisation and minibatches from one seeded generator)
and scored single-shot on ``reproductions/mazes.py``'s test seeds (30 episodes) at the
``--eval-at`` steps.

Two actors with the same objective:

- ``gemkit``: :class:`gemkit.models.ConditionalGMM` with ``K = 1`` and gemkit's initialisation
  (the fair baseline's actor);
- ``d3rlpy``: d3rlpy's IQL policy written out (``tanh`` mean head, state-independent log std
  ``-5 + 7 sigmoid(p)``, ``p`` starting at 0), initialised like ``nn.Linear``.

Rows are appended to ``--out`` (JSONL).

Usage::

    python reproductions/actor_isolation.py --maze medium --actor gemkit \
        --weights iql:RUNS/iql/medium-s0/snapshots/step_00180000.d3 --out RUNS/actor_iso.jsonl
    python reproductions/actor_isolation.py --maze medium --actor d3rlpy --weights uniform ...
    python reproductions/actor_isolation.py --maze medium --actor gemkit \
        --weights gemkit:RUNS/probe/medium-e2w256-s0 ...
"""

from __future__ import annotations

import argparse
import json
import math
import time
from collections.abc import Callable
from pathlib import Path

import torch
from torch import Tensor, nn

from gemkit.experiments import TEST_SEEDS, append_cell, dataset_id

HIDDEN = (256, 256)
CHUNK = 65_536


class D3rlpyStylePolicy(nn.Module):
    """d3rlpy 2.8's IQL policy (``NormalPolicy`` with ``use_std_parameter=True``), written out."""

    def __init__(self, state_dim: int, action_dim: int, hidden: tuple[int, ...] = HIDDEN,
                 min_logstd: float = -5.0, max_logstd: float = 2.0) -> None:  # fmt: skip
        from gemkit.models.mlp import mlp

        super().__init__()
        self.encoder = mlp(state_dim, hidden)  # Linear -> ReLU per width, like d3rlpy's encoder
        self.mu = nn.Linear(hidden[-1], action_dim)
        self.logstd = nn.Parameter(torch.zeros(1, action_dim))
        self.min_logstd, self.max_logstd = min_logstd, max_logstd

    def forward(self, states: Tensor) -> tuple[Tensor, Tensor]:
        """``(tanh mean [B, A], log std [1, A])``."""
        mean = torch.tanh(self.mu(self.encoder(states)))
        span = self.max_logstd - self.min_logstd
        return mean, self.min_logstd + torch.sigmoid(self.logstd) * span

    def log_prob(self, states: Tensor, actions: Tensor) -> Tensor:
        """``log Normal(a; tanh mu(s), sigma)`` summed over action dims: ``[B]``."""
        mean, logstd = self(states)
        return torch.distributions.Normal(mean, logstd.exp()).log_prob(actions).sum(-1)


def init_like_linear(module: nn.Module, generator: torch.Generator) -> None:
    """``nn.Linear``'s default initialisation, drawn from ``generator``."""
    with torch.no_grad():
        for m in module.modules():
            if isinstance(m, nn.Linear):
                bound = 1.0 / math.sqrt(m.in_features)
                nn.init.uniform_(m.weight, -bound, bound, generator=generator)
                nn.init.uniform_(m.bias, -bound, bound, generator=generator)


@torch.no_grad()
def guidance_weights(spec: str, obs: Tensor, act: Tensor) -> Tensor:
    """``[T]`` weights of every transition: ``uniform``, ``iql:SNAPSHOT.d3`` or ``gemkit:DIR``
    (``A = min_e Q_e(s, a) - V(s)``; IQL's target critics, as its actor reads them)."""
    if spec == "uniform":
        return torch.ones(obs.shape[0])
    kind, _, path = spec.partition(":")
    adv = []
    if kind == "iql":
        from gemkit.adapters import load_d3rlpy

        algo = load_d3rlpy(Path(path))
        mods, scaler, alpha = algo.impl.modules, algo.observation_scaler, algo.config.weight_temp
        for i in range(0, obs.shape[0], CHUNK):
            o, u = scaler.transform(obs[i : i + CHUNK]), act[i : i + CHUNK]
            q = torch.stack([f(o, u).q_value.squeeze(-1) for f in mods.targ_q_funcs]).amin(0)
            adv.append(q - mods.value_func(o).squeeze(-1))
    elif kind == "gemkit":
        from gemkit.models import load_models

        m = load_models(path)
        alpha = m.meta.get("train_config", {}).get("alpha", 3.0)
        for i in range(0, obs.shape[0], CHUNK):
            o, u = m.normalize_obs(obs[i : i + CHUNK]), act[i : i + CHUNK]
            adv.append(m.critic(o, u).amin(0) - m.value(o))
    else:
        raise SystemExit(f"--weights must be uniform, iql:PATH or gemkit:DIR, got {spec!r}")
    from gemkit.train.losses import guidance_weight

    return guidance_weight(torch.cat(adv), alpha)


LogLik = Callable[[Tensor, Tensor], Tensor]
Act = Callable[[Tensor], Tensor]


def make_actor(
    kind: str, state_dim: int, action_dim: int, generator: torch.Generator
) -> tuple[nn.Module, LogLik, Act]:
    """The actor, its per-pair log-likelihood ``(s, a) -> [B]`` and its action ``s -> [B, A]``."""
    if kind == "gemkit":
        from gemkit.models import ConditionalGMM
        from gemkit.train.init import init_parameters

        gmm = ConditionalGMM(state_dim, action_dim, 1, hidden=HIDDEN)
        init_parameters(gmm, generator, -1.0)

        def gmm_ll(s: Tensor, a: Tensor) -> Tensor:
            return gmm.log_joint(gmm(s), a.unsqueeze(1)).squeeze(1).squeeze(-1)

        return gmm, gmm_ll, gmm.mode
    policy = D3rlpyStylePolicy(state_dim, action_dim)
    init_like_linear(policy, generator)
    return policy, policy.log_prob, lambda s: policy(s)[0]


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--maze", default="medium", choices=["umaze", "medium", "large"])
    p.add_argument("--actor", required=True, choices=["gemkit", "d3rlpy"])
    p.add_argument("--weights", required=True, help="uniform | iql:SNAPSHOT.d3 | gemkit:DIR")
    p.add_argument("--steps", type=int, default=200_000)
    p.add_argument("--eval-at", type=int, nargs="+", default=[50_000, 100_000, 150_000, 200_000])
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--episodes", type=int, default=30)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--out", type=Path, required=True, help="JSONL rows")
    args = p.parse_args(argv)

    from gemkit.data import load
    from gemkit.eval.runs import evaluate_config

    torch.set_num_threads(args.threads)
    tr = load(dataset_id(args.maze))
    obs, act = tr.observations.float(), tr.actions.float()
    mean, std = obs.mean(0), obs.std(0)
    nobs = (obs - mean) / std
    w = guidance_weights(args.weights, obs, act)
    ess = float(w.sum() ** 2 / (w.numel() * w.square().sum()))
    gen = torch.Generator().manual_seed(args.seed)
    net, log_lik, action = make_actor(args.actor, obs.shape[1], act.shape[1], gen)
    # each library's optimizer: gemkit's trainer uses fused Adam, d3rlpy plain Adam (same maths)
    opt = torch.optim.Adam(net.parameters(), lr=3e-4, fused=args.actor == "gemkit")

    def policy(states: Tensor) -> Tensor:
        with torch.no_grad():
            return action((states.float() - mean) / std)

    t0 = time.perf_counter()
    for step in range(1, args.steps + 1):
        idx = torch.randint(0, obs.shape[0], (256,), generator=gen)
        loss = -(w[idx] * log_lik(nobs[idx], act[idx])).mean()  # IQL's actor loss
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if step in args.eval_at:
            s = evaluate_config(None, None, dataset_id(args.maze), episodes=args.episodes,
                                seeds=TEST_SEEDS, num_envs=min(args.episodes, 30),
                                policy=policy)  # fmt: skip
            row = {"maze": args.maze, "actor": args.actor, "weights": args.weights,
                   "seed": args.seed, "step": step, "guidance_ess": ess,
                   "score_mean": s.score_mean, "loss": float(loss.detach()),
                   "train_s": time.perf_counter() - t0}  # fmt: skip
            print(json.dumps(row), flush=True)
            args.out.parent.mkdir(parents=True, exist_ok=True)
            append_cell(args.out, row)


if __name__ == "__main__":
    main()
