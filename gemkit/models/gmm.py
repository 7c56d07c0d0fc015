"""The conditional diagonal Gaussian mixture of GEM (spec 1.1), used for actor and behavior.

``p(a|s) = sum_k w_k(s) Normal(a; mu_k(s), diag(sigma_k^2))`` with ``w = softmax(logits(s))``,
``mu_k(s)`` from an MLP trunk with two heads, and a state-independent ``log sigma_k`` clamped
elementwise to ``[log_std_min, log_std_max]``.

Actions are scored under one of :data:`LIKELIHOODS` (the GMM's ``likelihood``): ``"density"``
(the Gaussian density above) or ``"censored"`` (an action dimension at the edge of the action
box counts as censored and scores the components' probability mass beyond that edge; see
:meth:`ConditionalGMM.component_log_joint`).
"""

from __future__ import annotations

import copy
import math
from collections.abc import Sequence
from typing import Any, NamedTuple, TypeVar

import torch
from torch import Tensor, nn

from gemkit.models.mlp import mlp, register_action_box

__all__ = [
    "EDGE_TOL",
    "LIKELIHOODS",
    "BindsForwards",
    "ConditionalGMM",
    "Forwards",
    "GMMParams",
    "bind",
    "log_ndtr",
]

_LOG_2PI = math.log(2.0 * math.pi)
_SQRT_2_OVER_PI = math.sqrt(2.0 / math.pi)
_SQRT_HALF = math.sqrt(0.5)

LIKELIHOODS = ("density", "censored")
"""How a :class:`ConditionalGMM` scores actions: the Gaussian density, or censored at the box
edges (:meth:`ConditionalGMM.component_log_joint`)."""

EDGE_TOL = 1e-6
"""Under ``likelihood="censored"``, an action dimension ``a_d`` is at the lower edge when
``a_d <= low_d + EDGE_TOL * (high_d - low_d)`` and at the upper edge when
``a_d >= high_d - EDGE_TOL * (high_d - low_d)`` (beyond the box counts as at its edge). ``2e-6``
on ``[-1, 1]``: about 30 float32 ulps at 1.0, so exactly clipped actions (and float32 round trips
of them) are caught, while an interior action that close to the edge changes its log-likelihood
by a negligible amount either way."""


def _check_likelihood(likelihood: str) -> None:
    if likelihood not in LIKELIHOODS:
        raise ValueError(f"likelihood must be one of {', '.join(LIKELIHOODS)}; got {likelihood!r}.")


class _LogNdtr(torch.autograd.Function):
    """``log Phi(x)`` with a gradient that stays accurate far in the lower tail.

    torch's own backward of ``log_ndtr`` (torch 2.13) cancels catastrophically: in float32 it
    drifts below ``x ~ -300`` and gives wrong, zero or infinite gradients below ``x ~ -1e3``; in
    float64 the same happens below ``x ~ -1e7``. Here the gradient ``phi(x) / Phi(x)`` is
    computed as ``sqrt(2/pi) / erfcx(-x / sqrt(2))``, which involves no cancellation and stays
    accurate and finite far into the tail (tested to ``x = -1e9``); it tends to ``-x`` below
    and to 0 above. (With the default ``log_std_min = -5`` on ``[-1, 1]``, ``|x| <= ~300``.)
    """

    @staticmethod
    def forward(x: Tensor) -> Tensor:
        return torch.special.log_ndtr(x)

    @staticmethod
    def setup_context(ctx: Any, inputs: tuple[Tensor], output: Tensor) -> None:
        ctx.save_for_backward(inputs[0])

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> Tensor:
        (x,) = ctx.saved_tensors
        return grad * (_SQRT_2_OVER_PI / torch.special.erfcx(-x * _SQRT_HALF))


def log_ndtr(x: Tensor) -> Tensor:
    """``log Phi(x)``, the log of the standard normal CDF (``torch.special.log_ndtr``), with a
    stable gradient in the far lower tail (see :class:`_LogNdtr`)."""
    out: Tensor = _LogNdtr.apply(x)
    return out


class GMMParams(NamedTuple):
    """The mixture at a batch of states.

    Attributes:
        log_weights: ``[B, K]`` log gating weights ``log w_k(s)`` (log-softmax of the logits).
        means: ``[B, K, A]`` component means ``mu_k(s)``.
        log_std: ``[K, A]`` clamped, state-independent log standard deviations.
    """

    log_weights: Tensor
    means: Tensor
    log_std: Tensor

    @property
    def weights(self) -> Tensor:
        """``[B, K]`` gating weights ``w_k(s)``."""
        return self.log_weights.exp()


class ConditionalGMM(nn.Module):
    """State-conditional diagonal GMM over a box of actions.

    Args:
        state_dim: ``S``.
        action_dim: ``A``.
        n_components: ``K`` (``K = 1`` is a unimodal Gaussian policy).
        hidden: widths of the ReLU trunk.
        log_std_min: lower clamp of ``log sigma`` (spec: -5).
        log_std_max: upper clamp of ``log sigma`` (spec: 2).
        action_low: lower bound of the action box (scalar or ``[A]``).
        action_high: upper bound of the action box (scalar or ``[A]``).
        likelihood: how actions are scored, one of :data:`LIKELIHOODS`: ``"density"`` (the
            Gaussian density, the default) or ``"censored"`` (an action dimension at the box
            edge scores the probability mass beyond it; :meth:`component_log_joint`). Used by
            :meth:`log_joint`, hence by :meth:`log_prob`, :meth:`responsibilities`, the
            training losses and the behavior support; stored in :meth:`spec`.

    Component means are squashed into the box with ``tanh``, so every mean is a valid action.

    Example:
        >>> import torch
        >>> gmm = ConditionalGMM(state_dim=4, action_dim=2, n_components=3, hidden=(32,))
        >>> s = torch.zeros(5, 4)
        >>> gmm.sample(s, 7, generator=torch.Generator().manual_seed(0)).shape
        torch.Size([5, 7, 2])
    """

    observation = "normalized"
    """gemkit's networks take gemkit's normalised states (the observation contract)."""

    action_low: Tensor
    action_high: Tensor

    def __init__(
        self,
        state_dim: int,
        action_dim: int,
        n_components: int = 5,
        hidden: Sequence[int] = (256, 256),
        log_std_min: float = -5.0,
        log_std_max: float = 2.0,
        action_low: float | Sequence[float] = -1.0,
        action_high: float | Sequence[float] = 1.0,
        likelihood: str = "density",
    ) -> None:
        super().__init__()
        _check_likelihood(likelihood)
        if min(state_dim, action_dim, n_components) < 1:
            raise ValueError("state_dim, action_dim and n_components must all be >= 1.")
        if log_std_min >= log_std_max:
            raise ValueError(f"log_std_min ({log_std_min}) must be < log_std_max ({log_std_max}).")
        self.state_dim = state_dim
        self.action_dim = action_dim
        self.n_components = n_components
        self.hidden = tuple(int(h) for h in hidden)
        self.log_std_min = float(log_std_min)
        self.log_std_max = float(log_std_max)
        self.likelihood = likelihood
        register_action_box(self, action_dim, action_low, action_high)
        self.trunk = mlp(state_dim, self.hidden)
        width = self.hidden[-1] if self.hidden else state_dim
        self.logits_head = nn.Linear(width, n_components)
        self.means_head = nn.Linear(width, n_components * action_dim)
        self.log_std_param = nn.Parameter(torch.zeros(n_components, action_dim))

    def spec(self) -> dict[str, Any]:
        """Constructor arguments, JSON-serialisable, to rebuild this module.

        ``likelihood`` is recorded only when it is not ``"density"``: a density GMM's spec is
        the one earlier gemkit wrote (so its checkpoints load there too), and a spec without
        the key rebuilds a density GMM.
        """
        out: dict[str, Any] = {
            "state_dim": self.state_dim,
            "action_dim": self.action_dim,
            "n_components": self.n_components,
            "hidden": list(self.hidden),
            "log_std_min": self.log_std_min,
            "log_std_max": self.log_std_max,
            "action_low": self.action_low.tolist(),
            "action_high": self.action_high.tolist(),
        }
        if self.likelihood != "density":
            out["likelihood"] = self.likelihood
        return out

    # ------------------------------------------------------------------ parameters
    def forward(self, states: Tensor) -> GMMParams:
        """Mixture parameters at ``states [B, S]``."""
        h = self.trunk(states)
        log_w = torch.log_softmax(self.logits_head(h), dim=-1)  # [B, K]
        raw = self.means_head(h).view(-1, self.n_components, self.action_dim)  # [B, K, A]
        half = 0.5 * (self.action_high - self.action_low)
        center = 0.5 * (self.action_high + self.action_low)
        means = center + half * torch.tanh(raw)
        log_std = self.log_std_param.clamp(self.log_std_min, self.log_std_max)  # [K, A]
        return GMMParams(log_w, means, log_std)

    # ------------------------------------------------------------------ densities
    @staticmethod
    def component_log_joint(
        params: GMMParams,
        actions: Tensor,
        likelihood: str = "density",
        action_low: Tensor | None = None,
        action_high: Tensor | None = None,
    ) -> Tensor:
        """``l_k(s, a) = log w_k(s) + sum_d t_kd(s, a_d)``, the component log-joints.

        ``likelihood="density"``: ``t_kd = log Normal(a_d; mu_kd(s), sigma_kd)``.

        ``likelihood="censored"`` (needs ``action_low``, ``action_high``): an action dimension
        at the box edge (within :data:`EDGE_TOL` of the box width, or beyond it) is censored and
        scores the component's mass beyond that edge,
        ``t_kd = log Phi((low_d - mu_kd) / sigma_kd)`` at the lower edge and
        ``t_kd = log Phi((mu_kd - high_d) / sigma_kd)`` (``= log(1 - Phi((high_d - mu_kd) /
        sigma_kd))``) at the upper edge; interior dimensions keep the density term. Actions with
        no dimension at an edge get exactly the ``"density"`` values.

        This is the likelihood of a fixed mode; a GMM's own is :meth:`log_joint`.

        Args:
            params: the mixture at ``B`` states.
            actions: ``[B, M, A]`` actions, ``M`` per state.
            likelihood: one of :data:`LIKELIHOODS`.
            action_low: ``[A]`` lower bounds of the box (``"censored"`` only).
            action_high: ``[A]`` upper bounds of the box (``"censored"`` only).

        Returns:
            ``[B, M, K]``.

        Raises:
            ValueError: an unknown ``likelihood``, or ``"censored"`` without the bounds.
        """
        log_w, means, log_std = params
        inv_std = torch.exp(-log_std)  # [K, A]
        z = (actions.unsqueeze(2) - means.unsqueeze(1)) * inv_std  # [B, M, K, A]
        z2 = z.square()
        log_norm = -0.5 * (z2.sum(-1)) - log_std.sum(-1) - 0.5 * means.shape[-1] * _LOG_2PI
        density = log_w.unsqueeze(1) + log_norm  # [B, M, K]
        if likelihood == "density":
            return density
        _check_likelihood(likelihood)
        if action_low is None or action_high is None:
            raise ValueError("likelihood 'censored' needs action_low and action_high.")
        low = action_low.to(actions)
        high = action_high.to(actions)
        tol = EDGE_TOL * (high - low)
        at_low = (actions <= low + tol).unsqueeze(2)  # [B, M, 1, A]
        at_high = (actions >= high - tol).unsqueeze(2)
        # the tail masses depend on the state and the component only: [B, 1, K, A]
        tail_low = log_ndtr((low - means) * inv_std).unsqueeze(1)
        tail_high = log_ndtr((means - high) * inv_std).unsqueeze(1)
        per_dim = -0.5 * z2 - log_std - 0.5 * _LOG_2PI  # [B, M, K, A]
        per_dim = torch.where(at_low, tail_low, torch.where(at_high, tail_high, per_dim))
        censored = log_w.unsqueeze(1) + per_dim.sum(-1)
        any_edge = (at_low | at_high).any(-1)  # [B, M, 1]
        return torch.where(any_edge, censored, density)

    def log_joint(self, params: GMMParams, actions: Tensor) -> Tensor:
        """:meth:`component_log_joint` under this GMM's ``likelihood`` and action box:
        ``params`` of ``B`` states, ``actions [B, M, A] -> [B, M, K]``."""
        return self.component_log_joint(
            params, actions, self.likelihood, self.action_low, self.action_high
        )

    def log_prob(self, states: Tensor, actions: Tensor) -> Tensor:
        """``log p(a|s) = logsumexp_k l_k``: ``[B, A] -> [B]`` or ``[B, M, A] -> [B, M]``."""
        single = actions.dim() == 2
        a = actions.unsqueeze(1) if single else actions
        lp = torch.logsumexp(self.log_joint(self(states), a), dim=-1)
        return lp.squeeze(1) if single else lp

    def responsibilities(self, states: Tensor, actions: Tensor) -> Tensor:
        """``gamma_k = softmax_k l_k(s, a)``: ``actions [B, A] -> [B, K]`` (or ``[B, M, K]``)."""
        single = actions.dim() == 2
        a = actions.unsqueeze(1) if single else actions
        g = torch.softmax(self.log_joint(self(states), a), dim=-1)
        return g.squeeze(1) if single else g

    # ------------------------------------------------------------------ point actions
    def mode(self, states: Tensor, params: GMMParams | None = None) -> Tensor:
        """The anchor ``mu_{k*}(s)``, ``k* = argmax_k w_k(s)``: ``[B, S] -> [B, A]`` (``params``:
        this GMM's forward at ``states``, when already computed)."""
        log_w, means, _ = self(states) if params is None else params
        k = log_w.argmax(dim=-1)
        return means[torch.arange(means.shape[0], device=means.device), k]

    def barycenter(self, states: Tensor, params: GMMParams | None = None) -> Tensor:
        """``sum_k w_k(s) mu_k(s)``: ``[B, S] -> [B, A]``."""
        p = self(states) if params is None else params
        return (p.weights.unsqueeze(-1) * p.means).sum(1)

    def collapse(self, states: Tensor, params: GMMParams | None = None) -> tuple[Tensor, Tensor]:
        """Moment-matched single diagonal Gaussian of the mixture: ``(mean [B, A], std [B, A])``.

        ``mean = sum_k w_k mu_k`` and ``var = sum_k w_k (sigma_k^2 + mu_k^2) - mean^2``.
        """
        p = self(states) if params is None else params
        w = p.weights.unsqueeze(-1)  # [B, K, 1]
        mean = (w * p.means).sum(1)
        second = (w * (torch.exp(2 * p.log_std) + p.means.square())).sum(1)
        var = (second - mean.square()).clamp_min(1e-12)
        return mean, var.sqrt()

    # ------------------------------------------------------------------ sampling
    def _clip(self, a: Tensor) -> Tensor:
        return torch.clamp(a, min=self.action_low, max=self.action_high)

    def sample(
        self,
        states: Tensor,
        n: int,
        generator: torch.Generator | None = None,
        params: GMMParams | None = None,
    ) -> Tensor:
        """``n`` samples per state, clipped to the action box: ``[B, S] -> [B, n, A]``."""
        p = self(states) if params is None else params
        b = states.shape[0]
        if n == 0:
            return p.means.new_empty(b, 0, self.action_dim)
        comp = torch.multinomial(p.weights, n, replacement=True, generator=generator)  # [B, n]
        mu = torch.gather(p.means, 1, comp.unsqueeze(-1).expand(b, n, self.action_dim))
        std = torch.exp(p.log_std)[comp]  # [B, n, A]
        eps = torch.randn(mu.shape, generator=generator, device=mu.device, dtype=mu.dtype)
        return self._clip(mu + std * eps)

    def sample_collapsed(
        self,
        states: Tensor,
        n: int,
        generator: torch.Generator | None = None,
        params: GMMParams | None = None,
    ) -> Tensor:
        """``n`` samples of the moment-matched collapse (:meth:`collapse`), clipped."""
        mean, std = self.collapse(states, params)
        shape = (states.shape[0], n, self.action_dim)
        eps = torch.randn(shape, generator=generator, device=mean.device, dtype=mean.dtype)
        return self._clip(mean.unsqueeze(1) + std.unsqueeze(1) * eps)


class Forwards:
    """The GMM forwards of one selection, each computed once.

    The anchor, the candidate source, the support and the CollapseDist audit of one
    ``select()`` read the same actor and behavior GMMs at the same states; a selector makes one
    :class:`Forwards` per call and binds its components to it (:class:`BindsForwards`), so each
    network's :meth:`ConditionalGMM.forward` runs once and the others read its output. It holds
    the networks and states it was computed for, for the selection's lifetime only.
    """

    def __init__(self) -> None:
        self._memo: dict[ConditionalGMM, tuple[Tensor, GMMParams]] = {}

    def params(self, gmm: ConditionalGMM, states: Tensor) -> GMMParams:
        """``gmm(states)``, computed the first time it is asked for these very states."""
        hit = self._memo.get(gmm)  # a module hashes by identity
        if hit is not None and hit[0] is states:
            return hit[1]
        out: GMMParams = gmm(states)
        self._memo[gmm] = (states, out)
        return out


_B = TypeVar("_B", bound="BindsForwards")


class BindsForwards:
    """Mixin of a component computed from GMMs: :meth:`bound` gives a copy that reads their
    parameters from a selection's :class:`Forwards` (unbound, it runs each forward itself)."""

    forwards: Forwards | None = None

    def bound(self: _B, forwards: Forwards) -> _B:
        """This component, reading its GMMs' parameters from ``forwards``."""
        twin = copy.copy(self)
        twin.forwards = forwards
        return twin

    def params_of(self, gmm: ConditionalGMM, states: Tensor) -> GMMParams:
        """``gmm(states)``: from the bound :class:`Forwards`, else computed here."""
        return gmm(states) if self.forwards is None else self.forwards.params(gmm, states)


def bind(component: Any, forwards: Forwards) -> Any:
    """``component`` bound to a selection's ``forwards`` if it reads GMMs through them
    (:class:`BindsForwards`), else itself (any third-party component)."""
    return component.bound(forwards) if isinstance(component, BindsForwards) else component
