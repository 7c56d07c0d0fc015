"""``gemkit/Maze2d-<maze>-v1``: D4RL's ``maze2d-*-v1`` task on gymnasium-robotics' PointMaze.

D4RL's ``MazeEnv`` (``d4rl/pointmaze/maze_model.py``) and gymnasium-robotics' ``PointEnv`` build the
same MuJoCo model: a sphere of radius 0.1 (density 1000) on two slide joints, damping 1, motors of
gear 100 with controls clipped to ``[-1, 1]``, Euler integration at a 0.01 s timestep, one
frame per step, the velocity clipped to ``[-5, 5]`` before each step, unit wall blocks. They
differ only in the frame they report positions in:

- D4RL's position is the slide joints' ``qpos``, and its grid is indexed ``(row, col)`` of the
  maze string: the particle's body sits at world ``(1.2, 1.2)`` and wall ``(r, c)`` at world
  ``(r + 1, c + 1)``, so cell ``(r, c)`` spans ``qpos`` ``[r - 0.7, r + 0.3] x [c - 0.7, c + 0.3]``
  (its centre is ``(r - 0.2, c - 0.2)``: the 0.2 offset is D4RL's).
- gymnasium-robotics centres the maze: cell ``(r, c)`` is centred at
  ``x = c + 0.5 - W / 2``, ``y = H / 2 - r - 0.5`` (``W`` columns, ``H`` rows).

:class:`Maze2dEnv` runs gymnasium-robotics' model and reports everything in D4RL's frame
(``d_x = H / 2 - 0.7 - y``, ``d_y = x + W / 2 - 0.7``; a rotation by 90 degrees plus a shift, so
the dynamics of the isotropic point mass are the same), so observations, goals and actions have
D4RL's meaning: ``observation = (qpos_x, qpos_y, qvel_x, qvel_y)`` (4-D, no goal), the sparse
reward is ``1`` when the position after the step is within 0.5 of the target, no step
terminates, and :meth:`Maze2dEnv.reset` draws D4RL's start: a free cell uniformly (the goal cell
included), ``U(-0.1, 0.1)`` on each coordinate, velocity ``N(0, 0.1^2)``.
"""

from __future__ import annotations

import os
from typing import Any

import gymnasium as gym
import numpy as np
from numpy.typing import NDArray

from gemkit.errors import GemkitError

__all__ = ["MAZE2D", "Maze2dEnv", "Maze2dSpec", "maze2d_env_id"]


class Maze2dSpec:
    """One D4RL maze2d layout: map rows (``#`` wall, ``O`` free, ``G`` the evaluation goal)."""

    def __init__(self, rows: tuple[str, ...], horizon: int, dataset_steps: int) -> None:
        self.rows = rows
        self.horizon = horizon
        self.dataset_steps = dataset_steps

    @property
    def walls(self) -> NDArray[np.bool_]:
        """``[H, W]`` booleans, ``True`` on walls."""
        return np.array([[ch == "#" for ch in row] for row in self.rows])

    @property
    def goal(self) -> tuple[int, int]:
        """The ``(row, col)`` of the ``G`` cell (D4RL's fixed evaluation target)."""
        for r, row in enumerate(self.rows):
            if "G" in row:
                return r, row.index("G")
        raise GemkitError("maze has no goal cell")  # pragma: no cover - the tables below have one

    @property
    def free_cells(self) -> list[tuple[int, int]]:
        """D4RL's ``empty_and_goal_locations``: the free cells sorted, then the goal cell."""
        empty = sorted(
            (r, c) for r, row in enumerate(self.rows) for c, ch in enumerate(row) if ch == "O"
        )
        return [*empty, self.goal]


#: D4RL's ``U_MAZE``, ``MEDIUM_MAZE``, ``LARGE_MAZE`` (``d4rl/pointmaze/maze_model.py``); the
#: horizons of ``maze2d-*-v1`` (300 / 600 / 800) and the datasets' sizes (1M / 2M / 4M).
MAZE2D: dict[str, Maze2dSpec] = {
    "umaze": Maze2dSpec(("#####", "#GOO#", "###O#", "#OOO#", "#####"), 300, 1_000_000),
    "medium": Maze2dSpec(
        ("########", "#OO##OO#", "#OO#OOO#", "##OOO###", "#OO#OOO#", "#O#OO#O#", "#OOO#OG#",
         "########"),
        600,
        2_000_000,
    ),
    "large": Maze2dSpec(
        ("############", "#OOOO#OOOOO#", "#O##O#O#O#O#", "#OOOOOO#OOO#", "#O####O###O#",
         "#OO#O#OOOOO#", "##O#O#O#O###", "#OO#OOO#OGO#", "############"),
        800,
        4_000_000,
    ),
}  # fmt: skip


def maze2d_env_id(maze: str) -> str:
    """``gemkit/Maze2d-<maze>-v1`` (registered by :func:`gemkit.envs.register_envs`)."""
    return f"gemkit/Maze2d-{maze}-v1"


def check_maze2d(maze: str) -> Maze2dSpec:
    """The layout of ``maze``, or a one-line error listing the valid ones."""
    if maze not in MAZE2D:
        from gemkit.errors import unknown_name_message

        raise GemkitError(unknown_name_message("maze2d maze", maze, MAZE2D))
    return MAZE2D[maze]


class Maze2dEnv(gym.Env[NDArray[np.float64], NDArray[np.float32]]):
    """D4RL's ``MazeEnv`` (sparse reward) on gymnasium-robotics' point-mass model.

    Args:
        maze: ``"umaze"``, ``"medium"`` or ``"large"``.
        target: the target position in D4RL's frame; default the ``G`` cell exactly, as
            ``maze2d-*-v1`` evaluates.
        reset_target: draw a new target (as :meth:`set_target`) at every reset (D4RL's flag;
            ``False`` for evaluation).
    """

    metadata: dict[str, Any] = {"render_modes": []}  # noqa: RUF012 - gymnasium's convention

    def __init__(
        self,
        maze: str = "umaze",
        target: tuple[float, float] | None = None,
        reset_target: bool = False,
    ) -> None:
        from gemkit.envs._robotics import register_robotics

        register_robotics()  # imports gymnasium-robotics quietly (its notice stays off the output)
        import gymnasium_robotics.envs.maze as maze_pkg
        from gymnasium_robotics.envs.maze.maze_v4 import Maze
        from gymnasium_robotics.envs.maze.point import PointEnv

        self.spec_ = check_maze2d(maze)
        self.maze = maze
        walls = self.spec_.walls
        self.rows, self.cols = walls.shape
        xml = os.path.join(os.path.dirname(maze_pkg.__file__), "../assets/point/point.xml")
        maze_map = [[1 if w else 0 for w in row] for row in walls]
        _, self._xml_path = Maze.make_maze(xml, maze_map, 1.0, 0.4)
        self.point = PointEnv(xml_file=self._xml_path)
        self.free_cells = self.spec_.free_cells
        self.reset_target = reset_target
        goal = self.spec_.goal
        self.target = np.array(target if target is not None else goal, dtype=np.float64)
        self.observation_space = gym.spaces.Box(-np.inf, np.inf, (4,), np.float64)
        self.action_space = gym.spaces.Box(-1.0, 1.0, (2,), np.float32)

    # -- frames -------------------------------------------------------------------------------
    def to_d4rl(self, xy: NDArray[Any]) -> NDArray[np.float64]:
        """gymnasium-robotics world ``(x, y)`` -> D4RL ``qpos``."""
        x, y = np.asarray(xy, dtype=np.float64)[..., 0], np.asarray(xy, dtype=np.float64)[..., 1]
        return np.stack([self.rows / 2 - 0.7 - y, x + self.cols / 2 - 0.7], axis=-1)

    def from_d4rl(self, q: NDArray[Any]) -> NDArray[np.float64]:
        """D4RL ``qpos`` -> gymnasium-robotics world ``(x, y)``."""
        d = np.asarray(q, dtype=np.float64)
        return np.stack([d[..., 1] - self.cols / 2 + 0.7, self.rows / 2 - 0.7 - d[..., 0]], axis=-1)

    @staticmethod
    def vel_to_d4rl(v: NDArray[Any]) -> NDArray[np.float64]:
        """World velocity -> D4RL ``qvel`` (the rotation's linear part)."""
        v = np.asarray(v, dtype=np.float64)
        return np.stack([-v[..., 1], v[..., 0]], axis=-1)

    @staticmethod
    def vel_from_d4rl(v: NDArray[Any]) -> NDArray[np.float64]:
        """D4RL ``qvel`` (or an action) -> world axes."""
        v = np.asarray(v, dtype=np.float64)
        return np.stack([v[..., 1], -v[..., 0]], axis=-1)

    # -- D4RL's MazeEnv -----------------------------------------------------------------------
    def _obs(self) -> NDArray[np.float64]:
        data = self.point.data
        return np.concatenate([self.to_d4rl(data.qpos[:2]), self.vel_to_d4rl(data.qvel[:2])])

    def set_state(self, qpos: NDArray[Any], qvel: NDArray[Any]) -> None:
        """Place the particle at D4RL ``qpos`` with D4RL ``qvel``."""
        self.point.set_state(self.from_d4rl(qpos), self.vel_from_d4rl(qvel))

    def set_target(self, target: NDArray[Any] | None = None) -> None:
        """D4RL's ``set_target``: a free cell uniformly plus ``U(-0.1, 0.1)``, or ``target``."""
        if target is None:
            cell = self.free_cells[int(self.np_random.integers(len(self.free_cells)))]
            target = np.asarray(cell, dtype=np.float64) + self.np_random.uniform(-0.1, 0.1, 2)
        self.target = np.asarray(target, dtype=np.float64).copy()

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[NDArray[np.float64], dict[str, Any]]:
        """D4RL's ``reset_model``: a free cell (the goal's included) + ``U(-0.1, 0.1)``, velocity
        ``N(0, 0.1^2)``; ``options={"qpos": ..., "qvel": ...}`` places the particle exactly."""
        super().reset(seed=seed)
        if options and "qpos" in options:
            qpos = np.asarray(options["qpos"], dtype=np.float64)
            qvel = np.asarray(options.get("qvel", np.zeros(2)), dtype=np.float64)
        else:
            cell = self.free_cells[int(self.np_random.integers(len(self.free_cells)))]
            qpos = np.asarray(cell, dtype=np.float64) + self.np_random.uniform(-0.1, 0.1, 2)
            qvel = self.np_random.standard_normal(2) * 0.1
        self.point.reset(seed=seed)
        self.set_state(qpos, qvel)
        if self.reset_target:
            self.set_target()
        return self._obs(), {"target": self.target.copy()}

    def step(
        self, action: NDArray[Any]
    ) -> tuple[NDArray[np.float64], float, bool, bool, dict[str, Any]]:
        """One step: D4RL's action axes, sparse reward on the next position, never terminal."""
        a = np.clip(np.asarray(action, dtype=np.float64).reshape(2), -1.0, 1.0)
        self.point.step(self.vel_from_d4rl(a))  # clips the velocity, then simulates
        obs = self._obs()
        success = bool(np.linalg.norm(obs[:2] - self.target) <= 0.5)
        return obs, float(success), False, False, {"success": success}

    def close(self) -> None:
        """Close the MuJoCo env and remove its temporary model file."""
        self.point.close()
        if os.path.exists(self._xml_path):
            os.remove(self._xml_path)
