"""Every built-in component passes gemkit.testing, and the suite catches broken components."""

from __future__ import annotations

import pytest
import torch
from core_fixtures import S, states, tiny_models

from gemkit.config import SelectorConfig
from gemkit.proposers import CandidateProposer
from gemkit.registry import ANCHORS, REDUCERS, SOURCES, SUPPORTS, VALUES
from gemkit.testing import (
    ConformanceError,
    check_component,
    check_proposer,
    check_reducer,
    check_support,
    check_value,
    example_inputs,
)

CFG = SelectorConfig(k=3)


@pytest.mark.parametrize("source", SOURCES.names())
@pytest.mark.parametrize("anchor", ANCHORS.names())
def test_builtin_proposers(source: str, anchor: str) -> None:
    m = tiny_models(generative=source if source in ("diffusion", "flow") else None)
    prop = CandidateProposer(ANCHORS.get(anchor)(m, CFG), SOURCES.get(source)(m, CFG))
    out = check_proposer(prop, states(4), n=6)
    assert out.min() >= -1 and out.max() <= 1


@pytest.mark.parametrize(("kind", "registry"), [("value", VALUES), ("support", SUPPORTS),
                                                ("reducer", REDUCERS)])  # fmt: skip
def test_builtin_components(kind: str, registry) -> None:
    s, c = example_inputs(state_dim=S)
    for name in registry.names():
        check_component(kind, registry.get(name)(tiny_models(), CFG), s, c)


def test_suite_catches_broken_components() -> None:
    s, c = example_inputs(state_dim=S)

    def mutating(states: torch.Tensor, candidates: torch.Tensor) -> torch.Tensor:
        candidates.mul_(1.0 + 1e-3)
        return candidates.sum(-1)

    with pytest.raises(ConformanceError, match="modified its input"):
        check_value(mutating, s, c)

    def mixing(states: torch.Tensor, candidates: torch.Tensor) -> torch.Tensor:
        return candidates.sum(-1).cumsum(-1)  # depends on candidate order

    with pytest.raises(ConformanceError, match="permuting"):
        check_value(mixing, s, c)

    with pytest.raises(ConformanceError, match="shape"):
        check_value(lambda st, ca: ca.sum(-1).T, s, c)

    class GlobalRNGProposer:
        has_anchor = False

        def propose(self, states, n, generator=None):
            return torch.rand(states.shape[0], n, 2) * 2 - 1  # ignores the generator

    with pytest.raises(ConformanceError, match="same seed"):
        check_proposer(GlobalRNGProposer(), s)

    class CrossStateSupport:
        normalization = "batch"

        def log_likelihood(self, states, candidates):
            return -candidates.square().sum(-1)

        def normalize(self, ll):
            return (ll - ll.mean()) / ll.std()  # standardises across states: wrong

    with pytest.raises(ConformanceError, match="on its own"):
        check_support(CrossStateSupport(), s, c)

    with pytest.raises(ConformanceError, match="range"):
        check_reducer(lambda ca, sc: ca.max(1).values + 1.0, c, torch.zeros(c.shape[:2]))
