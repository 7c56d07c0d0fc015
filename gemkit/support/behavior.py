"""Support from the behavior GMM ``pi_beta``: ``l_i = log pi_beta(a_i | s)`` (spec 2.3).

Support is never evaluated under the actor (no self-certification).
"""

from __future__ import annotations

from typing import Any, Literal

import torch
from torch import Tensor

from gemkit.errors import GemkitError
from gemkit.models.gmm import BindsForwards, ConditionalGMM
from gemkit.models.io import Models
from gemkit.protocols import WrapsNetwork
from gemkit.registry import SUPPORTS
from gemkit.support.normalize import zscore

__all__ = ["BehaviorSupport", "NoSupport"]

Normalization = Literal["zscore", "raw"]


class BehaviorSupport(BindsForwards, WrapsNetwork):
    """:class:`~gemkit.protocols.Support` from a behavior GMM.

    Args:
        behavior: the behavior GMM ``pi_beta``.
        normalization: ``zscore`` (per state over its candidate set, std clamped at 1e-6) or
            ``raw`` (the log-likelihood itself).
    """

    def __init__(self, behavior: ConditionalGMM, normalization: Normalization = "zscore") -> None:
        if normalization not in ("zscore", "raw"):
            raise GemkitError(f"normalization must be zscore or raw, got {normalization!r}.")
        self.behavior = behavior
        self._normalization: Normalization = normalization

    @property
    def network(self) -> ConditionalGMM:
        """The behavior GMM."""
        return self.behavior

    @property
    def normalization(self) -> str:
        """``zscore`` or ``raw``."""
        return self._normalization

    def log_likelihood(self, states: Tensor, candidates: Tensor) -> Tensor:
        """``log pi_beta(a | s)``: ``states [B, S]``, ``candidates [B, M, A] -> [B, M]``."""
        params = self.params_of(self.behavior, states)
        return torch.logsumexp(self.behavior.log_joint(params, candidates), dim=-1)

    def normalize(self, loglik: Tensor) -> Tensor:
        """``[B, M] -> [B, M]``, z-scored per row or unchanged."""
        return zscore(loglik) if self._normalization == "zscore" else loglik

    def component_means(self, states: Tensor) -> Tensor:
        """Behavior component means ``[B, K, A]`` (for the CollapseDist audit)."""
        return self.params_of(self.behavior, states).means

    def __repr__(self) -> str:
        return f"BehaviorSupport({self._normalization}, K={self.behavior.n_components})"


class NoSupport:
    """No support term (zeros): for a critic used without any behavior model.

    The support audits (SupportZ, Violation, CollapseDist) are NaN under it.
    """

    @property
    def normalization(self) -> str:
        """``none``."""
        return "none"

    def log_likelihood(self, states: Tensor, candidates: Tensor) -> Tensor:
        """Zeros ``[B, M]``."""
        return candidates.new_zeros(candidates.shape[:2])

    def normalize(self, loglik: Tensor) -> Tensor:
        """Zeros like ``loglik``."""
        return torch.zeros_like(loglik)

    def __repr__(self) -> str:
        return "NoSupport()"


@SUPPORTS.register("zscore")
def _zscore(models: Models, config: Any) -> BehaviorSupport:
    """Behavior log-likelihood z-scored within each state's candidate set (GEM default)."""
    return BehaviorSupport(models.require_gmm("behavior", "support 'zscore'"), "zscore")


@SUPPORTS.register("raw")
def _raw(models: Models, config: Any) -> BehaviorSupport:
    """Raw behavior log-likelihood (normalisation ablation)."""
    return BehaviorSupport(models.require_gmm("behavior", "support 'raw'"), "raw")


@SUPPORTS.register("none")
def _none(models: Models, config: Any) -> NoSupport:
    """No support term; a critic alone (audits are NaN)."""
    return NoSupport()
