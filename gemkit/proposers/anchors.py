"""Anchors ``a_0(s)`` of the actor GMM: its mode, its barycenter, or none (spec 2.1)."""

from __future__ import annotations

from typing import Any

from torch import Tensor

from gemkit.models.gmm import BindsForwards, ConditionalGMM
from gemkit.models.io import Models
from gemkit.protocols import WrapsNetwork
from gemkit.registry import ANCHORS

__all__ = ["BaryAnchor", "ModeAnchor", "NoAnchor"]


class _ActorAnchor(BindsForwards, WrapsNetwork):
    def __init__(self, actor: ConditionalGMM) -> None:
        self.actor = actor

    @property
    def network(self) -> ConditionalGMM:
        """The actor."""
        return self.actor


class ModeAnchor(_ActorAnchor):
    """``a_0 = mu_{k*}(s)``, ``k* = argmax_k w_k(s)`` of the actor."""

    def __call__(self, states: Tensor) -> Tensor:
        return self.actor.mode(states, self.params_of(self.actor, states))

    def __repr__(self) -> str:
        return "ModeAnchor()"


class BaryAnchor(_ActorAnchor):
    """``a_0 = sum_k w_k(s) mu_k(s)`` of the actor (ablation ``anchor_bary``)."""

    def __call__(self, states: Tensor) -> Tensor:
        return self.actor.barycenter(states, self.params_of(self.actor, states))

    def __repr__(self) -> str:
        return "BaryAnchor()"


class NoAnchor:
    """No anchor (ablation ``no_anchor``): the set is the ``N`` samples alone."""

    is_none = True

    def __call__(self, states: Tensor) -> None:
        return None

    def __repr__(self) -> str:
        return "NoAnchor()"


@ANCHORS.register("mode")
def _mode(models: Models, config: Any) -> ModeAnchor:
    """Mean of the actor's highest-weight component (GEM default)."""
    return ModeAnchor(models.require_gmm("actor", "anchor 'mode'"))


@ANCHORS.register("bary")
def _bary(models: Models, config: Any) -> BaryAnchor:
    """Weighted mean of the actor's component means (anchor_bary)."""
    return BaryAnchor(models.require_gmm("actor", "anchor 'bary'"))


@ANCHORS.register("none")
def _none(models: Models, config: Any) -> NoAnchor:
    """No anchor; the candidate set is the N samples (no_anchor)."""
    return NoAnchor()
