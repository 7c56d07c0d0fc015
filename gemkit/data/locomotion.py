"""``gemkit/<task>-<kind>-v0``: D4RL's locomotion recipe (medium, medium-replay, expert,
medium-expert).

D4RL (Fu et al. 2020) trained SAC online, stopped it when its return reached about a third of
the expert's, and recorded

- **medium**: 1M steps of that partially trained policy acting in the env (here the stochastic
  SAC policy, ``tanh(mu + std * eps)``, recorded with Minari's ``DataCollector``);
- **medium-replay**: every transition in the replay buffer of that run up to the stop (here read
  from the run's saved buffer and written with ``minari.create_dataset_from_buffers``);
- **expert**: 1M steps of a fully trained SAC policy: here the same run continued from the
  medium stop to D4RL's expert return (``REF_MAX_SCORE``) or its budget (3M env steps), in its
  own directory (``<sac_dir>-expert``, a copy of the medium run that then trains on);
- **medium-expert**: the medium and the expert datasets concatenated (2M steps), as D4RL's.

The SAC run (:func:`gemkit.data.sac.train_sac`) lives in ``sac_dir`` (default
``gemkit-sac/<task>-seed<seed>``), resumes when interrupted and is shared by every dataset of a
task. Environments: gymnasium ``Hopper-v5``, ``Walker2d-v5``, ``HalfCheetah-v5`` (1,000-step
episodes), the evaluation env is the same. Reference scores are D4RL's published random and
expert returns (``d4rl/infos.py``, ``REF_MIN_SCORE`` / ``REF_MAX_SCORE``), measured by D4RL in
its ``-v2`` MuJoCo envs, not here.
"""

from __future__ import annotations

import dataclasses
import warnings
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch

from gemkit.data._write import (
    Episode,
    ProgressFn,
    check_writable,
    dataset_info,
    episode_slices,
    prepare_write,
    write_dataset,
)
from gemkit.data.sac import (
    SACConfig,
    SACProgress,
    SACRun,
    load_sac_policy,
    read_replay,
    read_sac_run,
    train_sac,
)
from gemkit.errors import GemkitError

__all__ = [
    "KINDS",
    "LOCOMOTION_TASKS",
    "LocomotionTask",
    "default_sac_dir",
    "expert_sac_dir",
    "locomotion_dataset_id",
    "locomotion_sac_config",
    "make_locomotion",
    "replay_episodes",
]


@dataclasses.dataclass(frozen=True)
class LocomotionTask:
    """One locomotion task: its gymnasium id and D4RL's reference returns."""

    env_id: str
    d4rl_random: float
    d4rl_expert: float

    @property
    def medium_target(self) -> float:
        """One third of D4RL's expert return: where the medium policy stops."""
        return self.d4rl_expert / 3.0


#: D4RL's REF_MIN_SCORE / REF_MAX_SCORE (``d4rl/infos.py``, Farama-Foundation/D4RL), the same
#: for every dataset of a task (random, medium, medium-replay, expert, ...).
LOCOMOTION_TASKS: dict[str, LocomotionTask] = {
    "hopper": LocomotionTask("Hopper-v5", -20.272305, 3234.3),
    "walker2d": LocomotionTask("Walker2d-v5", 1.629008, 4592.3),
    "halfcheetah": LocomotionTask("HalfCheetah-v5", -280.178953, 12135.0),
}
KINDS: tuple[str, ...] = ("medium", "medium-replay", "expert", "medium-expert")
MEDIUM_STEPS = 1_000_000
#: the expert continuation's budget in env steps, all of the run's (medium's included)
EXPERT_SAC_STEPS = 3_000_000


def _check(task: str, kind: str) -> LocomotionTask:
    from gemkit.errors import unknown_name_message

    if task not in LOCOMOTION_TASKS:
        raise GemkitError(unknown_name_message("locomotion task", task, LOCOMOTION_TASKS))
    if kind not in KINDS:
        raise GemkitError(unknown_name_message("locomotion dataset kind", kind, KINDS))
    return LOCOMOTION_TASKS[task]


def locomotion_dataset_id(task: str, kind: str) -> str:
    """``gemkit/<task>-<kind>-v0``, e.g. ``gemkit/hopper-medium-replay-v0``."""
    _check(task, kind)
    return f"gemkit/{task}-{kind}-v0"


def default_sac_dir(task: str, seed: int) -> Path:
    """``gemkit-sac/<task>-seed<seed>`` (relative to the working directory)."""
    return Path("gemkit-sac") / f"{task}-seed{seed}"


def expert_sac_dir(sac_dir: str | Path) -> Path:
    """Where the expert continuation of the SAC run in ``sac_dir`` lives: ``<sac_dir>-expert``."""
    p = Path(sac_dir)
    return p.with_name(p.name + "-expert")


def locomotion_sac_config(
    task: str,
    seed: int = 0,
    *,
    sac_steps: int | None = None,
    target_return: float | None = None,
) -> SACConfig:
    """The SAC run of ``task``: D4RL's stop at a third of the expert return, 1M steps at most.

    ``sac_steps`` below the defaults (a tiny budget for tests) shrinks ``learning_starts`` to a
    quarter of it and the evaluation and checkpoint periods to the budget.
    """
    spec = _check(task, "medium")
    budget = 1_000_000 if sac_steps is None else int(sac_steps)
    if budget < 1:
        raise GemkitError(f"sac_steps must be >= 1, got {budget}.")
    base = SACConfig()
    return SACConfig(
        env_id=spec.env_id,
        seed=seed,
        max_steps=budget,
        target_return=spec.medium_target if target_return is None else float(target_return),
        eval_every=min(base.eval_every, budget),
        eval_episodes=base.eval_episodes if budget >= base.eval_every else 2,
        checkpoint_every=min(base.checkpoint_every, budget),
        learning_starts=min(base.learning_starts, budget // 4),
    )


def replay_episodes(
    replay: dict[str, np.ndarray], action_low: Any, action_high: Any
) -> list[Episode]:
    """The SAC run's replay buffer (:func:`gemkit.data.sac.read_replay`) as Minari episodes.

    Actions are the ones the env executed: SB3 stores its policy's actions scaled to [-1, 1] and
    steps the env with ``low + 0.5 (a + 1) (high - low)``, computed here the same way. An episode
    ends where SB3 marked ``done``: a termination unless it was a time-out; the last episode,
    cut by the stop, is a truncation (as Minari's DataCollector flushes an unfinished one).
    """
    low = np.asarray(action_low, dtype=np.float32)
    high = np.asarray(action_high, dtype=np.float32)
    actions = low + (0.5 * (replay["actions"] + 1.0) * (high - low))
    dones = replay["dones"] > 0
    timeouts = replay["timeouts"] > 0
    episodes: list[Episode] = []
    for sl in episode_slices(dones):
        obs = np.concatenate(
            [replay["observations"][sl], replay["next_observations"][sl.stop - 1 : sl.stop]]
        )
        terms = dones[sl] & ~timeouts[sl]
        truncs = timeouts[sl].copy()
        if not terms[-1]:
            truncs[-1] = True
        episodes.append(Episode(obs, actions[sl], replay["rewards"][sl], terms, truncs))
    return episodes


def continue_to_expert(
    medium: SACRun,
    expert_dir: str | Path,
    *,
    sac_steps: int | None = None,
    target_return: float | None = None,
    progress: SACProgress | None = None,
) -> SACRun:
    """The SAC run ``medium`` continued in ``expert_dir`` to ``target_return`` (default D4RL's
    expert return) or ``sac_steps`` env steps in all (default :data:`EXPERT_SAC_STEPS`).

    The first call copies the medium run's directory there (whole, then renamed: never half a
    copy); later calls resume the continuation. The medium run itself is left as it is.
    """
    import shutil

    spec = next(t for t in LOCOMOTION_TASKS.values() if t.env_id == medium.config.env_id)
    expert_dir = Path(expert_dir)
    budget = EXPERT_SAC_STEPS if sac_steps is None else int(sac_steps)
    if budget < medium.steps:
        raise GemkitError(f"the expert budget ({budget:,} steps) is below the medium run's "
                          f"{medium.steps:,}: it continues that run.")  # fmt: skip
    if read_sac_run(expert_dir) is None:
        tmp = expert_dir.with_name(expert_dir.name + ".copying")
        shutil.rmtree(tmp, ignore_errors=True)
        shutil.copytree(medium.run_dir, tmp)
        shutil.rmtree(expert_dir, ignore_errors=True)
        tmp.rename(expert_dir)
    config = dataclasses.replace(
        medium.config,
        max_steps=budget,
        target_return=spec.d4rl_expert if target_return is None else float(target_return),
    )
    return train_sac(config, expert_dir, progress=progress)


def episodes_of(dataset_id: str) -> list[Episode]:
    """Every episode of a local Minari dataset, as stored (for concatenating datasets)."""
    from gemkit.data.minari_io import load_minari

    st = load_minari(dataset_id).storage
    return [Episode(np.asarray(ep["observations"]), np.asarray(ep["actions"]),
                    np.asarray(ep["rewards"]), np.asarray(ep["terminations"]),
                    np.asarray(ep["truncations"]))
            for ep in st.get_episodes(range(int(st.total_episodes)))]  # fmt: skip


def _record_policy(
    minari: Any, run: SACRun, steps: int, seed: int, progress: ProgressFn | None
) -> Any:
    """``steps`` steps of the run's stochastic policy through Minari's DataCollector."""
    actor = load_sac_policy(run.run_dir)
    collector = minari.DataCollector(gym.make(run.config.env_id, disable_env_checker=True))
    gen = torch.Generator().manual_seed(seed)
    seeds = np.random.default_rng(seed)
    obs, _ = collector.reset(seed=int(seeds.integers(2**31)))
    report_every = max(1, steps // 200)
    for t in range(steps):
        action = actor.act(torch.as_tensor(obs).unsqueeze(0), gen)[0].numpy()
        obs, _, term, trunc, _ = collector.step(action)
        if (term or trunc) and t + 1 < steps:
            obs, _ = collector.reset(seed=int(seeds.integers(2**31)))
        if progress is not None and (t + 1) % report_every == 0:
            progress(t + 1, steps)
    return collector


def make_locomotion(
    task: str = "hopper",
    kind: str = "medium",
    steps: int | None = None,
    seed: int = 0,
    *,
    sac_dir: str | Path | None = None,
    sac_steps: int | None = None,
    target_return: float | None = None,
    sac_config: SACConfig | None = None,
    expert_sac_steps: int | None = None,
    expert_target: float | None = None,
    dataset_id: str | None = None,
    overwrite: bool = False,
    progress: ProgressFn | None = None,
    sac_progress: SACProgress | None = None,
) -> str:
    """Train (or resume, or reuse) the task's SAC run, then record its dataset.

    Args:
        task: ``"hopper"``, ``"walker2d"`` or ``"halfcheetah"``.
        kind: ``"medium"``, ``"medium-replay"``, ``"expert"`` or ``"medium-expert"`` (the
            medium and expert datasets, made first where missing, concatenated).
        steps: medium / expert: steps to record (default 1,000,000, as D4RL); medium-replay:
            the first ``steps`` of the buffer (default: all of it); medium-expert: of each.
        seed: seeds the SAC run and the recording.
        sac_dir: the SAC run's directory (default :func:`default_sac_dir`).
        sac_steps: SAC budget (default 1M; a tiny one for tests, see
            :func:`locomotion_sac_config`).
        target_return: stop SAC at this mean evaluation return (default: a third of D4RL's
            expert return).
        sac_config: the whole SAC config instead (``sac_steps`` and ``target_return`` ignored).
        expert_sac_steps: expert: the continuation's budget, env steps in all (default 3M).
        expert_target: expert: stop the continuation at this return (default D4RL's expert
            return).
        dataset_id: Minari id (default :func:`locomotion_dataset_id`).
        overwrite: replace an existing dataset with the same id.
        progress: ``progress(done_steps, steps)`` while recording.
        sac_progress: ``sac_progress(steps, max_steps, last_eval_return)`` while training.

    Returns:
        The dataset id.

    Raises:
        GemkitError: unknown task or kind, bad budgets, stable-baselines3 missing.
        DatasetError: the id exists and ``overwrite`` is false.
    """
    spec = _check(task, kind)
    dataset_id = dataset_id or locomotion_dataset_id(task, kind)
    check_writable(dataset_id, overwrite)
    if steps is not None and steps < 1:
        raise GemkitError(f"steps must be >= 1, got {steps}.")
    same = dict(seed=seed, sac_dir=sac_dir, sac_steps=sac_steps, target_return=target_return,
                sac_config=sac_config, expert_sac_steps=expert_sac_steps,
                expert_target=expert_target, progress=progress,
                sac_progress=sac_progress)  # fmt: skip
    if kind == "medium-expert":
        from gemkit.data.minari_io import dataset_exists

        parts = [locomotion_dataset_id(task, k) for k in ("medium", "expert")]
        for part, k in zip(parts, ("medium", "expert"), strict=True):
            if not dataset_exists(part):
                make_locomotion(task, k, steps, **same)  # type: ignore[arg-type]
        episodes = episodes_of(parts[0]) + episodes_of(parts[1])
        env = gym.spec(spec.env_id)
        write_dataset(dataset_id, episodes, env, eval_env_spec=env,
                      ref_min_score=spec.d4rl_random, ref_max_score=spec.d4rl_expert,
                      algorithm_name="SAC (stable-baselines3), D4RL medium-expert recipe",
                      description=f"gemkit {task}-medium-expert: {parts[0]} then {parts[1]}, "
                      "concatenated.", overwrite=overwrite)  # fmt: skip
        return dataset_id
    config = sac_config or locomotion_sac_config(
        task, seed, sac_steps=sac_steps, target_return=target_return
    )
    run_dir = Path(sac_dir or default_sac_dir(task, seed))
    run = train_sac(config, run_dir, progress=sac_progress)
    if kind == "expert":
        run = continue_to_expert(run, expert_sac_dir(run_dir), sac_steps=expert_sac_steps,
                                 target_return=expert_target, progress=sac_progress)  # fmt: skip
    stop = (
        f"SAC ({run.config.env_id}, seed {run.config.seed}) stopped at step {run.steps:,} with "
        f"evaluation return {run.last_return} "
        f"({'target' if run.reached else 'budget, target not'} reached: "
        f"target {run.config.target_return})"
    )
    refs: dict[str, Any] = {
        "eval_env_spec": gym.spec(spec.env_id),
        "ref_min_score": spec.d4rl_random,
        "ref_max_score": spec.d4rl_expert,
        "algorithm_name": f"SAC (stable-baselines3), D4RL {kind} recipe",
    }
    if kind in ("medium", "expert"):
        n = MEDIUM_STEPS if steps is None else int(steps)
        minari = prepare_write(dataset_id, overwrite)
        collector = _record_policy(minari, run, n, seed, progress)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                collector.create_dataset(
                    dataset_id,
                    **dataset_info(**refs),
                    description=f"gemkit {task}-{kind}: {n} steps of the {stop}.",
                )
        finally:
            collector.close()
        return dataset_id
    replay = read_replay(run.run_dir)
    if steps is not None:
        replay = {k: v[: int(steps)] for k, v in replay.items()}
    space = gym.make(spec.env_id).action_space
    assert isinstance(space, gym.spaces.Box)
    episodes = replay_episodes(replay, space.low, space.high)
    if progress is not None:
        progress(len(replay["rewards"]), len(replay["rewards"]))
    write_dataset(
        dataset_id,
        episodes,
        gym.spec(spec.env_id),
        **refs,
        description=(
            f"gemkit {task}-medium-replay: the {len(replay['rewards'])} transitions of the "
            f"replay buffer of the {stop}."
        ),
        overwrite=overwrite,
    )
    return dataset_id
