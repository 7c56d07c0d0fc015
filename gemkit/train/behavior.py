"""Fitting a behavior GMM alone: maximum likelihood on the dataset's actions, no other network.

The trainer's behavior objective (:func:`behavior_loss`, ``L = -E[log pi_beta(a|s)]``) on its
own, for diagnostics that need a fitted mixture and nothing else (the NLL gap).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

from gemkit.data.transitions import Transitions
from gemkit.models.gmm import ConditionalGMM
from gemkit.train import losses as L
from gemkit.train.batches import PackedTransitions
from gemkit.train.config import TrainConfig
from gemkit.train.init import init_parameters, make_gmm

__all__ = ["behavior_loss", "fit_behavior_gmm"]


def behavior_loss(gmm: ConditionalGMM, states: Tensor, actions: Tensor) -> Tensor:
    """``-mean log gmm(actions | states)`` on ``states [B, S]``, ``actions [B, A]`` (scalar)."""
    lj = ConditionalGMM.component_log_joint(gmm(states), actions.unsqueeze(1)).squeeze(1)
    return L.behavior_nll(lj)  # lj: [B, K]


def fit_behavior_gmm(
    transitions: Transitions,
    k: int,
    steps: int,
    *,
    seed: int = 0,
    config: TrainConfig | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> tuple[ConditionalGMM, Tensor]:
    """Fit a ``k``-component conditional GMM by maximum likelihood (the behavior objective).

    The GMM is built and initialised as the trainer's behavior GMM and trained with Adam on
    minibatches of ``config.batch_size`` normalised transitions; one generator seeded with
    ``seed`` draws the initialisation and the minibatch indices.

    Args:
        transitions: the dataset.
        k: mixture components.
        steps: gradient steps.
        seed: seeds the initialisation and the minibatches.
        config: sizes, learning rate, batch size, normalisation and device (default:
            ``TrainConfig(hidden=(256, 256))``; its ``n_components`` and ``seed`` are not used).
        progress: ``progress(step, steps)`` after every step.

    Returns:
        ``(gmm, normalised states [T, S])``: the fitted GMM (eval mode) and the dataset states
        as it sees them.
    """
    cfg = config or TrainConfig(hidden=(256, 256))
    data = PackedTransitions(transitions, cfg.normalize_obs, torch.device(cfg.device))
    generator = torch.Generator().manual_seed(seed)
    low = transitions.action_low.detach().cpu().float()
    high = transitions.action_high.detach().cpu().float()
    gmm = make_gmm(cfg, data.state_dim, data.action_dim, k, low, high)
    init_parameters(gmm, generator, cfg.gmm_init_log_std)
    gmm.to(data.device)
    optimizer = torch.optim.Adam(gmm.parameters(), lr=cfg.lr)
    for i in range(steps):
        batch = data.sample(cfg.batch_size, generator)
        loss = behavior_loss(gmm, batch["observations"], batch["actions"])
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if progress is not None:
            progress(i + 1, steps)
    return gmm.eval(), data.normalize(transitions.observations)
