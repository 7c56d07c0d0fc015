"""The cosine schedule of the support weight lambda (Eq. 4)."""

from __future__ import annotations

import math

import attrs
import torch
from torch import Tensor

__all__ = ["LambdaSchedule"]


@attrs.frozen
class LambdaSchedule:
    """``lambda_t = lambda_T + (lambda_0 - lambda_T) * 0.5 * (1 + cos(pi * min(t, H) / H))``.

    Starts at ``lam_0`` and anneals to ``lam_T`` at ``t = horizon``; constant when they are equal.
    """

    lam_0: float
    lam_T: float
    horizon: int = 1000

    @property
    def constant(self) -> bool:
        """Whether ``lambda_t`` is the same at every step."""
        return self.lam_0 == self.lam_T

    def __call__(self, t: Tensor | int) -> Tensor:
        """``lambda_t`` for step(s) ``t`` (int or ``[B]``); returns a float32 tensor like ``t``."""
        tt = torch.as_tensor(t, dtype=torch.float32)
        if self.constant:
            return torch.full_like(tt, self.lam_0)
        frac = tt.clamp(min=0.0, max=float(self.horizon)) / self.horizon
        return self.lam_T + (self.lam_0 - self.lam_T) * 0.5 * (1.0 + torch.cos(math.pi * frac))
