"""Value of each candidate from a critic ensemble: LCB, mean or min (Eq. 3)."""

from __future__ import annotations

from typing import Any, Literal

import torch
from torch import Tensor

from gemkit.errors import GemkitError
from gemkit.models.io import Models
from gemkit.protocols import Critic, WrapsNetwork
from gemkit.registry import VALUES
from gemkit.support.normalize import zscore

__all__ = ["EnsembleValue", "ExpectileWeight", "ensemble_q", "lcb"]

Reduction = Literal["lcb", "mean", "min"]


def lcb(q: Tensor, beta: float) -> Tensor:
    """``mean_e Q_e - beta * std_e Q_e`` over dim 0, population std: ``[E, ...] -> [...]``."""
    if beta == 0.0 or q.shape[0] == 1:
        return q.mean(0)
    std, mean = torch.std_mean(q, 0, unbiased=False)  # one pass over the ensemble
    return mean - beta * std


def ensemble_q(critic: Critic, states: Tensor, candidates: Tensor) -> Tensor:
    """Call ``critic`` on every candidate: ``states [B, S]``, ``candidates [B, M, A] -> [E, B, M]``.

    A single critic returning ``[B, M]`` is read as ``E = 1``. The states are passed as an
    expanded view ``[B, M, S]`` (no copy).

    Raises:
        GemkitError: the critic returned a wrong shape.
    """
    b, m, _ = candidates.shape
    q = critic(states.unsqueeze(1).expand(b, m, states.shape[-1]), candidates)
    if not isinstance(q, Tensor):
        raise GemkitError(f"the critic must return a torch.Tensor, got {type(q).__name__}.")
    if q.dim() == 2:
        q = q.unsqueeze(0)
    if q.dim() != 3 or q.shape[1:] != (b, m):
        raise GemkitError(
            f"the critic must return [E, B, M] or [B, M] = [{b}, {m}] for states [B, M, S] and "
            f"actions [B, M, A]; it returned {list(q.shape)}."
        )
    return q.to(candidates.dtype)  # a bf16 (autocast) critic is reduced in the inputs' dtype


def _check_finite_values(v: Tensor) -> Tensor:
    # checked after the reduction ([B, M], E times fewer elements): a NaN in any member, or an
    # inf under mean/LCB, reaches it; an inf that min ignores leaves a valid value
    if not bool(v.isfinite().all()):
        raise GemkitError("the critic returned NaN/inf Q-values; check its weights and inputs.")
    return v


class EnsembleValue(WrapsNetwork):
    """A :class:`~gemkit.protocols.Value` reducing any critic's ensemble over members.

    Args:
        critic: any callable ``critic(states [B, M, S], actions [B, M, A]) -> [E, B, M]``.
        reduction: ``lcb`` (``mean - beta * std``, population std), ``mean`` or ``min``.
        beta: pessimism of ``lcb`` (``>= 0``).
        standardize: z-score the reduced values within each state's candidate set (as the
            support term is), so that ``lambda`` weighs two terms of the same O(1) scale
            whatever the task's reward scale.
    """

    def __init__(
        self,
        critic: Critic,
        reduction: Reduction = "lcb",
        beta: float = 1.0,
        standardize: bool = False,
    ) -> None:
        if reduction not in ("lcb", "mean", "min"):
            raise GemkitError(f"reduction must be lcb, mean or min, got {reduction!r}.")
        if not beta >= 0.0:
            raise GemkitError(f"beta must be >= 0, got {beta}.")
        self.critic = critic
        self.reduction = reduction
        self.beta = float(beta)
        self.standardize = bool(standardize)

    @property
    def network(self) -> Critic:
        """The critic (its ``observation`` and device are the value term's)."""
        return self.critic

    def __call__(self, states: Tensor, candidates: Tensor) -> Tensor:
        """``states [B, S]``, ``candidates [B, M, A] -> [B, M]``."""
        return self.value_and_scale(states, candidates)[0]

    def value_and_scale(self, states: Tensor, candidates: Tensor) -> tuple[Tensor, Tensor | None]:
        """The value ``[B, M]`` and, z-scored, the per-state std ``[B]`` it divided the
        reduced ensemble value by (``None`` unstandardised); see
        :class:`~gemkit.protocols.HasValueScale`."""
        q = ensemble_q(self.critic, states, candidates)
        if self.reduction == "lcb":
            v = lcb(q, self.beta)
        elif self.reduction == "mean":
            v = q.mean(0)
        else:
            v = q.min(0).values
        v = _check_finite_values(v)
        if not self.standardize:
            return v, None
        return zscore(v), v.std(-1, unbiased=False).clamp_min(1e-6)

    def __repr__(self) -> str:
        beta = f", beta={self.beta:g}" if self.reduction == "lcb" else ""
        z = ", z-scored per state" if self.standardize else ""
        return f"EnsembleValue({self.reduction}{beta}{z})"


def _critic(models: Models, name: str) -> Critic:
    if models is None or models.critic is None:
        raise GemkitError(
            f"value {name!r} needs a critic: pass compose(models=...) a checkpoint directory or "
            "Models(critic=your_critic) with critic(states[B,M,S], actions[B,M,A]) -> [E,B,M]."
        )
    if not callable(models.critic):
        raise GemkitError(f"models.critic must be callable, got {type(models.critic).__name__}.")
    critic: Critic = models.critic
    return critic


@VALUES.register("lcb")
def _lcb(models: Models, config: Any) -> EnsembleValue:
    """Ensemble lower confidence bound mean - beta*std (GEM default, Eq. 3)."""
    return EnsembleValue(_critic(models, "lcb"), "lcb", config.beta)


@VALUES.register("lcb_z")
def _lcb_z(models: Models, config: Any) -> EnsembleValue:
    """LCB z-scored within each state's candidate set: lambda independent of reward scale."""
    return EnsembleValue(_critic(models, "lcb_z"), "lcb", config.beta, standardize=True)


@VALUES.register("mean")
def _mean(models: Models, config: Any) -> EnsembleValue:
    """Ensemble mean (equals lcb with beta = 0)."""
    return EnsembleValue(_critic(models, "mean"), "mean")


@VALUES.register("min")
def _min(models: Models, config: Any) -> EnsembleValue:
    """Ensemble minimum (the training-time reducer)."""
    return EnsembleValue(_critic(models, "min"), "min")


class ExpectileWeight(WrapsNetwork):
    """IDQL's resampling weight as a score: ``log |tau - 1(Q(s, a) < V(s))|``, with ``Q`` the
    minimum over the critics and ``V`` the expectile value network (Hansen-Estruch et al.
    2023, "expectile" weights). With the ``softmax`` reducer at temperature 1, a candidate is
    drawn with probability proportional to its weight: ``tau`` where ``Q >= V``, ``1 - tau``
    where not.

    Args:
        critic: a critic ensemble on the value network's observations.
        value: ``V(s)``: ``[B, S] -> [B]``.
        expectile: ``tau`` in ``(0, 1)`` (IQL's, the run's ``TrainConfig.expectile``).
    """

    def __init__(self, critic: Critic, value: Any, expectile: float) -> None:
        if not 0.0 < expectile < 1.0:
            raise GemkitError(f"expectile must be in (0, 1), got {expectile}.")
        self.critic, self.value, self.expectile = critic, value, float(expectile)

    @property
    def network(self) -> Critic:
        """The critic (its ``observation`` and device are the value term's)."""
        return self.critic

    def __call__(self, states: Tensor, candidates: Tensor) -> Tensor:
        """``states [B, S]``, ``candidates [B, M, A] -> [B, M]`` log weights."""
        q = _check_finite_values(ensemble_q(self.critic, states, candidates).min(0).values)
        v = self.value(states).reshape(-1, 1)  # [B, 1]
        w = torch.where(q >= v, self.expectile, 1.0 - self.expectile)
        return w.log()

    def __repr__(self) -> str:
        return f"ExpectileWeight(tau={self.expectile:g})"


@VALUES.register("expectile_weight")
def _expectile_weight(models: Models, config: Any) -> ExpectileWeight:
    """IDQL's weight log|tau - 1(Q < V)| (min over critics; sample with reducer softmax)."""
    critic = _critic(models, "expectile_weight")
    if models.value is None:
        raise GemkitError(
            "value 'expectile_weight' needs the run's value network V(s): use a gemkit "
            "training checkpoint (models.value)."
        )
    tau = float(models.meta.get("train_config", {}).get("expectile", 0.7))
    return ExpectileWeight(critic, models.value, tau)

