"""The Phase I trainer: gradient isolation, parameter updates, ensemble vs loop, config."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from test_train_fork_data import make_fork_transitions
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
def fork() -> object:
    torch.set_num_threads(1)
    return make_fork_transitions(n_episodes=40)[0]


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
        if actor == "unimodal" and name == "actor":
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
