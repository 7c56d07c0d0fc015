"""Critics, candidate sources and anchors from other libraries, as gemkit components.

Each adapter imports its library only when called, so ``import gemkit.adapters`` costs nothing.
Every adapted component takes **raw** observations (``observation = "raw"``).

- :func:`from_d3rlpy` / :func:`policy_from_d3rlpy`: d3rlpy 2.x algorithms or their ``.d3`` files.
- :func:`from_modules`: plain ``nn.Module`` Q(s, a) networks (CORL-style, SB3 ``q_networks``).
- :func:`from_torchrl` / :func:`policy_from_torchrl`: TorchRL value modules and stochastic actors.

The module and TorchRL adapters take an ``observation=`` argument for networks trained on
gemkit's normalised states.
"""

from __future__ import annotations

from gemkit.adapters.d3rlpy import (
    D3rlpyAnchor,
    D3rlpyCritic,
    D3rlpyPolicySource,
    from_d3rlpy,
    load_d3rlpy,
    policy_from_d3rlpy,
)
from gemkit.adapters.modules import ModuleCritic, from_modules
from gemkit.adapters.torchrl import (
    TorchRLAnchor,
    TorchRLCritic,
    TorchRLPolicySource,
    from_torchrl,
    policy_from_torchrl,
)

__all__ = [
    "D3rlpyAnchor",
    "D3rlpyCritic",
    "D3rlpyPolicySource",
    "ModuleCritic",
    "TorchRLAnchor",
    "TorchRLCritic",
    "TorchRLPolicySource",
    "from_d3rlpy",
    "from_modules",
    "from_torchrl",
    "load_d3rlpy",
    "policy_from_d3rlpy",
    "policy_from_torchrl",
]
