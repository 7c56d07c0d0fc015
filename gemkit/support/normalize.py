"""Per-state standardisation of the support over each state's candidate set (Eq. 2)."""

from __future__ import annotations

from torch import Tensor

__all__ = ["zscore"]


def zscore(x: Tensor, eps: float = 1e-6) -> Tensor:
    """``(x - mean) / max(std, eps)`` along the last dim, population std: ``[B, M] -> [B, M]``."""
    mean = x.mean(-1, keepdim=True)
    std = x.std(-1, unbiased=False, keepdim=True) if x.shape[-1] > 1 else x.new_zeros(mean.shape)
    return (x - mean) / std.clamp_min(eps)
