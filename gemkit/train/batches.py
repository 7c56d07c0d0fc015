"""The dataset as training reads it: normalised once, packed so that a minibatch is one gather,
and fingerprinted so that a checkpoint knows which data it was trained on."""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING

import torch
from torch import Tensor

from gemkit.data.transitions import Transitions
from gemkit.errors import DatasetError

if TYPE_CHECKING:
    from gemkit.train.config import TrainConfig

__all__ = [
    "IndexStream",
    "PackedTransitions",
    "dataset_fingerprint",
    "pack_for",
    "reward_multiplier",
]


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
        return self.gather(idx.to(self.device))

    def gather(self, idx: Tensor) -> dict[str, Tensor]:
        """The minibatch of rows ``idx [B]`` (int64, on :attr:`device`), as :meth:`sample`."""
        rows = self._data.index_select(0, idx)
        obs, act, rew, nxt, term = rows.split(self._splits, dim=1)
        return {
            "observations": obs,
            "actions": act,
            "rewards": rew.squeeze(1),
            "next_observations": nxt,
            "terminals": term.squeeze(1),
        }


def pack_for(transitions: Transitions, config: TrainConfig) -> PackedTransitions:
    """``transitions`` packed as a :class:`~gemkit.train.trainer.Trainer` with ``config``
    reads them."""
    return PackedTransitions(
        transitions,
        config.normalize_obs,
        torch.device(config.device),
        reward_multiplier(transitions, config.reward_scale),
    )


class IndexStream:
    """Minibatch indices drawn ahead, ``chunk`` minibatches at a time, into one device buffer.

    A captured CUDA graph cannot draw from a CPU generator, so the indices of the next
    ``chunk`` minibatches are drawn at once and copied to :attr:`buffer` (``[chunk, B]``
    int64 on ``device``, always the same tensor, so a graph can read its rows). torch's CPU
    generator fills a tensor element by element, so these are the same numbers, in the same
    order, as ``chunk`` draws of one minibatch each (:meth:`PackedTransitions.sample`), and
    :meth:`state` gives the generator's state as if the minibatches handed out so far had been
    drawn one by one: a checkpoint taken mid-chunk resumes on the same indices.

    Args:
        generator: the run's CPU generator (drawn from only here while the stream is used).
        n: number of transitions (indices are in ``[0, n)``).
        batch_size: indices per minibatch.
        chunk: minibatches per draw.
        device: where :attr:`buffer` lives.
    """

    def __init__(
        self, generator: torch.Generator, n: int, batch_size: int, chunk: int, device: torch.device
    ) -> None:
        if chunk < 1 or batch_size < 1 or n < 1:
            raise ValueError("n, batch_size and chunk must all be >= 1.")
        self.generator, self.n, self.batch_size, self.chunk = generator, n, batch_size, chunk
        self.buffer = torch.zeros(chunk, batch_size, dtype=torch.int64, device=device)
        self.pos = chunk  #: rows of :attr:`buffer` handed out (``chunk``: none left)
        self._drawn_from: Tensor | None = None  # the generator state the buffer was drawn from

    def take(self, k: int) -> tuple[int, int]:
        """Hand out up to ``k`` consecutive minibatches: ``(first row, how many)``.

        Fewer than ``k`` (never 0) when the buffer's end comes first; a spent buffer is
        refilled (stream-ordered on a GPU: work queued before still reads the old rows).
        """
        if k < 1:
            raise ValueError(f"k must be >= 1, got {k}.")
        if self.pos >= self.chunk:
            self._drawn_from = self.generator.get_state()
            draw = torch.randint(0, self.n, (self.chunk, self.batch_size), generator=self.generator)
            self.buffer.copy_(draw)
            self.pos = 0
        start, got = self.pos, min(k, self.chunk - self.pos)
        self.pos += got
        return start, got

    def untake(self, k: int) -> None:
        """Give back the last ``k`` minibatches handed out (not trained on): the next
        :meth:`take` hands them out again."""
        if not 0 <= k <= self.pos:
            raise ValueError(f"can give back 0..{self.pos} minibatches, not {k}.")
        self.pos -= k

    def state(self) -> Tensor:
        """The generator's state after the minibatches handed out so far (one by one)."""
        if self._drawn_from is None or self.pos >= self.chunk:
            return self.generator.get_state()
        g = torch.Generator()
        g.set_state(self._drawn_from)
        torch.randint(0, self.n, (self.pos * self.batch_size,), generator=g)
        return g.get_state()

    def set_state(self, state: Tensor) -> None:
        """Restore the generator (a checkpoint's) and drop the rows drawn ahead."""
        self.generator.set_state(state)
        self.pos, self._drawn_from = self.chunk, None
