"""Record the paths (observations) a policy or selector takes, for trajectory plots."""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
import torch

from gemkit.data.minari_io import flatten_observation
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
    """Run ``episodes`` episodes one at a time and return each one's observations.

    Args:
        policy_or_selector: a policy ``[1, S] -> [1, A]`` or a selector (``select`` method;
            called with ``generator=`` seeded by ``seed`` and the step index ``t``).
        target: env id or dataset id (its evaluation env).
        episodes: number of episodes.
        seed: episode ``i`` resets with seed ``seed + i``.
        max_episode_steps: override the env's time limit.

    Returns:
        ``[(observations [T + 1, S], success)]`` per episode; ``success`` is whether the env
        reported ``info["success"]`` at some step.
    """
    spec, _ = resolve_env_spec(target)
    kwargs: dict[str, Any] = {}
    if max_episode_steps is not None:
        kwargs["max_episode_steps"] = max_episode_steps
    env = gym.make(spec, disable_env_checker=True, **kwargs)
    space = env.action_space
    assert isinstance(space, gym.spaces.Box)
    gen = torch.Generator().manual_seed(seed)
    is_selector = hasattr(policy_or_selector, "select")
    out: list[tuple[np.ndarray, bool]] = []
    try:
        for i in range(episodes):
            obs, _ = env.reset(seed=seed + i)
            states = [flatten_observation(obs).reshape(-1)]
            success = False
            t = 0
            while True:
                s = torch.as_tensor(states[-1], dtype=torch.float32).unsqueeze(0)
                with torch.no_grad():
                    if is_selector:
                        a = policy_or_selector.select(s, generator=gen, t=t).action
                    else:
                        a = policy_or_selector(s)
                act = np.asarray(torch.as_tensor(a).detach().cpu().double().numpy()).reshape(
                    space.shape
                )
                act = np.clip(act, space.low, space.high).astype(space.dtype)
                obs, _, terminated, truncated, info = env.step(act)
                states.append(flatten_observation(obs).reshape(-1))
                success = success or bool(info.get("success", False))
                t += 1
                if terminated or truncated:
                    break
            out.append((np.stack(states).astype(np.float64), success))
    finally:
        env.close()
    return out
