"""The synthetic fork dataset of the trainer tests (``synthetic_fork.py``) is what they assume."""

from __future__ import annotations

import math

from synthetic_fork import OBSTACLE_R, STEP, make_fork_transitions


def test_fork_data_is_bimodal_and_mean_action_hits_obstacle() -> None:
    tr, info = make_fork_transitions(n_episodes=100)
    first = info["t"] == 0
    a0 = tr.actions[first]
    routes = info["route"][first]
    assert (a0[routes == -1, 0] < -0.2).float().mean() > 0.9
    assert (a0[routes == 1, 0] > 0.2).float().mean() > 0.9
    # the mean start action flies straight into the obstacle within five steps
    pos = tr.observations[first].mean(0)
    mean_a = a0.mean(0)
    hit = any(float((pos + k * STEP * mean_a).norm()) < OBSTACLE_R for k in range(1, 6))
    assert hit
    assert bool(info["success"][info["route"] != 0].all())
    assert not bool(info["success"][info["route"] == 0].any())
    assert math.isclose(float(tr.rewards.sum()), float((info["route"][first] != 0).sum()))
