"""``gemkit/pointmaze-<maze>-v0``: the D4RL maze2d recipe on gymnasium-robotics PointMaze.

A waypoint planner (shortest paths on the maze grid, i.e. value iteration with unit costs)
drives a PD controller to random goals, with Gaussian action noise, in one continuing stream:
when the point reaches its goal the environment draws a new one (``continuing_task=True,
reset_target=True``) and the episode is cut there (a time-out, not a terminal), as in D4RL and
Minari's ``D4RL/pointmaze/*`` datasets. Episodes are also cut at the evaluation horizon.

The evaluation environment (stored as the dataset's ``eval_env_spec``) is D4RL's: one fixed goal
cell, random start cells, no goal resets, 300/600/800 steps (umaze/medium/large); its return is
the number of steps spent at the goal (sparse) or the summed ``exp(-distance)`` (dense).
"""

from __future__ import annotations

import dataclasses
from collections import deque
from typing import Any

import gymnasium as gym
import numpy as np
from numpy.typing import NDArray

from gemkit.data._write import (
    Episode,
    ProgressFn,
    check_writable,
    reference_returns,
    write_dataset,
)
from gemkit.envs import register_robotics
from gemkit.errors import GemkitError

__all__ = [
    "MAZES",
    "MazeExpert",
    "MazeSpec",
    "make_pointmaze",
    "pointmaze_dataset_id",
    "pointmaze_env_specs",
]


@dataclasses.dataclass(frozen=True)
class MazeSpec:
    """One PointMaze layout: gymnasium id stem, evaluation horizon and goal, D4RL's size."""

    env_name: str
    horizon: int
    eval_goal: tuple[int, int]
    default_steps: int


#: D4RL maze2d: goals (6, 6) and (7, 9) for medium/large, horizons 300/600/800, sizes 1M/2M/4M.
MAZES: dict[str, MazeSpec] = {
    "umaze": MazeSpec("UMaze", 300, (1, 1), 1_000_000),
    "medium": MazeSpec("Medium", 600, (6, 6), 2_000_000),
    "large": MazeSpec("Large", 800, (7, 9), 4_000_000),
}


def pointmaze_dataset_id(maze: str, dense: bool = False) -> str:
    """``gemkit/pointmaze-<maze>[-dense]-v0``."""
    return f"gemkit/pointmaze-{maze}{'-dense' if dense else ''}-v0"


def _check_maze(maze: str) -> MazeSpec:
    if maze not in MAZES:
        from gemkit.errors import unknown_name_message

        raise GemkitError(unknown_name_message("maze", maze, MAZES))
    return MAZES[maze]


def pointmaze_env_specs(
    maze: str, dense: bool = False
) -> tuple[gym.envs.registration.EnvSpec, gym.envs.registration.EnvSpec]:
    """``(collection spec, evaluation spec)`` for a maze.

    Collection: continuing task with goal resets. Evaluation: D4RL's fixed goal cell (``"g"`` in
    the map), no goal resets, the D4RL horizon.
    """
    spec = _check_maze(maze)
    register_robotics()
    base = gym.spec(f"PointMaze_{spec.env_name}{'Dense' if dense else ''}-v3")
    maze_map = [list(row) for row in base.kwargs["maze_map"]]
    collect = dataclasses.replace(
        base,
        kwargs={**base.kwargs, "continuing_task": True, "reset_target": True},
        max_episode_steps=spec.horizon,
    )
    r, c = spec.eval_goal
    eval_map: list[list[Any]] = [list(row) for row in maze_map]
    eval_map[r][c] = "g"
    evaluation = dataclasses.replace(
        base,
        kwargs={
            **base.kwargs,
            "maze_map": eval_map,
            "continuing_task": True,
            "reset_target": False,
        },
        max_episode_steps=spec.horizon,
    )
    return collect, evaluation


class _Grid:
    """Shortest-path distances on a maze grid and the continuous <-> cell maps."""

    def __init__(self, maze_map: list[list[Any]], scaling: float = 1.0) -> None:
        self.free = np.array([[c != 1 for c in row] for row in maze_map], dtype=bool)
        self.rows, self.cols = self.free.shape
        self.scaling = scaling
        self.x_center = self.cols / 2 * scaling
        self.y_center = self.rows / 2 * scaling
        self._dist: dict[tuple[int, int], NDArray[np.int64]] = {}

    def cell(self, xy: NDArray[np.floating[Any]]) -> tuple[int, int]:
        r = int(np.floor((self.y_center - xy[1]) / self.scaling))
        c = int(np.floor((xy[0] + self.x_center) / self.scaling))
        return min(max(r, 0), self.rows - 1), min(max(c, 0), self.cols - 1)

    def center(self, rc: tuple[int, int]) -> NDArray[np.float64]:
        return np.array(
            [
                (rc[1] + 0.5) * self.scaling - self.x_center,
                self.y_center - (rc[0] + 0.5) * self.scaling,
            ]
        )

    def distances(self, goal: tuple[int, int]) -> NDArray[np.int64]:
        """Steps from every cell to ``goal`` (value iteration with unit costs = BFS)."""
        if goal not in self._dist:
            dist = np.full(self.free.shape, 10**6, dtype=np.int64)
            dist[goal] = 0
            queue = deque([goal])
            while queue:
                r, c = queue.popleft()
                for dr, dc in ((1, 0), (-1, 0), (0, 1), (0, -1)):
                    nr, nc = r + dr, c + dc
                    if (
                        0 <= nr < self.rows
                        and 0 <= nc < self.cols
                        and self.free[nr, nc]
                        and dist[nr, nc] > dist[r, c] + 1
                    ):
                        dist[nr, nc] = dist[r, c] + 1
                        queue.append((nr, nc))
            self._dist[goal] = dist
        return self._dist[goal]

    def waypoint(
        self, pos: NDArray[np.floating[Any]], goal: NDArray[np.floating[Any]]
    ) -> NDArray[np.float64]:
        """The next point to head for: the centre of the next cell on a shortest path."""
        here, there = self.cell(pos), self.cell(goal)
        if here == there:
            return np.asarray(goal, dtype=np.float64)
        dist = self.distances(there)
        r, c = here
        best = here
        for dr, dc in ((1, 0), (-1, 0), (0, 1), (0, -1)):
            nr, nc = r + dr, c + dc
            if 0 <= nr < self.rows and 0 <= nc < self.cols and dist[nr, nc] < dist[best]:
                best = (nr, nc)
        if best == there:
            return np.asarray(goal, dtype=np.float64)
        return self.center(best)


def _pd(
    pos: NDArray[np.floating[Any]],
    vel: NDArray[np.floating[Any]],
    target: NDArray[np.floating[Any]],
    p_gain: float = 10.0,
    d_gain: float = 1.0,
) -> NDArray[np.float64]:
    return np.clip(p_gain * (target - pos) - d_gain * vel, -1.0, 1.0)


class MazeExpert:
    """The noiseless waypoint + PD controller as a gemkit policy on flattened observations.

    ``states [B, 6]`` are ``(x, y, vx, vy, goal_x, goal_y)`` (``observation`` + ``desired_goal``,
    as :func:`gemkit.data.load` flattens them); returns ``actions [B, 2]``.

    Args:
        maze: ``"umaze"``, ``"medium"`` or ``"large"``.
    """

    def __init__(self, maze: str) -> None:
        collect, _ = pointmaze_env_specs(maze)
        self.grid = _Grid(collect.kwargs["maze_map"])
        self.state_dim = 6

    def action(self, state: NDArray[np.floating[Any]]) -> NDArray[np.float64]:
        """The controller's action for one flattened state ``[6]``."""
        pos, vel, goal = state[0:2], state[2:4], state[4:6]
        return _pd(pos, vel, self.grid.waypoint(pos, goal))

    def __call__(self, states: Any) -> Any:
        """Actions for a batch of states (torch tensors in, torch tensors out)."""
        import torch

        s = states.detach().cpu().double().numpy()
        a = np.stack([self.action(row) for row in s])
        return torch.as_tensor(a, dtype=states.dtype, device=states.device)


def make_pointmaze(
    maze: str = "umaze",
    steps: int | None = None,
    seed: int = 0,
    *,
    dense: bool = False,
    dataset_id: str | None = None,
    action_noise: float = 0.5,
    ref_episodes: int = 100,
    overwrite: bool = False,
    progress: ProgressFn | None = None,
) -> str:
    """Record a PointMaze dataset with the D4RL maze2d recipe and write it to the Minari store.

    Args:
        maze: ``"umaze"``, ``"medium"`` or ``"large"``.
        steps: transitions to record (default: D4RL's size, 1M/2M/4M).
        seed: seeds the environment (starts, goals) and the action noise.
        dense: ``exp(-distance)`` reward instead of the sparse ``distance <= 0.45``.
        dataset_id: Minari id (default :func:`pointmaze_dataset_id`).
        action_noise: std of the Gaussian noise added to the PD action (then clipped to [-1, 1]).
        ref_episodes: evaluation episodes per reference score (random policy and noiseless expert).
        overwrite: replace an existing dataset with the same id.
        progress: ``progress(done_steps, steps)`` callback.

    Returns:
        The dataset id.

    Raises:
        GemkitError: unknown maze or ``steps < 1``.
        DatasetError: the id exists and ``overwrite`` is false.
    """
    spec = _check_maze(maze)
    steps = spec.default_steps if steps is None else int(steps)
    if steps < 1:
        raise GemkitError(f"steps must be >= 1, got {steps}.")
    dataset_id = dataset_id or pointmaze_dataset_id(maze, dense)
    check_writable(dataset_id, overwrite)
    collect_spec, eval_spec = pointmaze_env_specs(maze, dense)
    env: Any = gym.make(collect_spec, disable_env_checker=True).unwrapped
    grid = _Grid(collect_spec.kwargs["maze_map"])
    rng = np.random.default_rng(seed)
    obs, _ = env.reset(seed=int(rng.integers(2**31)))
    episodes: list[Episode] = []
    done = 0
    report_every = max(1, steps // 200)
    while done < steps:
        length = min(spec.horizon, steps - done)
        o = np.empty((length + 1, 4))
        ag = np.empty((length + 1, 2))
        dg = np.empty((length + 1, 2))
        actions = np.empty((length, 2), dtype=np.float32)
        rewards = np.empty(length)
        o[0], ag[0], dg[0] = obs["observation"], obs["achieved_goal"], obs["desired_goal"]
        n = length
        for t in range(length):
            pos, vel, goal = obs["observation"][:2], obs["observation"][2:], obs["desired_goal"]
            a = _pd(pos, vel, grid.waypoint(pos, goal))
            a = np.clip(a + action_noise * rng.standard_normal(2), -1.0, 1.0).astype(np.float32)
            obs, r, _, _, info = env.step(a)
            actions[t] = a
            rewards[t] = r
            o[t + 1], ag[t + 1], dg[t + 1] = (
                obs["observation"],
                obs["achieved_goal"],
                obs["desired_goal"],
            )
            if (done + t + 1) % report_every == 0 and progress is not None:
                progress(done + t + 1, steps)
            if info["success"]:
                n = t + 1
                break
        truncs = np.zeros(n, dtype=bool)
        truncs[-1] = True
        episodes.append(
            Episode(
                {
                    "observation": o[: n + 1],
                    "achieved_goal": ag[: n + 1],
                    "desired_goal": dg[: n + 1],
                },
                actions[:n],
                rewards[:n],
                np.zeros(n, dtype=bool),
                truncs,
            )
        )
        done += n
        # The stream goes on from here; the env has already drawn the next goal if one was hit.
        obs = {**obs, "desired_goal": np.array(env.goal, dtype=np.float64)}
    if progress is not None:
        progress(steps, steps)
    env.close()
    ref_min, ref_max = reference_returns(eval_spec, MazeExpert(maze), ref_episodes, seed)
    write_dataset(
        dataset_id,
        episodes,
        collect_spec,
        eval_env_spec=eval_spec,
        ref_min_score=ref_min,
        ref_max_score=ref_max,
        algorithm_name="D4RL maze2d: grid shortest-path waypoints + PD controller, action noise",
        description=(
            f"gemkit PointMaze {maze} ({'dense' if dense else 'sparse'} reward): {steps} steps, "
            f"random goals, action noise std {action_noise}, seed {seed}."
        ),
        overwrite=overwrite,
    )
    return dataset_id
