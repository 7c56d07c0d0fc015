"""PointMaze: the D4RL maze2d recipe, written as a Minari dataset; its expert reaches goals."""

from __future__ import annotations

import pathlib

import minari
import numpy as np
import pytest
import torch
from data_fixtures import minari_store  # noqa: F401

from gemkit.data import MazeExpert, load, make_pointmaze
from gemkit.data.pointmaze import pointmaze_env_specs
from gemkit.envs import MassScale
from gemkit.errors import GemkitError
from gemkit.eval import evaluate


@pytest.mark.parametrize("maze", ["umaze", "medium"])
def test_expert_controller_reaches_its_goal(maze: str) -> None:
    _, eval_spec = pointmaze_env_specs(maze)
    res = evaluate(MazeExpert(maze), eval_spec, episodes=4, seed=0, max_episode_steps=250)
    assert res.success_rate is not None
    assert res.success_rate >= 0.75


def test_round_trip_tiny_umaze(minari_store: pathlib.Path) -> None:  # noqa: F811
    seen: list[int] = []
    make_pointmaze("umaze", 1_500, seed=0, ref_episodes=2, progress=lambda d, t: seen.append(d))
    assert seen[-1] == 1_500
    data = load("gemkit/pointmaze-umaze-v0")
    assert len(data) == 1_500
    # observation (x, y, vx, vy) + desired_goal (gx, gy), as D4RL maze2d.
    assert data.state_dim == 6
    assert data.meta["obs_keys"] == ["observation", "desired_goal"]
    ends = data.timeouts > 0
    inner = ~ends[:-1]
    assert torch.equal(data.next_observations[:-1][inner], data.observations[1:][inner])
    # The goal is fixed within an episode and the noisy controller reaches it in most episodes.
    assert torch.equal(data.observations[:-1, 4:][inner], data.observations[1:, 4:][inner])
    reached = data.rewards[ends] > 0
    assert float(reached.float().mean()) > 0.8
    assert float(data.terminals.sum()) == 0.0
    ds = minari.load_dataset("gemkit/pointmaze-umaze-v0")
    env = ds.recover_environment(eval_env=True)
    assert env.spec is not None
    assert env.spec.max_episode_steps == 300
    lo, hi = data.meta["ref_min_score"], data.meta["ref_max_score"]
    assert hi > lo
    res = evaluate(MazeExpert("umaze"), "gemkit/pointmaze-umaze-v0", episodes=2, seed=0)
    assert res.normalized_mean is not None
    assert res.normalized_mean == pytest.approx(100 * (res.mean_return - lo) / (hi - lo))


def test_dense_and_seeded(minari_store: pathlib.Path) -> None:  # noqa: F811
    make_pointmaze("umaze", 400, seed=5, dense=True, ref_episodes=1)
    make_pointmaze("umaze", 400, seed=5, dense=True, ref_episodes=1, dataset_id="gemkit/pm-b-v0")
    a, b = load("gemkit/pointmaze-umaze-dense-v0"), load("gemkit/pm-b-v0")
    assert torch.equal(a.observations, b.observations)
    assert torch.equal(a.actions, b.actions)
    dist = (a.next_observations[:, :2] - a.next_observations[:, 4:]).norm(dim=1)
    np.testing.assert_allclose(a.rewards.numpy(), torch.exp(-dist).numpy(), atol=1e-4)


def test_mass_scale() -> None:
    import gymnasium as gym

    _, eval_spec = pointmaze_env_specs("umaze")
    env = gym.make(eval_spec)
    base = np.array(env.unwrapped.point_env.model.body_mass, copy=True)  # type: ignore[attr-defined]
    wrapped = MassScale(env, 2.0)
    np.testing.assert_allclose(wrapped.unwrapped.point_env.model.body_mass, 2.0 * base)  # type: ignore[attr-defined]
    with pytest.raises(GemkitError, match="MuJoCo"):
        MassScale(gym.make("gemkit/Fork-v0"), 2.0)
    with pytest.raises(GemkitError, match="> 0"):
        MassScale(gym.make(eval_spec), 0.0)
    # Heavier point, same controller: the rollout changes but still runs through evaluate.
    light = evaluate(MazeExpert("umaze"), eval_spec, episodes=2, seed=0, max_episode_steps=60)
    heavy = evaluate(
        MazeExpert("umaze"), eval_spec, episodes=2, seed=0, max_episode_steps=60, mass_scale=5.0
    )
    assert heavy.mass_scale == 5.0
    assert not np.array_equal(light.returns, heavy.returns)
