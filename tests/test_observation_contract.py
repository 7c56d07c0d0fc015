"""The observation contract: each component gets the states it declares (raw by default)."""

from __future__ import annotations

import pytest
import torch
from core_fixtures import gen, states, tiny_models

from gemkit import GemkitError, compose
from gemkit.proposers import CandidateProposer, ModeAnchor
from gemkit.protocols import observation_kind

MEAN, STD = torch.tensor([1.0, -2.0, 3.0]), torch.tensor([2.0, 0.5, 4.0])


class Recording:
    """A critic that records the states it was given; declares ``kind`` if not None."""

    def __init__(self, inner: object, kind: str | None) -> None:
        self.inner = inner
        self.seen: list[torch.Tensor] = []
        if kind is not None:
            self.observation = kind

    def __call__(self, s: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
        self.seen.append(s[:, 0].clone())
        return self.inner(s, a)  # type: ignore[operator]


def _models_with_stats():
    m = tiny_models()
    m.meta.update(obs_mean=MEAN.tolist(), obs_std=STD.tolist())
    return m


def test_gemkit_networks_declare_normalized_and_foreign_objects_default_to_raw() -> None:
    m = tiny_models()
    assert observation_kind(m.actor) == "normalized"
    assert observation_kind(m.critic) == "normalized"
    assert observation_kind(lambda s, a: s) == "raw"
    sel = compose(models=m, n=4)
    assert sel.observation == {"proposer": "normalized", "value": "normalized",
                               "support": "normalized"}  # fmt: skip


@pytest.mark.parametrize(("kind", "expect_raw"), [(None, True), ("raw", True),
                                                  ("normalized", False)])  # fmt: skip
def test_the_critic_gets_the_states_it_declares(kind: str | None, expect_raw: bool) -> None:
    m = _models_with_stats()
    rec = Recording(m.critic, kind)
    m.critic = rec
    s = states(5)
    out = compose(models=m, n=3).select(s, generator=gen())
    want = s if expect_raw else (s - MEAN) / STD
    torch.testing.assert_close(rec.seen[0], want)
    # the networks gemkit trained still see normalised states: the same candidates as a
    # selector whose critic is gemkit's own
    ref = compose(models=_models_with_stats(), n=3).select(s, generator=gen())
    assert torch.equal(out.candidates, ref.candidates)
    assert torch.equal(out.loglik, ref.loglik)
    if not expect_raw:
        torch.testing.assert_close(out.value, ref.value)


def test_a_critic_fed_the_wrong_kind_gives_other_values() -> None:
    """What the contract prevents: gemkit's critic declared raw scores differently."""
    m = _models_with_stats()
    s = states(4)
    ref = compose(models=m, n=3).select(s, generator=gen())
    m.critic = Recording(m.critic, "raw")
    wrong = compose(models=m, n=3).select(s, generator=gen())
    assert not torch.allclose(wrong.value, ref.value)


def test_bad_declarations_are_one_line_errors() -> None:
    m = tiny_models()
    m.critic = Recording(m.critic, "scaled")
    with pytest.raises(GemkitError, match="declare one of raw, normalized") as e:
        compose(models=m, n=3)
    assert "\n" not in str(e.value)

    class RawSource:
        def sample(self, s: torch.Tensor, n: int, generator=None) -> torch.Tensor:
            return torch.zeros(s.shape[0], n, 2)

    with pytest.raises(GemkitError, match=r"anchor .* takes normalized states but the source"):
        CandidateProposer(ModeAnchor(tiny_models().actor), RawSource())  # type: ignore[arg-type]


def test_the_selector_asks_its_components_where_they_compute() -> None:
    from gemkit.protocols import declared_device

    m = tiny_models()
    sel = compose(models=m, n=3)
    for part in (sel.proposer, sel.value, sel.support, sel.proposer.source):  # type: ignore[attr-defined]
        assert declared_device(part) == torch.device("cpu")
    assert sel.device == torch.device("cpu")
    # a plain function critic declares nothing: the value falls back to None, the selector to
    # the other components (here the GMMs on the CPU)
    m.critic = lambda s, a: torch.zeros(1, *a.shape[:2])
    assert declared_device(compose(models=m, n=3).value) is None
