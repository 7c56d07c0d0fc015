"""PointMaze: Minari's D4RL pointmaze recipe as a Minari dataset; its controller reaches goals."""

from __future__ import annotations

import pathlib

import minari
import numpy as np
import pytest
import torch

from gemkit.data import MazeExpert, load, make_pointmaze
from gemkit.data.pointmaze import (
    MAZES,
    DFSPlanner,
    QIterationPlanner,
    WaypointController,
    pointmaze_env_specs,
)
from gemkit.envs import MassScale
from gemkit.errors import GemkitError
from gemkit.eval import evaluate


@pytest.mark.parametrize("maze", ["umaze", "medium"])
def test_expert_controller_reaches_its_goal(maze: str) -> None:
    _, eval_spec = pointmaze_env_specs(maze)
    res = evaluate(MazeExpert(maze), eval_spec, episodes=4, seed=0)
    assert res.success_rate is not None
    assert res.success_rate >= 0.75


def test_round_trip_tiny_umaze(minari_store: pathlib.Path) -> None:
    seen: list[int] = []
    make_pointmaze("umaze", 1_500, seed=0, ref_episodes=2, progress=lambda d, t: seen.append(d))
    assert seen[-1] == 1_500
    data = load("gemkit/pointmaze-umaze-v1")
    assert len(data) == 1_500
    # observation (x, y, vx, vy) + desired_goal (gx, gy), as D4RL maze2d.
    assert data.state_dim == 6
    assert data.meta["obs_keys"] == ["observation", "desired_goal"]
    ends = data.timeouts > 0
    inner = ~ends[:-1]
    assert torch.equal(data.next_observations[:-1][inner], data.observations[1:][inner])
    # The goal is fixed within an episode from its second observation on (as in Minari's data,
    # an episode starts from the observation of the previous one's success, old goal included).
    starts = torch.cat([torch.tensor([True]), ends[:-1]])
    same = inner & ~starts[:-1]
    assert torch.equal(data.observations[:-1, 4:][same], data.observations[1:, 4:][same])
    # Every episode but the stream's last ends at a success (reward 1 on its last step).
    assert bool((data.rewards[ends][:-1] > 0).all())
    assert int(ends.sum()) == data.meta.get("total_episodes", int(ends.sum()))
    assert float(data.terminals.sum()) == 0.0
    ds = minari.load_dataset("gemkit/pointmaze-umaze-v1")
    env = ds.recover_environment(eval_env=True)
    assert env.spec is not None
    assert env.spec.max_episode_steps == 300
    # the collection env has no time limit that could split episodes (Minari's recipe)
    assert ds.recover_environment().spec.max_episode_steps == 1_000_000  # type: ignore[union-attr]
    lo, hi = data.meta["ref_min_score"], data.meta["ref_max_score"]
    assert hi > lo
    res = evaluate(MazeExpert("umaze"), "gemkit/pointmaze-umaze-v1", episodes=2, seed=0)
    assert res.score_mean is not None
    assert res.score_mean == pytest.approx(100 * (res.return_mean - lo) / (hi - lo))


def test_dense_and_seeded(minari_store: pathlib.Path) -> None:
    make_pointmaze("umaze", 400, seed=5, dense=True, ref_episodes=1)
    make_pointmaze("umaze", 400, seed=5, dense=True, ref_episodes=1, dataset_id="gemkit/pm-b-v0")
    a, b = load("gemkit/pointmaze-umaze-dense-v1"), load("gemkit/pm-b-v0")
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


def _free_cells(maze: str) -> list[tuple[int, int]]:
    collect, _ = pointmaze_env_specs(maze)
    grid = collect.kwargs["maze_map"]
    return [(r, c) for r, row in enumerate(grid) for c, v in enumerate(row) if v != 1]


@pytest.mark.parametrize("maze", list(MAZES))
def test_noiseless_controller_reaches_every_goal(maze: str) -> None:
    """From a random start, the controller reaches each free cell of the maze as a goal."""
    import dataclasses

    import gymnasium as gym

    _, eval_spec = pointmaze_env_specs(maze)
    base_map = [[1 if v == 1 else 0 for v in row] for row in eval_spec.kwargs["maze_map"]]
    for k, (r, c) in enumerate(_free_cells(maze)):
        grid: list[list[object]] = [list(row) for row in base_map]
        grid[r][c] = "g"
        spec = dataclasses.replace(eval_spec, kwargs={**eval_spec.kwargs, "maze_map": grid})
        env = gym.make(spec, disable_env_checker=True)
        ctl = WaypointController(eval_spec.kwargs["maze_map"], np.random.default_rng(k))
        obs, _ = env.reset(seed=k)
        reached = False
        for _ in range(eval_spec.max_episode_steps or 300):
            obs, _, _, _, info = env.step(np.clip(ctl.act(obs), -1, 1))
            if info["success"]:
                reached = True
                break
        env.close()
        assert reached, f"{maze}: goal cell {(r, c)} not reached"


def test_waypoint_switching_rule() -> None:
    """Switch only within 0.1 of the waypoint; later waypoints sit at centre - U(0, 0.2)."""
    _, eval_spec = pointmaze_env_specs("umaze")
    ctl = WaypointController(eval_spec.kwargs["maze_map"], np.random.default_rng(0))
    goal = ctl.center((1, 1))  # the U's far end; start at the other end (3, 1)
    start = ctl.center((3, 1))
    zero = np.zeros(2)
    a = ctl(start, zero, goal)
    assert ctl.target_cell == (3, 2)  # the first waypoint: the next cell, aimed at its centre
    np.testing.assert_allclose(ctl.target_xy, ctl.center((3, 2)))
    np.testing.assert_allclose(a, 10.0 * (ctl.center((3, 2)) - start))  # P = 10, D * v = 0
    # 0.11 away from the waypoint: no switch
    near = ctl.center((3, 2)) + np.array([0.11, 0.0])
    ctl(near, zero, goal)
    assert ctl.target_cell == (3, 2)
    # within 0.1: the next waypoint, offset by -U(0, 0.2) per coordinate from its centre
    ctl(ctl.center((3, 2)) + np.array([0.05, 0.05]), zero, goal)
    assert ctl.target_cell == (3, 3)
    off = ctl.center((3, 3)) - ctl.target_xy
    assert bool(((off >= 0) & (off <= 0.2)).all())
    assert bool((off > 0).any())
    # D = -1: the action damps the velocity
    v = np.array([0.3, -0.2])
    pos = ctl.target_xy + np.array([0.0, 0.5])
    np.testing.assert_allclose(ctl(pos, v, goal), 10.0 * (ctl.target_xy - pos) - v)
    # a goal that moves by more than 1e-3 rebuilds the plan from the current cell
    ctl(ctl.center((3, 3)), zero, ctl.center((3, 1)))
    assert ctl.target_cell == (3, 2)


def test_planners() -> None:
    """DFS (what Minari ran) finds a valid path; QIteration finds a shortest one."""
    from collections import deque

    _, eval_spec = pointmaze_env_specs("medium")
    grid = eval_spec.kwargs["maze_map"]
    free = set(_free_cells("medium"))
    goal = (6, 6)
    # BFS distances as the reference for "shortest"
    dist = {goal: 0}
    queue = deque([goal])
    while queue:
        r, c = queue.popleft()
        for nb in ((r + 1, c), (r - 1, c), (r, c + 1), (r, c - 1)):
            if nb in free and nb not in dist:
                dist[nb] = dist[(r, c)] + 1
                queue.append(nb)
    q, d = QIterationPlanner(grid), DFSPlanner(grid)
    for start in free - {goal}:
        for planner in (q, d):
            path = planner.plan(start, goal)
            cell, n = start, 0
            while cell != goal:
                nxt = path[cell]
                assert nxt in free and abs(nxt[0] - cell[0]) + abs(nxt[1] - cell[1]) == 1
                cell, n = nxt, n + 1
            if planner is q:
                assert n == dist[start]
    assert d.plan(goal, goal) == {}
