"""Writing episodes as a real Minari dataset (needs ``minari[create]``)."""

from __future__ import annotations

import shutil
import warnings
from collections.abc import Callable, Sequence
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from numpy.typing import NDArray

from gemkit.data.minari_io import dataset_exists, dataset_path
from gemkit.envs.rollout import run_episodes
from gemkit.errors import DatasetError

__all__ = [
    "Episode",
    "ProgressFn",
    "check_writable",
    "dataset_info",
    "episode_slices",
    "prepare_write",
    "random_policy",
    "reference_returns",
    "require_minari_create",
    "write_dataset",
]

#: ``progress(done, total)``: called as generation advances (e.g. to drive a progress bar).
ProgressFn = Callable[[int, int], None]


class Episode:
    """One recorded episode: ``T + 1`` observations, ``T`` of everything else."""

    __slots__ = ("actions", "observations", "rewards", "terminations", "truncations")

    def __init__(
        self,
        observations: NDArray[Any] | dict[str, NDArray[Any]],
        actions: NDArray[Any],
        rewards: NDArray[Any],
        terminations: NDArray[Any],
        truncations: NDArray[Any],
    ) -> None:
        self.observations = observations
        self.actions = actions
        self.rewards = rewards
        self.terminations = terminations
        self.truncations = truncations


def episode_slices(ends: NDArray[Any]) -> list[slice]:
    """The rows of each episode of a recorded stream: one ends at every row flagged in ``ends``
    (``[T]`` booleans), and the last one at the stream's end whether flagged or not."""
    n = len(ends)
    stops = np.flatnonzero(ends)
    if len(stops) == 0 or stops[-1] != n - 1:
        stops = np.append(stops, n - 1)
    starts = np.concatenate([[0], stops[:-1] + 1])
    return [slice(int(a), int(b) + 1) for a, b in zip(starts, stops, strict=True)]


def check_writable(dataset_id: str, overwrite: bool) -> None:
    """Fail before recording when ``dataset_id`` exists and may not be replaced.

    Raises:
        DatasetError: the id is malformed, or it exists and ``overwrite`` is false.
    """
    from minari.dataset.minari_dataset import parse_dataset_id

    try:
        parse_dataset_id(dataset_id)
    except ValueError:
        raise DatasetError(
            f"dataset id {dataset_id!r} is malformed: use (namespace/)name-vN with a namespace of "
            "at least two characters, e.g. gemkit/fork-v0 or my-fork-v0."
        ) from None
    if (dataset_exists(dataset_id) or dataset_path(dataset_id).exists()) and not overwrite:
        raise DatasetError(
            f"dataset {dataset_id!r} already exists at {dataset_path(dataset_id)}; pass "
            "--overwrite (overwrite=True) or choose another --id."
        )


def require_minari_create() -> Any:
    """The ``minari`` module with its writing extras, or a one-line error saying how to get them."""
    try:
        import minari
        from minari.data_collector import EpisodeBuffer  # noqa: F401  (needs minari[create])
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise DatasetError(
            f"writing datasets needs `pip install 'minari[create,hdf5]'` ({exc})."
        ) from None
    return minari


def prepare_write(dataset_id: str, overwrite: bool) -> Any:
    """Check that ``dataset_id`` may be written, remove what it replaces; returns ``minari``.

    Raises:
        DatasetError: the id exists and ``overwrite`` is false, or minari[create] is missing.
    """
    minari = require_minari_create()
    check_writable(dataset_id, overwrite)
    if dataset_path(dataset_id).exists():
        shutil.rmtree(dataset_path(dataset_id))
    return minari


def dataset_info(
    *,
    eval_env_spec: gym.envs.registration.EnvSpec | None,
    ref_min_score: float | None,
    ref_max_score: float | None,
    algorithm_name: str,
) -> dict[str, Any]:
    """The metadata keyword arguments gemkit gives Minari's ``create_dataset*`` functions."""
    return {
        "eval_env": eval_env_spec,
        "algorithm_name": algorithm_name,
        "author": "gemkit",
        "code_permalink": "https://github.com/gemkit/gemkit",
        "ref_min_score": ref_min_score,
        "ref_max_score": ref_max_score,
        "requirements": ["gemkit"],
    }


def write_dataset(
    dataset_id: str,
    episodes: Sequence[Episode],
    env_spec: gym.envs.registration.EnvSpec,
    *,
    eval_env_spec: gym.envs.registration.EnvSpec | None = None,
    ref_min_score: float | None = None,
    ref_max_score: float | None = None,
    algorithm_name: str,
    description: str,
    overwrite: bool = False,
) -> None:
    """Write ``episodes`` to the local Minari store with ``minari.create_dataset_from_buffers``.

    Raises:
        DatasetError: the id exists and ``overwrite`` is false, or minari[create] is missing.
    """
    minari = prepare_write(dataset_id, overwrite)
    from minari.data_collector import EpisodeBuffer

    buffers = [
        EpisodeBuffer(
            id=i,
            observations=ep.observations,
            actions=ep.actions,
            rewards=ep.rewards,
            terminations=ep.terminations,
            truncations=ep.truncations,
        )
        for i, ep in enumerate(episodes)
    ]
    info = dataset_info(
        eval_env_spec=eval_env_spec,
        ref_min_score=ref_min_score,
        ref_max_score=ref_max_score,
        algorithm_name=algorithm_name,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        minari.create_dataset_from_buffers(
            dataset_id=dataset_id, buffer=buffers, env=env_spec, description=description, **info
        )


def random_policy(action_low: Any, action_high: Any, seed: int) -> Callable[[Any], Any]:
    """A uniform-random policy ``states [B, S] -> actions [B, A]`` drawn from its own generator."""
    gen = torch.Generator().manual_seed(seed)
    low = torch.as_tensor(np.asarray(action_low, dtype=np.float32).reshape(-1))
    high = torch.as_tensor(np.asarray(action_high, dtype=np.float32).reshape(-1))

    def policy(states: Any) -> Any:
        u = torch.rand(states.shape[0], low.shape[0], generator=gen)
        return low + (high - low) * u

    return policy


def reference_returns(
    spec: gym.envs.registration.EnvSpec,
    expert: Any,
    episodes: int,
    seed: int,
) -> tuple[float, float]:
    """``(random mean return, expert mean return)`` over ``episodes`` episodes each."""
    env = gym.make(spec, disable_env_checker=True)
    space = env.action_space
    env.close()
    assert isinstance(space, gym.spaces.Box)
    rand = run_episodes(random_policy(space.low, space.high, seed), spec, episodes, seed=seed)
    exp = run_episodes(expert, spec, episodes, seed=seed + 1)
    return float(rand.returns.mean()), float(exp.returns.mean())
