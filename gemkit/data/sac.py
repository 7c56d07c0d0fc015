"""Online SAC behaviour policies for the locomotion datasets (stable-baselines3, optional).

D4RL made its ``medium`` data with a SAC policy stopped early and its ``medium-replay`` data
from that run's replay buffer; :func:`train_sac` is that run: stable-baselines3's SAC on a
gymnasium MuJoCo env, evaluated every ``eval_every`` steps (deterministic actions), stopped when
the mean evaluation return reaches ``target_return`` (or at ``max_steps``).

A run lives in one directory and resumes bit for bit (``tests/test_data_sac.py``); its files
(:mod:`gemkit.data.sac_files`) hold the networks, the Adam states, the replay buffer, the
counters, the MuJoCo env mid-episode and the global torch / numpy / Python generator states (SB3
draws its action noise from torch's and its batches from numpy's; the caller's states are put back
when :func:`train_sac` returns).

Nothing is pickled: SB3's own ``.zip`` format unpickles on load and is never used. Training
between checkpoints runs in chunks of ``model.learn(..., reset_num_timesteps=False)``; with one
gradient step per env step and a constant learning rate, chunking does not change the result.
Bit-for-bit holds on the same torch build and thread count.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import gymnasium as gym

from gemkit.data.sac_files import (
    MAY_CHANGE,
    POLICY_FILE,
    STATE_FILE,
    SACConfig,
    SACRun,
    load_run,
    load_sac_policy,
    read_header,
    read_replay,
    read_sac_run,
    save_run,
    sb3_actor,
)
from gemkit.data.sac_state import capture_rngs, restore_rngs
from gemkit.envs.rollout import run_episodes
from gemkit.errors import GemkitError

__all__ = [
    "POLICY_FILE",
    "STATE_FILE",
    "SACConfig",
    "SACProgress",
    "SACRun",
    "load_sac_policy",
    "read_replay",
    "read_sac_run",
    "require_sb3",
    "train_sac",
]

#: ``progress(steps, max_steps, last_eval_return)``: called as training advances.
SACProgress = Callable[[int, int, "float | None"], None]


def require_sb3() -> Any:
    """The ``stable_baselines3`` module, or a one-line error saying how to install it."""
    try:
        import stable_baselines3
    except ImportError:
        raise GemkitError(
            "training the SAC behaviour policy needs stable-baselines3: "
            "pip install 'gemkit[datagen]' (or pip install 'stable-baselines3>=2.3')."
        ) from None
    return stable_baselines3


def _build(config: SACConfig) -> Any:
    """A fresh SB3 SAC on ``config.env_id`` (seeds SB3's global generators, as SB3 does)."""
    sb3 = require_sb3()
    from stable_baselines3.common.vec_env import DummyVecEnv

    venv = DummyVecEnv([lambda: gym.make(config.env_id, disable_env_checker=True)])
    return sb3.SAC(
        "MlpPolicy",
        venv,
        learning_rate=config.learning_rate,
        buffer_size=config.max_steps,
        learning_starts=config.learning_starts,
        batch_size=config.batch_size,
        tau=config.tau,
        gamma=config.gamma,
        policy_kwargs={"net_arch": list(config.hidden)},
        seed=config.seed,
        device="cpu",
        verbose=0,
    )


def _progress_callback(progress: SACProgress | None, total: int, last: float | None) -> Any:
    from stable_baselines3.common.callbacks import BaseCallback

    every = max(1, total // 1000)

    class _Progress(BaseCallback):
        def _on_step(self) -> bool:
            if progress is not None and self.num_timesteps % every == 0:
                progress(self.num_timesteps, total, last)
            return True

    return _Progress()


def train_sac(
    config: SACConfig,
    run_dir: str | Path,
    *,
    stop_at: int | None = None,
    progress: SACProgress | None = None,
) -> SACRun:
    """Train (or resume) a SAC run in ``run_dir`` until the target or ``max_steps``.

    Args:
        config: the run; on resume it must match the recorded one but for ``max_steps``,
            ``target_return`` and ``checkpoint_every``.
        run_dir: where the run lives; its state is resumed when present.
        stop_at: stop (with a checkpoint) at this step even if neither target nor budget is
            met (an interruption that a later call resumes).
        progress: ``progress(steps, max_steps, last_eval_return)``.

    Returns:
        Where the run stands.

    Raises:
        GemkitError: stable-baselines3 missing, or a config that differs from the run's.
        CheckpointError: an unreadable state file.
    """
    run_dir = Path(run_dir)
    recorded = read_sac_run(run_dir)
    if recorded is not None:
        theirs, ours = recorded.config.to_dict(), config.to_dict()
        diff = [k for k in ours if k not in MAY_CHANGE and ours[k] != theirs.get(k)]
        if diff:
            raise GemkitError(
                f"the SAC run in {run_dir} was made with other settings ({', '.join(diff)}); "
                "use another directory or the same settings."
            )
        limit = config.max_steps if stop_at is None else min(stop_at, config.max_steps)
        if _reached(recorded.evals, config.target_return) or recorded.steps >= limit:
            reached = _reached(recorded.evals, config.target_return)
            return dataclasses.replace(recorded, config=config, reached=reached)
    caller = capture_rngs()
    started = time.perf_counter()
    try:
        model = _build(config)
        evals: list[tuple[int, float, float]] = []
        if recorded is not None:
            load_run(model, config, run_dir, read_header(run_dir / STATE_FILE))
            evals = list(recorded.evals)
        first = int(model.num_timesteps)
        reached = _reached(evals, config.target_return)
        limit = config.max_steps if stop_at is None else min(stop_at, config.max_steps)
        step = first
        while step < limit and not reached:
            periods = (config.eval_every, config.checkpoint_every)
            nxt = min(limit, *((step // k + 1) * k for k in periods))
            last = evals[-1][1] if evals else None
            model.learn(
                nxt - step,
                reset_num_timesteps=False,
                callback=_progress_callback(progress, config.max_steps, last),
                log_interval=10**12,
            )
            step = int(model.num_timesteps)
            if step % config.eval_every == 0:
                res = run_episodes(sb3_actor(model, config), gym.spec(config.env_id),
                                   config.eval_episodes, seed=config.seed + 1)  # fmt: skip
                evals.append((step, float(res.returns.mean()), float(res.returns.std())))
                reached = _reached(evals, config.target_return)
            if step % config.checkpoint_every == 0 or reached or step == limit:
                save_run(model, config, run_dir, evals, reached)
        if progress is not None:
            progress(step, config.max_steps, evals[-1][1] if evals else None)
    finally:
        restore_rngs(*caller)
    return SACRun(
        run_dir, config, step, reached, evals, step - first, time.perf_counter() - started
    )


def _reached(evals: list[tuple[int, float, float]], target: float | None) -> bool:
    return target is not None and bool(evals) and evals[-1][1] >= target
