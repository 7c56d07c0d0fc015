"""gemkit's gymnasium environments, wrappers and the one episode runner (:func:`run_episodes`).

Importing this module registers ``gemkit/Fork-v0`` (the fork task, 100 steps per episode) and
``gemkit/Maze2d-{umaze,medium,large}-v1`` (D4RL's ``maze2d-*-v1`` evaluation task, 300 / 600 / 800
steps) with gymnasium, so ``gymnasium.make("gemkit/Fork-v0")`` works.
"""

from __future__ import annotations

import gymnasium as gym

from gemkit.envs._robotics import register_robotics
from gemkit.envs.fork import ForkEnv, ForkExpert
from gemkit.envs.rollout import Rollouts, run_episodes
from gemkit.envs.wrappers import MassScale

__all__ = [
    "FORK_ENV_ID",
    "ForkEnv",
    "ForkExpert",
    "MassScale",
    "Rollouts",
    "register_envs",
    "register_robotics",
    "run_episodes",
]

FORK_ENV_ID = "gemkit/Fork-v0"


def register_envs() -> None:
    """Register gemkit's environments with gymnasium (idempotent)."""
    from gemkit.envs.maze2d import MAZE2D, maze2d_env_id

    if FORK_ENV_ID not in gym.registry:
        gym.register(
            id=FORK_ENV_ID,
            entry_point="gemkit.envs.fork:ForkEnv",
            max_episode_steps=100,
        )
    for maze, spec in MAZE2D.items():
        if maze2d_env_id(maze) not in gym.registry:
            gym.register(
                id=maze2d_env_id(maze),
                entry_point="gemkit.envs.maze2d:Maze2dEnv",
                max_episode_steps=spec.horizon,
                kwargs={"maze": maze},
            )


register_envs()
