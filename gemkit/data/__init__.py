"""Offline datasets: Minari loading, gemkit's own benchmark datasets, transition tensors."""

from gemkit.data.transitions import Transitions

__all__ = ["Transitions"]
