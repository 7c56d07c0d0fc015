"""The scripted PointMaze expert of Minari's D4RL pointmaze recipe: grid planners (value
iteration, depth-first search) and the waypoint-following PD controller
(:mod:`gemkit.data.pointmaze` records datasets with them)."""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray

from gemkit.errors import GemkitError

__all__ = ["PLANNERS", "DFSPlanner", "QIterationPlanner", "WaypointController"]

#: Grid moves ``(d_row, d_col)`` in the planner's tie-breaking order.
_MOVES: tuple[tuple[int, int], ...] = ((0, 1), (0, -1), (-1, 0), (1, 0))


class QIterationPlanner:
    """Waypoints on a maze grid by value iteration (D4RL's and Minari's ``QIteration``).

    A move into a wall (or off the map) leaves no successor; entering the goal cell pays 1.
    ``50`` sweeps of ``Q(s, m) = r(s, m) + 0.99 max_m' Q(s', m')`` make the greedy move
    (first best in :data:`_MOVES` order) follow a shortest path.

    Args:
        maze_map: rows of cells, ``1`` for a wall.
    """

    def __init__(self, maze_map: list[list[Any]], sweeps: int = 50, discount: float = 0.99):
        self.free = np.array([[c != 1 for c in row] for row in maze_map], dtype=bool)
        self.rows, self.cols = self.free.shape
        self.sweeps, self.discount = sweeps, discount
        n = self.rows * self.cols
        self._next = np.zeros((n, len(_MOVES)), dtype=np.int64)
        self._valid = np.zeros((n, len(_MOVES)), dtype=bool)
        for s in range(n):
            r, c = divmod(s, self.cols)
            for m, (dr, dc) in enumerate(_MOVES):
                nr, nc = r + dr, c + dc
                inside = 0 <= nr < self.rows and 0 <= nc < self.cols
                self._next[s, m] = nr * self.cols + nc if inside else s
                self._valid[s, m] = inside and bool(self.free[nr, nc])
        self._q: dict[tuple[int, int], NDArray[np.float64]] = {}

    def q_values(self, goal: tuple[int, int]) -> NDArray[np.float64]:
        """``Q [cells, 4]`` for ``goal`` (cached)."""
        if goal not in self._q:
            g = goal[0] * self.cols + goal[1]
            reward = (self._next == g).astype(np.float64)
            q = np.zeros_like(reward)
            for _ in range(self.sweeps):
                v = q.max(axis=1)
                q = reward + self.discount * np.where(self._valid, v[self._next], 0.0)
            self._q[goal] = q
        return self._q[goal]

    def plan(self, start: tuple[int, int], goal: tuple[int, int]) -> dict[tuple[int, int], Any]:
        """``{cell: next cell}`` along the greedy path from ``start`` until it enters ``goal``.

        From the goal cell itself the path steps out and back in (as the reference planner).
        """
        q = self.q_values(goal)
        s = start[0] * self.cols + start[1]
        g = goal[0] * self.cols + goal[1]
        path: dict[tuple[int, int], Any] = {}
        for _ in range(self.rows * self.cols + 1):
            nxt = int(self._next[s, int(np.argmax(q[s]))])
            path[divmod(s, self.cols)] = divmod(nxt, self.cols)
            if nxt == g:
                return path
            s = nxt
        raise GemkitError(f"no path from cell {start} to cell {goal} in this maze.")


class DFSPlanner:
    """Waypoints by depth-first search (the planner Minari's pointmaze script actually runs).

    ``WaypointController`` in Minari's generator defaults to ``maze_solver="DFS"`` and the script
    does not override it (its ``--maze-solver QIteration`` only names the algorithm in the
    metadata). Neighbours are pushed in :data:`_MOVES` order onto a stack, so the path is the
    first one found, not the shortest one.
    """

    def __init__(self, maze_map: list[list[Any]]) -> None:
        self.free = np.array([[c != 1 for c in row] for row in maze_map], dtype=bool)
        self.rows, self.cols = self.free.shape

    def _valid(self, cell: tuple[int, int]) -> bool:
        r, c = cell
        return 0 <= r < self.rows and 0 <= c < self.cols and bool(self.free[r, c])

    def plan(self, start: tuple[int, int], goal: tuple[int, int]) -> dict[tuple[int, int], Any]:
        """``{cell: next cell}`` from ``start`` to ``goal`` (empty when they are the same)."""
        frontier, explored = [start], {start}
        parent: dict[tuple[int, int], tuple[int, int]] = {}
        while frontier:
            cell = frontier.pop()
            if cell == goal:
                break
            for dr, dc in _MOVES:
                nxt = (cell[0] + dr, cell[1] + dc)
                if self._valid(nxt) and nxt not in explored:
                    explored.add(nxt)
                    frontier.append(nxt)
                    parent[nxt] = cell
        if goal != start and goal not in parent:
            raise GemkitError(f"no path from cell {start} to cell {goal} in this maze.")
        path: dict[tuple[int, int], Any] = {}
        cell = goal
        while cell != start:
            path[parent[cell]] = cell
            cell = parent[cell]
        return path


PLANNERS: dict[str, type[QIterationPlanner] | type[DFSPlanner]] = {
    "dfs": DFSPlanner,
    "qiteration": QIterationPlanner,
}


class WaypointController:
    """The waypoint-following PD controller of Minari's D4RL pointmaze datasets.

    Args:
        maze_map: the maze's map (rows of cells).
        rng: draws the waypoint offsets (``U(0, 0.2)`` per coordinate).
        planner: ``"dfs"`` (what Minari's datasets were made with) or ``"qiteration"``.
        scaling: the maze's cell size (1 for PointMaze).
        p_gain, d_gain: ``a = p_gain (target - xy) + d_gain * v`` (10, -1).
        threshold: distance to a waypoint at which the next one is taken (0.1).
    """

    def __init__(
        self,
        maze_map: list[list[Any]],
        rng: np.random.Generator,
        *,
        planner: str = "dfs",
        scaling: float = 1.0,
        p_gain: float = 10.0,
        d_gain: float = -1.0,
        threshold: float = 0.1,
    ) -> None:
        if planner not in PLANNERS:
            from gemkit.errors import unknown_name_message

            raise GemkitError(unknown_name_message("planner", planner, PLANNERS))
        self.planner = PLANNERS[planner](maze_map)
        self.rng = rng
        self.scaling = scaling
        self.x_center = self.planner.cols / 2 * scaling
        self.y_center = self.planner.rows / 2 * scaling
        self.p_gain, self.d_gain, self.threshold = p_gain, d_gain, threshold
        self.goal_xy: NDArray[np.float64] = np.full(2, np.inf)
        self.goal_cell: tuple[int, int] = (-1, -1)
        self.path: dict[tuple[int, int], Any] | None = None
        self.target_cell: tuple[int, int] = (-1, -1)
        self.target_xy: NDArray[np.float64] = np.zeros(2)

    def cell(self, xy: NDArray[np.floating[Any]]) -> tuple[int, int]:
        """The ``(row, col)`` of a position (as ``Maze.cell_xy_to_rowcol``)."""
        r = int(np.floor((self.y_center - xy[1]) / self.scaling))
        c = int(np.floor((xy[0] + self.x_center) / self.scaling))
        return r, c

    def center(self, rc: tuple[int, int]) -> NDArray[np.float64]:
        """The centre of a cell (as ``Maze.cell_rowcol_to_xy``)."""
        return np.array(
            [
                (rc[1] + 0.5) * self.scaling - self.x_center,
                self.y_center - (rc[0] + 0.5) * self.scaling,
            ]
        )

    def __call__(
        self,
        xy: NDArray[np.floating[Any]],
        velocity: NDArray[np.floating[Any]],
        goal: NDArray[np.floating[Any]],
    ) -> NDArray[np.float64]:
        """The (unclipped) action for position ``xy``, ``velocity`` and desired ``goal``."""
        goal = np.asarray(goal, dtype=np.float64)
        if self.path is None or np.linalg.norm(self.goal_xy - goal) > 1e-3:
            here = self.cell(xy)
            self.goal_cell = self.cell(goal)
            self.goal_xy = np.array(goal, dtype=np.float64)
            self.path = self.planner.plan(here, self.goal_cell)
            if self.path:
                self.target_cell = self.path[here]
                self.target_xy = self.center(self.target_cell)
            else:  # already in the goal cell: head for the goal itself
                self.target_cell = self.goal_cell
                self.target_xy = self.goal_xy.copy()
        dist = float(np.linalg.norm(self.target_xy - xy))
        if dist <= self.threshold and self.target_cell != self.goal_cell:
            self.target_cell = self.path[self.target_cell]
            if self.target_cell == self.goal_cell:
                self.target_xy = self.goal_xy.copy()
            else:
                self.target_xy = self.center(self.target_cell) - self.rng.uniform(size=2) * 0.2
        return self.p_gain * (self.target_xy - xy) + self.d_gain * np.asarray(velocity)

    def act(self, obs: dict[str, NDArray[Any]]) -> NDArray[np.float64]:
        """The action for a PointMaze dict observation."""
        return self(obs["achieved_goal"], obs["observation"][2:4], obs["desired_goal"])
