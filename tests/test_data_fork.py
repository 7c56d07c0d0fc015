"""The fork data really is bimodal, and its mean action drives into the obstacle."""

from __future__ import annotations

import pathlib

import gymnasium as gym
import numpy as np
import torch

from gemkit.data import FORK_DATASET_ID as FORK_ID
from gemkit.data import load
from gemkit.envs import FORK_ENV_ID, ForkExpert
from gemkit.eval import evaluate


def test_actions_near_the_start_have_two_separated_modes(fork_store: pathlib.Path) -> None:
    data = load(FORK_ID)
    near = (data.observations - torch.tensor([0.0, -1.0])).norm(dim=1) < 0.15
    ax = data.actions[near, 0].numpy()
    assert ax.size > 50
    hist, _edges = np.histogram(ax, bins=10, range=(-1.0, 1.0))
    centre = hist[4:6].sum() / ax.size  # |ax| < 0.2
    left, right = (ax < -0.2).mean(), (ax > 0.2).mean()
    assert centre < 0.05, hist
    assert 0.3 < left < 0.7, hist
    assert 0.3 < right < 0.7, hist
    assert ax[ax < 0].mean() < -0.4
    assert ax[ax > 0].mean() > 0.4


def test_mean_action_hits_the_obstacle(fork_store: pathlib.Path) -> None:
    data = load(FORK_ID)
    # The average of the two modes at the start state...
    near = (data.observations - torch.tensor([0.0, -1.0])).norm(dim=1) < 0.15
    mean_action = data.actions[near].mean(0)
    assert abs(float(mean_action[0])) < 0.2
    assert float(mean_action[1]) > 0.5
    # ...drives straight into the obstacle and stays stuck there.
    env = gym.make(FORK_ENV_ID)
    obs, _ = env.reset(seed=0, options={"start": [0.0, -1.0]})
    collided = False
    for _ in range(30):
        obs, _, term, _trunc, info = env.step(mean_action.numpy())
        collided |= info["collision"]
        assert not term
    assert collided
    assert np.linalg.norm(obs) < 0.6
    mean_eval = evaluate(lambda s: mean_action.expand(s.shape[0], 2), FORK_ID, episodes=4, seed=0)
    expert_eval = evaluate(ForkExpert(), FORK_ID, episodes=4, seed=0)
    assert mean_eval.success_rate == 0.0
    assert mean_eval.score_mean is not None
    assert mean_eval.score_mean < 10.0
    assert expert_eval.success_rate == 1.0
    assert expert_eval.score_mean is not None
    assert expert_eval.score_mean > 90.0


def test_behavior_reaches_goal(fork_store: pathlib.Path) -> None:
    data = load(FORK_ID)
    # Nearly every complete episode ends at the goal (terminal), none hits the 100-step limit.
    assert float(data.terminals.sum()) >= 0.95 * data.meta["total_episodes"] - 1
