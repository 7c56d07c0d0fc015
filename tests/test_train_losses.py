"""Phase I losses against numpy references (gemkit.train.losses)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from gemkit.train import losses as L

RTOL = 1e-5
ATOL = 1e-6


def _rand(*shape: int, seed: int = 0, scale: float = 1.0) -> torch.Tensor:
    return scale * torch.randn(*shape, generator=torch.Generator().manual_seed(seed))


# ---------------------------------------------------------------- numpy references
def ref_expectile(u: np.ndarray, t: float) -> float:
    w = np.where(u < 0, 1.0 - t, t)
    return float(np.mean(w * u**2))


def ref_logsumexp(x: np.ndarray) -> np.ndarray:
    m = x.max(-1, keepdims=True)
    return (m + np.log(np.exp(x - m).sum(-1, keepdims=True)))[..., 0]


def ref_softmax(x: np.ndarray) -> np.ndarray:
    e = np.exp(x - x.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


# ---------------------------------------------------------------- tests
@pytest.mark.parametrize("t", [0.5, 0.7, 0.9])
def test_expectile_loss_matches_numpy(t: float) -> None:
    u = _rand(1000, seed=1, scale=2.0)
    got = L.expectile_loss(u, t).item()
    assert got == pytest.approx(ref_expectile(u.double().numpy(), t), rel=RTOL)


def test_expectile_loss_is_asymmetric() -> None:
    pos, neg = torch.tensor([1.0]), torch.tensor([-1.0])
    assert L.expectile_loss(pos, 0.7).item() == pytest.approx(0.7)
    assert L.expectile_loss(neg, 0.7).item() == pytest.approx(0.3)


@given(
    st.lists(st.floats(-50, 50, allow_nan=False), min_size=1, max_size=64),
    st.floats(0.01, 0.99),
)
@settings(max_examples=50, deadline=None)
def test_expectile_loss_property(values: list[float], t: float) -> None:
    u = torch.tensor(values, dtype=torch.float64)
    assert L.expectile_loss(u, t).item() == pytest.approx(
        ref_expectile(np.asarray(values), t), rel=1e-9, abs=1e-12
    )


def test_td_target_and_critic_loss_match_numpy() -> None:
    r = _rand(64, seed=2)
    d = (torch.rand(64, generator=torch.Generator().manual_seed(3)) < 0.3).float()
    nv = _rand(64, seed=4)
    y = L.td_target(r, d, nv, 0.99)
    y_ref = r.numpy() + 0.99 * (1 - d.numpy()) * nv.numpy()
    np.testing.assert_allclose(y.numpy(), y_ref, rtol=RTOL, atol=ATOL)
    q = _rand(5, 64, seed=5)
    ref = np.mean([np.mean((q[e].numpy() - y_ref) ** 2) for e in range(5)])
    assert L.critic_loss(q, y).item() == pytest.approx(float(ref), rel=RTOL)


@pytest.mark.parametrize("alpha", [0.0, 1.0, 3.0, 10.0])
def test_guidance_weight_matches_numpy_with_clip(alpha: float) -> None:
    adv = torch.linspace(-5, 5, 101)
    got = L.guidance_weight(adv, alpha).numpy()
    ref = np.minimum(np.exp(alpha * adv.double().numpy()), 100.0)
    np.testing.assert_allclose(got, ref, rtol=RTOL)
    if alpha >= 1.0:
        assert got.max() == 100.0  # the clip is hit exactly
        assert (got[adv.numpy() > np.log(100.0) / alpha + 1e-3] == 100.0).all()
    # huge advantages clip instead of overflowing
    assert L.guidance_weight(torch.tensor([1e4]), 3.0).item() == 100.0
    assert L.guidance_weight(torch.tensor([1.0]), 3.0, max_weight=5.0).item() == 5.0


def test_guidance_weight_has_no_gradient() -> None:
    adv = torch.randn(8, requires_grad=True)
    assert not L.guidance_weight(adv, 3.0).requires_grad


def test_em_surrogate_value_matches_numpy() -> None:
    lj = _rand(32, 5, seed=6, scale=3.0)
    ref = -(ref_softmax(lj.double().numpy()) * lj.double().numpy()).sum(-1)
    for detach in (True, False):
        np.testing.assert_allclose(L.em_surrogate(lj, detach).numpy(), ref, rtol=RTOL, atol=ATOL)


def test_em_surrogate_gradient_detached_vs_not() -> None:
    lj0 = _rand(16, 4, seed=7, scale=2.0).double()
    l_np = lj0.numpy()
    gamma = ref_softmax(l_np)
    # detached: d/dl_k sum_b L_EM = -gamma_k (no term through gamma)
    lj = lj0.clone().requires_grad_(True)
    L.em_surrogate(lj, detach_gamma=True).sum().backward()
    assert lj.grad is not None
    np.testing.assert_allclose(lj.grad.numpy(), -gamma, rtol=1e-10)
    # not detached: the gradient also flows through gamma:
    # d/dl_k [-sum_j gamma_j l_j] = -gamma_k - gamma_k (l_k - sum_j gamma_j l_j)
    lj2 = lj0.clone().requires_grad_(True)
    L.em_surrogate(lj2, detach_gamma=False).sum().backward()
    assert lj2.grad is not None
    mean_l = (gamma * l_np).sum(-1, keepdims=True)
    np.testing.assert_allclose(lj2.grad.numpy(), -gamma - gamma * (l_np - mean_l), rtol=1e-10)
    assert not np.allclose(lj2.grad.numpy(), lj.grad.numpy())


def test_gating_entropy_matches_numpy() -> None:
    logits = _rand(20, 6, seed=8, scale=2.0)
    log_w = torch.log_softmax(logits, -1)
    w = ref_softmax(logits.double().numpy())
    ref = -(w * np.log(w)).sum(-1)
    np.testing.assert_allclose(L.gating_entropy(log_w).numpy(), ref, rtol=1e-5, atol=1e-6)
    # uniform gating has the maximal entropy log K, a one-hot gating (almost) zero
    uniform = torch.log(torch.full((1, 6), 1 / 6))
    assert L.gating_entropy(uniform).item() == pytest.approx(np.log(6))
    onehot = torch.log_softmax(torch.tensor([[50.0, 0, 0]]), -1)
    assert L.gating_entropy(onehot).item() == pytest.approx(0.0, abs=1e-12 + 1e-18)


def test_actor_loss_matches_numpy() -> None:
    lj = _rand(32, 3, seed=9, scale=2.0).double()
    log_w = torch.log_softmax(_rand(32, 3, seed=10), -1).double()
    g = torch.rand(32, generator=torch.Generator().manual_seed(11)).double() * 10
    em = -(ref_softmax(lj.numpy()) * lj.numpy()).sum(-1)
    ent = -(np.exp(log_w.numpy()) * log_w.numpy()).sum(-1)
    ref = float(np.mean(g.numpy() * em) - 0.01 * np.mean(ent))
    assert L.actor_loss(lj, log_w, g, 0.01).item() == pytest.approx(ref, rel=1e-10)
    ref0 = float(np.mean(g.numpy() * em))
    assert L.actor_loss(lj, log_w, g, 0.0).item() == pytest.approx(ref0, rel=1e-10)


def test_behavior_nll_matches_numpy() -> None:
    lj = _rand(40, 5, seed=12, scale=4.0).double()
    ref = -float(np.mean(ref_logsumexp(lj.numpy())))
    assert L.behavior_nll(lj).item() == pytest.approx(ref, rel=1e-12)


@pytest.mark.parametrize("tau", [0.0, 0.005, 0.5, 1.0])
def test_polyak_update_matches_numpy(tau: float) -> None:
    src = torch.nn.Linear(7, 3)
    tgt = torch.nn.Linear(7, 3)
    before = [p.detach().numpy().copy() for p in tgt.parameters()]
    srcs = [p.detach().numpy().copy() for p in src.parameters()]
    L.polyak_update(tgt, src, tau)
    for p, b, s in zip(tgt.parameters(), before, srcs, strict=True):
        np.testing.assert_allclose(
            p.detach().numpy(), (1 - tau) * b + tau * s, rtol=1e-6, atol=1e-7
        )
    assert all(not p.requires_grad or p.grad is None for p in tgt.parameters())
    # source untouched
    for p, s in zip(src.parameters(), srcs, strict=True):
        np.testing.assert_array_equal(p.detach().numpy(), s)


def test_polyak_update_rejects_mismatched_networks() -> None:
    with pytest.raises(ValueError, match="parameters"):
        L.polyak_update(torch.nn.Linear(2, 2), torch.nn.Sequential(), 0.1)


def test_guidance_ess_matches_numpy_and_reads_uniform_weights_as_one() -> None:
    g = torch.exp(_rand(500, seed=4, scale=0.7))
    ref = float(g.numpy().sum() ** 2 / (500 * (g.numpy() ** 2).sum()))
    assert float(L.guidance_ess(g)) == pytest.approx(ref, rel=RTOL)
    assert float(L.guidance_ess(torch.full((7,), 2.5))) == pytest.approx(1.0)
    one_pair = torch.tensor([100.0] + [1e-6] * 99)
    assert float(L.guidance_ess(one_pair)) == pytest.approx(0.01, rel=1e-3)
