"""The score rule of Eq. 4: ``score_i = LCB(s, a_i) + lambda_t * z_i``."""

from __future__ import annotations

from torch import Tensor

__all__ = ["combine_score"]


def combine_score(value: Tensor, support: Tensor, lam: Tensor) -> Tensor:
    """``value [B, M] + lam [B] * support [B, M]`` (``lam`` may also be a scalar tensor)."""
    if lam.dim() == 1:
        lam = lam.unsqueeze(1)
    return value + lam * support
