"""Transition tensors, the one format the trainer reads."""

from __future__ import annotations

from typing import Any

import attrs
import torch
from torch import Tensor

from gemkit.errors import DatasetError

__all__ = ["Transitions"]


@attrs.frozen
class Transitions:
    """A flat buffer of ``T`` transitions.

    Attributes:
        observations: ``[T, S]`` float32 (dict observations already flattened).
        actions: ``[T, A]`` float32.
        rewards: ``[T]`` float32.
        next_observations: ``[T, S]`` float32.
        terminals: ``[T]`` float32 in {0, 1}: the episode ended in a terminal state.
        timeouts: ``[T]`` float32 in {0, 1}: the episode was truncated here.
        action_low: ``[A]`` lower bound of the action box.
        action_high: ``[A]`` upper bound of the action box.
        obs_mean: ``[S]`` observation mean (for normalisation).
        obs_std: ``[S]`` observation std, clamped at 1e-3.
        meta: dataset id, env id, reference scores, ...
    """

    observations: Tensor
    actions: Tensor
    rewards: Tensor
    next_observations: Tensor
    terminals: Tensor
    timeouts: Tensor
    action_low: Tensor
    action_high: Tensor
    obs_mean: Tensor
    obs_std: Tensor
    meta: dict[str, Any] = attrs.field(factory=dict)

    def __attrs_post_init__(self) -> None:
        t = self.observations.shape[0]
        if t == 0:
            raise DatasetError("the dataset holds no transitions.")
        for name in ("actions", "rewards", "next_observations", "terminals", "timeouts"):
            if getattr(self, name).shape[0] != t:
                raise DatasetError(
                    f"{name} has {getattr(self, name).shape[0]} rows but observations has {t}."
                )

    def __len__(self) -> int:
        return int(self.observations.shape[0])

    @property
    def state_dim(self) -> int:
        """``S``."""
        return int(self.observations.shape[1])

    @property
    def action_dim(self) -> int:
        """``A``."""
        return int(self.actions.shape[1])

    def continues(self) -> Tensor:
        """``[T - 1]`` bool: row ``t + 1`` continues row ``t``'s episode (no terminal or time-out
        at ``t``, and ``next_observations[t] == observations[t + 1]``)."""
        ended = (self.terminals[:-1] + self.timeouts[:-1]) > 0
        same = (self.next_observations[:-1] == self.observations[1:]).all(-1)
        return ~ended & same

    def episode_returns(self) -> Tensor:
        """``[n_episodes]`` float64: the undiscounted return of every episode, in order.

        Episodes are the runs of rows that :meth:`continues` joins; a last episode cut off by the
        end of the data counts as one (D4RL's convention for its return-range statistics).
        """
        if len(self) == 0:
            return torch.zeros(0, dtype=torch.float64)
        starts = torch.ones(len(self), dtype=torch.long)
        starts[1:] = (~self.continues()).long()
        episode = torch.cumsum(starts, 0) - 1  # [T] episode index of every row
        returns = torch.zeros(int(episode[-1]) + 1, dtype=torch.float64)
        return returns.index_add_(0, episode.cpu(), self.rewards.detach().cpu().double())

    def sample(self, batch_size: int, generator: torch.Generator) -> dict[str, Tensor]:
        """A uniform minibatch (with replacement), drawn only from ``generator``."""
        idx = torch.randint(0, len(self), (batch_size,), generator=generator)
        return {
            "observations": self.observations[idx],
            "actions": self.actions[idx],
            "rewards": self.rewards[idx],
            "next_observations": self.next_observations[idx],
            "terminals": self.terminals[idx],
        }

    def to(self, device: torch.device | str) -> Transitions:
        """A copy with every tensor on ``device``."""
        changes = {
            f.name: getattr(self, f.name).to(device)
            for f in attrs.fields(Transitions)
            if isinstance(getattr(self, f.name), Tensor)
        }
        return attrs.evolve(self, **changes)
