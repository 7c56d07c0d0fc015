"""Type-checked, never run: gemkit's built-in components satisfy the protocols (mypy checks)."""

from __future__ import annotations

from gemkit.models import ConditionalGMM, CriticEnsemble
from gemkit.proposers import (
    ActorSource,
    Anchor,
    BaryAnchor,
    BehaviorSource,
    CandidateProposer,
    CandidateSource,
    ModeAnchor,
    NoAnchor,
    UnimodalSource,
)
from gemkit.protocols import (
    Critic,
    HasComponentMeans,
    HasValueScale,
    Proposer,
    Reducer,
    Support,
    Value,
)
from gemkit.reducers import Top1, TopK
from gemkit.scorers import EnsembleValue
from gemkit.support import BehaviorSupport, NoSupport


def check(gmm: ConditionalGMM, critic: CriticEnsemble) -> None:
    c: Critic = critic
    anchors: list[Anchor] = [ModeAnchor(gmm), BaryAnchor(gmm), NoAnchor()]
    sources: list[CandidateSource] = [ActorSource(gmm), BehaviorSource(gmm), UnimodalSource(gmm)]
    p: Proposer = CandidateProposer(anchors[0], sources[0])
    v: Value = EnsembleValue(c, "lcb", 1.0)
    s: Support = BehaviorSupport(gmm, "zscore")
    s2: Support = NoSupport()
    m: HasComponentMeans = BehaviorSupport(gmm, "raw")
    z: HasValueScale = EnsembleValue(c, "lcb", 1.0, standardize=True)
    r: list[Reducer] = [Top1(), TopK(3)]
    del p, v, s, s2, m, z, r
