"""gemkit.adapters.from_modules: plain nn.Module Q(s, a) networks as a critic [E, B, M]."""

from __future__ import annotations

import sys

import pytest
import torch
from adapter_fixtures import MEAN, STD, Case, assert_one_line_errors, models_with_stats
from core_fixtures import A, S, gen, states
from torch import nn

from gemkit import GemkitError, compose
from gemkit.adapters.modules import ModuleCritic, from_modules
from gemkit.errors import ShapeError
from gemkit.scorers.values import EnsembleValue
from gemkit.testing import check_value, example_inputs


def mlp(seed: int, dtype: torch.dtype = torch.float32) -> nn.Sequential:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(S + A, 16), nn.ReLU(), nn.Linear(16, 1)).to(dtype)


class PairQ(nn.Module):
    """A CORL-style critic: ``q(state, action) -> [N]``."""

    def __init__(self, seed: int) -> None:
        super().__init__()
        self.net = mlp(seed)

    def forward(self, s: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
        return self.net(torch.cat([s, a], -1)).squeeze(-1)


def by_hand(
    nets: list[nn.Module], s: torch.Tensor, cands: torch.Tensor, pair: bool
) -> torch.Tensor:
    """Mean over ``nets`` of Q on raw ``s [B, S]`` and ``cands [B, M, A]``: ``[B, M]``."""
    x = s.unsqueeze(1).expand(-1, cands.shape[1], -1)
    with torch.no_grad():
        qs = [
            (n(x, cands) if pair else n(torch.cat([x, cands], -1))).reshape(cands.shape[:2])
            for n in nets
        ]
    return torch.stack(qs).mean(0)


@pytest.mark.parametrize("inputs", ["pair", "concat"])
def test_selector_mean_value_equals_the_modules_mean_on_raw_states(inputs: str) -> None:
    nets: list[nn.Module] = [PairQ(i) if inputs == "pair" else mlp(i) for i in range(3)]
    m = models_with_stats()
    m.critic = from_modules(*nets, inputs=inputs)  # type: ignore[arg-type]
    sel = compose(value="mean", models=m, n=7)
    assert sel.observation["value"] == "raw"
    s = states(5) * 3 + 1
    out = sel.select(s, generator=gen())
    want = by_hand(nets, s, out.candidates, pair=inputs == "pair")
    assert (out.value - want).abs().max() < 1e-5
    # the same networks fed gemkit's normalised states would score otherwise
    wrong = by_hand(nets, (s - MEAN) / STD, out.candidates, pair=inputs == "pair")
    assert (out.value - wrong).abs().max() > 1e-3


def test_a_critic_declared_normalized_gets_normalised_states() -> None:
    nets = [mlp(i) for i in range(2)]
    m = models_with_stats()
    m.critic = from_modules(nets, inputs="concat", observation="normalized")
    s = states(4)
    out = compose(value="mean", models=m, n=5).select(s, generator=gen())
    want = by_hand(nets, (s - MEAN) / STD, out.candidates, pair=False)  # type: ignore[arg-type]
    assert (out.value - want).abs().max() < 1e-5


def test_one_network_several_or_a_module_list() -> None:
    s, c = example_inputs(state_dim=S, action_dim=A)
    x = s.unsqueeze(1).expand(-1, c.shape[1], -1)
    assert from_modules(mlp(0), inputs="concat")(x, c).shape == (1, 4, 9)
    assert from_modules(mlp(0), mlp(1), mlp(2), inputs="concat").n_members == 3
    # SB3's ContinuousCritic.q_networks is a ModuleList of Sequential(cat(obs, act))
    q_networks = nn.ModuleList([mlp(0), mlp(1), mlp(2)])
    critic = from_modules(q_networks, inputs="concat")
    q = critic(x, c)
    assert q.shape == (3, 4, 9) and not q.requires_grad
    assert torch.equal(q[1], q_networks[1](torch.cat([x, c], -1)).squeeze(-1).detach())


@pytest.mark.parametrize("inputs", ["pair", "concat"])
def test_every_module_critic_passes_the_conformance_suite(inputs: str) -> None:
    nets: list[nn.Module] = [PairQ(i) if inputs == "pair" else mlp(i) for i in range(3)]
    critic = from_modules(*nets, inputs=inputs)  # type: ignore[arg-type]
    s, c = example_inputs(state_dim=S, action_dim=A)
    for reduction in ("lcb", "mean", "min"):
        check_value(EnsembleValue(critic, reduction), s, c)  # type: ignore[arg-type]


def test_runs_on_the_modules_dtype_and_returns_the_inputs() -> None:
    net64 = mlp(0, torch.float64)
    critic = from_modules(net64, inputs="concat")
    s, c = example_inputs(state_dim=S, action_dim=A)
    x = s.unsqueeze(1).expand(-1, c.shape[1], -1)
    q = critic(x, c)
    assert q.dtype == torch.float32
    want = net64(torch.cat([x, c], -1).double()).squeeze(-1).float()
    torch.testing.assert_close(q[0], want)
    assert critic(x.double(), c.double()).dtype == torch.float64
    check_value(EnsembleValue(critic), s.double(), c.double())


def test_bad_networks_and_inputs_are_one_line_errors() -> None:
    s, c = example_inputs(state_dim=S, action_dim=A)
    x = s.unsqueeze(1).expand(-1, c.shape[1], -1)
    cases: list[Case] = [
        (GemkitError, "at least one network", lambda: from_modules()),
        (GemkitError, "not a Module", lambda: from_modules(lambda s, a: s)),  # type: ignore[arg-type]
        (GemkitError, "inputs must be one of pair, concat",
         lambda: from_modules(mlp(0), inputs="x")),  # type: ignore[arg-type]
        (GemkitError, "observation must be one of", lambda: from_modules(mlp(0), observation="z")),
        # a concat network called as q(state, action)
        (ShapeError, r"network #0 failed .* as q\(state, action\)",
         lambda: from_modules(mlp(0))(x, c)),
        # a network for other state dims
        (ShapeError, "network #1 failed on states", lambda: from_modules(
            mlp(0), nn.Linear(7, 1), inputs="concat")(x, c)),
        # two outputs per pair
        (ShapeError, r"must return \[N\] or \[N, 1\] Q-values for N = 36 .*, got \[36, 2\]",
         lambda: from_modules(nn.Linear(S + A, 2), inputs="concat")(x, c)),
        (ShapeError, r"float states \[B, M, \.\], got \[4, 3\]",
         lambda: from_modules(mlp(0), inputs="concat")(s, c)),
        (ShapeError, "must share",
         lambda: from_modules(mlp(0), inputs="concat")(x[:2], c)),
    ]  # fmt: skip
    assert_one_line_errors(cases)


def test_repr_names_the_convention() -> None:
    critic = from_modules(mlp(0), mlp(1), inputs="concat")
    assert isinstance(critic, ModuleCritic)
    assert repr(critic) == "ModuleCritic(E=2, inputs=concat, observation=raw)"


def test_the_torchrl_adapter_imports_torchrl_only_when_called(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """gemkit.adapters imports without TorchRL; calling its adapter then says how to install."""
    import gemkit.adapters.torchrl as trl

    monkeypatch.setitem(sys.modules, "tensordict", None)  # as if not installed
    with pytest.raises(GemkitError, match=r"pip install 'gemkit\[torchrl\]'") as e:
        trl.from_torchrl(mlp(0))
    assert "\n" not in str(e.value)
