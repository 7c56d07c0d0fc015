"""What a trained critic and value tell the actor: advantage and guidance statistics.

Phase I's actor learns from the guidance weights ``g = min(exp(alpha * A), max_weight)`` with
``A = Q(s, a) - V(s)`` on dataset pairs (spec 1.4). When the advantages are tiny against
``1 / alpha``, every weight is close to 1 and the advantage-weighted update is behaviour cloning:
the critic teaches the actor nothing, whatever its losses say. These statistics measure that,
and the critic's level and Bellman residual, for any critic (gemkit's or a third party's): the
caller computes the tensors, this module only reduces them.

``guidance_ess`` is the effective sample size of the weights as a fraction of the batch,
``(sum g)^2 / (B * sum g^2)``: 1 when all weights are equal (pure behaviour cloning), small
when a few pairs carry the update.
"""

from __future__ import annotations

from typing import Any

import attrs
import torch
from torch import Tensor

from gemkit.errors import GemkitError
from gemkit.train.losses import EXP_ADV_MAX, guidance_ess, guidance_weight, td_target

__all__ = ["CriticStats", "checkpoint_statistics", "critic_statistics", "fixed_transitions"]


@attrs.frozen
class CriticStats:
    """Statistics of a critic and value over ``n`` dataset transitions.

    Attributes:
        n: transitions.
        q_mean: mean of the reduced ``Q(s, a)`` (``min`` over members, as training reads it).
        q_std: its std over the transitions.
        v_mean: mean ``V(s)``.
        adv_mean: mean advantage ``A = Q(s, a) - V(s)``.
        adv_std: std of ``A`` over the transitions.
        weight_moved: fraction of pairs whose weight is outside ``[1/e, e]``
            (``|alpha A| > 1``).
        guidance_mean: mean weight ``g``.
        guidance_ess: ``(sum g)^2 / (n sum g^2)`` in ``(0, 1]`` (1: behaviour cloning).
        td_mean: mean Bellman residual ``Q(s, a) - (r + discount (1 - d) V(s'))``.
        td_rms: its root mean square.
        member_std: mean over transitions of the std over members (0 for one member).
    """

    n: int
    q_mean: float
    q_std: float
    v_mean: float
    adv_mean: float
    adv_std: float
    weight_moved: float
    guidance_mean: float
    guidance_ess: float
    td_mean: float
    td_rms: float
    member_std: float

    def row(self) -> dict[str, Any]:
        """A flat dict (CSV/JSON-ready)."""
        return attrs.asdict(self)


def critic_statistics(
    q: Tensor,
    v: Tensor,
    next_v: Tensor,
    rewards: Tensor,
    terminals: Tensor,
    *,
    alpha: float = 3.0,
    discount: float = 0.99,
    max_weight: float = EXP_ADV_MAX,
) -> CriticStats:
    """Reduce a critic's and a value's outputs on ``B`` dataset transitions.

    Args:
        q: ``[E, B]`` member values ``Q_e(s, a)`` (or ``[B]`` for one critic).
        v: ``[B]`` values ``V(s)``.
        next_v: ``[B]`` values ``V(s')``.
        rewards: ``[B]`` rewards as the critic was trained on them.
        terminals: ``[B]`` in ``{0, 1}``.
        alpha: guidance strength of the actor update.
        discount: ``gamma`` of the TD target.
        max_weight: the clip of the guidance weight.

    Returns:
        :class:`CriticStats`.

    Raises:
        GemkitError: the shapes disagree, or some value is not finite.
    """
    if q.dim() == 1:
        q = q.unsqueeze(0)
    if q.dim() != 2:
        raise GemkitError(f"q must be [E, B] or [B], got shape {list(q.shape)}.")
    b = q.shape[1]
    for name, t in (("v", v), ("next_v", next_v), ("rewards", rewards), ("terminals", terminals)):
        if t.shape != (b,):
            raise GemkitError(f"{name} must be [B] = [{b}] like q's last dim, got {list(t.shape)}.")
    if b < 2:
        raise GemkitError("critic_statistics needs at least 2 transitions.")
    qd, vd, nd = q.double(), v.double(), next_v.double()
    if not all(bool(t.isfinite().all()) for t in (qd, vd, nd, rewards)):
        raise GemkitError("the critic or value returned NaN/inf; check the weights and inputs.")
    q_min = qd.amin(0)
    adv = q_min - vd
    g = guidance_weight(adv, alpha, max_weight)
    td = q_min - td_target(rewards.double(), terminals.double(), nd, discount)
    member_std = qd.std(0, unbiased=False).mean() if qd.shape[0] > 1 else torch.zeros(())
    return CriticStats(
        n=b,
        q_mean=float(q_min.mean()),
        q_std=float(q_min.std()),
        v_mean=float(vd.mean()),
        adv_mean=float(adv.mean()),
        adv_std=float(adv.std()),
        weight_moved=float(((alpha * adv).abs() > 1.0).double().mean()),
        guidance_mean=float(g.mean()),
        guidance_ess=float(guidance_ess(g)),
        td_mean=float(td.mean()),
        td_rms=float(td.square().mean().sqrt()),
        member_std=float(member_std),
    )


def fixed_transitions(transitions: Any, n: int = 20_000, seed: int = 0) -> dict[str, Tensor]:
    """``n`` transitions of a dataset drawn once (seeded), raw observations, for measuring
    several critics on the same inputs: ``obs``, ``act``, ``next_obs``, ``rewards``,
    ``terminals``."""
    import torch

    g = torch.Generator().manual_seed(seed)
    total = transitions.observations.shape[0]
    idx = torch.randperm(total, generator=g)[: min(n, total)]
    return {"obs": transitions.observations[idx].float(),
            "act": transitions.actions[idx].float(),
            "next_obs": transitions.next_observations[idx].float(),
            "rewards": transitions.rewards[idx].float(),
            "terminals": transitions.terminals[idx].float()}  # fmt: skip


def checkpoint_statistics(models: Any, batch: dict[str, Tensor]) -> dict[str, Any]:
    """:func:`critic_statistics` of a gemkit checkpoint on :func:`fixed_transitions` (its own
    observation normalisation and reward scale, its config's ``alpha`` and ``discount``)."""
    import torch

    cfg = models.meta.get("train_config", {})
    with torch.no_grad():
        obs, nxt = models.normalize_obs(batch["obs"]), models.normalize_obs(batch["next_obs"])
        q = models.critic(obs, batch["act"])
        v, nv = models.value(obs), models.value(nxt)
    rewards = batch["rewards"] * float(models.meta.get("reward_scale", 1.0))
    return critic_statistics(q, v, nv, rewards, batch["terminals"],
                             alpha=cfg.get("alpha", 3.0),
                             discount=cfg.get("discount", 0.99)).row()  # fmt: skip
