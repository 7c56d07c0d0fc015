"""The Phase I trainer: gradient isolation, parameter updates, ensemble vs loop, config."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from torch import nn

from gemkit.train import ConfigError, TrainConfig, Trainer, apply_overrides

NETS = ("critic", "value", "actor", "behavior")
OWN = {
    "loss_critic": "critic",
    "loss_value": "value",
    "loss_actor": "actor",
    "loss_behavior": "behavior",
}


@pytest.fixture(scope="module")
def fork(fork_transitions: object) -> object:
    torch.set_num_threads(1)
    return fork_transitions


def small(**kw: object) -> TrainConfig:
    base: dict[str, object] = {
        "hidden": (32, 32),
        "n_critics": 3,
        "n_components": 3,
        "batch_size": 64,
        "gmm_pretrain_steps": 0,
    }
    base.update(kw)
    return TrainConfig(**base)  # type: ignore[arg-type]


def _params(t: Trainer, name: str) -> list[nn.Parameter]:
    return list(getattr(t, name).parameters())


@pytest.mark.parametrize("loss_name", list(OWN))
@pytest.mark.parametrize("detach_gamma", [True, False])
def test_each_loss_moves_only_its_own_network(
    fork: object, loss_name: str, detach_gamma: bool
) -> None:
    t = Trainer(fork, small(detach_gamma=detach_gamma))  # type: ignore[arg-type]
    out = t.compute_losses(t.sample_batch())
    for net in (*NETS, "target_critic"):
        for p in getattr(t, net).parameters():
            p.grad = None
    out[loss_name].backward()
    own = OWN[loss_name]
    for net in NETS:
        for p in _params(t, net):
            if net == own:
                assert p.grad is not None and bool(p.grad.abs().sum() > 0), net
            else:
                assert p.grad is None or bool((p.grad == 0).all()), (loss_name, net)
    assert all(p.grad is None for p in t.target_critic.parameters())


def _snapshot(t: Trainer) -> dict[str, list[torch.Tensor]]:
    return {n: [p.detach().clone() for p in getattr(t, n).parameters()] for n in t.networks()}


def _changed(before: list[torch.Tensor], net: nn.Module) -> list[bool]:
    return [not torch.equal(b, p) for b, p in zip(before, net.parameters(), strict=True)]


@pytest.mark.parametrize("actor", ["gmm", "unimodal"])
def test_every_parameter_updates_in_one_step(fork: object, actor: str) -> None:
    t = Trainer(fork, small(actor=actor))  # type: ignore[arg-type]
    before = _snapshot(t)
    stats = t.train_step()
    assert set(OWN) <= set(stats)
    for name, net in t.networks().items():
        changed = dict(
            zip([n for n, _ in net.named_parameters()], _changed(before[name], net), strict=True)
        )
        if (actor == "unimodal" and name == "actor") or name == "baseline":
            # with K = 1, log w = log_softmax(one logit) = 0: the gating head has no gradient
            assert not changed.pop("logits_head.weight")
            assert not changed.pop("logits_head.bias")
        assert all(changed.values()), (name, changed)
    assert t.step == 1


def test_pretraining_updates_only_the_behavior_gmm(fork: object) -> None:
    t = Trainer(fork, small(gmm_pretrain_steps=2))  # type: ignore[arg-type]
    before = _snapshot(t)
    assert t.phase == "pretrain"
    stats = t.train_step()
    assert set(stats) == {"loss_behavior"}
    assert all(_changed(before["behavior"], t.behavior))
    for name in ("critic", "target_critic", "value", "actor"):
        assert not any(_changed(before[name], t.networks()[name])), name


def test_frozen_behavior_stays_fixed_after_pretraining(fork: object) -> None:
    t = Trainer(fork, small(gmm_pretrain_steps=1, gmm_freeze_after_pretrain=True))  # type: ignore[arg-type]
    t.train_step()
    frozen = _snapshot(t)
    t.train_step()
    assert t.phase == "joint"
    assert not any(_changed(frozen["behavior"], t.behavior))
    for name in ("critic", "value", "actor"):
        assert all(_changed(frozen[name], t.networks()[name])), name


def test_unimodal_actor_has_one_component(fork: object) -> None:
    t = Trainer(fork, small(actor="unimodal", n_components=4))  # type: ignore[arg-type]
    assert t.actor.n_components == 1
    assert t.behavior.n_components == 4


def test_same_seed_same_run_and_global_rng_untouched(fork: object) -> None:
    state = torch.random.get_rng_state()
    a = Trainer(fork, small(seed=3))  # type: ignore[arg-type]
    b = Trainer(fork, small(seed=3))  # type: ignore[arg-type]
    c = Trainer(fork, small(seed=4))  # type: ignore[arg-type]
    for _ in range(3):
        a.train_step()
        b.train_step()
    assert torch.equal(torch.random.get_rng_state(), state)
    for name in a.networks():
        for p, q in zip(
            a.networks()[name].parameters(), b.networks()[name].parameters(), strict=True
        ):
            assert torch.equal(p, q)
    assert not torch.equal(next(a.critic.parameters()), next(c.critic.parameters()))


def test_observation_normalisation_in_meta(fork: object) -> None:
    t = Trainer(fork, small())  # type: ignore[arg-type]
    meta = t.meta()
    assert meta["obs_mean"] == pytest.approx(fork.obs_mean.tolist())  # type: ignore[attr-defined]
    assert meta["obs_std"] == pytest.approx(fork.obs_std.tolist())  # type: ignore[attr-defined]
    batch = t.sample_batch()
    assert float(batch["observations"].abs().mean()) < 2.0
    raw = Trainer(fork, small(normalize_obs=False))  # type: ignore[arg-type]
    assert raw.meta()["obs_mean"] == [0.0, 0.0]
    assert raw.meta()["obs_std"] == [1.0, 1.0]


# ---------------------------------------------------------------- config
def test_config_defaults_follow_the_spec() -> None:
    c = TrainConfig()
    assert (c.discount, c.tau, c.expectile, c.alpha, c.c_ent, c.exp_adv_max) == (
        0.99,
        0.005,
        0.7,
        3.0,
        0.01,
        100.0,
    )
    assert (c.n_critics, c.hidden, c.lr, c.batch_size) == (10, (256, 256), 3e-4, 256)
    assert c.detach_gamma is True
    assert c.actor == "gmm"
    assert TrainConfig(actor="unimodal").actor_components == 1


@pytest.mark.parametrize("suffix", [".json", ".toml"])
def test_config_file_round_trip(tmp_path: Path, suffix: str) -> None:
    c = TrainConfig(alpha=1.5, hidden=(64, 32), actor="unimodal", gmm_freeze_after_pretrain=True)
    path = tmp_path / f"c{suffix}"
    c.save(path)
    assert TrainConfig.from_file(path) == c


def test_config_toml_train_table(tmp_path: Path) -> None:
    p = tmp_path / "c.toml"
    p.write_text("[train]\nexpectile = 0.9\nhidden = [64, 64]\n")
    assert TrainConfig.from_file(p) == TrainConfig(expectile=0.9, hidden=(64, 64))


@pytest.mark.parametrize(
    ("kw", "match"),
    [
        ({"expectile": 1.0}, "expectile"),
        ({"tau": -0.1}, "tau"),
        ({"actor": "diffusion"}, "actor"),
        ({"n_components": 0}, "n_components"),
        ({"hidden": ()}, "hidden"),
        ({"device": "tpu"}, "device"),
        ({"batch_size": 2.5}, "batch_size"),
        ({"log_std_min": 3.0}, "log_std"),
    ],
)
def test_config_validators(kw: dict[str, object], match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        TrainConfig(**kw)  # type: ignore[arg-type]


def test_overrides_and_unknown_keys(tmp_path: Path) -> None:
    c = apply_overrides(TrainConfig(), ["alpha=0.5", "hidden=[64, 64]", "detach_gamma=false"])
    assert (c.alpha, c.hidden, c.detach_gamma) == (0.5, (64, 64), False)
    with pytest.raises(ConfigError, match="Did you mean 'alpha'"):
        apply_overrides(TrainConfig(), ["alpah=1"])
    with pytest.raises(ConfigError, match="key=value"):
        apply_overrides(TrainConfig(), ["alpha"])
    with pytest.raises(ConfigError, match="cannot parse"):
        apply_overrides(TrainConfig(), ["n_critics=many"])
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"discount": 0.9, "colour": "red"}))
    with pytest.raises(ConfigError, match="colour"):
        TrainConfig.from_file(bad)
    broken = tmp_path / "broken.toml"
    broken.write_text("alpha = = 1")
    with pytest.raises(ConfigError, match="cannot parse"):
        TrainConfig.from_file(broken)


# ---------------------------------------------------------------- the fair same-critic baseline
def test_baseline_trains_beside_the_actor_without_changing_it(fork: object) -> None:
    """The baseline adds one K = 1 actor; every other network trains bit for bit as without."""
    with_b = Trainer(fork, small(unimodal_baseline=True))  # type: ignore[arg-type]
    without = Trainer(fork, small(unimodal_baseline=False))  # type: ignore[arg-type]
    assert with_b.baseline is not None and with_b.baseline.n_components == 1
    assert without.baseline is None
    for _ in range(5):
        with_b.train_step()
        without.train_step()
    for name in ("critic", "target_critic", "value", "actor", "behavior"):
        a, b = with_b.networks()[name].state_dict(), without.networks()[name].state_dict()
        assert all(torch.equal(a[k], b[k]) for k in a), name
    assert torch.equal(with_b.generator.get_state(), without.generator.get_state())
    assert with_b.models().baseline is with_b.baseline


def test_baseline_uses_the_actors_minibatch_and_guidance(fork: object) -> None:
    """loss_baseline is the K = 1 guided loss on the same batch, with the actor's own g."""
    from gemkit.models.gmm import ConditionalGMM
    from gemkit.train import losses as L

    t = Trainer(fork, small())  # type: ignore[arg-type]
    assert t.baseline is not None
    batch = t.sample_batch()
    out = t.compute_losses(batch)
    obs, act = batch["observations"], batch["actions"]
    with torch.no_grad():
        adv = t.target_critic(obs, act).amin(0) - t.value(obs)
        g = L.guidance_weight(adv, t.config.alpha, t.config.exp_adv_max)
        lj = ConditionalGMM.component_log_joint(t.baseline(obs), act.unsqueeze(1)).squeeze(1)
        want = (g * -lj[:, 0]).mean()
    torch.testing.assert_close(out["loss_baseline"].detach(), want)
    # it only moves the baseline: no gradient reaches any other network
    grads = torch.autograd.grad(
        out["loss_baseline"], [p for n in NETS for p in _params(t, n)], allow_unused=True
    )
    assert all(gr is None or not gr.any() for gr in grads)


def test_baseline_steps_equal_actor_steps(fork: object, tmp_path: Path) -> None:
    """Same step count as the actor: pretraining moves neither; every joint step moves both."""
    from gemkit.train import train

    cfg = small(gmm_pretrain_steps=3)
    t = Trainer(fork, cfg)  # type: ignore[arg-type]
    assert t.baseline is not None
    b0 = [p.clone() for p in t.baseline.parameters()]
    a0 = [p.clone() for p in t.actor.parameters()]
    for _ in range(3):
        stats = t.train_step()
        assert "loss_baseline" not in stats and "loss_actor" not in stats
    assert not any(_changed(b0, t.baseline)) and not any(_changed(a0, t.actor))
    stats = t.train_step()
    assert "loss_baseline" in stats and "loss_actor" in stats
    # the saved models carry it, and Models.unimodal() swaps it in as the actor
    from gemkit.models import load_models

    models = train(fork, cfg, tmp_path / "run", 5, tensorboard=False)  # type: ignore[arg-type]
    loaded = load_models(tmp_path / "run")
    assert loaded.baseline is not None
    uni = loaded.unimodal()
    assert uni.actor is loaded.baseline and uni.critic is loaded.critic
    torch.testing.assert_close(
        loaded.baseline.means_head.weight,
        models.baseline.means_head.weight,  # type: ignore[union-attr]
    )


def test_models_without_baseline_say_how_to_get_one(fork: object) -> None:
    from gemkit.errors import GemkitError

    t = Trainer(fork, small(unimodal_baseline=False))  # type: ignore[arg-type]
    with pytest.raises(GemkitError, match="unimodal_baseline"):
        t.models().unimodal()


# ---------------------------------------------------------------- compiled training
@pytest.mark.parametrize(
    ("mode", "pretrain"), [("default", 0), ("max-autotune-no-cudagraphs", 0), ("default", 2)]
)
def test_compiled_step_matches_eager(fork: object, mode: str, pretrain: int) -> None:
    """torch.compile'd losses give the eager step's losses and parameters (float tolerance).

    With ``pretrain = 2`` the run crosses from pretraining to joint steps: the switch compiles
    and runs the joint graph (run with the pretraining graph, a joint step would have no critic,
    value or actor loss and update none of them)."""
    eager = Trainer(fork, small(), pretrain_steps=pretrain)  # type: ignore[arg-type]
    comp = Trainer(fork, small(), pretrain_steps=pretrain, compile=True, compile_mode=mode)  # type: ignore[arg-type]
    for _ in range(pretrain + 3):
        phase = comp.phase
        se, sc = eager.train_step(), comp.train_step()
        assert sorted(sc) == sorted(se), phase
        for k in se:
            torch.testing.assert_close(sc[k], se[k], rtol=1e-4, atol=1e-5, msg=f"{phase} {k}")
    assert comp.compiled, "compilation fell back to eager on this machine"
    for name, net in eager.networks().items():
        other = comp.networks()[name].state_dict()
        for k, v in net.state_dict().items():
            torch.testing.assert_close(other[k], v, rtol=1e-4, atol=1e-5, msg=f"{name}.{k}")


def test_compile_options_merge_the_mode_and_ask_for_the_cpp_wrapper_on_cpu() -> None:
    from gemkit.train.trainer import compile_options

    cpu, gpu = torch.device("cpu"), torch.device("cuda")
    assert compile_options("default", cpu) == {"cpp_wrapper": True}
    assert compile_options("default", gpu) == {}
    tuned = compile_options("max-autotune-no-cudagraphs", cpu)
    assert tuned["max_autotune"] is True and tuned["cpp_wrapper"] is True
    assert compile_options("reduce-overhead", gpu) == {"triton.cudagraphs": True}


def test_unknown_compile_mode_lists_the_valid_ones(fork: object) -> None:
    from gemkit.errors import GemkitError

    with pytest.raises(GemkitError, match="default, reduce-overhead, max-autotune"):
        Trainer(fork, small(), compile=True, compile_mode="fast")  # type: ignore[arg-type]


@pytest.mark.parametrize("phase", ["pretrain", "joint"])
@pytest.mark.parametrize("options", [{}, {"gmm_likelihood": "censored"}])
def test_loss_computation_compiles_as_one_graph(
    fork: object, phase: str, options: dict[str, object]
) -> None:
    """No graph break in the compiled losses: each break splits the step into separately
    compiled pieces with eager glue between them (a selection cache read in the GMM's forward
    once cut a step into six graphs and cost about a third of its compiled speed; selections now
    share forwards through an explicit ``Forwards`` object instead)."""
    trainer = Trainer(fork, small(**options))  # type: ignore[arg-type]
    explained = torch._dynamo.explain(trainer.compute_losses)(trainer.sample_batch(), phase)
    reasons = [r.reason.splitlines()[0] for r in explained.break_reasons]
    assert explained.graph_break_count == 0, reasons
    assert explained.graph_count == 1


# ---------------------------------------------------------------- the plan of a run
def test_plan_caps_pretraining_at_a_quarter_of_a_fresh_run() -> None:
    from gemkit.errors import CheckpointError
    from gemkit.train import PRETRAIN_SHARE, plan_run

    assert PRETRAIN_SHARE == 0.25
    cfg = TrainConfig()  # gmm_pretrain_steps 10,000
    for steps, pretrain in ((5_000, 1_250), (3_000, 750), (3, 0), (40_000, 10_000),
                            (1_000_000, 10_000)):  # fmt: skip
        plan = plan_run(cfg, steps)
        assert (plan.pretrain, plan.pretrain_left, plan.joint_left) == (
            pretrain,
            pretrain,
            steps - pretrain,
        ), steps
        assert plan.joint_left > 0
    text = "\n".join(plan_run(cfg, 5_000).lines())
    assert "1,250 behavior-only pretraining step(s)" in text and "3,750 joint step(s)" in text
    assert "capped at 25% of the run" in text
    # a resumed run keeps its checkpoint's pretraining
    plan = plan_run(cfg, 5_000, start=300, pretrain=1_000)
    assert (plan.pretrain_left, plan.joint_left) == (700, 4_000)
    assert "resuming from step 300" in plan.lines()[0]
    with pytest.raises(CheckpointError, match="past --steps"):
        plan_run(cfg, 100, start=200, pretrain=10)
    with pytest.raises(CheckpointError, match="critic, value and actor would not train"):
        plan_run(cfg, 5_000, start=300, pretrain=10_000)


def test_train_pretrains_as_planned(fork: object, tmp_path: Path) -> None:
    from gemkit.train import TrainProgress, train

    reports: list[TrainProgress] = []
    models = train(fork, small(gmm_pretrain_steps=10_000), tmp_path / "run", 8, log_every=1,  # type: ignore[arg-type]
                   progress=reports.append, tensorboard=False)  # fmt: skip
    assert [r.phase for r in reports] == ["pretrain"] * 2 + ["joint"] * 6
    assert models.meta["pretrain_steps"] == 2


def test_fit_behavior_gmm_fits_one_gmm_without_a_trainer(
    fork: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    from gemkit.train import fit_behavior_gmm
    from gemkit.train.behavior import behavior_loss

    def no_trainer(*args: object, **kwargs: object) -> None:
        pytest.fail("fit_behavior_gmm built a Trainer")

    monkeypatch.setattr(Trainer, "__init__", no_trainer)
    actions = fork.actions  # type: ignore[attr-defined]
    start, obs = fit_behavior_gmm(fork, 3, 0, seed=0, config=small())  # type: ignore[arg-type]
    fitted, _ = fit_behavior_gmm(fork, 3, 150, seed=0, config=small())  # type: ignore[arg-type]
    again, _ = fit_behavior_gmm(fork, 3, 150, seed=0, config=small())  # type: ignore[arg-type]
    with torch.no_grad():
        nll_start = float(behavior_loss(start, obs, actions))
        assert float(behavior_loss(fitted, obs, actions)) < nll_start
    for p, q in zip(fitted.parameters(), again.parameters(), strict=True):
        assert torch.equal(p, q)  # seeded: the same fit twice
    assert obs.shape == (len(fork), fork.state_dim)  # type: ignore[arg-type, attr-defined]
