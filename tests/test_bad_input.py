"""Bad input gets one clear error each, never a traceback from inside torch."""

from __future__ import annotations

import pytest
import torch
from core_fixtures import gen, states, tiny_models

from gemkit import GemkitError, ShapeError, UnknownComponentError, compose
from gemkit.config import SelectorConfig
from gemkit.models import ConditionalGMM, CriticEnsemble, Models


def one_line(exc: pytest.ExceptionInfo[BaseException]) -> str:
    msg = str(exc.value)
    assert "\n" not in msg and len(msg) < 300, msg
    return msg


def test_wrong_state_shapes() -> None:
    sel = compose(models=tiny_models(), n=4)
    with pytest.raises(ShapeError) as e:
        sel.select(torch.zeros(2, 3, 3))
    assert "[B, 3]" in one_line(e)
    with pytest.raises(ShapeError) as e:
        sel.select(torch.zeros(2, 5))
    assert "dim 1 is 5, not 3" in one_line(e)
    with pytest.raises(ShapeError):
        sel.select(torch.zeros(0, 3))
    with pytest.raises(ShapeError):
        sel.select([[0.0, 0.0, 0.0]])  # type: ignore[arg-type]


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf")])
def test_nan_inf_states(bad: float) -> None:
    s = states(3)
    s[1, 2] = bad
    with pytest.raises(GemkitError) as e:
        compose(models=tiny_models(), n=4).select(s)
    assert "NaN/inf" in one_line(e)


def test_wrong_action_dim_from_custom_components() -> None:
    models = tiny_models()

    class WrongProposer:
        has_anchor = False

        def propose(self, s: torch.Tensor, n: int, generator=None) -> torch.Tensor:
            return torch.zeros(s.shape[0], n, 5)

    with pytest.raises(ShapeError) as e:
        compose(models=models, proposer=WrongProposer(), n=3).select(states(2))
    assert "proposer output" in one_line(e)

    def critic_wrong(s: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
        return torch.zeros(4, 7)

    models.critic = critic_wrong
    with pytest.raises(GemkitError) as e:
        compose(models=models, n=3).select(states(2))
    assert "critic must return" in one_line(e)

    def critic_nan(s: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
        return torch.full(a.shape[:2], float("nan"))

    models.critic = critic_nan
    with pytest.raises(GemkitError) as e:
        compose(models=models, n=3).select(states(2))
    assert "NaN" in one_line(e)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"n": -1}, "n must be >= 0"),
        ({"beta": -0.1}, "beta must be >= 0"),
        ({"k": 0}, "k must be >= 1"),
        ({"lam": float("nan")}, "lam must be finite"),
        ({"horizon": 0}, "horizon must be >= 1"),
        ({"reducer": "topk", "k": 9, "n": 4}, "k = 9"),
        ({"anchor": "none", "n": 0}, "n must be >= 1"),
    ],
)
def test_bad_knobs(kwargs: dict, match: str) -> None:
    with pytest.raises(GemkitError, match=match) as e:
        compose(models=tiny_models(), **kwargs).select(states(2))
    one_line(e)


@pytest.mark.parametrize(
    ("kwargs", "kind", "valid"),
    [
        ({"proposer": "actr"}, "proposer", "actor, behavior, diffusion, flow, unimodal"),
        ({"anchor": "mod"}, "anchor", "bary, mode, none"),
        ({"value": "ucb"}, "value", "expectile_weight, lcb, lcb_z, mean, min"),
        ({"support": "zcore"}, "support", "none, raw, zscore"),
        ({"reducer": "top2"}, "reducer", "softmax, top1, topk"),
        ({"preset": "gemm"}, "preset", "anchor_bary"),
    ],
)
def test_unknown_names_list_the_valid_ones(kwargs: dict, kind: str, valid: str) -> None:
    with pytest.raises(UnknownComponentError) as e:
        compose(models=tiny_models(), **kwargs)
    msg = one_line(e)
    assert f"unknown {kind}" in msg and valid in msg and "Did you mean" in msg


def test_networks_with_different_dims_are_refused() -> None:
    m = tiny_models()
    m.behavior = ConditionalGMM(3, 4, 2, hidden=(8,))
    with pytest.raises(GemkitError, match=r"disagree on action_dim \(actor 2, behavior 4") as e:
        compose(models=m)
    one_line(e)
    m = tiny_models()
    m.critic = CriticEnsemble(5, 2, 2, hidden=(8,))
    with pytest.raises(GemkitError, match="disagree on state_dim") as e:
        compose(models=m)
    one_line(e)


def test_missing_models_say_what_to_pass() -> None:
    with pytest.raises(GemkitError, match="needs a actor GMM") as e:
        compose(models=Models())
    one_line(e)
    m = tiny_models()
    m.critic = None
    with pytest.raises(GemkitError, match="needs a critic") as e:
        compose(models=m)
    one_line(e)
    with pytest.raises(GemkitError, match="models must be"):
        compose(models=42)  # type: ignore[arg-type]


def test_bad_specs() -> None:
    with pytest.raises(GemkitError, match="unknown selector spec keys"):
        SelectorConfig.from_dict({"type": "gemkit.selector", "params": {"nn": 3}})
    with pytest.raises(GemkitError, match="not a gemkit selector spec"):
        SelectorConfig.from_dict({"params": {}})
    with pytest.raises(GemkitError, match="not valid JSON"):
        SelectorConfig.from_json("{nope")
    with pytest.raises(FileNotFoundError):
        SelectorConfig.from_json("/nonexistent/spec.json")


def test_generator_is_used_not_global_state() -> None:
    sel = compose(models=tiny_models(), n=8)
    s = states(3)
    torch.manual_seed(123)
    a = sel.select(s, generator=gen(4)).candidates
    torch.manual_seed(999)
    b = sel.select(s, generator=gen(4)).candidates
    assert torch.equal(a, b)
    sel2 = compose(models=tiny_models(), n=8, seed=7)
    sel3 = compose(models=tiny_models(), n=8, seed=7)
    assert torch.equal(sel2.select(s).candidates, sel3.select(s).candidates)
