"""The fork task: a 2-D point must pass a round obstacle, left or right, to reach a goal.

A small, fast, pure-numpy gymnasium environment. Its demonstrations are truly bimodal (half go
left of the obstacle, half right), so the *mean* demonstrated action drives straight into the
obstacle: the "in-between action" failure that candidate-based selection avoids.

Dynamics (kinematic, ``dt`` folded into ``step_size``)::

    p' = p + step_size * clip(a, -1, 1)      (blocked: p' = p if p' lies inside the obstacle)

- Observation: the position ``[x, y]`` (``float32``), inside the arena ``[-1.5, 1.5]^2``.
- Action: ``Box(-1, 1, (2,))``.
- Start: ``(0, -1 + u)``, ``u ~ U(-start_noise, start_noise)``, on the symmetry axis, so
  neither side is favoured; goal: ``(0, 1)``.
- Obstacle: a disc of radius ``obstacle_radius`` at the origin.
- Reward: ``1`` on reaching the goal (within ``goal_radius``; the episode terminates there),
  ``0`` otherwise. So the return of an episode is its success (0 or 1).
- ``info``: ``success`` (bool), ``collision`` (the move was blocked by the obstacle).
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
from numpy.typing import NDArray

__all__ = ["ForkEnv", "ForkExpert", "fork_expert_action"]

_ARENA = 1.5


class ForkEnv(gym.Env[NDArray[np.float32], NDArray[np.float32]]):
    """The fork task (see the module docstring).

    Args:
        step_size: distance moved per unit action per step.
        obstacle_radius: radius of the disc obstacle at the origin.
        goal_radius: distance to the goal that counts as reaching it.
        start_noise: half-width of the uniform noise on the start's y coordinate.
    """

    metadata: dict[str, Any] = {"render_modes": []}  # noqa: RUF012

    def __init__(
        self,
        step_size: float = 0.1,
        obstacle_radius: float = 0.4,
        goal_radius: float = 0.15,
        start_noise: float = 0.1,
    ) -> None:
        self.step_size = float(step_size)
        self.obstacle_radius = float(obstacle_radius)
        self.goal_radius = float(goal_radius)
        self.start_noise = float(start_noise)
        self.goal = np.array([0.0, 1.0])
        self.start = np.array([0.0, -1.0])
        self.observation_space = gym.spaces.Box(-_ARENA, _ARENA, (2,), np.float32)
        self.action_space = gym.spaces.Box(-1.0, 1.0, (2,), np.float32)
        self._pos = self.start.copy()

    def _obs(self) -> NDArray[np.float32]:
        return self._pos.astype(np.float32)

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[NDArray[np.float32], dict[str, Any]]:
        """Start near ``(0, -1)``; ``options={"start": [x, y]}`` sets the start exactly."""
        super().reset(seed=seed)
        if options is not None and "start" in options:
            self._pos = np.asarray(options["start"], dtype=np.float64).copy()
        else:
            noise = self.np_random.uniform(-self.start_noise, self.start_noise)
            self._pos = self.start + np.array([0.0, noise])
        return self._obs(), {"success": False, "collision": False}

    def step(
        self, action: NDArray[np.float32]
    ) -> tuple[NDArray[np.float32], float, bool, bool, dict[str, Any]]:
        """Move by ``step_size * clip(action)``; blocked moves leave the point in place."""
        a = np.clip(np.asarray(action, dtype=np.float64), -1.0, 1.0)
        new = np.clip(self._pos + self.step_size * a, -_ARENA, _ARENA)
        collision = bool(np.linalg.norm(new) < self.obstacle_radius)
        if not collision:
            self._pos = new
        success = bool(np.linalg.norm(self._pos - self.goal) <= self.goal_radius)
        reward = 1.0 if success else 0.0
        return self._obs(), reward, success, False, {"success": success, "collision": collision}


def fork_expert_action(
    pos: NDArray[np.floating[Any]],
    side: NDArray[np.floating[Any]],
    passed: NDArray[np.bool_],
    lateral: float = 0.65,
) -> tuple[NDArray[np.float64], NDArray[np.bool_]]:
    """The scripted controller, vectorised over ``B`` points.

    Heads for the waypoint ``(side * lateral, 0)`` beside the obstacle, then for the goal.

    Args:
        pos: ``[B, 2]`` positions.
        side: ``[B]`` ``-1`` (pass left) or ``+1`` (pass right).
        passed: ``[B]`` whether each point has already reached its waypoint.
        lateral: ``|x|`` of the waypoints.

    Returns:
        ``([B, 2] unit-speed actions, [B] updated passed flags)``.
    """
    wp = np.stack([side * lateral, np.zeros_like(side)], axis=-1)
    passed = passed | (np.linalg.norm(pos - wp, axis=-1) < 0.2) | (pos[:, 1] > 0.0)
    target = np.where(passed[:, None], np.array([0.0, 1.0]), wp)
    d = target - pos
    a = d / np.maximum(np.linalg.norm(d, axis=-1, keepdims=True), 1e-8)
    return a, passed


class ForkExpert:
    """The scripted fork expert as a gemkit policy ``states [B, 2] -> actions [B, 2]``.

    Each point passes on the side its x-coordinate already leans to (right at exactly 0), so it is
    deterministic and reaches the goal from every start the environment draws.
    """

    def __call__(self, states: Any) -> Any:
        """Actions for a batch of states (torch tensors in, torch tensors out)."""
        import torch

        pos = states.detach().cpu().double().numpy()
        side = np.where(pos[:, 0] < 0.0, -1.0, 1.0)
        passed = pos[:, 1] > 0.0
        a, _ = fork_expert_action(pos, side, passed)
        return torch.as_tensor(a, dtype=states.dtype, device=states.device)
