"""D4RL's maze2d recipe: the env's frame and geometry, the planner and controller, the stream,
the relabelled rewards and the reference scores."""

from __future__ import annotations

from collections import deque

import gymnasium as gym
import numpy as np
import pytest

from gemkit.data.maze2d import (
    D4RL_REF_SCORES,
    GridQPlanner,
    Maze2dController,
    _record,
    make_maze2d,
    relabel_sparse,
)
from gemkit.envs.maze2d import MAZE2D, Maze2dEnv, maze2d_env_id
from gemkit.errors import GemkitError


def test_d4rl_reference_scores_as_published() -> None:
    # d4rl/infos.py, REF_MIN_SCORE / REF_MAX_SCORE of maze2d-{umaze,medium,large}-v1
    assert D4RL_REF_SCORES == {
        "umaze": (23.85, 161.86),
        "medium": (13.13, 277.39),
        "large": (6.7, 273.99),
    }


def test_layouts_goals_horizons_sizes() -> None:
    assert {m: s.goal for m, s in MAZE2D.items()} == {
        "umaze": (1, 1), "medium": (6, 6), "large": (7, 9)}  # fmt: skip
    assert [s.horizon for s in MAZE2D.values()] == [300, 600, 800]
    assert [s.dataset_steps for s in MAZE2D.values()] == [1_000_000, 2_000_000, 4_000_000]
    # gymnasium-robotics' maps are D4RL's (walls in the same cells)
    from gymnasium_robotics.envs.maze import maps

    for name, ref in (("umaze", maps.U_MAZE), ("medium", maps.MEDIUM_MAZE),
                      ("large", maps.LARGE_MAZE)):  # fmt: skip
        np.testing.assert_array_equal(MAZE2D[name].walls, np.array(ref) == 1)


def test_unknown_maze_lists_the_valid_ones() -> None:
    with pytest.raises(GemkitError, match="umaze"):
        Maze2dEnv("small")


def _push(env: Maze2dEnv, start: list[float], action: list[float], steps: int = 150):
    env.reset(seed=0, options={"qpos": start, "qvel": [0.0, 0.0]})
    for _ in range(steps):
        obs, *_ = env.step(np.array(action, dtype=np.float32))
    return obs


def test_walls_sit_where_d4rl_puts_them() -> None:
    # D4RL: wall (r, c) spans qpos [r - 0.7, r + 0.3] x [c - 0.7, c + 0.3]; the ball's radius is
    # 0.1, so pushing from cell (1, 1) towards wall (0, 1) stops at x = 0.3 + 0.1.
    env = Maze2dEnv("umaze")
    assert _push(env, [1.0, 1.0], [-1.0, 0.0])[0] == pytest.approx(0.4, abs=0.01)
    assert _push(env, [1.0, 1.0], [0.0, -1.0])[1] == pytest.approx(0.4, abs=0.01)
    # along row 1 to wall (1, 4): stops at y = 3.3 - 0.1
    assert _push(env, [1.0, 1.0], [0.0, 1.0], 300)[1] == pytest.approx(3.2, abs=0.01)
    env.close()


def test_frame_round_trip_and_velocity_clip() -> None:
    env = Maze2dEnv("large")
    q = np.array([[3.1, 4.2], [7.0, 9.0]])
    np.testing.assert_allclose(env.to_d4rl(env.from_d4rl(q)), q)
    v = np.array([0.3, -2.0])
    np.testing.assert_allclose(env.vel_to_d4rl(env.vel_from_d4rl(v)), v)
    obs = _push(env, [3.0, 1.0], [0.0, 1.0], 40)  # long corridor of row 3
    assert abs(obs[3]) <= 5.0 + 1.0  # clipped to 5 before each step, one step of force after
    env.close()


def test_sparse_reward_on_the_next_position() -> None:
    env = gym.make(maze2d_env_id("umaze"))
    env.reset(seed=0, options={"qpos": [1.2, 1.3], "qvel": [0.0, 0.0]})
    _, r, term, trunc, info = env.step(np.zeros(2, dtype=np.float32))
    assert r == 1.0 and info["success"] and not term and not trunc
    env.reset(seed=0, options={"qpos": [3.0, 3.0], "qvel": [0.0, 0.0]})
    assert env.step(np.zeros(2, dtype=np.float32))[1] == 0.0
    env.close()


def test_eval_env_goal_and_reset_distribution() -> None:
    env = gym.make(maze2d_env_id("medium"))
    assert env.spec is not None and env.spec.max_episode_steps == 600
    inner = env.unwrapped
    assert isinstance(inner, Maze2dEnv)
    np.testing.assert_array_equal(inner.target, [6.0, 6.0])  # the G cell exactly
    free = MAZE2D["medium"].free_cells
    cells, offsets, vels = [], [], []
    for seed in range(600):
        obs, _ = env.reset(seed=seed)
        cell = tuple(round(float(x)) for x in obs[:2])
        cells.append(cell)
        offsets.append(obs[:2] - np.array(cell))
        vels.append(obs[2:])
    assert set(cells) == set(free)  # every free cell, the goal's included
    offsets_a, vels_a = np.array(offsets), np.array(vels)
    assert np.abs(offsets_a).max() <= 0.1
    assert np.abs(offsets_a).mean() == pytest.approx(0.05, abs=0.01)  # U(-0.1, 0.1)
    assert vels_a.std() == pytest.approx(0.1, abs=0.01)  # N(0, 0.1^2)
    counts = np.array([cells.count(c) for c in free])
    assert counts.min() > 0.4 * len(cells) / len(free)
    np.testing.assert_array_equal(inner.target, [6.0, 6.0])  # no target reset on evaluation
    env.close()


def _bfs(walls: np.ndarray, start: tuple[int, int], goal: tuple[int, int]) -> int:
    seen, queue = {start: 0}, deque([start])
    while queue:
        cell = queue.popleft()
        for dr, dc in ((0, 1), (0, -1), (1, 0), (-1, 0)):
            nxt = (cell[0] + dr, cell[1] + dc)
            if not walls[nxt] and nxt not in seen:
                seen[nxt] = seen[cell] + 1
                queue.append(nxt)
    return seen[goal]


@pytest.mark.parametrize("maze", list(MAZE2D))
def test_planner_follows_shortest_paths(maze: str) -> None:
    spec = MAZE2D[maze]
    planner = GridQPlanner(spec.walls)
    rng = np.random.default_rng(0)
    for start in spec.free_cells:
        for goal in spec.free_cells[:: max(1, len(spec.free_cells) // 6)]:
            wps = planner.waypoints(start, goal, rng)
            np.testing.assert_array_equal(wps[-1], goal)
            assert len(wps) == max(1, _bfs(spec.walls, start, goal))
            for w in wps[:-1]:  # cell coordinates minus U(0, 0.2)
                off = np.round(w + 0.1) - w
                assert np.all((off >= 0) & (off <= 0.2))


def test_q_iteration_against_a_plain_loop() -> None:
    spec = MAZE2D["umaze"]
    planner = GridQPlanner(spec.walls)
    g = planner.index(spec.goal)
    moves = ((0, 0), (0, -1), (0, 1), (-1, 0), (1, 0))
    rows, cols = spec.walls.shape
    q = np.zeros((rows * cols, 5))
    for _ in range(50):
        new = np.zeros_like(q)
        for s in range(rows * cols):
            r, c = divmod(s, cols)
            for a, (dr, dc) in enumerate(moves):
                nr, nc = r + dr, c + dc
                ok = 0 <= nr < rows and 0 <= nc < cols and not spec.walls[nr, nc]
                ns = nr * cols + nc if ok else s
                new[s, a] = float(s == g) + 0.99 * q[ns].max()
        q = new
    np.testing.assert_allclose(planner.q_values(g), q)


@pytest.mark.parametrize("maze", list(MAZE2D))
def test_controller_reaches_the_goal_from_every_free_cell(maze: str) -> None:
    spec = MAZE2D[maze]
    env = Maze2dEnv(maze)
    goal = np.array(spec.goal, dtype=np.float64)
    for cell in spec.free_cells:
        ctrl = Maze2dController(maze, np.random.default_rng(0))
        obs, _ = env.reset(seed=0, options={"qpos": list(cell), "qvel": [0.0, 0.0]})
        reached = False
        for _ in range(spec.horizon):
            act, done = ctrl.get_action(obs[:2], obs[2:], goal)
            if done:
                reached = True
                break
            obs, *_ = env.step(act)
        assert reached, f"{maze}: the controller did not reach {spec.goal} from {cell}"
        assert np.linalg.norm(obs[:2] - goal) < 0.1
    env.close()


def test_relabel_matches_a_plain_loop() -> None:
    obs, *_ = _record("large", 3000, 0, 0.5, None)
    goal = MAZE2D["large"].goal
    rewards = relabel_sparse(obs, goal)
    rng = np.random.default_rng(0)
    for t in rng.choice(len(obs), 300, replace=False):
        d = ((obs[t, 0] - goal[0]) ** 2 + (obs[t, 1] - goal[1]) ** 2) ** 0.5
        assert rewards[t] == (1.0 if d <= 0.5 else 0.0)
    assert rewards.dtype == np.float32


def test_stream_keeps_d4rls_loop() -> None:
    obs, actions, dones, done_next = _record("umaze", 4000, 3, 0.5, None)
    ends = np.flatnonzero(dones)
    assert len(ends) > 10
    # after a done row the observation is not advanced: the next row repeats it
    for t in ends[ends < len(obs) - 1]:
        np.testing.assert_array_equal(obs[t + 1], obs[t])
        assert not np.array_equal(done_next[t], obs[t])  # the env did move
    # otherwise each row's state is the previous row's next state: positions move by at most
    # one 0.01 s step at the clipped speed (5 per axis, plus one step of force); the row after
    # a repeated one has moved two steps
    steps = np.linalg.norm(np.diff(obs[:, :2], axis=0), axis=1)
    one = 0.01 * 6.0 * np.sqrt(2)
    after = np.zeros(len(steps), dtype=bool)
    after[ends[ends < len(steps) - 1] + 1] = True
    assert steps[~after].max() <= one
    assert steps[after].max() <= 2 * one
    # a goal runs at most the horizon (300) plus the done row
    assert np.diff(np.concatenate([[-1], ends])).max() <= 301
    assert np.abs(actions).max() <= 1.0


def test_make_maze2d_writes_a_minari_dataset(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("MINARI_DATASETS_PATH", str(tmp_path))
    from gemkit.data import load, read_metadata

    out = make_maze2d("umaze", 3000, seed=1, ref_episodes=2)
    assert out == "gemkit/maze2d-umaze-v1"
    meta = read_metadata(out)
    assert (meta["ref_min_score"], meta["ref_max_score"]) == D4RL_REF_SCORES["umaze"]
    assert meta["gemkit_ref_max_score"] > meta["gemkit_ref_min_score"]
    data = load(out)
    assert len(data) == 3000 and data.state_dim == 4 and data.action_dim == 2
    assert float(data.terminals.sum()) == 0.0  # D4RL's files hold no terminal states
    obs, _, dones, _ = _record("umaze", 3000, 1, 0.5, None)  # the same seed, the same stream
    np.testing.assert_allclose(data.observations.numpy(), obs.astype(np.float32))
    assert float(data.timeouts.sum()) == dones.sum() + (0 if dones[-1] else 1)
    np.testing.assert_array_equal(data.rewards.numpy(), relabel_sparse(obs, (1, 1)))
    with pytest.raises(GemkitError, match="already exists"):
        make_maze2d("umaze", 3000, seed=1)


@pytest.mark.parametrize("flags", [[0, 0, 1, 0, 1, 0, 0], [1, 1, 0, 0], [0, 0, 0], [0, 1]])
def test_episode_slices_against_a_plain_loop(flags: list[int]) -> None:
    """The stream cutter every recorded dataset uses (pointmaze, maze2d, locomotion)."""
    from gemkit.data._write import episode_slices

    ends = np.array(flags, dtype=bool)
    expected, start = [], 0
    for t, flag in enumerate(ends):
        if flag or t == len(ends) - 1:
            expected.append((start, t + 1))
            start = t + 1
    assert [(s.start, s.stop) for s in episode_slices(ends)] == expected
