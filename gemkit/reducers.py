"""Reducers: from a scored candidate set to one action per state (spec 2.5)."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from gemkit.errors import GemkitError
from gemkit.registry import REDUCERS

__all__ = ["SoftmaxSample", "Top1", "TopK", "apply_reducer"]


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


def apply_reducer(
    reducer: Any, candidates: Tensor, score: Tensor, generator: torch.Generator
) -> Tensor:
    """``reducer(candidates, score)``; a ``stochastic`` reducer also gets ``generator`` (the
    selection's own, so seeded selections stay reproducible)."""
    if getattr(reducer, "stochastic", False):
        out: Tensor = reducer(candidates, score, generator=generator)
        return out
    result: Tensor = reducer(candidates, score)
    return result


class SoftmaxSample:
    """One candidate drawn per state with probability ``softmax(score / temperature)`` (SfBC,
    Diffusion-QL); ``temperature -> 0`` is :class:`Top1`.

    A stochastic reducer (``stochastic = True``): the selector passes its ``generator``.
    """

    stochastic = True

    def __init__(self, temperature: float) -> None:
        if not temperature > 0:
            raise GemkitError(f"temperature must be > 0, got {temperature}.")
        self.temperature = float(temperature)

    def __call__(self, candidates: Tensor, score: Tensor, *, generator: torch.Generator) -> Tensor:
        """``candidates [B, M, A]``, ``score [B, M] -> [B, A]``; the draws come from
        ``generator`` (required: never torch's global one)."""
        logits = score / self.temperature
        # -inf scores (masked candidates) get probability 0; a row of them all is an error
        probs = torch.softmax(logits.float(), dim=1)
        if not bool(torch.isfinite(probs).all()):
            raise GemkitError("softmax reducer: a state has no candidate with a finite score.")
        idx = torch.multinomial(probs, 1, generator=generator).squeeze(1)
        return candidates[torch.arange(candidates.shape[0], device=candidates.device), idx]

    def __repr__(self) -> str:
        return f"SoftmaxSample(temperature={self.temperature:g})"


@REDUCERS.register("top1")
def _top1(models: Any, config: Any) -> Top1:
    """The best-scoring candidate (GEM default)."""
    return Top1()


@REDUCERS.register("topk")
def _topk(models: Any, config: Any) -> TopK:
    """Mean of the k best-scoring candidates (top-k smoothing)."""
    return TopK(config.k)


@REDUCERS.register("softmax")
def _softmax(models: Any, config: Any) -> SoftmaxSample:
    """One candidate drawn from softmax(score / temperature) (SfBC, Diffusion-QL)."""
    return SoftmaxSample(config.temperature)
