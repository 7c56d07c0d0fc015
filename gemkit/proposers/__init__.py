"""Proposers: an anchor (mode / bary / none) plus N samples from one source (spec 2.1)."""

from gemkit.proposers.anchors import BaryAnchor, ModeAnchor, NoAnchor
from gemkit.proposers.candidates import Anchor, CandidateProposer, CandidateSource
from gemkit.proposers.sources import ActorSource, BehaviorSource, UnimodalSource

__all__ = [
    "ActorSource",
    "Anchor",
    "BaryAnchor",
    "BehaviorSource",
    "CandidateProposer",
    "CandidateSource",
    "ModeAnchor",
    "NoAnchor",
    "UnimodalSource",
]
