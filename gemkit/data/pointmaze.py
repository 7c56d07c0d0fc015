"""``gemkit/pointmaze-<maze>-v1``: Minari's ``D4RL/pointmaze/*-v2`` recipe on PointMaze.

The behaviour follows Farama's D4RL pointmaze generator (``minari-dataset-generation-scripts``,
``scripts/pointmaze``), re-implemented here:

The planners and the controller live in :mod:`gemkit.data.maze_control` (re-exported here).

- **Planner** (:class:`QIterationPlanner`): value iteration on the maze grid (reward 1 for
  entering the goal cell, discount 0.99, 50 sweeps); the waypoints are the greedy path of cells
  from the agent's cell to the goal cell, ties broken in a fixed action order.
- **Controller** (:class:`WaypointController`): a PD law ``a = P (target - xy) + D v`` with
  ``P = 10``, ``D = -1``. The plan is rebuilt whenever the desired goal moves (by more than
  1e-3). The controller heads for the centre of the first waypoint cell; it switches to the next
  waypoint only once within 0.1 of the current one, and aims each later waypoint at the cell
  centre minus ``U(0, 0.2)`` per coordinate (the goal itself is aimed at exactly).
- **Collection**: one continuing stream (``continuing_task=True, reset_target=True``, no time
  limit) in which every success draws a new goal; Gaussian noise of std 0.5 is added to the
  controller's action, then clipped to ``[-1, 1]``. An episode ends (a truncation, never a
  terminal) at each success, and the last one at the end of the stream. 1,000,000 steps for
  every maze, as Minari's cards.
- **Evaluation env and reference scores**: D4RL's fixed goal cell (``"g"``), random start cells,
  no goal resets, the registered horizon (300/600/800). ``ref_min_score`` is the mean return of
  the uniform random policy and ``ref_max_score`` that of the noiseless controller, 100 episodes
  each, computed with Minari's own :func:`minari.utils.get_average_reference_score` (as Minari
  does when a dataset is created with an ``eval_env`` and an ``expert_policy``).
"""

from __future__ import annotations

import dataclasses
from typing import Any

import gymnasium as gym
import numpy as np
from numpy.typing import NDArray

from gemkit.data._write import (
    Episode,
    ProgressFn,
    check_writable,
    episode_slices,
    write_dataset,
)
from gemkit.data.maze_control import PLANNERS, DFSPlanner, QIterationPlanner, WaypointController
from gemkit.envs import register_robotics
from gemkit.errors import GemkitError

__all__ = [
    "MAZES",
    "PLANNERS",
    "DFSPlanner",
    "MazeExpert",
    "MazeSpec",
    "QIterationPlanner",
    "WaypointController",
    "make_pointmaze",
    "pointmaze_dataset_id",
    "pointmaze_env_specs",
    "pointmaze_reference_scores",
]


@dataclasses.dataclass(frozen=True)
class MazeSpec:
    """One PointMaze layout: gymnasium id stem, evaluation horizon and goal, dataset size."""

    env_name: str
    horizon: int
    eval_goal: tuple[int, int]
    default_steps: int


#: Minari's ``D4RL/pointmaze/*-v2``: goal cells (1, 1), (6, 6), (7, 9); horizons 300/600/800;
#: 1,000,000 steps each.
MAZES: dict[str, MazeSpec] = {
    "umaze": MazeSpec("UMaze", 300, (1, 1), 1_000_000),
    "medium": MazeSpec("Medium", 600, (6, 6), 1_000_000),
    "large": MazeSpec("Large", 800, (7, 9), 1_000_000),
}


def pointmaze_dataset_id(maze: str, dense: bool = False) -> str:
    """``gemkit/pointmaze-<maze>[-dense]-v1``."""
    return f"gemkit/pointmaze-{maze}{'-dense' if dense else ''}-v1"


def _check_maze(maze: str) -> MazeSpec:
    if maze not in MAZES:
        from gemkit.errors import unknown_name_message

        raise GemkitError(unknown_name_message("maze", maze, MAZES))
    return MAZES[maze]


def pointmaze_env_specs(
    maze: str, dense: bool = False
) -> tuple[gym.envs.registration.EnvSpec, gym.envs.registration.EnvSpec]:
    """``(collection spec, evaluation spec)`` for a maze.

    Collection: continuing task with goal resets and no time limit (episodes are split at each
    success). Evaluation: D4RL's fixed goal cell (``"g"`` in the map), no goal resets, the
    registered horizon.
    """
    spec = _check_maze(maze)
    register_robotics()
    base = gym.spec(f"PointMaze_{spec.env_name}{'Dense' if dense else ''}-v3")
    maze_map = [list(row) for row in base.kwargs["maze_map"]]
    collect = dataclasses.replace(
        base,
        kwargs={**base.kwargs, "continuing_task": True, "reset_target": True},
        max_episode_steps=1_000_000,
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


class MazeExpert:
    """The noiseless controller as a gemkit policy on flattened observations.

    ``states [B, 6]`` are ``(x, y, vx, vy, goal_x, goal_y)`` (``observation`` + ``desired_goal``,
    as :func:`gemkit.data.load` flattens them); returns clipped ``actions [B, 2]``. Row ``i``
    keeps its own :class:`WaypointController` (``gemkit.envs.run_episodes`` keeps env ``i`` in row
    ``i``); a row's plan is rebuilt whenever its goal moves, as in the reference controller.

    Args:
        maze: ``"umaze"``, ``"medium"`` or ``"large"``.
        seed: seeds the waypoint offsets.
    """

    def __init__(self, maze: str, seed: int = 0) -> None:
        collect, _ = pointmaze_env_specs(maze)
        self.maze_map = collect.kwargs["maze_map"]
        self.rng = np.random.default_rng(seed)
        self.controllers: list[WaypointController] = []
        self.state_dim = 6

    def action(self, state: NDArray[np.floating[Any]], row: int = 0) -> NDArray[np.float64]:
        """The controller's clipped action for one flattened state ``[6]`` of batch row ``row``."""
        while len(self.controllers) <= row:
            self.controllers.append(WaypointController(self.maze_map, self.rng))
        a = self.controllers[row](state[0:2], state[2:4], state[4:6])
        return np.clip(a, -1.0, 1.0)

    def __call__(self, states: Any) -> Any:
        """Actions for a batch of states (torch tensors in, torch tensors out)."""
        import torch

        s = states.detach().cpu().double().numpy()
        a = np.stack([self.action(row, i) for i, row in enumerate(s)])
        return torch.as_tensor(a, dtype=states.dtype, device=states.device)


def pointmaze_reference_scores(
    maze: str, dense: bool = False, episodes: int = 100, seed: int = 0
) -> tuple[float, float]:
    """``(ref_min_score, ref_max_score)`` as Minari computes them for ``D4RL/pointmaze``.

    The mean return of ``episodes`` episodes of the evaluation env under the uniform random
    policy and under the noiseless :class:`WaypointController`, each through Minari's
    :func:`minari.utils.get_average_reference_score` (one env, reset with seed 123, then
    continuing its RNG).
    """
    from minari.utils import get_average_reference_score

    _, eval_spec = pointmaze_env_specs(maze, dense)
    env = gym.make(eval_spec, disable_env_checker=True)
    env.action_space.seed(seed)
    ref_min = get_average_reference_score(env, lambda _: env.action_space.sample(), episodes)
    controller = WaypointController(eval_spec.kwargs["maze_map"], np.random.default_rng(seed))
    ref_max = get_average_reference_score(env, controller.act, episodes)
    env.close()
    return float(ref_min), float(ref_max)


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
    """Record a PointMaze dataset with Minari's D4RL pointmaze recipe (see the module doc).

    Args:
        maze: ``"umaze"``, ``"medium"`` or ``"large"``.
        steps: transitions to record (default 1,000,000, as ``D4RL/pointmaze/*-v2``).
        seed: seeds the environment (start, goals), the action noise and the waypoint offsets.
        dense: ``exp(-distance)`` reward instead of the sparse ``distance <= 0.45``.
        dataset_id: Minari id (default :func:`pointmaze_dataset_id`).
        action_noise: std of the Gaussian noise added to the controller's action (then clipped).
        ref_episodes: episodes per reference score (random policy and noiseless controller).
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
    rng = np.random.default_rng(seed)
    controller = WaypointController(collect_spec.kwargs["maze_map"], rng)
    obs, _ = env.reset(seed=int(rng.integers(2**31)))
    keys = ("observation", "achieved_goal", "desired_goal")
    stream = {k: np.empty((steps + 1, 4 if k == "observation" else 2)) for k in keys}
    actions = np.empty((steps, 2), dtype=np.float32)
    rewards = np.empty(steps)
    success = np.zeros(steps, dtype=bool)
    for k in keys:
        stream[k][0] = obs[k]
    report_every = max(1, steps // 200)
    for t in range(steps):
        a = controller.act(obs) + action_noise * rng.standard_normal(2)
        a = np.clip(a, -1.0, 1.0).astype(np.float32)
        obs, r, _, _, info = env.step(a)
        actions[t], rewards[t], success[t] = a, r, bool(info["success"])
        for k in keys:
            stream[k][t + 1] = obs[k]
        if progress is not None and (t + 1) % report_every == 0:
            progress(t + 1, steps)
    env.close()
    # Episodes end at every success (the next one starts from the same observation) and at the
    # end of the stream; all are truncations, the task never terminates.
    episodes: list[Episode] = []
    for sl in episode_slices(success):
        n = sl.stop - sl.start
        truncs = np.zeros(n, dtype=bool)
        truncs[-1] = True
        episodes.append(
            Episode(
                {k: stream[k][sl.start : sl.stop + 1] for k in keys},
                actions[sl],
                rewards[sl],
                np.zeros(n, dtype=bool),
                truncs,
            )
        )
    if progress is not None:
        progress(steps, steps)
    ref_min, ref_max = pointmaze_reference_scores(maze, dense, ref_episodes, seed)
    write_dataset(
        dataset_id,
        episodes,
        collect_spec,
        eval_env_spec=eval_spec,
        ref_min_score=ref_min,
        ref_max_score=ref_max,
        algorithm_name="QIteration waypoints + PD controller (Minari D4RL pointmaze recipe)",
        description=(
            f"gemkit PointMaze {maze} ({'dense' if dense else 'sparse'} reward): {steps} steps, "
            f"continuing task with a new goal at each success, action noise std {action_noise}, "
            f"seed {seed}."
        ),
        overwrite=overwrite,
    )
    return dataset_id
