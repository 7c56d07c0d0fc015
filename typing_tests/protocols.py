"""Type-checked, never run: gemkit's built-in components satisfy the protocols (mypy checks)."""

from __future__ import annotations

from gemkit import protocols as P
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
from gemkit.reducers import Top1, TopK
from gemkit.scorers import EnsembleValue
from gemkit.support import BehaviorSupport, NoSupport


def check(gmm: ConditionalGMM, critic: CriticEnsemble) -> None:
    c: P.Critic = critic
    anchors: list[Anchor] = [ModeAnchor(gmm), BaryAnchor(gmm), NoAnchor()]
    sources: list[CandidateSource] = [ActorSource(gmm), BehaviorSource(gmm), UnimodalSource(gmm)]
    p: P.Proposer = CandidateProposer(anchors[0], sources[0])
    v: P.Value = EnsembleValue(c, "lcb", 1.0)
    s: P.Support = BehaviorSupport(gmm, "zscore")
    s2: P.Support = NoSupport()
    m: P.HasComponentMeans = BehaviorSupport(gmm, "raw")
    z: P.HasValueScale = EnsembleValue(c, "lcb", 1.0, standardize=True)
    r: list[P.Reducer] = [Top1(), TopK(3)]
    del p, v, s, s2, m, z, r
