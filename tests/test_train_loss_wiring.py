"""Each Phase I loss reads the right network: online vs target critic, V(s') vs V(s).

``Trainer.compute_losses`` is compared with a numpy reference that takes every network output
from the network the method names (docs/method.md 1.2-1.4). Each way of miswiring a loss
(the target critic where the online one belongs, V(s) where V(s') belongs, ...) is a variant of
that reference; every variant must differ from the correct one by far more than the comparison's
tolerance, so a trainer wired like the variant fails the comparison. Swapping the networks in a
real trainer fails it too.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
import torch

from gemkit.data.transitions import Transitions
from gemkit.train import TrainConfig, Trainer

RTOL, ATOL = 1e-5, 1e-6
#: how the losses are wired (docs/method.md): which network output each term reads
CORRECT = {
    "td_value": "v_next",  # y = r + discount (1 - d) V(s')
    "critic_q": "online",  # L_Q regresses the online critics
    "value_q": "target",  # u = min_e Q'_e(s, a) - V(s)
    "value_v": "v_s",
    "adv_q": "target",  # A = min_e Q'_e(s, a) - V(s)
    "adv_v": "v_s",
    "reduce": "min",  # the training-time reduction over the ensemble
    "actor": "actor",  # the guided-EM loss reads the actor, L_beta the behavior GMM
    "behavior": "behavior",
}
MISWIRED = {
    "TD target with V(s)": {"td_value": "v_s"},
    "critic loss on the target critics": {"critic_q": "target"},
    "value regressed on the online critics": {"value_q": "online"},
    "value loss with V(s')": {"value_v": "v_next"},
    "advantage from the online critics": {"adv_q": "online"},
    "advantage with V(s')": {"adv_v": "v_next"},
    "ensemble mean instead of min": {"reduce": "mean"},
    "actor and behavior swapped": {"actor": "behavior", "behavior": "actor"},
}


@pytest.fixture(scope="module")
def trainer(fork_transitions: Transitions) -> Trainer:
    torch.set_num_threads(1)
    data = fork_transitions
    cfg = TrainConfig(hidden=(32, 32), n_critics=3, n_components=3, batch_size=64,
                      gmm_pretrain_steps=0, seed=5)  # fmt: skip
    t = Trainer(data, cfg)
    g = torch.Generator().manual_seed(11)
    with torch.no_grad():  # a target that differs from the online critics, as after training
        for p in t.target_critic.parameters():
            p.add_(0.3 * torch.randn(p.shape, generator=g))
        for p in t.value.parameters():  # V(s) and V(s') far enough apart to tell them apart
            p.mul_(3.0)
    return t


def _np(x: torch.Tensor) -> np.ndarray:
    return x.detach().double().numpy()


def _log_joint(params: Any, actions: np.ndarray) -> np.ndarray:
    """``l_k(s, a)`` of docs/method.md 1.1 in numpy: ``[B, K]``."""
    log_w, mu, log_std = _np(params.log_weights), _np(params.means), _np(params.log_std)
    z = (actions[:, None, :] - mu) / np.exp(log_std)[None]
    return log_w - 0.5 * (z**2).sum(-1) - log_std.sum(-1)[None] - 0.5 * mu.shape[-1] * math.log(
        2 * math.pi
    )


def _logsumexp(x: np.ndarray) -> np.ndarray:
    m = x.max(-1, keepdims=True)
    return (m + np.log(np.exp(x - m).sum(-1, keepdims=True)))[..., 0]


def reference_losses(t: Trainer, batch: dict[str, torch.Tensor], **wiring: str) -> dict[str, float]:
    """The Phase I losses in numpy (float64) from the networks' outputs, wired by ``wiring``."""
    w = {**CORRECT, **wiring}
    c = t.config
    obs, act = batch["observations"], batch["actions"]
    r, d = _np(batch["rewards"]), _np(batch["terminals"])
    a = _np(act)
    with torch.no_grad():
        q = {"online": _np(t.critic(obs, act)), "target": _np(t.target_critic(obs, act))}
        v = {"v_s": _np(t.value(obs)), "v_next": _np(t.value(batch["next_observations"]))}
        gmm = {"actor": t.actor(obs), "behavior": t.behavior(obs)}
        base = t.baseline(obs) if t.baseline is not None else None

    def reduce(x: np.ndarray) -> np.ndarray:
        return x.min(0) if w["reduce"] == "min" else x.mean(0)

    y = r + c.discount * (1.0 - d) * v[w["td_value"]]
    loss_critic = float(((q[w["critic_q"]] - y[None]) ** 2).mean())
    u = reduce(q[w["value_q"]]) - v[w["value_v"]]
    loss_value = float((np.abs(c.expectile - (u < 0)) * u**2).mean())
    adv = reduce(q[w["adv_q"]]) - v[w["adv_v"]]
    g = np.minimum(np.exp(c.alpha * adv), c.exp_adv_max)
    lj = _log_joint(gmm[w["actor"]], a)
    gamma = np.exp(lj - _logsumexp(lj)[:, None])
    em = -(gamma * lj).sum(-1)
    log_w = _np(gmm[w["actor"]].log_weights)
    entropy = -(np.exp(log_w) * log_w).sum(-1)
    out = {
        "loss_critic": loss_critic,
        "loss_value": loss_value,
        "loss_actor": float((g * em).mean() - c.c_ent * entropy.mean()),
        "loss_behavior": float(-_logsumexp(_log_joint(gmm[w["behavior"]], a)).mean()),
    }
    if base is not None:
        out["loss_baseline"] = float((g * -_log_joint(base, a)[:, 0]).mean())
    return out


def _close(got: dict[str, float], want: dict[str, float]) -> bool:
    return all(math.isclose(got[k], want[k], rel_tol=RTOL, abs_tol=ATOL) for k in want)


def _trainer_losses(t: Trainer, batch: dict[str, torch.Tensor]) -> dict[str, float]:
    out = t.compute_losses(batch)
    return {k: float(out[k].detach()) for k in ("loss_critic", "loss_value", "loss_actor",
                                        "loss_behavior", "loss_baseline")}  # fmt: skip


def test_compute_losses_match_the_reference(trainer: Trainer) -> None:
    batch = trainer.sample_batch()
    got, want = _trainer_losses(trainer, batch), reference_losses(trainer, batch)
    for k in want:
        assert got[k] == pytest.approx(want[k], rel=RTOL, abs=ATOL), k


@pytest.mark.parametrize("name", list(MISWIRED))
def test_each_miswiring_would_fail_the_reference_test(trainer: Trainer, name: str) -> None:
    """A trainer wired like ``name`` computes the variant, which the comparison rejects."""
    batch = trainer.sample_batch()
    right = reference_losses(trainer, batch)
    wrong = reference_losses(trainer, batch, **MISWIRED[name])
    assert not _close(wrong, right)
    gaps = [abs(wrong[k] - right[k]) / max(abs(right[k]), ATOL) for k in right]
    assert max(gaps) > 100 * RTOL, (name, gaps)  # far outside the tolerance, not rounding
    assert not _close(_trainer_losses(trainer, batch), wrong)


@pytest.mark.parametrize(
    ("a", "b"), [("critic", "target_critic"), ("actor", "behavior"), ("actor", "baseline")]
)
def test_swapping_two_networks_in_the_trainer_fails_the_reference(
    trainer: Trainer, monkeypatch: pytest.MonkeyPatch, a: str, b: str
) -> None:
    batch = trainer.sample_batch()
    want = reference_losses(trainer, batch)
    net_a, net_b = getattr(trainer, a), getattr(trainer, b)
    monkeypatch.setattr(trainer, a, net_b)
    monkeypatch.setattr(trainer, b, net_a)
    assert not _close(_trainer_losses(trainer, batch), want)
