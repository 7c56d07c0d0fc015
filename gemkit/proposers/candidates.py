"""The candidate set ``C(s) = {a_0(s)} U {a_1..a_N}`` of Eq. 1, from an anchor and a source."""

from __future__ import annotations

import torch
from torch import Tensor

from gemkit.errors import GemkitError
from gemkit.models.gmm import BindsForwards, Forwards, bind
from gemkit.protocols import Anchor, CandidateSource, declared_device, observation_kind

__all__ = ["Anchor", "CandidateProposer", "CandidateSource"]


class CandidateProposer(BindsForwards):
    """Anchor first (when there is one), then ``n`` samples from exactly one source.

    Satisfies :class:`gemkit.protocols.Proposer`.

    Args:
        anchor: the deterministic anchor (:class:`~gemkit.proposers.NoAnchor` for none).
        source: where the ``n`` samples come from; no mixing, no fallback.
    """

    def __init__(self, anchor: Anchor, source: CandidateSource) -> None:
        self.anchor = anchor
        self.source = source
        kinds = {observation_kind(source)}
        if self.has_anchor:
            kinds.add(observation_kind(anchor))
        if len(kinds) > 1:
            raise GemkitError(
                f"the anchor {anchor!r} takes {observation_kind(anchor)} states but the source "
                f"{source!r} takes {observation_kind(source)} ones; use an anchor and a source "
                "that read the same states (e.g. both from the same library)."
            )
        self.observation = kinds.pop()

    def bound(self, forwards: Forwards) -> CandidateProposer:
        """This proposer with its anchor and source bound to ``forwards`` (where they read
        GMMs: :class:`~gemkit.models.gmm.BindsForwards`)."""
        twin = super().bound(forwards)
        twin.anchor = bind(self.anchor, forwards)
        twin.source = bind(self.source, forwards)
        return twin

    @property
    def has_anchor(self) -> bool:
        """Whether ``candidates[:, 0]`` is the anchor."""
        return not getattr(self.anchor, "is_none", False)

    @property
    def device(self) -> torch.device | None:
        """Where the source (else the anchor) computes, as they declare it."""
        return declared_device(self.source) or declared_device(self.anchor)

    def propose(self, states: Tensor, n: int, generator: torch.Generator | None = None) -> Tensor:
        """``states [B, S] -> candidates [B, n + has_anchor, A]``."""
        if n < 0:
            raise GemkitError(f"n (sampled candidates) must be >= 0, got {n}.")
        a0 = self.anchor(states)
        if a0 is None and n == 0:
            raise GemkitError("an empty candidate set: with anchor 'none', n must be >= 1.")
        samples = self.source.sample(states, n, generator=generator) if n > 0 else None
        if a0 is None:
            assert samples is not None
            return samples
        if samples is None:
            return a0.unsqueeze(1)
        return torch.cat([a0.unsqueeze(1), samples], dim=1)

    def __repr__(self) -> str:
        return f"CandidateProposer(anchor={self.anchor!r}, source={self.source!r})"
