"""Flat observations: how gemkit turns Box and Dict-of-Box observations into ``[..., S]`` arrays.

The environments, the episode runner and the dataset loader all flatten the same way, so a state
seen in evaluation has the layout of a state read from a dataset.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import gymnasium as gym
import numpy as np
from numpy.typing import NDArray

from gemkit.errors import DatasetError

__all__ = ["DICT_OBS_KEYS", "dict_obs_keys", "flatten_observation", "flatten_space"]

#: Keys of a dict observation that gemkit keeps, in this order (gymnasium-robotics' mazes:
#: position and velocity, then the goal). ``achieved_goal`` is the position again and is dropped.
DICT_OBS_KEYS: tuple[str, ...] = ("observation", "desired_goal")


def flatten_space(space: gym.Space[Any]) -> gym.spaces.Box:
    """The flat ``Box`` that :func:`flatten_observation` maps ``space`` into.

    Raises:
        DatasetError: a space gemkit cannot flatten (not a Box or a Dict of Boxes).
    """
    if isinstance(space, gym.spaces.Box):
        low, high = (np.asarray(b, dtype=np.float32).reshape(-1) for b in (space.low, space.high))
        return gym.spaces.Box(low, high, dtype=np.float32)
    if isinstance(space, gym.spaces.Dict):
        keys = dict_obs_keys(space.spaces)
        parts = [space.spaces[k] for k in keys]
        if not all(isinstance(p, gym.spaces.Box) for p in parts):
            raise DatasetError(f"dict observation {space} holds non-Box entries; cannot flatten.")
        low = np.concatenate([np.asarray(p.low).reshape(-1) for p in parts])  # type: ignore[attr-defined]
        high = np.concatenate([np.asarray(p.high).reshape(-1) for p in parts])  # type: ignore[attr-defined]
        return gym.spaces.Box(low.astype(np.float32), high.astype(np.float32), dtype=np.float32)
    raise DatasetError(f"observation space {space} is not supported (Box or Dict of Boxes only).")


def dict_obs_keys(d: Mapping[str, Any]) -> list[str]:
    """The keys of a dict observation that gemkit keeps, in the order it concatenates them."""
    keys = [k for k in DICT_OBS_KEYS if k in d]
    return keys if "observation" in d else sorted(d)


def flatten_observation(obs: Any) -> NDArray[np.float32]:
    """Flatten one observation, or a batch or episode of them (leading dims kept).

    A dict observation becomes ``observation`` then ``desired_goal`` concatenated on the last
    axis (position, velocity, goal: 6-D for PointMaze, where D4RL's maze2d is 4-D without the
    goal); a dict without ``observation`` concatenates all its keys in sorted order. Arrays are
    flattened past their leading axis only when they are
    batches of vectors already, so ``[T, S]`` stays ``[T, S]``.
    """
    if isinstance(obs, Mapping):
        parts = [np.asarray(obs[k], dtype=np.float32) for k in dict_obs_keys(obs)]
        return np.concatenate(parts, axis=-1)
    return np.asarray(obs, dtype=np.float32)
