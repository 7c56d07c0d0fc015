"""gemkit.adapters.torchrl: TorchRL value modules as a critic, stochastic actors as candidates."""

from __future__ import annotations

import pytest
import torch

pytest.importorskip("torchrl")
pytest.importorskip("tensordict")

from adapter_fixtures import MEAN, STD, Case, assert_one_line_errors, models_with_stats
from core_fixtures import A, S, gen, states
from tensordict import TensorDict
from tensordict.nn import NormalParamExtractor, TensorDictModule
from torch import nn
from torchrl.data import Bounded
from torchrl.envs.utils import ExplorationType, set_exploration_type
from torchrl.modules import MLP, ProbabilisticActor, TanhNormal, ValueOperator

from gemkit import GemkitError, compose
from gemkit.adapters.torchrl import (
    TorchRLCritic,
    from_torchrl,
    policy_from_torchrl,
)
from gemkit.errors import ShapeError
from gemkit.proposers import CandidateProposer
from gemkit.scorers.values import EnsembleValue
from gemkit.testing import check_proposer, check_value, example_inputs

LOW, HIGH = -2.0, 2.0


def value_op(seed: int) -> ValueOperator:
    """A TorchRL Q(s, a): an MLP over cat(observation, action), out key state_action_value."""
    torch.manual_seed(seed)
    return ValueOperator(MLP(in_features=S + A, out_features=1, num_cells=[16, 16]),
                         in_keys=["observation", "action"])  # fmt: skip


def actor(dist: type = TanhNormal, seed: int = 0, **dist_kwargs: object) -> ProbabilisticActor:
    """A TorchRL stochastic actor on a [LOW, HIGH] action box."""
    torch.manual_seed(seed)
    net = nn.Sequential(MLP(in_features=S, out_features=2 * A, num_cells=[16]),
                        NormalParamExtractor())  # fmt: skip
    return ProbabilisticActor(
        TensorDictModule(net, in_keys=["observation"], out_keys=["loc", "scale"]),
        in_keys=["loc", "scale"],
        distribution_class=dist,
        distribution_kwargs=dist_kwargs,
        spec=Bounded(LOW * torch.ones(A), HIGH * torch.ones(A), shape=(A,)),
    )


def by_hand(ops: list[ValueOperator], s: torch.Tensor, cands: torch.Tensor) -> torch.Tensor:
    """Mean over ``ops`` of their Q on raw ``s [B, S]``, ``cands [B, M, A]``, through TorchRL."""
    b, m, _ = cands.shape
    td = TensorDict({"observation": s.repeat_interleave(m, 0), "action": cands.reshape(b * m, A)},
                    batch_size=[b * m])  # fmt: skip
    with torch.no_grad():
        qs = [op(td.clone())["state_action_value"].reshape(b, m) for op in ops]
    return torch.stack(qs).mean(0)


def test_selector_mean_value_equals_the_value_modules_mean_on_raw_states() -> None:
    ops = [value_op(i) for i in range(3)]
    m = models_with_stats()
    m.critic = from_torchrl(ops)
    sel = compose(value="mean", models=m, n=7)
    assert sel.observation["value"] == "raw"
    s = states(5) * 3 + 1
    out = sel.select(s, generator=gen())
    assert m.critic(s.unsqueeze(1).expand(-1, 8, -1), out.candidates).shape == (3, 5, 8)  # E=3
    assert (out.value - by_hand(ops, s, out.candidates)).abs().max() < 1e-5
    wrong = by_hand(ops, (s - MEAN) / STD, out.candidates)
    assert (out.value - wrong).abs().max() > 1e-3


def test_critics_pass_the_conformance_suite() -> None:
    s, c = example_inputs(state_dim=S, action_dim=A)
    for critic in (from_torchrl(value_op(0)), from_torchrl([value_op(i) for i in range(3)])):
        for reduction in ("lcb", "mean", "min"):
            check_value(EnsembleValue(critic, reduction), s, c)  # type: ignore[arg-type]
    x = s.unsqueeze(1).expand(-1, c.shape[1], -1)
    assert from_torchrl(value_op(0))(x, c).shape == (1, 4, 9)


def test_other_keys_and_a_declared_normalized_critic() -> None:
    torch.manual_seed(0)
    op = TensorDictModule(MLP(in_features=S + A, out_features=1, num_cells=[8]),
                          in_keys=["obs", "act"], out_keys=["q"])  # fmt: skip
    m = models_with_stats()
    m.critic = from_torchrl(op, observation_key="obs", action_key="act", value_key="q",
                            observation="normalized")  # fmt: skip
    s = states(4)
    out = compose(value="mean", models=m, n=5).select(s, generator=gen())
    x = ((s - MEAN) / STD).repeat_interleave(6, 0)
    with torch.no_grad():
        want = op(TensorDict({"obs": x, "act": out.candidates.reshape(-1, A)}, [24]))["q"]
    assert (out.value - want.reshape(4, 6)).abs().max() < 1e-5


def test_bad_modules_and_keys_are_one_line_errors() -> None:
    s, c = example_inputs(state_dim=S, action_dim=A)
    x = s.unsqueeze(1).expand(-1, c.shape[1], -1)
    cases: list[Case] = [
        (GemkitError, "not a TensorDictModuleBase", lambda: from_torchrl(nn.Linear(5, 1))),
        (GemkitError, "at least one network", lambda: from_torchrl([])),
        (GemkitError, r"reads \['action', 'observation'\] but gemkit passes",
         lambda: from_torchrl(value_op(0), action_key="act")),
        (GemkitError, "not value_key='q'", lambda: from_torchrl(value_op(0), value_key="q")),
        (GemkitError, "observation must be one of",
         lambda: from_torchrl(value_op(0), observation="scaled")),
        (ShapeError, "network #0 failed on states",
         lambda: from_torchrl(value_op(0))(x[..., :2], c)),
        (GemkitError, "expected a TorchRL ProbabilisticActor",
         lambda: policy_from_torchrl(value_op(0))),
    ]  # fmt: skip
    assert_one_line_errors(cases)


def test_tanh_normal_actor_candidates_pass_the_conformance_suite() -> None:
    pol = actor(low=LOW, high=HIGH)
    anchor, source = policy_from_torchrl(pol)
    s = states(6)
    cands = check_proposer(CandidateProposer(anchor, source), s, n=16)
    assert cands.shape == (6, 17, A)
    assert bool(((cands >= LOW) & (cands <= HIGH)).all())
    # seeded: the same generator seed gives the same samples, another seed others
    a = source.sample(s, 32, generator=gen(3))
    assert torch.equal(a, source.sample(s, 32, generator=gen(3)))
    assert not torch.equal(a, source.sample(s, 32, generator=gen(4)))
    # the global RNG is neither read nor advanced
    before = torch.random.get_rng_state()
    source.sample(s, 4, generator=gen(0))
    assert torch.equal(before, torch.random.get_rng_state())


def test_anchor_is_the_actors_deterministic_action() -> None:
    pol = actor(low=LOW, high=HIGH)
    anchor, _ = policy_from_torchrl(pol)
    s = states(5)
    with set_exploration_type(ExplorationType.DETERMINISTIC), torch.no_grad():
        want = pol(TensorDict({"observation": s}, [5]))["action"]
    torch.testing.assert_close(anchor(s), want)


@pytest.mark.parametrize("dist", [TanhNormal, torch.distributions.Normal])
def test_samples_follow_the_actors_distribution(dist: type) -> None:
    """gemkit's samples have the moments of TorchRL's own samples of the same distribution."""
    kwargs = {"low": LOW, "high": HIGH} if dist is TanhNormal else {}
    pol = actor(dist, **kwargs)  # type: ignore[arg-type]
    _, source = policy_from_torchrl(pol)
    s = states(3)
    ours = source.sample(s, 20_000, generator=gen())
    torch.manual_seed(0)
    with torch.no_grad():
        theirs = pol.get_dist(TensorDict({"observation": s}, [3])).sample((20_000,))
    theirs = theirs.clamp(LOW, HIGH).transpose(0, 1)
    torch.testing.assert_close(ours.mean(1), theirs.mean(1), atol=0.03, rtol=0)
    torch.testing.assert_close(ours.std(1), theirs.std(1), atol=0.03, rtol=0)


def test_actor_candidates_in_a_selector_with_gemkit_support() -> None:
    """TorchRL's policy proposes (raw states), gemkit's behavior GMM supports (normalised)."""
    anchor, source = policy_from_torchrl(actor(low=LOW, high=HIGH))
    m = models_with_stats()
    m.critic = from_torchrl([value_op(i) for i in range(3)])
    sel = compose(anchor=anchor, proposer=source, models=m, n=8)
    assert sel.observation == {"proposer": "raw", "value": "raw", "support": "normalized"}
    s = states(4) * 3 + 1
    out = sel.select(s, generator=gen(1))
    torch.testing.assert_close(out.candidates[:, 0], anchor(s))
    assert torch.equal(out.candidates[:, 1:], source.sample(s, 8, generator=gen(1)))


def test_an_unsupported_distribution_is_a_one_line_error() -> None:
    from torchrl.modules import TruncatedNormal

    _, source = policy_from_torchrl(actor(TruncatedNormal, low=LOW, high=HIGH))
    with pytest.raises(GemkitError, match="TruncatedNormal; gemkit samples a Normal") as e:
        source.sample(states(2), 3, generator=gen())
    assert "\n" not in str(e.value)
    assert isinstance(from_torchrl(value_op(0)), TorchRLCritic)
