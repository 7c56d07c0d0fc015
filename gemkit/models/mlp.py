"""Plain MLP trunks and the action box, shared by gemkit's networks."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

__all__ = ["mlp", "register_action_box"]


def mlp(in_dim: int, hidden: Sequence[int], out_dim: int | None = None) -> nn.Sequential:
    """``Linear -> ReLU`` for each hidden width, then an optional linear head to ``out_dim``."""
    layers: list[nn.Module] = []
    d = in_dim
    for h in hidden:
        layers += [nn.Linear(d, h), nn.ReLU()]
        d = h
    if out_dim is not None:
        layers.append(nn.Linear(d, out_dim))
    return nn.Sequential(*layers)


def register_action_box(
    module: nn.Module,
    action_dim: int,
    low: float | Sequence[float],
    high: float | Sequence[float],
) -> None:
    """Register ``module.action_low`` / ``action_high`` (``[A]`` float32 buffers) from a scalar
    or per-dimension bounds.

    Raises:
        ValueError: some ``low >= high``.
    """
    lo = torch.as_tensor(low, dtype=torch.float32).expand(action_dim).clone()
    hi = torch.as_tensor(high, dtype=torch.float32).expand(action_dim).clone()
    if not bool((lo < hi).all()):
        raise ValueError("action_low must be < action_high in every dim.")
    module.register_buffer("action_low", lo)
    module.register_buffer("action_high", hi)

