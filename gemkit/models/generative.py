"""Generative behavior models for proposing candidates: a DDPM and a flow-matching model.

Both learn ``p(a | s)`` from the dataset's actions alone (behavior cloning) and sample ``n``
candidate actions per state, as the literature's sample-and-rerank methods propose them:

- :class:`DiffusionBehavior`: a denoising diffusion model (DDPM; Ho et al. 2020) with IDQL's
  variance-preserving schedule over ``T`` steps (IDQL: ``T = 5``, ``beta_min = 0.1``,
  ``beta_max = 10``). The network predicts the noise ``eps`` added to an action at step ``t``;
  the loss is ``E ||eps - eps_theta(s, sqrt(abar_t) a + sqrt(1 - abar_t) eps, t)||^2`` and
  sampling runs the ancestral chain from ``N(0, I)`` with ``sigma_t^2 = beta_t``.
- :class:`FlowBehavior`: conditional flow matching with the linear path
  ``x_t = (1 - t) x_0 + t a``, ``x_0 ~ N(0, I)`` (Lipman et al. 2023; IFQL / SHARSA's proposer);
  the network predicts the velocity ``a - x_0`` and sampling integrates it with ``K`` Euler
  steps from ``t = 0`` to ``1``.

Both work on actions mapped from the box ``[low, high]`` to ``[-1, 1]`` and clip their samples
there before mapping back, so every candidate is a valid action. Randomness comes only from
the ``generator`` passed in.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor, nn

from gemkit.models.mlp import mlp, register_action_box

__all__ = ["GENERATIVE_KINDS", "DiffusionBehavior", "FlowBehavior", "vp_betas"]

#: width of the sinusoidal features of the step / time fed to the networks
TIME_FEATURES = 16


def vp_betas(steps: int, beta_min: float = 0.1, beta_max: float = 10.0) -> Tensor:
    """IDQL's variance-preserving schedule: ``beta_t = 1 - exp(-beta_min / T - (beta_max -
    beta_min) (2t - 1) / (2 T^2))`` for ``t = 1..T`` (``[T]``, float32)."""
    t = torch.arange(1, steps + 1, dtype=torch.float64)
    alpha = torch.exp(-beta_min / steps - 0.5 * (beta_max - beta_min) * (2 * t - 1) / steps**2)
    return (1 - alpha).float()


def time_features(t: Tensor) -> Tensor:
    """``t [...]`` in ``[0, 1]`` -> ``[..., TIME_FEATURES]`` sines and cosines of ``t`` at
    geometric frequencies 1 to 1000."""
    half = TIME_FEATURES // 2
    freqs = torch.exp(torch.linspace(0.0, math.log(1000.0), half, device=t.device))
    angles = t.unsqueeze(-1) * freqs
    return torch.cat([angles.sin(), angles.cos()], dim=-1)


class _ConditionalGenerator(nn.Module):
    """What both models share: the action box, the network over ``(s, x, time)``, the spec."""

    observation = "normalized"
    """gemkit's networks take gemkit's normalised states (the observation contract)."""

    DEFAULT_STEPS = 5
    """The sampling chain's length when none is given (diffusion: IDQL's ``T = 5``)."""

    action_low: Tensor
    action_high: Tensor

    def __init__(
        self,
        state_dim: int,
        action_dim: int,
        hidden: Sequence[int] = (256, 256),
        steps: int | None = None,
        action_low: float | Sequence[float] = -1.0,
        action_high: float | Sequence[float] = 1.0,
    ) -> None:
        super().__init__()
        steps = self.DEFAULT_STEPS if steps is None else steps
        if min(state_dim, action_dim, steps) < 1:
            raise ValueError("state_dim, action_dim and steps must all be >= 1.")
        self.state_dim, self.action_dim, self.steps = state_dim, action_dim, int(steps)
        self.hidden = tuple(int(h) for h in hidden)
        register_action_box(self, action_dim, action_low, action_high)
        self.net = mlp(state_dim + action_dim + TIME_FEATURES, self.hidden, action_dim)

    def spec(self) -> dict[str, Any]:
        """Constructor arguments, JSON-serialisable, to rebuild this module."""
        return {
            "state_dim": self.state_dim,
            "action_dim": self.action_dim,
            "hidden": list(self.hidden),
            "steps": self.steps,
            "action_low": self.action_low.tolist(),
            "action_high": self.action_high.tolist(),
        }

    def to_unit(self, actions: Tensor) -> Tensor:
        """Actions in the box -> ``[-1, 1]``."""
        return 2 * (actions - self.action_low) / (self.action_high - self.action_low) - 1

    def from_unit(self, u: Tensor) -> Tensor:
        """``[-1, 1]`` -> actions in the box."""
        return self.action_low + (u + 1) * (self.action_high - self.action_low) / 2

    def predict(self, states: Tensor, x: Tensor, t: Tensor) -> Tensor:
        """The network at ``states [..., S]``, ``x [..., A]``, ``t [...]`` in ``[0, 1]``."""
        out: Tensor = self.net(torch.cat([states, x, time_features(t)], dim=-1))
        return out

    def _start(
        self, states: Tensor, n: int, generator: torch.Generator | None
    ) -> tuple[Tensor, Tensor]:
        """A sampling chain's start: ``states`` repeated ``[B, n, S]`` and ``x ~ N(0, I)``
        ``[B, n, A]`` from ``generator``."""
        if states.ndim != 2 or states.shape[-1] != self.state_dim:
            raise ValueError(f"states must be [B, {self.state_dim}], got {list(states.shape)}.")
        s = states.unsqueeze(1).expand(-1, n, -1)
        return s, self._noise((*s.shape[:-1], self.action_dim), states, generator)

    def _noise(
        self, shape: Sequence[int], like: Tensor, generator: torch.Generator | None
    ) -> Tensor:
        return torch.randn(*shape, generator=generator, device=like.device, dtype=like.dtype)


class DiffusionBehavior(_ConditionalGenerator):
    """A DDPM of ``p(a | s)`` (see the module docstring); ``steps`` is ``T``.

    Example:
        >>> import torch
        >>> m = DiffusionBehavior(state_dim=3, action_dim=2, hidden=(32,))
        >>> m.sample(torch.zeros(4, 3), 7, generator=torch.Generator().manual_seed(0)).shape
        torch.Size([4, 7, 2])
    """

    betas: Tensor
    alpha_bars: Tensor

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        betas = vp_betas(self.steps)
        self.register_buffer("betas", betas, persistent=False)
        self.register_buffer("alpha_bars", torch.cumprod(1 - betas, 0), persistent=False)

    def loss(self, states: Tensor, actions: Tensor, generator: torch.Generator | None) -> Tensor:
        """The noise-prediction loss on ``states [B, S]``, ``actions [B, A]`` (a scalar): one
        step ``t ~ U{0..T-1}`` and one ``eps ~ N(0, I)`` per row, from ``generator``."""
        u = self.to_unit(actions)
        t = torch.randint(0, self.steps, (len(u),), generator=generator, device=u.device)
        eps = self._noise(u.shape, u, generator)
        ab = self.alpha_bars[t].unsqueeze(-1)
        x_t = ab.sqrt() * u + (1 - ab).sqrt() * eps
        pred = self.predict(states, x_t, (t.float() + 1) / self.steps)
        return (pred - eps).pow(2).sum(-1).mean()

    @torch.no_grad()
    def sample(self, states: Tensor, n: int, generator: torch.Generator | None = None) -> Tensor:
        """``[B, S] -> [B, n, A]``: the ancestral chain from ``N(0, I)``, clipped to the box."""
        s, x = self._start(states, n, generator)
        for t in range(self.steps - 1, -1, -1):
            beta, ab = self.betas[t], self.alpha_bars[t]
            tt = torch.full(x.shape[:-1], (t + 1) / self.steps, device=x.device)
            eps = self.predict(s, x, tt)
            x = (x - beta / (1 - ab).sqrt() * eps) / (1 - beta).sqrt()
            if t > 0:
                x = x + beta.sqrt() * self._noise(x.shape, x, generator)
        return self.from_unit(x.clamp(-1.0, 1.0))


class FlowBehavior(_ConditionalGenerator):
    """A flow-matching model of ``p(a | s)`` (see the module docstring); ``steps`` is the number
    of Euler steps ``K``."""

    DEFAULT_STEPS = 10

    def loss(self, states: Tensor, actions: Tensor, generator: torch.Generator | None) -> Tensor:
        """The velocity-matching loss on ``states [B, S]``, ``actions [B, A]`` (a scalar): one
        ``t ~ U(0, 1)`` and one ``x_0 ~ N(0, I)`` per row, from ``generator``."""
        u = self.to_unit(actions)
        t = torch.rand(len(u), generator=generator, device=u.device)
        x0 = self._noise(u.shape, u, generator)
        x_t = (1 - t).unsqueeze(-1) * x0 + t.unsqueeze(-1) * u
        return (self.predict(states, x_t, t) - (u - x0)).pow(2).sum(-1).mean()

    @torch.no_grad()
    def sample(
        self,
        states: Tensor,
        n: int,
        generator: torch.Generator | None = None,
        steps: int | None = None,
    ) -> Tensor:
        """``[B, S] -> [B, n, A]``: ``K`` Euler steps of the velocity from ``N(0, I)``, clipped
        to the box; ``K = steps`` (any ``>= 1``: a choice at sampling time), else the model's
        own :attr:`steps`."""
        k_steps = self.steps if steps is None else int(steps)
        if k_steps < 1:
            raise ValueError(f"steps must be >= 1, got {steps}.")
        s, x = self._start(states, n, generator)
        for k in range(k_steps):
            tt = torch.full(x.shape[:-1], k / k_steps, device=x.device)
            x = x + self.predict(s, x, tt) / k_steps
        return self.from_unit(x.clamp(-1.0, 1.0))


#: the generative behaviour models by proposer name (``gemkit fit-proposer --kind``, the
#: ``diffusion`` and ``flow`` candidate sources)
GENERATIVE_KINDS: dict[str, type[DiffusionBehavior] | type[FlowBehavior]] = {
    "diffusion": DiffusionBehavior,
    "flow": FlowBehavior,
}
