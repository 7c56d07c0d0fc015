"""The vectorised critic ensemble and the state-value network of Phase I (spec 1.2).

The ensemble stores each layer's weights as ``[E, in, out]`` (as CORL's ``VectorizedLinear``), so
E critics are one module with one optimizer. Two mathematically identical forward paths exist:

- ``"loop"``: one ``addmm`` per member and layer,
- ``"bmm"``: one batched matmul per layer over all members.

Without autograd (inference, e.g. scoring ``B * M`` candidates) rows are processed in chunks of
``chunk_rows`` so activations stay in cache (measured here: 117 vs 37 GFLOP/s at 262,400 rows,
E = 10, 256x2). ``docs/performance.md`` has the measured comparison of the two paths.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from typing import Any, Literal

import torch
from torch import Tensor, nn

from gemkit.models.mlp import mlp

__all__ = ["CriticEnsemble", "ValueNetwork", "VectorizedLinear"]

ForwardMode = Literal["loop", "bmm"]


class VectorizedLinear(nn.Module):
    """``E`` independent linear layers: weight ``[E, in, out]``, bias ``[E, 1, out]``.

    Initialised member by member like ``nn.Linear`` (Kaiming-uniform weight, uniform bias).
    """

    def __init__(self, in_features: int, out_features: int, ensemble_size: int) -> None:
        super().__init__()
        self.in_features = in_features
        self.out_features = out_features
        self.ensemble_size = ensemble_size
        self.weight = nn.Parameter(torch.empty(ensemble_size, in_features, out_features))
        self.bias = nn.Parameter(torch.empty(ensemble_size, 1, out_features))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """``nn.Linear``'s default initialisation, once per member."""
        bound = 1.0 / math.sqrt(self.in_features)
        for e in range(self.ensemble_size):
            # kaiming_uniform_(a=sqrt(5)) on [out, in] == uniform(-1/sqrt(in), 1/sqrt(in))
            nn.init.uniform_(self.weight[e], -bound, bound)
            nn.init.uniform_(self.bias[e], -bound, bound)

    def forward(self, x: Tensor) -> Tensor:
        """``[E, N, in] -> [E, N, out]`` by one batched matmul."""
        return torch.baddbmm(self.bias, x, self.weight)


class CriticEnsemble(nn.Module):
    """``E`` MLP critics ``Q_e(s, a)`` evaluated together.

    Args:
        state_dim: ``S``.
        action_dim: ``A``.
        n_members: ``E``.
        hidden: widths of each member's ReLU MLP.
        mode: ``"loop"`` or ``"bmm"`` forward path (same result).

    ``critic(states [..., S], actions [..., A]) -> [E, ...]``. This satisfies the
    :class:`~gemkit.protocols.Critic` protocol.
    """

    observation = "normalized"
    """gemkit's networks take gemkit's normalised states (the observation contract)."""

    def __init__(
        self,
        state_dim: int,
        action_dim: int,
        n_members: int = 10,
        hidden: Sequence[int] = (256, 256),
        mode: ForwardMode = "loop",
    ) -> None:
        super().__init__()
        if n_members < 1:
            raise ValueError(f"n_members must be >= 1, got {n_members}.")
        if mode not in ("loop", "bmm"):
            raise ValueError(f"mode must be 'loop' or 'bmm', got {mode!r}.")
        self.state_dim = state_dim
        self.action_dim = action_dim
        self.n_members = n_members
        self.hidden = tuple(int(h) for h in hidden)
        self.mode: ForwardMode = mode
        dims = [state_dim + action_dim, *self.hidden, 1]
        self.layers = nn.ModuleList(
            VectorizedLinear(i, o, n_members) for i, o in itertools.pairwise(dims)
        )

    def spec(self) -> dict[str, Any]:
        """Constructor arguments, JSON-serialisable, to rebuild this module."""
        return {
            "state_dim": self.state_dim,
            "action_dim": self.action_dim,
            "n_members": self.n_members,
            "hidden": list(self.hidden),
            "mode": self.mode,
        }

    #: rows per chunk of the inference path (one member's activations of a chunk stay in cache:
    #: 8192 x 256 floats = 8 MiB).
    chunk_rows = 8192

    def forward(self, states: Tensor, actions: Tensor) -> Tensor:
        """``states [..., S]``, ``actions [..., A]`` (same leading dims) ``-> [E, ...]``."""
        lead = actions.shape[:-1]
        x = torch.cat([states.expand(*lead, states.shape[-1]), actions], dim=-1)
        x = x.reshape(-1, x.shape[-1])  # [N, S + A]
        rows = self._forward_loop if self.mode == "loop" else self._forward_bmm
        n, c = x.shape[0], self.chunk_rows
        if torch.is_grad_enabled() or n <= c:
            q = rows(x)
        else:  # inference on many rows: chunk them so activations stay in cache
            q = torch.cat([rows(x[i : i + c]) for i in range(0, n, c)], dim=1)
        return q.reshape(self.n_members, *lead)

    def _forward_loop(self, x: Tensor) -> Tensor:
        """One ``addmm`` per member and layer: ``[N, S + A] -> [E, N]``."""
        # unbind once: slicing weight[e] per member would make autograd zero-fill a whole
        # [E, in, out] gradient for every member in the backward pass
        layers = [(lay.weight.unbind(0), lay.bias.unbind(0)) for lay in self._vlayers()]
        last = len(layers) - 1
        out = []
        for e in range(self.n_members):
            h = x
            for i, (w, b) in enumerate(layers):
                h = torch.addmm(b[e], h, w[e])
                if i < last:
                    h = torch.relu_(h)  # addmm's backward does not need its output
            out.append(h.squeeze(-1))
        return torch.stack(out)

    def _forward_bmm(self, x: Tensor) -> Tensor:
        """One batched matmul per layer over all members: ``[N, S + A] -> [E, N]``."""
        h = x.unsqueeze(0).expand(self.n_members, *x.shape)
        layers = self._vlayers()
        for i, layer in enumerate(layers):
            h = layer(h)
            if i < len(layers) - 1:
                h = torch.relu_(h)
        return h.squeeze(-1)

    def _vlayers(self) -> list[VectorizedLinear]:
        return [lay for lay in self.layers if isinstance(lay, VectorizedLinear)]


class ValueNetwork(nn.Module):
    """State value ``V(s)``: ``[..., S] -> [...]``."""

    observation = "normalized"
    """gemkit's networks take gemkit's normalised states (the observation contract)."""

    def __init__(self, state_dim: int, hidden: Sequence[int] = (256, 256)) -> None:
        super().__init__()
        self.state_dim = state_dim
        self.hidden = tuple(int(h) for h in hidden)
        self.net = mlp(state_dim, self.hidden, 1)

    def spec(self) -> dict[str, Any]:
        """Constructor arguments, JSON-serialisable, to rebuild this module."""
        return {"state_dim": self.state_dim, "hidden": list(self.hidden)}

    def forward(self, states: Tensor) -> Tensor:
        """``[..., S] -> [...]``."""
        out: Tensor = self.net(states).squeeze(-1)
        return out
