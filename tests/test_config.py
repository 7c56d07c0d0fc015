"""Frozen configs, JSON round trip, presets, registries."""

from __future__ import annotations

import attrs
import pytest
import torch
from core_fixtures import gen, states, tiny_models

from gemkit import PRESETS, SelectorConfig, compose
from gemkit.registry import REDUCERS, Registry


def test_json_round_trip_every_preset(tmp_path) -> None:
    for name in PRESETS:
        cfg = SelectorConfig.preset(name, n=33, lam_T=0.1)
        assert SelectorConfig.from_json(cfg.to_json()) == cfg
        cfg.to_json(tmp_path / f"{name}.json")
        assert SelectorConfig.from_json(tmp_path / f"{name}.json") == cfg


def test_config_is_frozen() -> None:
    cfg = SelectorConfig()
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        cfg.n = 3  # type: ignore[misc]


def test_each_ablation_changes_exactly_one_factor() -> None:
    base = attrs.asdict(SelectorConfig.preset("gem"))
    for name, changes in PRESETS.items():
        if name == "gem":
            continue
        diff = {k for k, v in attrs.asdict(SelectorConfig.preset(name)).items() if base[k] != v}
        factor = {"lam", "lam_T"} if name == "no_pw" else set(changes)
        assert diff == factor, name


def test_compose_config_equals_spec() -> None:
    models = tiny_models()
    cfg = SelectorConfig.preset("raw", n=5, beta=2.0)
    a = compose(config=cfg, models=models).select(states(3), generator=gen())
    b = compose(preset="raw", n=5, beta=2.0, models=models).select(states(3), generator=gen())
    assert torch.equal(a.score, b.score)


def test_registry_rejects_duplicates_and_accepts_custom() -> None:
    reg: Registry = Registry("thing", "gemkit.test-things")
    reg.register("a")(lambda m, c: 1)
    with pytest.raises(ValueError, match="already registered"):
        reg.register("a")(lambda m, c: 2)
    reg.register("a", overwrite=True)(lambda m, c: 3)
    assert reg.get("a")(None, None) == 3
    assert "top1" in REDUCERS and "topk" in REDUCERS.names()


def test_custom_component_objects_compose_and_are_named_in_config() -> None:
    class Greedy:
        def __call__(self, candidates: torch.Tensor, score: torch.Tensor) -> torch.Tensor:
            return candidates[torch.arange(candidates.shape[0]), score.argmin(1)]

    sel = compose(models=tiny_models(), reducer=Greedy(), n=4)
    assert sel.config.reducer == "custom:Greedy"
    out = sel.select(states(2), generator=gen())
    torch.testing.assert_close(out.action, out.candidates[torch.arange(2), out.score.argmin(1)])
    with pytest.raises(ValueError, match="custom object"):
        compose(config=sel.config, models=tiny_models())
