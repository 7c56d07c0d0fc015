"""The dataset as training reads it: normalised once, packed so that a minibatch is one gather,
and fingerprinted so that a checkpoint knows which data it was trained on."""

from __future__ import annotations

import hashlib

import torch
from torch import Tensor

from gemkit.data.transitions import Transitions
from gemkit.errors import DatasetError

__all__ = ["PackedTransitions", "dataset_fingerprint", "reward_multiplier"]


def dataset_fingerprint(transitions: Transitions) -> str:
    """SHA-256 over the transition tensors (identifies the data a checkpoint was trained on)."""
    h = hashlib.sha256()
    for name in ("observations", "actions", "rewards", "next_observations", "terminals"):
        t = getattr(transitions, name).detach().to("cpu", torch.float32).contiguous()
        h.update(name.encode())
        h.update(str(list(t.shape)).encode())
        h.update(t.numpy().tobytes())
    return h.hexdigest()


#: ``return_range`` rescales rewards so that the dataset's episode returns span this much
RETURN_RANGE = 1000.0


def reward_multiplier(transitions: Transitions, mode: str) -> float:
    """The factor the critic's rewards are multiplied by (:attr:`TrainConfig.reward_scale`).

    ``"none"`` is 1; ``"return_range"`` is ``1000 / (max - min)`` over the dataset's episode
    returns (:meth:`Transitions.episode_returns`), IQL's recipe for D4RL locomotion.

    Raises:
        DatasetError: ``return_range`` on data whose episodes all have the same return.
        ValueError: an unknown mode.
    """
    if mode == "none":
        return 1.0
    if mode != "return_range":
        raise ValueError(f"reward_scale must be one of none, return_range; got {mode!r}.")
    returns = transitions.episode_returns()
    spread = float(returns.max() - returns.min()) if len(returns) else 0.0
    if not spread > 0:
        raise DatasetError(
            f"reward_scale=return_range needs episodes with different returns; this dataset's "
            f"{len(returns)} episode(s) all return {float(returns[0]) if len(returns) else 0:g}."
            " Use reward_scale=none."
        )
    return RETURN_RANGE / spread


class PackedTransitions:
    """``transitions`` on ``device``: observations normalised once, every field in one tensor.

    Args:
        transitions: the offline dataset.
        normalize: standardise observations with the dataset's ``obs_mean``/``obs_std``
            (otherwise mean 0, std 1).
        device: where the packed tensor lives.
        reward_scale: multiplies every reward (:func:`reward_multiplier`).

    Attributes:
        obs_mean, obs_std: ``[S]`` the normalisation used (CPU).
        state_dim, action_dim: the dataset's sizes.
        fingerprint: :func:`dataset_fingerprint` of ``transitions``.

    Raises:
        DatasetError: some ``obs_std`` is not positive.
    """

    def __init__(
        self,
        transitions: Transitions,
        normalize: bool,
        device: torch.device,
        reward_scale: float = 1.0,
    ) -> None:
        s_dim, a_dim = transitions.state_dim, transitions.action_dim
        if normalize:
            mean = transitions.obs_mean.detach().cpu().float().reshape(s_dim)
            std = transitions.obs_std.detach().cpu().float().reshape(s_dim)
        else:
            mean, std = torch.zeros(s_dim), torch.ones(s_dim)
        if not bool((std > 0).all()):
            raise DatasetError("obs_std must be > 0 in every dim to normalise observations.")
        self.obs_mean, self.obs_std = mean, std
        self.state_dim, self.action_dim = s_dim, a_dim
        self.device = device
        obs = self.normalize(transitions.observations)
        nxt = self.normalize(transitions.next_observations)
        act = transitions.actions.detach().cpu().float()
        rew = transitions.rewards.detach().cpu().float().reshape(-1, 1) * reward_scale
        self.reward_scale = reward_scale
        term = transitions.terminals.detach().cpu().float().reshape(-1, 1)
        self._splits = (s_dim, a_dim, 1, s_dim, 1)
        self._data = torch.cat([obs, act, rew, nxt, term], dim=1).to(device)
        self.n_transitions = len(transitions)
        self.fingerprint = dataset_fingerprint(transitions)

    def normalize(self, observations: Tensor) -> Tensor:
        """``[T, S]`` raw observations as the networks see them (float32, CPU)."""
        return (observations.detach().cpu().float() - self.obs_mean) / self.obs_std

    def sample(self, batch_size: int, generator: torch.Generator) -> dict[str, Tensor]:
        """A minibatch of ``batch_size`` normalised transitions, indices drawn from
        ``generator``: ``observations [B, S]``, ``actions [B, A]``, ``rewards [B]``,
        ``next_observations [B, S]``, ``terminals [B]``."""
        idx = torch.randint(0, self.n_transitions, (batch_size,), generator=generator)
        rows = self._data.index_select(0, idx.to(self.device))
        obs, act, rew, nxt, term = rows.split(self._splits, dim=1)
        return {
            "observations": obs,
            "actions": act,
            "rewards": rew.squeeze(1),
            "next_observations": nxt,
            "terminals": term.squeeze(1),
        }
