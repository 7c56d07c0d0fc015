"""The conditional GMM against plain numpy references and loops (spec 1.1)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from core_fixtures import gen, states, tiny_models

from gemkit.models import ConditionalGMM


def np_params(gmm: ConditionalGMM, s: torch.Tensor) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    p = gmm(s)
    return (
        p.weights.detach().double().numpy(),
        p.means.detach().double().numpy(),
        p.log_std.detach().double().numpy(),
    )


def np_component_log_joint(w, mu, log_std, a):  # [K], [K, A], [K, A], [A] -> [K]
    out = np.zeros(len(w))
    for k in range(len(w)):
        lp = 0.0
        for d in range(a.shape[0]):
            sig = math.exp(log_std[k, d])
            lp += -0.5 * (
                ((a[d] - mu[k, d]) / sig) ** 2 + 2 * log_std[k, d] + math.log(2 * math.pi)
            )
        out[k] = math.log(w[k]) + lp
    return out


def test_log_prob_and_responsibilities_match_numpy_loop() -> None:
    gmm = tiny_models().actor
    s = states(5)
    a = torch.rand(5, 7, 2, generator=gen(3)) * 2 - 1
    w, mu, ls = np_params(gmm, s)
    lp = gmm.log_prob(s, a).detach().double().numpy()
    resp = gmm.responsibilities(s, a).detach().double().numpy()
    for b in range(5):
        for m in range(7):
            lj = np_component_log_joint(w[b], mu[b], ls, a[b, m].double().numpy())
            ref = np.log(np.sum(np.exp(lj - lj.max()))) + lj.max()
            assert lp[b, m] == pytest.approx(ref, rel=1e-5, abs=1e-5)
            np.testing.assert_allclose(resp[b, m], np.exp(lj - ref), rtol=1e-4, atol=1e-6)


def test_single_action_shapes() -> None:
    gmm = tiny_models().actor
    s = states(4)
    a = torch.zeros(4, 2)
    assert gmm.log_prob(s, a).shape == (4,)
    assert gmm.responsibilities(s, a).shape == (4, 4)
    torch.testing.assert_close(gmm.responsibilities(s, a).sum(-1), torch.ones(4))


def test_log_std_is_clamped_state_independent() -> None:
    gmm = ConditionalGMM(3, 2, 3, hidden=(8,), log_std_min=-2.0, log_std_max=0.5)
    with torch.no_grad():
        gmm.log_std_param.copy_(torch.tensor([[-9.0, 0.0], [3.0, 0.1], [0.2, -1.0]]))
    ls = gmm(states(2)).log_std
    torch.testing.assert_close(ls, torch.tensor([[-2.0, 0.0], [0.5, 0.1], [0.2, -1.0]]))
    assert ls.shape == (3, 2)


def test_mode_bary_collapse_match_numpy() -> None:
    gmm = tiny_models().actor
    s = states(5)
    w, mu, ls = np_params(gmm, s)
    mode = gmm.mode(s).detach().double().numpy()
    bary = gmm.barycenter(s).detach().double().numpy()
    mean, std = (t.detach().double().numpy() for t in gmm.collapse(s))
    for b in range(5):
        np.testing.assert_allclose(mode[b], mu[b, np.argmax(w[b])], rtol=1e-6)
        ref_mean = (w[b][:, None] * mu[b]).sum(0)
        np.testing.assert_allclose(bary[b], ref_mean, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(mean[b], ref_mean, rtol=1e-5, atol=1e-6)
        var = (w[b][:, None] * (np.exp(2 * ls) + mu[b] ** 2)).sum(0) - ref_mean**2
        np.testing.assert_allclose(std[b], np.sqrt(var), rtol=1e-4, atol=1e-6)


def test_sampling_is_seeded_clipped_and_follows_weights() -> None:
    gmm = ConditionalGMM(1, 1, 2, hidden=(4,), action_low=-1.0, action_high=1.0)
    with torch.no_grad():
        for p in gmm.trunk.parameters():
            p.zero_()
        gmm.logits_head.weight.zero_()
        gmm.logits_head.bias.copy_(torch.log(torch.tensor([0.8, 0.2])))
        gmm.means_head.weight.zero_()
        gmm.means_head.bias.copy_(torch.atanh(torch.tensor([-0.6, 0.6])))
        gmm.log_std_param.fill_(math.log(0.05))
    s = torch.zeros(1, 1)
    a = gmm.sample(s, 20000, generator=gen(0))
    assert torch.equal(a, gmm.sample(s, 20000, generator=gen(0)))
    assert not torch.equal(a, gmm.sample(s, 20000, generator=gen(1)))
    frac_left = (a < 0).float().mean().item()
    assert frac_left == pytest.approx(0.8, abs=0.02)
    assert a[a < 0].mean().item() == pytest.approx(-0.6, abs=0.01)
    wide = ConditionalGMM(2, 2, 3, hidden=(4,), log_std_min=1.0, log_std_max=2.0)
    with torch.no_grad():
        wide.log_std_param.fill_(2.0)
    big = wide.sample(torch.zeros(3, 2), 500, generator=gen(2))
    assert big.min() >= -1.0 and big.max() <= 1.0
    assert (big.abs() == 1.0).any()  # clipping actually happened


def test_sample_zero_and_collapsed() -> None:
    gmm = tiny_models().actor
    s = states(3)
    assert gmm.sample(s, 0, generator=gen()).shape == (3, 0, 2)
    with torch.no_grad():
        gmm.log_std_param.fill_(math.log(0.05))  # keep samples off the box edges (no clipping)
    c = gmm.sample_collapsed(s, 4000, generator=gen())
    mean, std = gmm.collapse(s)
    torch.testing.assert_close(c.mean(1), mean.detach(), atol=0.02, rtol=0.0)
    torch.testing.assert_close(c.std(1), std.detach(), atol=0.02, rtol=0.05)


def test_constructor_rejects_bad_arguments() -> None:
    with pytest.raises(ValueError, match="n_components"):
        ConditionalGMM(3, 2, 0)
    with pytest.raises(ValueError, match="log_std_min"):
        ConditionalGMM(3, 2, 2, log_std_min=1.0, log_std_max=0.0)
    with pytest.raises(ValueError, match="action_low"):
        ConditionalGMM(3, 2, 2, action_low=1.0, action_high=-1.0)
