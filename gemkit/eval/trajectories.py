"""Record the paths (observations) a policy or selector takes, for trajectory plots."""

from __future__ import annotations

from typing import Any

import numpy as np

from gemkit.envs.rollout import run_episodes
from gemkit.eval.evaluate import resolve_env_spec

__all__ = ["Path2D", "rollout_paths"]

Path2D = np.ndarray
"""``[T + 1, S]`` observations of one episode (first row: the reset observation)."""


def rollout_paths(
    policy_or_selector: Any,
    target: Any,
    episodes: int = 5,
    seed: int = 0,
    *,
    max_episode_steps: int | None = None,
) -> list[tuple[np.ndarray, bool]]:
    """Run ``episodes`` episodes, one per environment, and return each one's observations.

    Args:
        policy_or_selector: a policy ``[B, S] -> [B, A]`` or a selector (``select`` method;
            see :func:`gemkit.envs.rollout.run_episodes`).
        target: env id or dataset id (its evaluation env).
        episodes: number of episodes; episode ``i`` runs in env ``i``, reset with seed
            ``seed + i``.
        seed: seed of the environments and of a selector's generator.
        max_episode_steps: override the env's time limit.

    Returns:
        ``[(observations [T + 1, S], success)]`` per episode; ``success`` is whether the env
        reported ``info["success"]`` at some step.
    """
    spec, _ = resolve_env_spec(target)
    run = run_episodes(
        policy_or_selector,
        spec,
        episodes,
        seed,
        num_envs=episodes,
        max_episode_steps=max_episode_steps,
        record_observations=True,
    )
    assert run.observations is not None
    return list(zip(run.observations, (bool(s) for s in run.successes), strict=True))
