"""The vectorised critic ensemble equals a loop of plain per-member MLPs."""

from __future__ import annotations

import pytest
import torch
from core_fixtures import member_mlp
from torch import nn

from gemkit.models import CriticEnsemble


@pytest.mark.parametrize("mode", ["loop", "bmm"])
def test_ensemble_equals_loop_over_members(mode: str) -> None:
    torch.manual_seed(0)
    c = CriticEnsemble(4, 3, n_members=6, hidden=(16, 16), mode=mode)  # type: ignore[arg-type]
    s = torch.randn(5, 7, 4)
    a = torch.randn(5, 7, 3)
    q = c(s, a)
    assert q.shape == (6, 5, 7)
    members = [member_mlp(c, e) for e in range(6)]
    ref = torch.stack([m(torch.cat([s, a], -1)).squeeze(-1) for m in members])
    torch.testing.assert_close(q, ref, rtol=1e-5, atol=1e-5)
    # gradients agree too, member by member
    q.sum().backward()
    ref.sum().backward()
    for e, m in enumerate(members):
        lin0 = m[0]
        assert isinstance(lin0, nn.Linear)
        torch.testing.assert_close(c.layers[0].weight.grad[e].T, lin0.weight.grad)


def test_members_are_initialised_differently_and_both_modes_agree() -> None:
    torch.manual_seed(0)
    c = CriticEnsemble(4, 3, n_members=3, hidden=(8,))
    assert not torch.equal(c.layers[0].weight[0], c.layers[0].weight[1])
    s, a = torch.randn(9, 4), torch.randn(9, 3)
    q_loop = c(s, a)
    c.mode = "bmm"
    torch.testing.assert_close(q_loop, c(s, a), rtol=1e-5, atol=1e-6)


def test_gradients_flow_to_every_member() -> None:
    torch.manual_seed(0)
    c = CriticEnsemble(2, 1, n_members=4, hidden=(8, 8))
    c(torch.randn(10, 2), torch.randn(10, 1)).sum().backward()
    for p in c.parameters():
        assert p.grad is not None
        assert bool((p.grad.flatten(1).abs().sum(1) > 0).all())  # every member got gradient


@pytest.mark.parametrize("mode", ["loop", "bmm"])
def test_chunked_inference_path_equals_member_loop(mode: str) -> None:
    torch.manual_seed(0)
    c = CriticEnsemble(4, 3, n_members=3, hidden=(16, 16), mode=mode)  # type: ignore[arg-type]
    c.chunk_rows = 7  # 50 rows -> 8 chunks, the last one partial
    s, a = torch.randn(50, 4), torch.randn(50, 3)
    with torch.no_grad():
        q = c(s, a)
    for e in range(3):
        torch.testing.assert_close(q[e], member_mlp(c, e)(torch.cat([s, a], -1)).squeeze(-1))
