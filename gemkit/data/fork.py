"""``gemkit/fork-v0``: bimodal demonstrations on the fork task (gemkit's quickstart dataset)."""

from __future__ import annotations

import numpy as np

from gemkit.data._write import (
    Episode,
    ProgressFn,
    check_writable,
    reference_returns,
    write_dataset,
)
from gemkit.envs import FORK_ENV_ID, ForkExpert
from gemkit.envs.fork import ForkEnv, fork_expert_action
from gemkit.errors import GemkitError

__all__ = ["FORK_DATASET_ID", "make_fork"]

FORK_DATASET_ID = "gemkit/fork-v0"


def make_fork(
    steps: int = 50_000,
    seed: int = 0,
    *,
    dataset_id: str = FORK_DATASET_ID,
    action_noise: float = 0.1,
    ref_episodes: int = 100,
    overwrite: bool = False,
    progress: ProgressFn | None = None,
) -> str:
    """Record the fork dataset and write it to the local Minari store.

    Each episode picks a side uniformly at random (left or right of the obstacle) and follows the
    scripted controller (:func:`~gemkit.envs.fork.fork_expert_action`) with Gaussian action noise,
    so half the demonstrations go left and half right and the mean action at the start points
    straight into the obstacle. Episodes end at the goal (terminal) or after 100 steps (time-out);
    the last episode is cut at ``steps`` (time-out).

    Reference scores: ``ref_min_score`` is a uniform-random policy's mean return, and
    ``ref_max_score`` the noiseless scripted expert's (:class:`~gemkit.envs.ForkExpert`), each over
    ``ref_episodes`` episodes of ``gemkit/Fork-v0``.

    Args:
        steps: number of transitions to record.
        seed: seeds the environment and the side/noise draws.
        dataset_id: Minari id to write.
        action_noise: std of the Gaussian noise added to the controller's unit actions.
        ref_episodes: episodes per reference score.
        overwrite: replace an existing dataset with the same id.
        progress: ``progress(done_steps, steps)`` callback.

    Returns:
        ``dataset_id``.

    Raises:
        GemkitError: ``steps < 1``.
        DatasetError: the id exists and ``overwrite`` is false.
    """
    if steps < 1:
        raise GemkitError(f"steps must be >= 1, got {steps}.")
    import gymnasium as gym

    check_writable(dataset_id, overwrite)

    spec = gym.spec(FORK_ENV_ID)
    horizon = int(spec.max_episode_steps or 100)
    env = ForkEnv(**spec.kwargs)
    rng = np.random.default_rng(seed)
    episodes: list[Episode] = []
    done = 0
    first = True
    while done < steps:
        obs, _ = env.reset(seed=int(rng.integers(2**31)) if first else None)
        first = False
        side = np.array([rng.choice([-1.0, 1.0])])
        passed = np.zeros(1, dtype=bool)
        length = min(horizon, steps - done)
        observations = np.empty((length + 1, 2), dtype=np.float32)
        actions = np.empty((length, 2), dtype=np.float32)
        rewards = np.zeros(length)
        terms = np.zeros(length, dtype=bool)
        truncs = np.zeros(length, dtype=bool)
        observations[0] = obs
        t = 0
        for t in range(length):
            a, passed = fork_expert_action(obs[None].astype(np.float64), side, passed)
            act = np.clip(a[0] + action_noise * rng.standard_normal(2), -1.0, 1.0)
            obs, r, term, _, _ = env.step(act.astype(np.float32))
            actions[t] = act
            observations[t + 1] = obs
            rewards[t] = r
            terms[t] = term
            if term:
                break
        n = t + 1
        truncs[n - 1] = not terms[n - 1]
        episodes.append(
            Episode(observations[: n + 1], actions[:n], rewards[:n], terms[:n], truncs[:n])
        )
        done += n
        if progress is not None:
            progress(done, steps)
    ref_min, ref_max = reference_returns(spec, ForkExpert(), ref_episodes, seed)
    write_dataset(
        dataset_id,
        episodes,
        spec,
        ref_min_score=ref_min,
        ref_max_score=ref_max,
        algorithm_name="scripted fork controller, random side per episode, Gaussian action noise",
        description=(
            f"gemkit fork task: {steps} steps, bimodal demonstrations (left/right of the "
            f"obstacle), action noise std {action_noise}, seed {seed}."
        ),
        overwrite=overwrite,
    )
    return dataset_id
