"""Behavior support of candidates (Eq. 2): GMM log-likelihood, normalised per candidate set."""

from gemkit.support.behavior import BehaviorSupport, NoSupport
from gemkit.support.normalize import zscore

__all__ = ["BehaviorSupport", "NoSupport", "zscore"]
