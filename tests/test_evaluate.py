"""gemkit.eval.evaluate: batching, audits, seeding, normalisation and bad input."""

from __future__ import annotations

import pathlib
from types import SimpleNamespace
from typing import Any

import gymnasium as gym
import numpy as np
import pytest
import torch

from gemkit.data import FORK_DATASET_ID as FORK_ID
from gemkit.data import load, normalized_score, reference_scores
from gemkit.envs import FORK_ENV_ID, ForkExpert
from gemkit.errors import DatasetError, GemkitError, ShapeError
from gemkit.eval import evaluate


class FakeSelector:
    """Expert actions plus generator noise; audits that are known functions of the step t."""

    def __init__(self, noise: float = 0.0) -> None:
        self.noise = noise
        self.batch_sizes: list[int] = []
        self.ts: list[torch.Tensor] = []

    def select(self, states: torch.Tensor, generator: torch.Generator, t: torch.Tensor) -> Any:
        self.batch_sizes.append(states.shape[0])
        self.ts.append(t.clone())
        a = ForkExpert()(states)
        a = a + self.noise * torch.randn(a.shape, generator=generator)
        return SimpleNamespace(
            action=a,
            support_z=t.float(),
            violation=(t % 2 == 0),
            collapse_dist=torch.full((states.shape[0],), 0.5),
        )


def test_selector_is_called_once_per_step_with_the_batch() -> None:
    sel = FakeSelector()
    res = evaluate(sel, FORK_ENV_ID, episodes=6, seed=0, num_envs=3)
    assert set(sel.batch_sizes) == {3}
    assert len(sel.batch_sizes) >= res.lengths.reshape(3, 2).sum(1).max()
    assert res.returns.shape == (6,)
    assert res.success_rate == 1.0
    assert res.total_steps == int(res.lengths.sum())
    assert res.steps_per_s > 0
    # Audits: means over every counted step, t restarting at 0 each episode.
    steps = np.concatenate([np.arange(n) for n in res.lengths])
    assert res.support_z == pytest.approx(steps.mean())
    assert res.violation == pytest.approx((steps % 2 == 0).mean())
    assert res.collapse_dist == pytest.approx(0.5)


class UndefinedAuditSelector(FakeSelector):
    """SupportZ/Violation undefined (NaN) at odd steps, or at every step with ``always``."""

    def __init__(self, always: bool) -> None:
        super().__init__()
        self.always = always

    def select(self, states: torch.Tensor, generator: torch.Generator, t: torch.Tensor) -> Any:
        out = super().select(states, generator, t)
        undefined = torch.ones_like(t, dtype=torch.bool) if self.always else t % 2 == 1
        nan = torch.full(t.shape, float("nan"))
        out.support_z = torch.where(undefined, nan, t.float())
        out.violation = torch.where(undefined, nan, torch.ones(t.shape))
        return out


def test_undefined_audits_are_skipped_not_counted_as_zero() -> None:
    part = evaluate(UndefinedAuditSelector(always=False), FORK_ENV_ID, episodes=2, seed=0)
    steps = np.concatenate([np.arange(n) for n in part.lengths])
    assert part.support_z == pytest.approx(steps[steps % 2 == 0].mean())
    assert part.violation == 1.0  # every defined step violated; NaN steps left out
    none = evaluate(UndefinedAuditSelector(always=True), FORK_ENV_ID, episodes=2, seed=0)
    assert none.support_z is None and none.violation is None
    assert none.collapse_dist == pytest.approx(0.5)


def test_support_none_reports_no_support_audits(fork_store: pathlib.Path) -> None:
    """With support "none", SupportZ and Violation are undefined, never 0.0."""
    import gemkit
    from gemkit.eval.runs import evaluate_config
    from gemkit.models import ConditionalGMM, CriticEnsemble, Models

    torch.manual_seed(0)
    models = Models(actor=ConditionalGMM(2, 2, 2, hidden=(8,)),
                    critic=CriticEnsemble(2, 2, 2, hidden=(8,)))  # fmt: skip
    sel = gemkit.compose(models=models, n=4, support="none")
    res = evaluate(sel, FORK_ENV_ID, episodes=1, seed=0)
    assert res.support_z is None and res.violation is None and res.collapse_dist is None
    summary = evaluate_config(models, sel.config, FORK_ID, episodes=1, seeds=[0])
    assert np.isnan(summary.support_z) and np.isnan(summary.violation)


def test_plain_policy_has_no_audits() -> None:
    res = evaluate(ForkExpert(), FORK_ENV_ID, episodes=2, seed=0)
    assert res.support_z is None
    assert res.violation is None
    assert res.collapse_dist is None
    assert res.score_mean is None  # an env id carries no reference scores


def test_seeded_and_reproducible() -> None:
    a = evaluate(FakeSelector(noise=1.5), FORK_ENV_ID, episodes=4, seed=7)
    b = evaluate(FakeSelector(noise=1.5), FORK_ENV_ID, episodes=4, seed=7)
    c = evaluate(FakeSelector(noise=1.5), FORK_ENV_ID, episodes=4, seed=8)
    np.testing.assert_array_equal(a.returns, b.returns)
    np.testing.assert_array_equal(a.lengths, b.lengths)
    assert not np.array_equal(a.lengths, c.lengths)


def test_normalised_with_dataset_references(fork_store: pathlib.Path) -> None:
    refs = reference_scores(FORK_ID)
    assert refs is not None
    for target in (FORK_ID, load(FORK_ID)):
        res = evaluate(FakeSelector(noise=0.8), target, episodes=4, seed=1)
        expected = normalized_score(res.returns, *refs)
        assert res.score_mean == pytest.approx(float(expected.mean()))
        assert res.score_ep_std == pytest.approx(float(expected.std()))


def test_observation_mismatch_is_one_clear_error(fork_store: pathlib.Path) -> None:
    # Declared: a dataset/policy with 6 state dims against the 2-D fork env.
    with pytest.raises(DatasetError, match=r"observation mismatch: .* 6 state dims .* gives 2"):
        evaluate(ForkExpert(), FORK_ENV_ID, episodes=1, state_dim=6)
    # Fork data (S=2) against PointMaze (S=6 flattened).
    with pytest.raises(DatasetError, match="observation mismatch"):
        evaluate(ForkExpert(), "PointMaze_UMaze-v3", episodes=1, state_dim=load(FORK_ID).state_dim)
    # Undeclared: a network built for 6 inputs fails on the first batch.
    net = torch.nn.Linear(6, 2)
    msg = r"failed on gemkit/Fork-v0 observations of shape \[1, 2\]"
    with pytest.raises(DatasetError, match=msg):
        evaluate(net, FORK_ENV_ID, episodes=1)


def test_wrong_action_shape_and_bad_args() -> None:
    with pytest.raises(ShapeError, match=r"expected \[1, 2\]"):
        evaluate(lambda s: torch.zeros(s.shape[0], 3), FORK_ENV_ID, episodes=1)
    with pytest.raises(GemkitError, match="neither a gymnasium environment id nor a local"):
        evaluate(ForkExpert(), "gemkit/NoSuchThing-v9", episodes=1)
    with pytest.raises(GemkitError, match="episodes must be"):
        evaluate(ForkExpert(), FORK_ENV_ID, episodes=0)


def test_paths_and_evaluation_run_the_same_episodes() -> None:
    """One episode runner: the recorded paths are the episodes evaluate scores."""
    from gemkit.envs import run_episodes
    from gemkit.eval.trajectories import rollout_paths

    paths = rollout_paths(FakeSelector(noise=0.3), FORK_ENV_ID, episodes=3, seed=4)
    res = evaluate(FakeSelector(noise=0.3), FORK_ENV_ID, episodes=3, seed=4, num_envs=3)
    assert [len(obs) - 1 for obs, _ in paths] == list(res.lengths)
    assert all(obs.shape[1] == 2 for obs, _ in paths)
    assert [ok for _, ok in paths] == [bool(r > 0) for r in res.returns]
    first = run_episodes(ForkExpert(), gym.spec(FORK_ENV_ID), 3, seed=4, num_envs=3)
    assert first.observations is None and first.total_steps == int(first.lengths.sum())
