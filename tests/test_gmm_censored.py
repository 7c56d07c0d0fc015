"""The censored action likelihood of the conditional GMMs against plain-math references.

An action dimension at the edge of the action box (clipped data) scores the component's
probability mass beyond that edge, ``log Phi((low - mu) / sigma)`` or
``log Phi((mu - high) / sigma)``; interior dimensions keep the Gaussian density.
"""

from __future__ import annotations

import json
import math
import pathlib

import numpy as np
import pytest
import torch
from core_fixtures import gen, states, tiny_models
from gemkit.cli.main import app
from typer.testing import CliRunner

from gemkit import compose
from gemkit.models import ConditionalGMM, GMMParams, Models, load_models, save_models
from gemkit.models.gmm import EDGE_TOL, LIKELIHOODS, log_ndtr
from gemkit.train import ConfigError, TrainConfig, Trainer, train
from gemkit.train.checkpoint import config_differences
from gemkit.train.config import apply_overrides

LOW = [-1.0, -2.0, 0.0]
HIGH = [1.0, 0.5, 3.0]


# ---------------------------------------------------------------------------- references
def log_phi(x: float) -> float:
    """``log Phi(x)`` in plain math (``Phi(x) = erfc(-x / sqrt 2) / 2``)."""
    return math.log(0.5 * math.erfc(-x / math.sqrt(2.0)))


def ref_log_joint(w, mu, log_std, a, low, high, likelihood):  # [K], [K, A], [K, A], [A] -> [K]
    """The component log-joints ``l_k``, one state and one action, loop by loop."""
    out = np.zeros(len(w))
    for k in range(len(w)):
        lp = math.log(w[k])
        for d in range(len(a)):
            sig = math.exp(log_std[k, d])
            tol = 1e-6 * (high[d] - low[d])
            if likelihood == "censored" and a[d] <= low[d] + tol:
                lp += log_phi((low[d] - mu[k, d]) / sig)
            elif likelihood == "censored" and a[d] >= high[d] - tol:
                lp += log_phi((mu[k, d] - high[d]) / sig)
            else:
                lp += -0.5 * ((a[d] - mu[k, d]) / sig) ** 2 - log_std[k, d]
                lp += -0.5 * math.log(2.0 * math.pi)
        out[k] = lp
    return out


def ref_mixture(lj: np.ndarray) -> tuple[float, np.ndarray]:
    """``(logsumexp_k l_k, softmax_k l_k)`` in plain math."""
    top = max(lj)
    lse = top + math.log(sum(math.exp(v - top) for v in lj))
    return lse, np.array([math.exp(v - lse) for v in lj])


def gmm64(likelihood: str, seed: int = 0) -> ConditionalGMM:
    """A float64 GMM on the box ``[LOW, HIGH]`` with varied ``log sigma``."""
    torch.manual_seed(seed)
    gmm = ConditionalGMM(3, 3, 4, hidden=(16,), action_low=LOW, action_high=HIGH,
                         likelihood=likelihood).double()  # fmt: skip
    with torch.no_grad():
        gmm.log_std_param.copy_(torch.rand(4, 3, generator=gen(seed + 1)) * 2.5 - 2.0)
    return gmm


def mixed_actions(b: int, m: int, seed: int = 5) -> torch.Tensor:
    """``[b, m, 3]`` float64 actions in the box, a third of the dims exactly at an edge, a few
    within the edge tolerance or beyond the box."""
    g = gen(seed)
    low, high = torch.tensor(LOW, dtype=torch.float64), torch.tensor(HIGH, dtype=torch.float64)
    a = low + (high - low) * torch.rand(b, m, 3, generator=g, dtype=torch.float64)
    pick = torch.rand(b, m, 3, generator=g)
    a = torch.where(pick < 1 / 6, low, torch.where(pick < 1 / 3, high, a))
    a[0, 0] = low + 0.5 * EDGE_TOL * (high - low)  # within tol: at the lower edge
    a[0, 1] = high + 0.1  # beyond the box: at the upper edge
    a[0, 2] = low + 10 * EDGE_TOL * (high - low)  # just inside: interior
    return a


def np_params(gmm: ConditionalGMM, s: torch.Tensor) -> tuple[np.ndarray, ...]:
    p = gmm(s)
    return tuple(t.detach().double().numpy() for t in (p.weights, p.means, p.log_std))


# ---------------------------------------------------------------------------- the maths
@pytest.mark.parametrize("likelihood", LIKELIHOODS)
def test_log_joint_log_prob_and_responsibilities_match_the_loop(likelihood: str) -> None:
    gmm = gmm64(likelihood)
    s = states(4).double()
    a = mixed_actions(4, 9)
    w, mu, ls = np_params(gmm, s)
    lj = gmm.log_joint(gmm(s), a).detach().numpy()
    lp = gmm.log_prob(s, a).detach().numpy()
    resp = gmm.responsibilities(s, a).detach().numpy()
    for b in range(4):
        for m in range(9):
            ref = ref_log_joint(w[b], mu[b], ls, a[b, m].tolist(), LOW, HIGH, likelihood)
            np.testing.assert_allclose(lj[b, m], ref, rtol=1e-12, atol=1e-12)
            ref_lp, ref_resp = ref_mixture(ref)
            assert lp[b, m] == pytest.approx(ref_lp, rel=1e-12, abs=1e-12)
            np.testing.assert_allclose(resp[b, m], ref_resp, rtol=1e-10, atol=1e-14)
    # single actions [B, A]
    np.testing.assert_allclose(gmm.log_prob(s, a[:, 0]).detach().numpy(), lp[:, 0], rtol=1e-14)


def test_density_is_the_default_and_unchanged() -> None:
    gmm = tiny_models().actor
    assert gmm.likelihood == "density" and "likelihood" not in gmm.spec()
    s = states(5)
    a = torch.rand(5, 7, 2, generator=gen(3)) * 2 - 1
    a[:, :3, 0] = 1.0  # edge actions keep the density term under "density"
    p = gmm(s)
    static = ConditionalGMM.component_log_joint(p, a)  # the maths before the option existed
    assert torch.equal(gmm.log_joint(p, a), static)
    assert torch.equal(gmm.log_prob(s, a), torch.logsumexp(static, dim=-1))
    w, mu, ls = np_params(gmm, s)
    for b in range(5):
        for m in range(7):
            ref = ref_log_joint(w[b], mu[b], ls, a[b, m].double().tolist(), [-1.0] * 2, [1.0] * 2,
                                "density")  # fmt: skip
            np.testing.assert_allclose(static[b, m].detach().numpy(), ref, rtol=1e-5, atol=1e-5)


def test_interior_actions_score_identically_under_both_likelihoods() -> None:
    dens = tiny_models().behavior
    cens = ConditionalGMM(**{**dens.spec(), "likelihood": "censored"})
    cens.load_state_dict(dens.state_dict())
    s = states(6)
    a = torch.rand(6, 11, 2, generator=gen(4)) * 1.98 - 0.99  # strictly inside [-1, 1]
    assert torch.equal(cens.log_prob(s, a), dens.log_prob(s, a))
    assert torch.equal(cens.responsibilities(s, a), dens.responsibilities(s, a))
    a[:, 0, 1] = -1.0  # one edge dim changes those rows only
    diff = cens.log_prob(s, a) != dens.log_prob(s, a)
    assert diff[:, 0].all() and not diff[:, 1:].any()


def test_edge_actions_score_the_tail_mass() -> None:
    # K = 1, A = 1: mu = 0.3, sigma = 0.4 on [-1, 1]
    f64 = torch.float64
    p = GMMParams(torch.zeros(1, 1, dtype=f64), torch.full((1, 1, 1), 0.3, dtype=f64),
                  torch.full((1, 1), math.log(0.4), dtype=f64))  # fmt: skip
    low, high = torch.tensor([-1.0]), torch.tensor([1.0])
    a = torch.tensor([[[-1.0], [1.0], [-1.5], [1.0 - 1e-7]]], dtype=torch.float64)
    lj = ConditionalGMM.component_log_joint(p, a, "censored", low, high)[0, :, 0]
    lower = math.log(0.5 * (1 + math.erf((-1.0 - 0.3) / (0.4 * math.sqrt(2)))))
    upper = math.log(1 - 0.5 * (1 + math.erf((1.0 - 0.3) / (0.4 * math.sqrt(2)))))
    assert lj.tolist() == pytest.approx([lower, upper, lower, upper], rel=1e-12)


def test_censored_likelihood_is_a_normalised_distribution() -> None:
    # point masses at the two edges plus the density inside integrate to one (K = 3, A = 1)
    p = GMMParams(
        torch.log(torch.tensor([[0.5, 0.3, 0.2]], dtype=torch.float64)),
        torch.tensor([[[0.9], [-0.2], [-0.95]]], dtype=torch.float64),
        torch.log(torch.tensor([[0.3], [0.5], [0.1]], dtype=torch.float64)),
    )
    low, high = torch.tensor([-1.0]), torch.tensor([1.0])
    grid = torch.linspace(-1.0, 1.0, 400_001, dtype=torch.float64)
    a = grid.view(1, -1, 1)
    cens = torch.logsumexp(ConditionalGMM.component_log_joint(p, a, "censored", low, high), -1)
    dens = torch.logsumexp(ConditionalGMM.component_log_joint(p, a), -1)
    inside = (grid > -1.0 + 2e-6) & (grid < 1.0 - 2e-6)
    assert torch.equal(cens[0, inside], dens[0, inside])
    # the censored masses at the two edges, plus the density integrated over [-1, 1]
    mass = cens[0, ~inside].exp().sum() + torch.trapezoid(dens[0].exp(), grid)
    assert (~inside).sum() == 2
    assert float(mass) == pytest.approx(1.0, abs=1e-6)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("log_sigma", [-5.0, -12.0])
def test_gradients_stay_finite_far_in_the_tail(dtype: torch.dtype, log_sigma: float) -> None:
    # means far from the edge the actions sit at (and beyond the box), sigma at or below the
    # floor: log Phi of arguments down to about -5e5
    mu = torch.tensor([[[0.0, 0.9], [-0.9, 3.0], [1.0, -1.0]]], dtype=dtype, requires_grad=True)
    log_std = torch.full((3, 2), log_sigma, dtype=dtype, requires_grad=True)
    p = GMMParams(torch.log(torch.full((1, 3), 1 / 3, dtype=dtype)), mu, log_std)
    a = torch.tensor([[[1.0, -1.0], [-1.0, 1.0], [1.0, 0.2]]], dtype=dtype)
    lp = torch.logsumexp(
        ConditionalGMM.component_log_joint(p, a, "censored", torch.tensor([-1.0, -1.0]),
                                           torch.tensor([1.0, 1.0])), -1)  # fmt: skip
    g_mu, g_ls = torch.autograd.grad(lp.sum(), (mu, log_std))
    assert torch.isfinite(lp).all() and torch.isfinite(g_mu).all() and torch.isfinite(g_ls).all()
    assert g_mu.abs().max() > 0


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_log_ndtr_gradient_is_the_mills_ratio(dtype: torch.dtype) -> None:
    x = torch.tensor([-1e9, -1e5, -3e3, -300.0, -40.0, -3.0, 0.0, 2.0, 9.0, 60.0], dtype=dtype)
    x.requires_grad_(True)
    (g,) = torch.autograd.grad(log_ndtr(x).sum(), x)
    assert torch.equal(log_ndtr(x.detach()), torch.special.log_ndtr(x.detach()))
    for xi, gi in zip(x.tolist(), g.tolist(), strict=True):
        if xi < -20:  # phi(x) / Phi(x) = -x (1 + x^-2 - 2 x^-4 + 10 x^-6 + O(x^-8))
            ref = -xi * (1 + xi**-2 - 2 * xi**-4 + 10 * xi**-6)
        else:
            ref = math.exp(-0.5 * xi * xi) / math.sqrt(2 * math.pi) / math.exp(log_phi(xi))
        assert gi == pytest.approx(ref, rel=1e-5, abs=1e-30)


def test_unknown_likelihood_is_a_one_line_value_error() -> None:
    with pytest.raises(ValueError, match="likelihood must be one of density, censored") as exc:
        ConditionalGMM(3, 2, 2, likelihood="bogus")
    assert "\n" not in str(exc.value) and "'bogus'" in str(exc.value)
    p = tiny_models().actor(states(2))
    a = torch.zeros(2, 1, 2)
    with pytest.raises(ValueError, match="likelihood must be one of"):
        ConditionalGMM.component_log_joint(p, a, "Censored")
    with pytest.raises(ValueError, match="needs action_low and action_high"):
        ConditionalGMM.component_log_joint(p, a, "censored")


# ------------------------------------------------------------------ persistence, selection
def test_save_load_keeps_the_likelihood_and_old_manifests_load_as_density(
    tmp_path: pathlib.Path,
) -> None:
    m = tiny_models()
    cens = ConditionalGMM(**{**m.behavior.spec(), "likelihood": "censored"})
    models = Models(actor=m.actor, behavior=cens, critic=m.critic)
    save_models(tmp_path / "c", models)
    manifest = json.loads((tmp_path / "c" / "models.json").read_text())
    assert manifest["models"]["behavior"]["spec"]["likelihood"] == "censored"
    assert "likelihood" not in manifest["models"]["actor"]["spec"]  # density: the old spec
    loaded = load_models(tmp_path / "c")
    assert loaded.behavior is not None and loaded.behavior.likelihood == "censored"
    assert loaded.actor is not None and loaded.actor.likelihood == "density"
    s, a = states(3), torch.tensor([[1.0, -1.0], [0.2, 1.0], [0.1, 0.3]])
    assert torch.equal(loaded.behavior.log_prob(s, a), cens.log_prob(s, a))
    # a manifest written before the option existed has no key: density
    del manifest["models"]["behavior"]["spec"]["likelihood"]
    (tmp_path / "c" / "models.json").write_text(json.dumps(manifest))
    old = load_models(tmp_path / "c")
    assert old.behavior is not None and old.behavior.likelihood == "density"


def test_selection_support_uses_the_censored_likelihood_the_model_was_saved_with(
    tmp_path: pathlib.Path,
) -> None:
    m = tiny_models()
    for net in (m.actor, m.behavior):
        assert net is not None
        with torch.no_grad():
            net.log_std_param.fill_(0.7)  # wide: many sampled candidates are clipped to the box
    cens = ConditionalGMM(**{**m.behavior.spec(), "likelihood": "censored"})
    cens.load_state_dict(m.behavior.state_dict())
    save_models(tmp_path / "c", Models(actor=m.actor, behavior=cens, critic=m.critic))
    sel = compose(models=str(tmp_path / "c"), n=16, beta=1.0, lam=0.5)
    s = states(4)
    out = sel.select(s, generator=gen(7))
    cand = out.candidates.double()
    at_edge = (cand.abs() >= 1.0 - 2e-6).any(-1)
    assert at_edge.float().mean() > 0.3 and (~at_edge).any()
    w, mu, ls = np_params(cens, s)
    for b in range(4):
        for i in range(cand.shape[1]):
            ref = ref_log_joint(w[b], mu[b], ls, cand[b, i].tolist(), [-1.0] * 2, [1.0] * 2,
                                "censored")  # fmt: skip
            assert float(out.loglik[b, i]) == pytest.approx(ref_mixture(ref)[0], rel=1e-5,
                                                            abs=1e-5)  # fmt: skip
    dens = m.behavior.log_prob(s, out.candidates)
    assert not torch.allclose(out.loglik[at_edge], dens[at_edge])
    torch.testing.assert_close(out.loglik[~at_edge], dens[~at_edge])


# ---------------------------------------------------------------------------- training config
def test_config_field_overrides_and_one_line_errors() -> None:
    assert TrainConfig().gmm_likelihood == "density"
    cfg = apply_overrides(TrainConfig(), ["gmm_likelihood=censored"])
    assert cfg.gmm_likelihood == "censored"
    assert TrainConfig.from_dict(cfg.to_dict()) == cfg
    with pytest.raises(ConfigError) as exc:
        apply_overrides(TrainConfig(), ["gmm_likelihood=bogus"])
    msg = str(exc.value)
    assert "\n" not in msg and "gmm_likelihood" in msg and "'bogus'" in msg
    assert all(f"'{v}'" in msg for v in LIKELIHOODS)
    # a checkpoint written before the key existed resumes as density without a difference
    old = {k: v for k, v in TrainConfig().to_dict().items() if k != "gmm_likelihood"}
    assert config_differences(old, TrainConfig()) == []
    assert config_differences(old, cfg) == ["gmm_likelihood"]


def test_train_cli_rejects_an_unknown_likelihood_in_one_line(tmp_path: pathlib.Path) -> None:
    res = CliRunner().invoke(app, ["train", "--dataset", "nope/none-v0", "--steps", "1",
                                   "--out", str(tmp_path / "x"), "--set",
                                   "gmm_likelihood=bogus"])  # fmt: skip
    assert res.exit_code == 2, res.output
    assert "gmm_likelihood" in res.output and "'censored'" in res.output
    assert "Traceback" not in res.output
    assert len(res.output.strip().splitlines()) == 1


def test_tiny_censored_training_run_is_finite_and_saves_the_likelihood(
    fork_transitions, tmp_path: pathlib.Path
) -> None:
    torch.set_num_threads(1)
    cfg = TrainConfig(hidden=(16, 16), n_critics=2, n_components=3, batch_size=32,
                      gmm_pretrain_steps=5, gmm_likelihood="censored")  # fmt: skip
    at_edge = (fork_transitions.actions.abs() >= 1.0).any(-1).float().mean()
    assert at_edge > 0.05  # the fork data clips its noisy actions to the box
    t = Trainer(fork_transitions, cfg)
    assert t.baseline is not None
    assert {t.actor.likelihood, t.behavior.likelihood, t.baseline.likelihood} == {"censored"}
    # the losses use the censored log-likelihood: the behavior NLL is -mean log_prob
    batch = t.sample_batch()
    losses = t.compute_losses(batch)
    nll = -t.behavior.log_prob(batch["observations"], batch["actions"]).mean()
    torch.testing.assert_close(losses["loss_behavior"], nll)
    for _ in range(30):
        out = t.train_step()
        assert all(torch.isfinite(v).all() for v in out.values())
    models = train(fork_transitions, cfg, tmp_path / "run", 30, save_every=30, log_every=10,
                   tensorboard=False)  # fmt: skip
    loaded = load_models(tmp_path / "run")
    for name in ("actor", "behavior", "baseline"):
        assert getattr(models, name).likelihood == "censored"
        assert getattr(loaded, name).likelihood == "censored"
    rows = (tmp_path / "run" / "metrics.csv").read_text().splitlines()
    assert len(rows) == 4
    header = rows[0].split(",")
    for row in rows[1:]:
        vals = dict(zip(header, row.split(","), strict=True))
        for key in ("loss_behavior", "loss_actor", "loss_baseline", "loss_critic"):
            if vals.get(key):
                assert math.isfinite(float(vals[key])), (key, vals)
