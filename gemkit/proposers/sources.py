"""Sources of the ``N`` sampled candidates: actor GMM, behavior GMM, unimodal collapse."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from gemkit.errors import GemkitError
from gemkit.models.generative import DiffusionBehavior, FlowBehavior
from gemkit.models.gmm import BindsForwards, ConditionalGMM
from gemkit.models.io import Models
from gemkit.protocols import WrapsNetwork
from gemkit.registry import SOURCES

__all__ = ["ActorSource", "BehaviorSource", "GenerativeSource", "UnimodalSource"]


class _GMMSource(BindsForwards, WrapsNetwork):
    def __init__(self, gmm: ConditionalGMM) -> None:
        self.gmm = gmm

    @property
    def network(self) -> ConditionalGMM:
        """The GMM sampled."""
        return self.gmm

    def sample(self, states: Tensor, n: int, generator: torch.Generator | None = None) -> Tensor:
        """``[B, S] -> [B, n, A]`` samples of the mixture, clipped to the action box."""
        return self.gmm.sample(states, n, generator, self.params_of(self.gmm, states))

    def __repr__(self) -> str:
        return f"{type(self).__name__}(K={self.gmm.n_components})"


class ActorSource(_GMMSource):
    """Samples of the guided-EM actor ``pi_theta`` (GEM default)."""


class BehaviorSource(_GMMSource):
    """Samples of the behavior GMM ``pi_beta`` (ablation ``behavior_only_cands``)."""


class UnimodalSource(_GMMSource):
    """Samples of the moment-matched single Gaussian of the actor (``unimodal_actor_cands``)."""

    def sample(self, states: Tensor, n: int, generator: torch.Generator | None = None) -> Tensor:
        """``[B, S] -> [B, n, A]`` samples of the collapsed actor, clipped to the action box."""
        return self.gmm.sample_collapsed(states, n, generator, self.params_of(self.gmm, states))

    def __repr__(self) -> str:
        return "UnimodalSource()"


def _no_chain_steps(config: Any) -> None:
    """A GMM has no sampling chain: ``config.chain_steps`` must be unset."""
    if config.chain_steps is not None:
        raise GemkitError(
            f"chain_steps={config.chain_steps} is a knob of a diffusion or flow proposer, not "
            f"of proposer {config.proposer!r}; leave it unset."
        )


@SOURCES.register("actor")
def _actor(models: Models, config: Any) -> ActorSource:
    """N samples of the guided-EM GMM actor (GEM default)."""
    _no_chain_steps(config)
    return ActorSource(models.require_gmm("actor", "proposer 'actor'"))


@SOURCES.register("behavior")
def _behavior(models: Models, config: Any) -> BehaviorSource:
    """N samples of the behavior GMM (behavior_only_cands)."""
    _no_chain_steps(config)
    return BehaviorSource(models.require_gmm("behavior", "proposer 'behavior'"))


@SOURCES.register("unimodal")
def _unimodal(models: Models, config: Any) -> UnimodalSource:
    """N samples of the actor collapsed to one moment-matched Gaussian (unimodal_actor_cands)."""
    _no_chain_steps(config)
    return UnimodalSource(models.require_gmm("actor", "proposer 'unimodal'"))


class GenerativeSource(WrapsNetwork):
    """Samples of a generative behavior model (diffusion or flow; ``gemkit fit-proposer``).

    Args:
        model: the fitted model.
        steps: a flow model's Euler steps at sampling time (``None``: its own). A diffusion
            model samples with the ``T`` it was fitted with; another ``steps`` is an error.
    """

    def __init__(self, model: DiffusionBehavior | FlowBehavior, steps: int | None = None) -> None:
        if steps is not None and not isinstance(model, FlowBehavior) and steps != model.steps:
            raise GemkitError(
                f"chain_steps={steps}: a diffusion model samples with the T it was fitted with "
                f"(T = {model.steps} here); refit it with 'gemkit fit-proposer --chain-steps "
                f"{steps}', or leave chain_steps unset."
            )
        self.model = model
        self.steps = model.steps if steps is None else int(steps)

    @property
    def network(self) -> DiffusionBehavior | FlowBehavior:
        """The generative model sampled."""
        return self.model

    def sample(self, states: Tensor, n: int, generator: torch.Generator | None = None) -> Tensor:
        """``[B, S] -> [B, n, A]`` samples of the model, in the action box."""
        if isinstance(self.model, FlowBehavior):
            return self.model.sample(states, n, generator=generator, steps=self.steps)
        return self.model.sample(states, n, generator=generator)

    def __repr__(self) -> str:
        return f"GenerativeSource({type(self.model).__name__}, steps={self.steps})"


@SOURCES.register("diffusion")
def _diffusion(models: Models, config: Any) -> GenerativeSource:
    """N samples of a behaviour diffusion model (IDQL, SfBC; gemkit fit-proposer)."""
    model = models.require_generative(DiffusionBehavior, "proposer 'diffusion'")
    return GenerativeSource(model, config.chain_steps)


@SOURCES.register("flow")
def _flow(models: Models, config: Any) -> GenerativeSource:
    """N samples of a flow-matching behaviour model (IFQL; gemkit fit-proposer --kind flow)."""
    model = models.require_generative(FlowBehavior, "proposer 'flow'")
    return GenerativeSource(model, config.chain_steps)

