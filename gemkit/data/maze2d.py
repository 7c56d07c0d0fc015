"""``gemkit/maze2d-<maze>-v1``: D4RL's ``maze2d-*-v1`` recipe, the task of the GEM paper's Table 1.

Re-implemented from D4RL's generation code (``scripts/generation/generate_maze2d_datasets.py``,
``relabel_maze2d_rewards.py``, ``d4rl/pointmaze/waypoint_controller.py``, ``q_iteration.py``,
``gridcraft/grid_env.py``) on :class:`gemkit.envs.maze2d.Maze2dEnv` (D4RL's frame on
gymnasium-robotics' physics). Every quirk of the reference is kept, since the published scores were
measured on data that has them:

- **Planner** (:class:`GridQPlanner`): tabular Q-iteration on the grid of ``(row, col)`` cells,
  five moves ``NOOP, UP (0, -1), DOWN (0, +1), LEFT (-1, 0), RIGHT (+1, 0)`` (a blocked move
  stays), reward 1 for *being* in the target cell, discount 0.99, 50 sweeps from zero; the
  waypoints are a greedy rollout (first best move) of at most 100 cells, each cell's coordinates
  minus ``U(0, 0.2)`` per axis, the target cell exactly.
- **Controller** (:class:`Maze2dController`): ``a = clip(10 (waypoint - xy) - v, -1, 1)``. It
  replans when the *rounded* target moves; it advances to the next waypoint once within 0.1 of
  the current one while moving less than 0.1 per step; it reports ``done`` when within 0.1 of the
  rounded target, moving less than 0.1 per step.
- **Collection**: one env reset, then one continuing stream. Each step the controller's action
  gets ``N(0, 0.5^2)`` noise and is clipped; ``done`` is also raised when the current goal has run
  for the task's horizon (300 / 600 / 800 steps). After a ``done`` step a new target is drawn (a
  free cell uniformly, the goal cell included, ``U(-0.1, 0.1)`` per axis), the env is *not* reset,
  and the observation is *not* advanced: the next row repeats the observation of the ``done`` row
  (the reference loop's ``s`` is only updated when the step was not ``done``). 1M / 2M / 4M steps.
- **Relabelling**: ``reward[t] = 1`` when ``observations[t]`` (the row's own state, not the next
  one: D4RL's off-by-one, D4RL issue #194) is within 0.5 of the maze's ``G`` cell.
- **Flags**: D4RL's published files hold no terminal states and use ``timeouts`` to mark the
  ``done`` rows (D4RL issue #85); gemkit's episodes end at those rows as truncations. An episode's
  last next-observation is the true state after its last step.

Reference scores on two scales (:data:`D4RL_REF_SCORES`, :func:`maze2d_reference_scores`):
D4RL's published ``REF_MIN_SCORE`` / ``REF_MAX_SCORE`` (``d4rl/infos.py``), stored as the
dataset's ``ref_min_score`` / ``ref_max_score`` so normalised scores sit on the paper's scale;
and gemkit's own (the uniform random policy and the noiseless controller, replanned for every
episode), stored beside them as ``gemkit_ref_min_score`` / ``gemkit_ref_max_score``.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
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
from gemkit.envs.maze2d import MAZE2D, Maze2dEnv, check_maze2d, maze2d_env_id
from gemkit.errors import GemkitError

__all__ = [
    "D4RL_REF_SCORES",
    "GridQPlanner",
    "Maze2dController",
    "make_maze2d",
    "maze2d_dataset_id",
    "maze2d_reference_scores",
    "relabel_sparse",
]

#: D4RL's ``REF_MIN_SCORE`` / ``REF_MAX_SCORE`` for ``maze2d-{umaze,medium,large}-v1``
#: (``d4rl/infos.py``, Farama-Foundation/D4RL).
D4RL_REF_SCORES: dict[str, tuple[float, float]] = {
    "umaze": (23.85, 161.86),
    "medium": (13.13, 277.39),
    "large": (6.7, 273.99),
}

#: D4RL gridcraft's moves ``(d_row, d_col)``: NOOP, UP, DOWN, LEFT, RIGHT (argmax tie order).
_MOVES: tuple[tuple[int, int], ...] = ((0, 0), (0, -1), (0, 1), (-1, 0), (1, 0))


def maze2d_dataset_id(maze: str) -> str:
    """``gemkit/maze2d-<maze>-v1``."""
    return f"gemkit/maze2d-{maze}-v1"


class GridQPlanner:
    """D4RL's waypoint planner: Q-iteration on the maze grid, then a greedy rollout.

    Args:
        walls: ``[H, W]`` booleans, ``True`` on walls.
    """

    def __init__(self, walls: NDArray[np.bool_], sweeps: int = 50, discount: float = 0.99):
        self.walls = np.asarray(walls, dtype=bool)
        self.rows, self.cols = self.walls.shape
        self.sweeps, self.discount = sweeps, discount
        n = self.rows * self.cols
        self.next = np.zeros((n, len(_MOVES)), dtype=np.int64)
        for s in range(n):
            r, c = divmod(s, self.cols)
            for m, (dr, dc) in enumerate(_MOVES):
                nr, nc = r + dr, c + dc
                ok = 0 <= nr < self.rows and 0 <= nc < self.cols and not self.walls[nr, nc]
                self.next[s, m] = nr * self.cols + nc if ok else s
        self._q: dict[int, NDArray[np.float64]] = {}

    def index(self, cell: tuple[int, int]) -> int:
        """Flat index of an in-bounds cell (a one-line error otherwise)."""
        r, c = cell
        if not (0 <= r < self.rows and 0 <= c < self.cols):
            raise GemkitError(f"cell {cell} is outside the {self.rows}x{self.cols} maze.")
        return r * self.cols + c

    def q_values(self, target: int) -> NDArray[np.float64]:
        """``Q [cells, 5]`` for a target cell index (cached; deterministic)."""
        if target not in self._q:
            reward = np.zeros(self.rows * self.cols)
            reward[target] = 1.0
            q = np.zeros(self.next.shape)
            for _ in range(self.sweeps):
                v = q.max(axis=1)
                q = reward[:, None] + self.discount * v[self.next]
            self._q[target] = q
        return self._q[target]

    def waypoints(
        self, start: tuple[int, int], target: tuple[int, int], rng: np.random.Generator
    ) -> list[NDArray[np.float64]]:
        """Greedy rollout from ``start`` to ``target`` (at most 100 cells): cell coordinates minus
        ``U(0, 0.2)`` per axis, the target cell exactly."""
        s, g = self.index(start), self.index(target)
        q = self.q_values(g)
        out: list[NDArray[np.float64]] = []
        for _ in range(100):
            s = int(self.next[s, int(np.argmax(q[s]))])
            xy = np.array(divmod(s, self.cols), dtype=np.float64)
            if s != g:
                xy = xy - rng.uniform(size=2) * 0.2
            out.append(xy)
            if s == g:
                break
        return out


class Maze2dController:
    """D4RL's ``WaypointController`` for ``maze2d`` (positions in D4RL's frame).

    Args:
        maze: ``"umaze"``, ``"medium"`` or ``"large"``.
        rng: draws the waypoint offsets.
    """

    def __init__(
        self,
        maze: str,
        rng: np.random.Generator,
        *,
        solve_thresh: float = 0.1,
        vel_thresh: float = 0.1,
        p_gain: float = 10.0,
        d_gain: float = -1.0,
    ) -> None:
        self.planner = GridQPlanner(check_maze2d(maze).walls)
        self.rng = rng
        self.solve_thresh, self.vel_thresh = solve_thresh, vel_thresh
        self.p_gain, self.d_gain = p_gain, d_gain
        self.target = np.full(2, -1000.0)  # D4RL starts from a target no maze has
        self.waypoints: list[NDArray[np.float64]] = []
        self.index = 0
        self.prev_loc = np.zeros(2)

    @staticmethod
    def gridify(xy: NDArray[Any]) -> tuple[int, int]:
        """D4RL's ``gridify_state``: both coordinates rounded (Python's ``round``)."""
        return round(float(xy[0])), round(float(xy[1]))

    def _new_target(self, location: NDArray[Any], target: NDArray[Any]) -> None:
        start, goal = self.gridify(location), self.gridify(target)
        self.index = 0
        self.waypoints = self.planner.waypoints(start, goal, self.rng)
        self.prev_loc = np.array(start, dtype=np.float64)
        self.target = np.array(goal, dtype=np.float64)

    def get_action(
        self, location: NDArray[Any], velocity: NDArray[Any], target: NDArray[Any]
    ) -> tuple[NDArray[np.float64], bool]:
        """``(clipped action, done)`` for a position, velocity and (noisy) target."""
        location = np.asarray(location, dtype=np.float64)
        if np.linalg.norm(self.target - np.array(self.gridify(target))) > 1e-3:
            self._new_target(location, target)
        dist = float(np.linalg.norm(location - self.target))
        moved = float(np.linalg.norm(self.prev_loc - location))
        not_solved = dist >= self.solve_thresh or moved >= self.vel_thresh
        waypoint = self.waypoints[self.index] if not_solved else self.target
        action = self.p_gain * (waypoint - location) + self.d_gain * np.asarray(velocity)
        near = float(np.linalg.norm(location - waypoint)) < self.solve_thresh
        if not_solved and near and moved < self.vel_thresh:
            self.index = min(self.index + 1, len(self.waypoints) - 1)
        self.prev_loc = location
        return np.clip(action, -1.0, 1.0), not not_solved


def relabel_sparse(observations: NDArray[Any], goal: tuple[float, float]) -> NDArray[np.float32]:
    """D4RL's sparse relabelling: ``1`` where ``observations[t, :2]`` is within 0.5 of ``goal``."""
    xy = np.asarray(observations)[:, :2]
    dist = np.linalg.norm(xy - np.asarray(goal, dtype=np.float64), axis=1)
    return (dist <= 0.5).astype(np.float32)


def maze2d_env_specs(maze: str, steps: int) -> tuple[gym.envs.registration.EnvSpec, ...]:
    """``(collection spec, evaluation spec)``: the stream (targets redrawn) and ``maze2d-*-v1``."""
    from gemkit.envs import register_envs

    register_envs()
    evaluation = gym.spec(maze2d_env_id(maze))
    collect = dataclasses.replace(
        evaluation,
        kwargs={**evaluation.kwargs, "reset_target": True},
        max_episode_steps=steps,
    )
    return collect, evaluation


def _mean_return(
    maze: str, act: Callable[[NDArray[Any], int], NDArray[Any]], episodes: int, seed: int
) -> float:
    """Mean return of ``act(obs, episode)`` on ``maze2d-*-v1`` over ``episodes`` resets."""
    env = gym.make(maze2d_env_id(maze), disable_env_checker=True)
    total = 0.0
    for ep in range(episodes):
        obs, _ = env.reset(seed=seed + ep)
        done = False
        while not done:
            obs, r, term, trunc, _ = env.step(act(obs, ep).astype(np.float32))
            total += float(r)
            done = term or trunc
    env.close()
    return total / episodes


def maze2d_reference_scores(
    maze: str, episodes: int = 100, seed: int = 0, *, reuse_controller: bool = False
) -> tuple[float, float]:
    """gemkit's ``(random, expert)`` mean returns on ``maze2d-*-v1``.

    The random policy acts uniformly in ``[-1, 1]^2``; the expert is the noiseless
    :class:`Maze2dController`, a fresh one per episode (it plans from each start). With
    ``reuse_controller`` one controller serves every episode: it never replans after the first
    (the target never moves), which is how D4RL's own expert reference is described; the two
    differ by how much replanning is worth.
    """
    check_maze2d(maze)
    rng = np.random.default_rng(seed)
    ref_min = _mean_return(maze, lambda _o, _e: rng.uniform(-1.0, 1.0, 2), episodes, seed)
    goal = np.asarray(MAZE2D[maze].goal, dtype=np.float64)
    controllers: dict[int, Maze2dController] = {}

    def expert(obs: NDArray[Any], ep: int) -> NDArray[Any]:
        key = 0 if reuse_controller else ep
        if key not in controllers:
            controllers.clear()
            controllers[key] = Maze2dController(maze, np.random.default_rng(seed + 1))
        return controllers[key].get_action(obs[:2], obs[2:4], goal)[0]

    ref_max = _mean_return(maze, expert, episodes, seed + 10_000)
    return ref_min, ref_max


def _record(
    maze: str, steps: int, seed: int, action_noise: float, progress: ProgressFn | None
) -> tuple[NDArray[np.float64], NDArray[np.float32], NDArray[np.bool_], dict[int, Any]]:
    """D4RL's generation loop: rows of ``(s, a, done)`` and the true next state at the ``done``
    rows and the last row (where the next row does not hold it)."""
    spec = MAZE2D[maze]
    env = Maze2dEnv(maze)
    rng = np.random.default_rng(seed)
    controller = Maze2dController(maze, rng)
    env.reset(seed=int(rng.integers(2**31)))
    env.set_target()
    s, _ = env.reset()
    obs = np.empty((steps, 4))
    actions = np.empty((steps, 2), dtype=np.float32)
    dones = np.zeros(steps, dtype=bool)
    done_next: dict[int, Any] = {}
    ts = 0
    report_every = max(1, steps // 200)
    for t in range(steps):
        act, done = controller.get_action(s[:2], s[2:4], env.target)
        act = np.clip(act + action_noise * rng.standard_normal(2), -1.0, 1.0)
        done = done or ts >= spec.horizon
        obs[t], actions[t], dones[t] = s, act, done
        ns, *_ = env.step(act)
        ts += 1
        if done or t == steps - 1:  # the true next state where the rows do not hold it
            done_next[t] = ns
        if done:
            env.set_target()
            ts = 0
        else:
            s = ns
        if progress is not None and (t + 1) % report_every == 0:
            progress(t + 1, steps)
    env.close()
    return obs, actions, dones, done_next


def make_maze2d(
    maze: str = "umaze",
    steps: int | None = None,
    seed: int = 0,
    *,
    dataset_id: str | None = None,
    action_noise: float = 0.5,
    ref_episodes: int = 100,
    overwrite: bool = False,
    progress: ProgressFn | None = None,
) -> str:
    """Record ``gemkit/maze2d-<maze>-v1`` with D4RL's recipe (see the module doc).

    Args:
        maze: ``"umaze"``, ``"medium"`` or ``"large"``.
        steps: transitions (default D4RL's 1M / 2M / 4M).
        seed: seeds the env (start, targets), the action noise and the waypoint offsets.
        dataset_id: Minari id (default :func:`maze2d_dataset_id`).
        action_noise: std of the Gaussian noise on the controller's action (D4RL's ``--noisy``).
        ref_episodes: episodes per gemkit reference score.
        overwrite: replace an existing dataset with the same id.
        progress: ``progress(done_steps, steps)`` callback.

    Returns:
        The dataset id.
    """
    spec = check_maze2d(maze)
    steps = spec.dataset_steps if steps is None else int(steps)
    if steps < 2:
        raise GemkitError(f"steps must be >= 2, got {steps}.")
    dataset_id = dataset_id or maze2d_dataset_id(maze)
    check_writable(dataset_id, overwrite)
    obs, actions, dones, done_next = _record(maze, steps, seed, action_noise, progress)
    rewards = relabel_sparse(obs, spec.goal)
    episodes: list[Episode] = []
    for sl in episode_slices(dones):
        n = sl.stop - sl.start
        truncs = np.zeros(n, dtype=bool)
        truncs[-1] = True
        episodes.append(
            Episode(
                np.concatenate([obs[sl], np.asarray(done_next[sl.stop - 1])[None]]),
                actions[sl],
                rewards[sl],
                np.zeros(n, dtype=bool),
                truncs,
            )
        )
    if progress is not None:
        progress(steps, steps)
    ours = maze2d_reference_scores(maze, ref_episodes, seed)
    collect_spec, eval_spec = maze2d_env_specs(maze, steps)
    d4rl_min, d4rl_max = D4RL_REF_SCORES[maze]
    write_dataset(
        dataset_id,
        episodes,
        collect_spec,
        eval_env_spec=eval_spec,
        ref_min_score=d4rl_min,
        ref_max_score=d4rl_max,
        algorithm_name="D4RL maze2d waypoint controller (Q-iteration planner), noisy",
        description=(
            f"gemkit maze2d-{maze} (D4RL maze2d-{maze}-v1 recipe, sparse reward relabelled to the "
            f"goal cell {spec.goal}): {steps} steps, action noise std {action_noise}, seed {seed}. "
            f"ref_min/max_score are D4RL's published references; gemkit's own (random, "
            f"replanning expert, {ref_episodes} episodes): {ours[0]:.2f}, {ours[1]:.2f}."
        ),
        overwrite=overwrite,
    )
    _add_metadata(dataset_id, {"gemkit_ref_min_score": ours[0], "gemkit_ref_max_score": ours[1]})
    return dataset_id


def _add_metadata(dataset_id: str, extra: dict[str, Any]) -> None:
    """Add keys to a written dataset's ``metadata.json`` (Minari keeps unknown keys)."""
    from gemkit.data.minari_io import dataset_path

    path = dataset_path(dataset_id) / "data" / "metadata.json"
    meta = json.loads(path.read_text())
    meta.update(extra)
    path.write_text(json.dumps(meta))
