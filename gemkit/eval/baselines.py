"""Same-critic baselines: a unimodal (``K = 1``) actor fitted against a trained GEM critic.

The paper compares GEM with a single-shot unimodal actor (IQL's Gaussian policy) and with the
same unimodal actor given ``N`` candidates. For the comparison to isolate the actor, both must
use *the same* critic and value. :func:`fit_unimodal_actor` therefore freezes the critic
ensemble and value network of a trained GEM checkpoint and fits only a ``K = 1`` actor with
the guided-EM loss of spec 1.4, which for ``K = 1`` is IQL's advantage-weighted regression:

    L = E[ min(exp(alpha * A), exp_adv_max) * (-log Normal(a; mu(s), sigma)) ],
    A = min_e Q_e(s, a) - V(s).

(The trainer uses the Polyak target critic for ``A``; a checkpoint stores the online critic,
which the target tracks.) :func:`with_actor` then swaps the actor into the GEM models, so the
baseline's selector shares critic and behavior GMM with GEM's.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from gemkit.data.transitions import Transitions
from gemkit.errors import GemkitError
from gemkit.models.gmm import ConditionalGMM
from gemkit.models.io import Models
from gemkit.train import losses as L
from gemkit.train.trainer import init_parameters

__all__ = ["fit_unimodal_actor", "with_actor"]


def fit_unimodal_actor(
    models: Models,
    transitions: Transitions,
    steps: int,
    *,
    seed: int = 0,
    alpha: float | None = None,
    exp_adv_max: float | None = None,
    lr: float | None = None,
    batch_size: int | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> ConditionalGMM:
    """Fit a ``K = 1`` Gaussian actor against the frozen critic and value of ``models``.

    Args:
        models: a trained GEM checkpoint's models (needs ``critic``, ``value`` and ``actor``,
            whose architecture and action box the new actor copies; ``meta`` supplies the
            observation normalisation and the training hyperparameters).
        transitions: the dataset the models were trained on.
        steps: gradient steps.
        seed: seeds initialisation and minibatches (one ``torch.Generator``).
        alpha: guidance strength (default: the checkpoint's ``train_config.alpha``, else 3).
        exp_adv_max: guidance clip (default: the checkpoint's, else 100).
        lr: Adam learning rate (default: the checkpoint's, else 3e-4).
        batch_size: minibatch size (default: the checkpoint's, else 256).
        progress: ``progress(step, steps)`` after every step.

    Returns:
        The fitted actor, in eval mode, on the CPU.

    Raises:
        GemkitError: ``models`` lacks a critic, value or actor, or ``steps < 0``.
    """
    if steps < 0:
        raise GemkitError(f"steps must be >= 0, got {steps}.")
    if models.critic is None or models.value is None or models.actor is None:
        raise GemkitError(
            "a same-critic baseline needs a checkpoint with actor, critic and value networks."
        )
    tc = dict(models.meta.get("train_config", {}))
    alpha = float(tc.get("alpha", 3.0) if alpha is None else alpha)
    if exp_adv_max is None:
        exp_adv_max = float(tc.get("exp_adv_max", L.EXP_ADV_MAX))
    lr = float(tc.get("lr", 3e-4) if lr is None else lr)
    batch_size = int(tc.get("batch_size", 256) if batch_size is None else batch_size)
    init_log_std = float(tc.get("gmm_init_log_std", -1.0))

    ref = models.actor
    gen = torch.Generator().manual_seed(seed)
    actor = ConditionalGMM(
        ref.state_dim,
        ref.action_dim,
        1,
        hidden=ref.hidden,
        log_std_min=ref.log_std_min,
        log_std_max=ref.log_std_max,
        action_low=ref.action_low.tolist(),
        action_high=ref.action_high.tolist(),
    )
    init_parameters(actor, gen, init_log_std)
    obs = models.normalize_obs(transitions.observations.cpu())
    act = transitions.actions.detach().cpu().float()
    critic = models.critic.to("cpu").eval()
    value = models.value.to("cpu").eval()
    opt = torch.optim.Adam(actor.parameters(), lr=lr)
    n = obs.shape[0]
    for step in range(steps):
        idx = torch.randint(0, n, (batch_size,), generator=gen)
        s, a = obs[idx], act[idx]
        with torch.no_grad():
            adv = critic(s, a).amin(0) - value(s)  # [B]
            g = L.guidance_weight(adv, alpha, exp_adv_max)
        lj = ConditionalGMM.component_log_joint(actor(s), a.unsqueeze(1)).squeeze(1)  # [B, 1]
        loss = L.actor_loss(lj, lj, g, 0.0)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if progress is not None:
            progress(step + 1, steps)
    return actor.eval()


def with_actor(models: Models, actor: ConditionalGMM, **meta: object) -> Models:
    """A copy of ``models`` (same critic, behavior, value modules) with ``actor`` swapped in.

    Args:
        models: the GEM models.
        actor: the replacement actor.
        **meta: entries added to the copy's ``meta``.

    Returns:
        The new :class:`~gemkit.models.Models` (modules shared, ``meta`` copied).
    """
    return Models(
        actor=actor,
        behavior=models.behavior,
        critic=models.critic,
        value=models.value,
        meta={**models.meta, **meta},
    )
