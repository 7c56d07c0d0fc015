"""The Phase I losses of GEM (spec section 1), as pure functions of tensors.

Every function here only reads its inputs (no module, no global state), so each has a numpy
reference test in ``tests/test_train_losses.py``. Shape letters: ``B`` batch, ``E`` ensemble
members, ``K`` mixture components.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import Tensor, nn

__all__ = [
    "EXP_ADV_MAX",
    "actor_loss",
    "behavior_nll",
    "critic_loss",
    "em_surrogate",
    "expectile_loss",
    "gating_entropy",
    "guidance_ess",
    "guidance_weight",
    "polyak_update",
    "td_target",
]

EXP_ADV_MAX = 100.0
"""The IQL clip of the guidance weight ``exp(alpha * A)``."""


def expectile_loss(diff: Tensor, expectile: float) -> Tensor:
    """Asymmetric squared loss of IQL's value regression (spec 1.2).

    .. math:: L_V = \\mathbb{E}\\big[\\,|t - \\mathbb{1}(u < 0)|\\, u^2\\big],
        \\quad u = Q'(s, a) - V(s)

    Args:
        diff: ``u = Q'(s, a) - V(s)``, any shape (``[B]`` in the trainer).
        expectile: ``t`` in ``(0, 1)``; 0.7 for locomotion and maze, 0.9 for antmaze.

    Returns:
        The scalar mean over all elements.
    """
    weight = torch.abs(expectile - (diff < 0).to(diff.dtype))
    return (weight * diff.square()).mean()


def td_target(rewards: Tensor, terminals: Tensor, next_values: Tensor, discount: float) -> Tensor:
    """One-step target of the critics: ``y = r + discount * (1 - terminal) * V(s')``.

    Args:
        rewards: ``[B]``.
        terminals: ``[B]`` in ``{0, 1}``.
        next_values: ``[B]`` values ``V(s')`` (the caller detaches them).
        discount: ``gamma`` in ``[0, 1]``.

    Returns:
        ``[B]``.
    """
    return rewards + discount * (1.0 - terminals) * next_values


def critic_loss(q: Tensor, target: Tensor) -> Tensor:
    """Mean squared TD error over members and batch (spec 1.2).

    .. math:: L_Q = \\frac{1}{E} \\sum_e \\mathbb{E}\\big[(Q_e(s, a) - y)^2\\big]

    Args:
        q: ``[E, B]`` member values ``Q_e(s, a)``.
        target: ``[B]`` targets ``y`` (no gradient expected).

    Returns:
        The scalar loss.
    """
    return (q - target.unsqueeze(0)).square().mean()


def guidance_weight(advantage: Tensor, alpha: float, max_weight: float = EXP_ADV_MAX) -> Tensor:
    """Critic guidance of the actor update (spec 1.4): ``g = min(exp(alpha * A), max_weight)``.

    Args:
        advantage: ``A = Q'(s, a) - V(s)``, any shape; it is detached here.
        alpha: guidance strength (IQL's inverse temperature beta).
        max_weight: the clip (``EXP_ADV_MAX = 100``).

    Returns:
        Weights of the shape of ``advantage``, in ``(0, max_weight]``, with no gradient.
    """
    return torch.exp(alpha * advantage.detach()).clamp(max=max_weight)


def guidance_ess(weights: Tensor) -> Tensor:
    """Effective sample size of guidance weights as a fraction of the batch:
    ``(sum g)^2 / (B * sum g^2)`` in ``(0, 1]``.

    1 means every pair weighs the same, i.e. the advantage-weighted update is behaviour cloning
    (what the sparse-reward mazes give at ``alpha = 3``); small means a few pairs carry it.

    Args:
        weights: ``[B]`` positive weights ``g``.

    Returns:
        A scalar tensor (no gradient).
    """
    g = weights.detach()
    return g.sum().square() / (g.numel() * g.square().sum())


def em_surrogate(log_joint: Tensor, detach_gamma: bool = True) -> Tensor:
    """EM surrogate of the mixture likelihood at dataset pairs (spec 1.4).

    .. math:: \\gamma_k = \\operatorname{softmax}_k l_k(s, a), \\qquad
        L_{EM}(s, a) = -\\sum_k \\gamma_k\\, l_k(s, a)

    With ``detach_gamma`` (the default, the M-step) the responsibilities are constants, so the
    gradient is ``-sum_k gamma_k grad l_k``; without it the gradient also flows through
    ``gamma``.

    Args:
        log_joint: ``[B, K]`` component log-joints ``l_k = log w_k + log Normal(a; mu_k,
            sigma_k)``.
        detach_gamma: stop the gradient through the responsibilities.

    Returns:
        ``[B]`` per-pair surrogate losses.
    """
    gamma = torch.softmax(log_joint, dim=-1)
    if detach_gamma:
        gamma = gamma.detach()
    return -(gamma * log_joint).sum(-1)


def gating_entropy(log_weights: Tensor) -> Tensor:
    """Entropy of the gating distribution: ``H(w(s)) = -sum_k w_k log w_k``.

    Args:
        log_weights: ``[B, K]`` normalised log gating weights ``log w_k(s)``.

    Returns:
        ``[B]`` entropies (nats).
    """
    return -(log_weights.exp() * log_weights).sum(-1)


def actor_loss(
    log_joint: Tensor,
    log_weights: Tensor,
    weights: Tensor,
    c_ent: float,
    detach_gamma: bool = True,
) -> Tensor:
    """The guided-EM actor objective (spec 1.4).

    .. math:: L_{actor} = \\mathbb{E}\\big[g\\, L_{EM}(s, a)\\big]
        - c_{ent}\\, \\mathbb{E}\\big[H(w(s))\\big]

    With ``K = 1`` this is IQL's advantage-weighted regression of a Gaussian policy.

    Args:
        log_joint: ``[B, K]`` actor component log-joints at the dataset pairs.
        log_weights: ``[B, K]`` actor log gating weights at the same states.
        weights: ``[B]`` guidance weights ``g`` (see :func:`guidance_weight`).
        c_ent: gating-entropy coefficient.
        detach_gamma: see :func:`em_surrogate`.

    Returns:
        The scalar loss.
    """
    em = em_surrogate(log_joint, detach_gamma)
    loss = (weights.detach() * em).mean()
    if c_ent != 0.0:
        loss = loss - c_ent * gating_entropy(log_weights).mean()
    return loss


def behavior_nll(log_joint: Tensor) -> Tensor:
    """Maximum-likelihood loss of the behavior GMM (spec 1.3).

    .. math:: L_\\beta = -\\mathbb{E}\\big[\\log \\pi_\\beta(a|s)\\big]
        = -\\mathbb{E}\\big[\\operatorname{logsumexp}_k l_k(s, a)\\big]

    Args:
        log_joint: ``[B, K]`` component log-joints at the dataset pairs.

    Returns:
        The scalar mean negative log-likelihood.
    """
    return -torch.logsumexp(log_joint, dim=-1).mean()


@torch.no_grad()
def polyak_update(
    target: nn.Module | Iterable[Tensor], source: nn.Module | Iterable[Tensor], tau: float
) -> None:
    """Polyak averaging, in place: ``phi' <- (1 - tau) * phi' + tau * phi``.

    Args:
        target: the target network (or its parameters), updated in place.
        source: the online network (or its parameters), same structure.
        tau: step size in ``[0, 1]`` (spec: 0.005).
    """
    tgt: list[Tensor] = list(target.parameters() if isinstance(target, nn.Module) else target)
    src: list[Tensor] = list(source.parameters() if isinstance(source, nn.Module) else source)
    if len(tgt) != len(src):
        raise ValueError(f"target has {len(tgt)} parameters but source has {len(src)}.")
    torch._foreach_lerp_(tgt, src, tau)
