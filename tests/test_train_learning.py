"""Phase I learns, not just runs: a short CPU run on the synthetic fork dataset.

At the start states the data goes left (40 %), right (40 %) or straight into the obstacle
(20 %). After training:

- the GMM actor keeps both successful routes (each side's components weigh > 0.2) and its
  anchor (top component mean) steers around the obstacle;
- the behavior GMM explains the data better (lower NLL) than a single Gaussian fitted with the
  same number of steps;
- the critic ranks the dataset's successful start actions above the mean action, which points
  into the obstacle.
"""

from __future__ import annotations

import pytest
import torch
from synthetic_fork import make_fork_transitions

from gemkit.data.transitions import Transitions
from gemkit.train import TrainConfig, Trainer


def _fit(data: Transitions, cfg: TrainConfig, steps: int) -> Trainer:
    t = Trainer(data, cfg)
    for _ in range(steps):
        t.train_step()
    return t


def _behavior_nll(t: Trainer, data: Transitions) -> float:
    obs = (data.observations - t.obs_mean) / t.obs_std
    with torch.no_grad():
        return -float(t.behavior.log_prob(obs, data.actions).mean())


def _check_learning(cfg: TrainConfig, steps: int) -> dict[str, float]:
    torch.set_num_threads(1)
    data, info = make_fork_transitions(n_episodes=300, seed=cfg.seed)
    t = _fit(data, cfg, steps)
    single = TrainConfig.from_dict(
        {**cfg.to_dict(), "n_components": 1, "gmm_pretrain_steps": steps}
    )
    t1 = _fit(data, single, steps)  # behavior-only steps: a K = 1 maximum-likelihood fit

    start = info["t"] == 0
    s0 = (data.observations[start] - t.obs_mean) / t.obs_std
    a0 = data.actions[start]
    success = info["route"][start] != 0
    with torch.no_grad():
        pi = t.actor(s0)
        mu_x = pi.means[..., 0]  # [B, K]
        left = float((pi.weights * (mu_x < -0.2)).sum(1).mean())
        right = float((pi.weights * (mu_x > 0.2)).sum(1).mean())
        anchor_x = t.actor.mode(s0)[:, 0]
        mean_action = a0.mean(0).expand_as(a0)
        q_data = t.critic(s0, a0).mean(0)
        q_mean_action = t.critic(s0, mean_action).mean(0)
    out = {
        "left": left,
        "right": right,
        "anchor_off_centre": float((anchor_x.abs() > 0.2).float().mean()),
        "nll_gmm": _behavior_nll(t, data),
        "nll_single": _behavior_nll(t1, data),
        "q_success": float(q_data[success].mean()),
        "q_mean_action": float(q_mean_action[success].mean()),
        "rank_frac": float((q_data[success] > q_mean_action[success]).float().mean()),
    }
    assert out["left"] > 0.2 and out["right"] > 0.2, out
    assert out["anchor_off_centre"] > 0.9, out
    assert out["nll_gmm"] < out["nll_single"], out
    assert out["q_success"] > out["q_mean_action"], out
    assert out["rank_frac"] > 0.75, out
    return out


def test_short_cpu_run_learns_the_fork() -> None:
    cfg = TrainConfig(hidden=(64, 64), n_critics=4, n_components=4, gmm_pretrain_steps=500, seed=0)
    _check_learning(cfg, steps=2000)  # no wall-clock bound: it would fail on a loaded machine


@pytest.mark.slow
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_default_sizes_learn_the_fork(seed: int) -> None:
    cfg = TrainConfig(n_components=5, gmm_pretrain_steps=1000, seed=seed)
    _check_learning(cfg, steps=5000)
