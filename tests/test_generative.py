"""The selection lab's pieces: diffusion and flow behavior models (losses against numpy, a
2-D mixture recovered, resumable fits), the softmax reducer, the literature's presets."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from core_fixtures import A, S, gen, states, tiny_models
from safetensors.torch import load_file

from gemkit import SelectorConfig, compose
from gemkit.config import METHOD_PRESETS
from gemkit.data.transitions import Transitions
from gemkit.errors import GemkitError, UnknownComponentError
from gemkit.models import DiffusionBehavior, FlowBehavior, Models, attach_generative, load_models
from gemkit.models.generative import time_features, vp_betas
from gemkit.reducers import SoftmaxSample
from gemkit.train import TrainConfig
from gemkit.train.proposer_fit import PROPOSER_STATE, fit_proposer


def test_vp_schedule_matches_idqls_formula() -> None:
    T, bmin, bmax = 5, 0.1, 10.0
    t = np.arange(1, T + 1)
    ref = 1 - np.exp(-bmin / T - 0.5 * (bmax - bmin) * (2 * t - 1) / T**2)
    np.testing.assert_allclose(vp_betas(T).numpy(), ref, rtol=1e-6)
    assert bool((vp_betas(T) > 0).all() and (vp_betas(T) < 1).all())


def _draws(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def test_diffusion_loss_is_the_noise_regression_of_numpy() -> None:
    torch.manual_seed(0)
    m = DiffusionBehavior(S, A, hidden=(16,), action_low=[-2.0, 0.0], action_high=[2.0, 1.0])
    s, a = torch.randn(7, S), torch.rand(7, A) * torch.tensor([4.0, 1.0]) - torch.tensor([2, 0])
    got = m.loss(s, a, _draws(3)).detach()
    g = _draws(3)  # the same draws, in the same order: t, then eps
    t = torch.randint(0, m.steps, (7,), generator=g)
    eps = torch.randn(7, A, generator=g)
    u = 2 * (a.numpy() - np.array([-2.0, 0.0])) / np.array([4.0, 1.0]) - 1
    ab = np.cumprod(1 - vp_betas(m.steps).numpy())[t.numpy()][:, None]
    x_t = np.sqrt(ab) * u + np.sqrt(1 - ab) * eps.numpy()
    pred = m.predict(s, torch.as_tensor(x_t, dtype=torch.float32), (t.float() + 1) / m.steps)
    ref = ((pred.detach().numpy() - eps.numpy()) ** 2).sum(-1).mean()
    assert float(got) == pytest.approx(ref, rel=1e-5)


def test_flow_loss_is_the_velocity_regression_of_numpy() -> None:
    torch.manual_seed(0)
    m = FlowBehavior(S, A, hidden=(16,))
    s, a = torch.randn(9, S), torch.rand(9, A) * 2 - 1
    got = m.loss(s, a, _draws(4)).detach()
    g = _draws(4)  # t, then x0
    t = torch.rand(9, generator=g).numpy()
    x0 = torch.randn(9, A, generator=g).numpy()
    x_t = (1 - t)[:, None] * x0 + t[:, None] * a.numpy()
    pred = m.predict(s, torch.as_tensor(x_t, dtype=torch.float32), torch.as_tensor(t))
    ref = ((pred.detach().numpy() - (a.numpy() - x0)) ** 2).sum(-1).mean()
    assert float(got) == pytest.approx(ref, rel=1e-5)


def test_time_features_are_sines_and_cosines() -> None:
    f = time_features(torch.tensor([0.0, 0.5]))
    assert f.shape == (2, 16)
    np.testing.assert_allclose(f[0].numpy(), [0.0] * 8 + [1.0] * 8, atol=1e-7)


def _two_modes(n: int = 4000, seed: int = 0) -> Transitions:
    """One state; actions from 0.3 N((-0.5, -0.5), 0.05^2) + 0.7 N((0.5, 0.5), 0.05^2)."""
    rng = np.random.default_rng(seed)
    pick = rng.random(n) < 0.3
    centre = np.where(pick[:, None], -0.5, 0.5)
    acts = np.clip(centre + 0.05 * rng.standard_normal((n, 2)), -1, 1).astype(np.float32)
    obs = np.zeros((n, 1), np.float32) + rng.standard_normal((n, 1)).astype(np.float32) * 1e-3
    t = torch.as_tensor
    z = torch.zeros(n)
    return Transitions(
        observations=t(obs), actions=t(acts), rewards=z, next_observations=t(obs),
        terminals=z, timeouts=z, action_low=-torch.ones(2), action_high=torch.ones(2),
        obs_mean=t(obs.mean(0)), obs_std=t(np.maximum(obs.std(0), 1e-3)), meta={},
    )  # fmt: skip


@pytest.mark.parametrize("kind", ["diffusion", "flow"])
def test_a_two_mode_mixture_is_recovered(kind: str, tmp_path: Path) -> None:
    """Per-mode mass within 0.08 of (0.3, 0.7), most samples near a mode. Measured at these
    sizes after 1,500 steps (seed 0, 2,000 samples): diffusion (T = 5) 0.264 / 0.728 with 81 %
    of samples within 0.3 of a mode (a five-step chain is coarse: 90 % with T = 20), flow
    0.310 / 0.687 with 95 %."""
    torch.set_num_threads(1)
    cfg = TrainConfig(hidden=(64, 64), batch_size=256, lr=1e-3)
    out = fit_proposer(_two_modes(), tmp_path / kind, 1500, kind=kind, config=cfg)
    model = load_models(out).generative
    assert model is not None
    x = model.sample(torch.zeros(1, 1), 2000, generator=_draws(0))[0].numpy()
    low = (x[:, 0] < 0) & (x[:, 1] < 0)
    high = (x[:, 0] > 0) & (x[:, 1] > 0)
    assert abs(low.mean() - 0.3) < 0.08 and abs(high.mean() - 0.7) < 0.08, (low.mean(), high.mean())
    near = np.minimum(np.abs(x + 0.5).max(1), np.abs(x - 0.5).max(1)) < 0.3
    assert near.mean() > 0.75


def test_a_proposer_fit_resumes_bit_for_bit(tmp_path: Path) -> None:
    data, cfg = _two_modes(600), TrainConfig(hidden=(16,), batch_size=32)
    fit_proposer(data, tmp_path / "a", 20, kind="flow", config=cfg, checkpoint_every=20)
    fit_proposer(data, tmp_path / "b", 10, kind="flow", config=cfg, checkpoint_every=10)
    fit_proposer(data, tmp_path / "b", 20, kind="flow", config=cfg, checkpoint_every=10)
    a, b = (
        load_file(str(tmp_path / "a" / PROPOSER_STATE)),
        load_file(str(tmp_path / "b" / PROPOSER_STATE)),
    )
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    with pytest.raises(GemkitError, match="other data, settings, seed or config"):
        fit_proposer(data, tmp_path / "a", 30, kind="diffusion", config=cfg)
    with pytest.raises(UnknownComponentError, match="diffusion, flow"):
        fit_proposer(data, tmp_path / "c", 5, kind="ddpm", config=cfg)


def test_softmax_reducer_draws_in_proportion_to_exp_score() -> None:
    """Two candidates scored 0 and T log 3: the second is drawn 3 times out of 4."""
    temp = 0.01
    cand = torch.tensor([[[0.0, 0.0], [1.0, 1.0]]]).expand(20000, 2, 2)
    score = torch.tensor([[0.0, temp * float(np.log(3.0))]]).expand(20000, 2)
    out = SoftmaxSample(temp)(cand, score, generator=_draws(0))
    assert abs(float(out[:, 0].mean()) - 0.75) < 0.015
    again = SoftmaxSample(temp)(cand, score, generator=_draws(0))
    assert torch.equal(out, again)  # seeded: reproducible
    with pytest.raises(GemkitError, match="temperature must be > 0"):
        SoftmaxSample(0.0)


@pytest.mark.parametrize("name", sorted(METHOD_PRESETS))
def test_every_method_preset_selects_over_the_same_critic(name: str) -> None:
    kind = {"diffusion": "diffusion", "flow": "flow"}.get(METHOD_PRESETS[name].get("proposer", ""))
    sel = compose(preset=name, models=tiny_models(generative=kind), n=8)
    out = sel.select(states(5), generator=gen())
    assert out.action.shape == (5, A) and bool((out.action.abs() <= 1).all())
    again = compose(preset=name, models=tiny_models(generative=kind), n=8)
    assert torch.equal(out.action, again.select(states(5), generator=gen()).action)
    cfg = SelectorConfig.preset(name)
    assert SelectorConfig.from_json(cfg.to_json()) == cfg


def test_flow_chain_steps_are_a_sampling_knob() -> None:
    """``chain_steps`` = K Euler steps of the same velocity field: the samples equal those of
    the same weights built with ``steps = K``; a diffusion model keeps its fitted T."""
    m = tiny_models(generative="flow")
    assert isinstance(m.generative, FlowBehavior) and m.generative.steps == 10
    twin = FlowBehavior(S, A, hidden=(32,), steps=3)
    twin.load_state_dict(m.generative.state_dict())
    got = m.generative.sample(states(4), 5, generator=gen(), steps=3)
    assert torch.equal(got, twin.sample(states(4), 5, generator=gen()))
    assert not torch.equal(got, m.generative.sample(states(4), 5, generator=gen()))
    sel = compose(preset="ifql", models=m, n=8, chain_steps=3)
    assert "steps=3" in repr(sel.proposer) and sel.config.chain_steps == 3
    base = compose(preset="ifql", models=m, n=8)
    assert "steps=10" in repr(base.proposer)
    a = sel.select(states(5), generator=gen()).candidates
    assert torch.equal(a, twin.sample(states(5), 8, generator=gen()))
    with pytest.raises(GemkitError, match="fitted with"):
        compose(preset="idql", models=tiny_models(generative="diffusion"), chain_steps=20)
    assert compose(preset="idql", models=tiny_models(generative="diffusion"), chain_steps=5)
    with pytest.raises(GemkitError, match="not of proposer 'actor'"):
        compose(models=tiny_models(), chain_steps=3)
    with pytest.raises(GemkitError, match="chain_steps must be >= 1"):
        SelectorConfig(chain_steps=0)


def test_a_generative_proposer_without_its_model_is_one_line() -> None:
    with pytest.raises(GemkitError, match="gemkit fit-proposer"):
        compose(preset="idql", models=tiny_models())
    wrong = r"needs a FlowBehavior \(models.generative is DiffusionBehavior\)"
    with pytest.raises(GemkitError, match=wrong):
        compose(preset="ifql", models=tiny_models(generative="diffusion"))


def test_cells_cached_before_temperature_keep_their_keys() -> None:
    """A cell keyed on a spec written before ``temperature`` existed keeps its key; another
    temperature is another cell; a sweep row without the column is the default."""
    from gemkit.eval.results import config_key
    from gemkit.experiments import cell_key

    new = SelectorConfig().to_dict()["params"]
    old = {k: v for k, v in new.items() if k not in ("temperature", "chain_steps")}
    cell = {"stage": "test", "task": "umaze", "train_seed": 0, "step": 1, "actor": "gem",
            "eval_seeds": [0], "episodes": 3}  # fmt: skip
    assert cell_key({**cell, "config": new}) == cell_key({**cell, "config": old})
    assert cell_key({**cell, "config": {**new, "temperature": 0.5}}) != cell_key(
        {**cell, "config": old}
    )
    assert config_key(old) == config_key(new)
    assert cell_key({**cell, "config": {**new, "chain_steps": 3}}) != cell_key(
        {**cell, "config": old}
    )


def test_attach_generative_checks_the_observation_statistics(tmp_path: Path) -> None:
    data = _two_modes(300)
    fit_proposer(data, tmp_path / "p", 2, kind="diffusion", config=TrainConfig(hidden=(8,)))
    mine = Models(meta={"obs_mean": [5.0], "obs_std": [1.0]})
    with pytest.raises(GemkitError, match="other observation statistics"):
        attach_generative(mine, tmp_path / "p")
    same = Models(meta=dict(load_models(tmp_path / "p").meta))
    assert isinstance(attach_generative(same, tmp_path / "p").generative, DiffusionBehavior)


def test_cli_fit_proposer_then_compose_and_eval_a_method_preset(
    tiny_checkpoint: Path, tmp_path: Path
) -> None:
    """``gemkit fit-proposer`` on the checkpoint's dataset, then IDQL's and SfBC's rules over
    the checkpoint's critic from the command line."""
    from gemkit.cli.main import app
    from typer.testing import CliRunner

    run = CliRunner().invoke
    out = tmp_path / "diffusion"
    res = run(app, ["fit-proposer", "--dataset", "gemkit/fork-v0", "--out", str(out), "--steps",
                    "30", "--hidden", "16,16", "--threads", "1"])  # fmt: skip
    assert res.exit_code == 0, res.output
    assert "fitted a diffusion behavior model" in res.output
    res = run(app, ["compose", "--checkpoint", str(tiny_checkpoint), "--proposer-from", str(out),
                    "--preset", "idql", "--n", "8"])  # fmt: skip
    assert res.exit_code == 0, res.output
    res = run(app, ["eval", "--checkpoint", str(tiny_checkpoint), "--proposer-from", str(out),
                    "--preset", "sfbc", "--n", "8", "--episodes", "2", "--seeds", "0"])  # fmt: skip
    assert res.exit_code == 0, res.output
    res = run(app, ["fit-proposer", "--dataset", "gemkit/fork-v0", "--out", str(tmp_path / "x"),
                    "--kind", "ddpm"])  # fmt: skip
    assert res.exit_code != 0 and "Valid --kind names: diffusion, flow" in res.output
    # the deployment profile times each preset's whole rule with the trained samplers
    flow = tmp_path / "flow"
    res = run(app, ["fit-proposer", "--dataset", "gemkit/fork-v0", "--out", str(flow), "--kind",
                    "flow", "--steps", "10", "--hidden", "16,16", "--threads", "1"])  # fmt: skip
    assert res.exit_code == 0, res.output
    prof = tmp_path / "prof"
    res = run(app, ["profile", "--checkpoint", str(tiny_checkpoint), "--proposer-from", str(out),
                    "--proposer-from", str(flow), "--preset", "gem,idql,ifql", "--n", "1,8",
                    "--device", "cpu", "--repeats", "2", "--out", str(prof)])  # fmt: skip
    assert res.exit_code == 0, res.output
    rows = (prof / "profile.csv").read_text().splitlines()[1:]
    assert [tuple(r.split(",")[:3]) for r in rows] == [
        (m, "N", v) for m in ("gem", "idql", "ifql") for v in ("1", "8")
    ]  # no untrained DDPM rows unless --T asks for them
    res = run(app, ["profile", "--checkpoint", str(tiny_checkpoint), "--proposer-from", str(flow),
                    "--preset", "sfbc", "--n", "1", "--device", "cpu"])  # fmt: skip
    assert res.exit_code != 0 and "gemkit fit-proposer" in res.output
    res = run(app, ["profile", "--proposer-from", str(flow), "--preset", "ifql"])
    assert res.exit_code != 0 and "--proposer-from needs --checkpoint" in res.output


def test_expectile_weight_is_idqls_weight_against_numpy() -> None:
    """``log |tau - 1(min_e Q_e < V)|`` per candidate; drawn by softmax at temperature 1, a
    candidate's probability is its weight over the set's."""
    from gemkit.scorers.values import ExpectileWeight

    m = tiny_models()
    assert m.critic is not None and m.value is not None
    s, cand = states(4), torch.rand(4, 6, A) * 2 - 1
    got = ExpectileWeight(m.critic, m.value, 0.7)(s, cand)
    q = m.critic(s.unsqueeze(1).expand(-1, 6, -1), cand).min(0).values.detach().numpy()
    v = m.value(s).detach().numpy()[:, None]
    np.testing.assert_allclose(got.detach().numpy(), np.log(np.where(q >= v, 0.7, 0.3)), rtol=1e-6)
    with pytest.raises(GemkitError, match="expectile must be in"):
        ExpectileWeight(m.critic, m.value, 1.0)
