"""Tiny seeded networks for the core (selection) tests."""

from __future__ import annotations

import torch
from torch import nn

from gemkit.models import ConditionalGMM, CriticEnsemble, Models, ValueNetwork

S, A, K, E = 3, 2, 4, 5


def tiny_models(seed: int = 0, generative: str | None = None) -> Models:
    """Actor, behavior GMM, a 5-member critic ensemble and a value network, deterministic for
    ``seed``; with
    ``generative`` (``diffusion`` or ``flow``) an untrained generative behavior model too."""
    from gemkit.models.generative import DiffusionBehavior, FlowBehavior

    torch.manual_seed(seed)  # initialisation only; the code under test never reads global RNG
    gen_cls = {"diffusion": DiffusionBehavior, "flow": FlowBehavior}
    return Models(
        actor=ConditionalGMM(S, A, K, hidden=(32,)),
        behavior=ConditionalGMM(S, A, K, hidden=(32,)),
        critic=CriticEnsemble(S, A, E, hidden=(32, 32)),
        generative=gen_cls[generative](S, A, hidden=(32,)) if generative else None,
        value=ValueNetwork(S, hidden=(32,)),
    )


def states(b: int = 6, seed: int = 1) -> torch.Tensor:
    return torch.randn(b, S, generator=torch.Generator().manual_seed(seed))


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def member_mlp(c: CriticEnsemble, e: int) -> nn.Sequential:
    """Member ``e`` of ``c`` as a plain ``nn.Sequential`` of ``nn.Linear`` (same weights)."""
    layers: list[nn.Module] = []
    for i, layer in enumerate(c.layers):
        lin = nn.Linear(layer.in_features, layer.out_features)
        with torch.no_grad():
            lin.weight.copy_(layer.weight[e].T)
            lin.bias.copy_(layer.bias[e, 0])
        layers.append(lin)
        if i < len(c.layers) - 1:
            layers.append(nn.ReLU())
    return nn.Sequential(*layers)
