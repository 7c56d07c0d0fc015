"""Reducers: from a scored candidate set to one action per state (spec 2.5)."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from gemkit.errors import GemkitError
from gemkit.registry import REDUCERS

__all__ = ["Top1", "TopK"]


class Top1:
    """``a = a_{argmax score}`` (ties: the lowest index, i.e. the anchor wins ties)."""

    def __call__(self, candidates: Tensor, score: Tensor) -> Tensor:
        """``candidates [B, M, A]``, ``score [B, M] -> [B, A]``."""
        idx = score.argmax(dim=1)
        return candidates[torch.arange(candidates.shape[0], device=candidates.device), idx]

    def __repr__(self) -> str:
        return "Top1()"


class TopK:
    """Mean of the actions of the ``k`` best-scoring candidates."""

    def __init__(self, k: int) -> None:
        if k < 1:
            raise GemkitError(f"k must be >= 1, got {k}.")
        self.k = int(k)

    def __call__(self, candidates: Tensor, score: Tensor) -> Tensor:
        """``candidates [B, M, A]``, ``score [B, M] -> [B, A]``."""
        m = score.shape[1]
        if self.k > m:
            raise GemkitError(
                f"topk needs k <= the candidate-set size M = {m}, got k = {self.k}; lower k or "
                "raise n."
            )
        idx = score.topk(self.k, dim=1).indices  # [B, k]
        picked = torch.gather(candidates, 1, idx.unsqueeze(-1).expand(-1, -1, candidates.shape[-1]))
        return picked.mean(1)

    def __repr__(self) -> str:
        return f"TopK(k={self.k})"


@REDUCERS.register("top1")
def _top1(models: Any, config: Any) -> Top1:
    """The best-scoring candidate (GEM default)."""
    return Top1()


@REDUCERS.register("topk")
def _topk(models: Any, config: Any) -> TopK:
    """Mean of the k best-scoring candidates (top-k smoothing)."""
    return TopK(config.k)
