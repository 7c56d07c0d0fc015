"""A small synthetic fork dataset for the trainer tests (independent of gemkit.data).

A helper module (not a test module): the session fixture ``fork_transitions`` in ``conftest.py``
and the tests that need other sizes or seeds call :func:`make_fork_transitions`.

The agent starts below a round obstacle and must reach the goal line above it. Steps move it by
``0.25 * a`` with ``a`` in ``[-1, 1]^2``. The data holds three behaviours: around the obstacle on
the left (40 %), on the right (40 %) and straight up into the obstacle (20 %). Reaching the goal
gives reward 1 and ends the episode; touching the obstacle ends it with reward 0. So at the
start states the dataset's actions are multimodal, and their mean points into the obstacle.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import torch

from gemkit.data.transitions import Transitions

STEP = 0.25
OBSTACLE_R = 0.35
GOAL_Y = 1.0
START = (0.0, -1.0)


def _policy_action(pos: torch.Tensor, route: int, stage: int) -> torch.Tensor:
    """Unit-speed action of route -1 (left), +1 (right) or 0 (straight) at ``pos``."""
    if route == 0 or stage == 1:
        target = torch.tensor([0.0, GOAL_Y + 0.3])
    else:
        target = torch.tensor([0.75 * route, 0.0])
    d = target - pos
    return d / d.norm().clamp_min(1e-6)


def make_fork_transitions(
    n_episodes: int = 300, noise: float = 0.1, seed: int = 0
) -> tuple[Transitions, dict[str, torch.Tensor]]:
    """Roll out the three behaviours; return transitions and per-transition route labels.

    Returns:
        ``(transitions, info)`` with ``info["route"] [T]`` in {-1, 0, 1}, ``info["t"] [T]``
        (step index in its episode) and ``info["success"] [T]`` (the episode reached the goal).
    """
    g = torch.Generator().manual_seed(seed)
    obs, act, rew, nxt, term, tout, route_l, t_l, succ_l = ([] for _ in range(9))
    for ep in range(n_episodes):
        u = ep % 5
        route = -1 if u in (0, 1) else (1 if u in (2, 3) else 0)
        pos = torch.tensor(START) + 0.05 * torch.randn(2, generator=g)
        stage = 0
        ep_rows = []
        done = False
        for t in range(30):
            if route != 0 and stage == 0 and (pos[1] > -0.05 or abs(float(pos[0])) > 0.7):
                stage = 1
            a = _policy_action(pos, route, stage) + noise * torch.randn(2, generator=g)
            a = a.clamp(-1.0, 1.0)
            new = pos + STEP * a
            hit = float(new.norm()) < OBSTACLE_R
            goal = float(new[1]) >= GOAL_Y
            r = 1.0 if goal else 0.0
            done = hit or goal
            ep_rows.append((pos.clone(), a, r, new.clone(), float(done), t))
            pos = new
            if done:
                break
        success = bool(done and float(pos[1]) >= GOAL_Y)
        for i, (p, a, r, n, d, t) in enumerate(ep_rows):
            obs.append(p)
            act.append(a)
            rew.append(r)
            nxt.append(n)
            term.append(d)
            tout.append(1.0 if (i == len(ep_rows) - 1 and d == 0.0) else 0.0)
            route_l.append(route)
            t_l.append(t)
            succ_l.append(success)
    o = torch.stack(obs).float()
    tr = Transitions(
        observations=o,
        actions=torch.stack(act).float(),
        rewards=torch.tensor(rew),
        next_observations=torch.stack(nxt).float(),
        terminals=torch.tensor(term),
        timeouts=torch.tensor(tout),
        action_low=-torch.ones(2),
        action_high=torch.ones(2),
        obs_mean=o.mean(0),
        obs_std=o.std(0).clamp_min(1e-3),
        meta={"dataset_id": "synthetic/fork-v0"},
    )
    info = {
        "route": torch.tensor(route_l),
        "t": torch.tensor(t_l),
        "success": torch.tensor(succ_l),
    }
    return tr, info


def run_killed_at(step: int, body: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """Run ``body`` (Python that trains with ``progress=killer``) in a fresh interpreter whose
    ``killer`` SIGKILLs the process at the report of ``step``: no cleanup, no final save. The
    body sees ``make_fork_transitions`` and torch on one thread."""
    script = textwrap.dedent(
        f"""
        import os, signal, sys
        import torch
        torch.set_num_threads(1)
        sys.path.insert(0, {str(Path(__file__).parent)!r})
        from synthetic_fork import make_fork_transitions

        def killer(report):
            if report.step == {step}:
                os.kill(os.getpid(), signal.SIGKILL)
        """
    ) + textwrap.dedent(body)
    return subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=timeout, check=False
    )
