"""Bridges from gemkit's :class:`Transitions` to other libraries' dataset types.

d3rlpy is an optional dependency, imported only when a bridge is called.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray

from gemkit.data.transitions import Transitions
from gemkit.errors import GemkitError

__all__ = ["episode_bounds", "to_d3rlpy"]


def episode_bounds(transitions: Transitions) -> list[tuple[int, int]]:
    """``[start, end)`` row ranges of the contiguous pieces of ``transitions``.

    A piece ends where an episode ends (terminal or time-out), where the next row does not
    continue it (``next_observations[t] != observations[t + 1]``) and at the buffer's end.
    """
    ends = np.flatnonzero(~transitions.continues().numpy()) + 1
    starts = np.concatenate([[0], ends])
    stops = np.concatenate([ends, [len(transitions)]])
    return [(int(a), int(b)) for a, b in zip(starts, stops, strict=True)]


def _require_d3rlpy() -> Any:
    try:
        import d3rlpy
    except ImportError:
        raise GemkitError(
            "d3rlpy is not installed; install it with 'pip install --no-deps d3rlpy' plus its "
            "runtime deps (see docs/wrap-a-critic.md)."
        ) from None
    return d3rlpy


def to_d3rlpy(transitions: Transitions) -> Any:
    """A d3rlpy ``ReplayBuffer`` holding exactly the transitions of ``transitions``.

    d3rlpy stores episodes as state sequences and takes the next observation of step ``t`` from
    step ``t + 1``; an episode that ends without a terminal (a time-out) therefore yields one
    transition fewer than it has steps: a naive conversion drops the last transition of every
    time-out episode (in D4RL-style mazes, split at each success, that is the rewarded one).
    Here every piece that is not terminal gets its final next observation appended as one more
    step (zero action, zero reward) that d3rlpy never samples as a transition, so observations,
    actions, rewards, next observations and terminals all survive exactly.

    Args:
        transitions: gemkit's transitions (e.g. from :func:`gemkit.data.load`).

    Returns:
        ``d3rlpy.dataset.ReplayBuffer`` with an infinite buffer, one episode per piece.

    Raises:
        GemkitError: d3rlpy is not installed.
    """
    d3rlpy = _require_d3rlpy()
    obs = transitions.observations.numpy()
    act = transitions.actions.numpy()
    rew = transitions.rewards.numpy().reshape(-1, 1)
    nxt = transitions.next_observations.numpy()
    term = transitions.terminals.numpy() > 0
    episodes = []
    for a, b in episode_bounds(transitions):
        terminated = bool(term[b - 1])
        o: NDArray[np.float32] = obs[a:b]
        u: NDArray[np.float32] = act[a:b]
        r: NDArray[np.float32] = rew[a:b]
        if not terminated:
            o = np.concatenate([o, nxt[b - 1 : b]])
            u = np.concatenate([u, np.zeros_like(u[:1])])
            r = np.concatenate([r, np.zeros_like(r[:1])])
        episodes.append(
            d3rlpy.dataset.Episode(observations=o, actions=u, rewards=r, terminated=terminated)
        )
    return d3rlpy.dataset.ReplayBuffer(
        d3rlpy.dataset.InfiniteBuffer(),
        episodes=episodes,
        action_space=d3rlpy.constants.ActionSpace.CONTINUOUS,
        action_size=transitions.action_dim,
    )
