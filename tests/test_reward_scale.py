"""Reward scaling for the critic (TrainConfig.reward_scale), against plain-loop references."""

from __future__ import annotations

import attrs
import numpy as np
import pytest
import torch

from gemkit.errors import DatasetError
from gemkit.train import TrainConfig, Trainer
from gemkit.train.batches import reward_multiplier
from gemkit.train.config import ConfigError


def loop_episode_returns(t) -> list[float]:
    """Sum rewards row by row; a new episode starts after a terminal, a time-out or a jump."""
    returns, acc = [], 0.0
    for i in range(len(t)):
        acc += float(t.rewards[i])
        last = i == len(t) - 1
        ended = bool(t.terminals[i] > 0 or t.timeouts[i] > 0)
        jump = not last and not bool((t.next_observations[i] == t.observations[i + 1]).all())
        if last or ended or jump:
            returns.append(acc)
            acc = 0.0
    return returns


def with_rewards(t, seed: int = 0):
    """The fork data with random rewards (its own are sparse; every episode must differ)."""
    g = torch.Generator().manual_seed(seed)
    return attrs.evolve(t, rewards=torch.rand(len(t), generator=g) * 3.0)


def test_episode_returns_match_a_plain_loop(fork_transitions) -> None:
    t = with_rewards(fork_transitions)
    got = t.episode_returns()
    want = loop_episode_returns(t)
    assert got.dtype == torch.float64 and len(got) == len(want) > 1
    np.testing.assert_allclose(got.numpy(), want, rtol=1e-6)


def test_multiplier_is_1000_over_the_return_range(fork_transitions) -> None:
    t = with_rewards(fork_transitions)
    want = loop_episode_returns(t)
    assert reward_multiplier(t, "none") == 1.0
    assert reward_multiplier(t, "return_range") == pytest.approx(1000.0 / (max(want) - min(want)))
    with pytest.raises(ValueError, match="none, return_range"):
        reward_multiplier(t, "bogus")


def test_equal_returns_are_a_one_line_dataset_error(fork_transitions) -> None:
    t = attrs.evolve(fork_transitions, rewards=torch.zeros(len(fork_transitions)))
    with pytest.raises(DatasetError, match="reward_scale=none") as err:
        reward_multiplier(t, "return_range")
    assert "\n" not in str(err.value)


def test_trainer_feeds_the_critic_scaled_rewards_and_records_the_factor(fork_transitions) -> None:
    t = with_rewards(fork_transitions)
    cfg = TrainConfig(n_critics=2, hidden=(16, 16), reward_scale="return_range")
    plain = Trainer(t, attrs.evolve(cfg, reward_scale="none"))
    scaled = Trainer(t, cfg)
    factor = reward_multiplier(t, "return_range")
    g1, g2 = torch.Generator().manual_seed(3), torch.Generator().manual_seed(3)
    a, b = plain.data.sample(64, g1), scaled.data.sample(64, g2)
    torch.testing.assert_close(b["rewards"], a["rewards"] * factor)
    assert torch.equal(a["observations"], b["observations"])
    assert scaled.meta()["reward_scale"] == pytest.approx(factor)
    assert plain.meta()["reward_scale"] == 1.0


def test_unknown_reward_scale_is_a_one_line_config_error() -> None:
    with pytest.raises(ConfigError, match="return_range") as err:
        TrainConfig.from_dict({**TrainConfig().to_dict(), "reward_scale": "bogus"})
    assert "\n" not in str(err.value)
