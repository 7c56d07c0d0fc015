"""How training initialises its networks: from the run's generator only, never global RNG."""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

from gemkit.models.critic import VectorizedLinear
from gemkit.models.gmm import ConditionalGMM
from gemkit.train.config import TrainConfig

__all__ = ["init_parameters", "make_gmm"]


def make_gmm(
    config: TrainConfig,
    state_dim: int,
    action_dim: int,
    k: int,
    low: torch.Tensor,
    high: torch.Tensor,
) -> ConditionalGMM:
    """A ``k``-component conditional GMM with ``config``'s sizes, bounds and likelihood
    (``gmm_likelihood``) on the box ``[low, high]``; built without touching global RNG
    (initialise it with :func:`init_parameters`)."""
    kw: dict[str, Any] = {
        "hidden": config.hidden,
        "log_std_min": config.log_std_min,
        "log_std_max": config.log_std_max,
        "action_low": low.tolist(),
        "action_high": high.tolist(),
        "likelihood": config.gmm_likelihood,
    }
    with torch.random.fork_rng(devices=[]):
        return ConditionalGMM(state_dim, action_dim, k, **kw)


def init_parameters(module: nn.Module, generator: torch.Generator, init_log_std: float) -> None:
    """Re-initialise ``module`` from ``generator`` exactly like ``nn.Linear``'s default.

    ``nn.Linear`` draws weight and bias from ``U(-1/sqrt(in), 1/sqrt(in))``; the same holds for
    each member of a :class:`VectorizedLinear`. A GMM's means-head bias is drawn from
    ``U(-1, 1)`` instead (component means start spread over the action box, which keeps the
    mixture from collapsing onto one component early) and its ``log sigma`` starts at
    ``init_log_std`` (narrow components claim the data near them, EM-style, instead of all
    overlapping).
    """
    with torch.no_grad():
        for m in module.modules():
            if isinstance(m, nn.Linear | VectorizedLinear):
                fan_in = m.in_features
                bound = 1.0 / math.sqrt(fan_in)
                nn.init.uniform_(m.weight, -bound, bound, generator=generator)
                if m.bias is not None:
                    nn.init.uniform_(m.bias, -bound, bound, generator=generator)
        for m in module.modules():
            if isinstance(m, ConditionalGMM):
                # spread the K component means over the box (pre-tanh bias U(-1, 1)) so that
                # the components start apart instead of all at the box centre
                nn.init.uniform_(m.means_head.bias, -1.0, 1.0, generator=generator)
                m.log_std_param.fill_(init_log_std)
