"""A SAC run on disk: its config, its state file, its policy; nothing pickled.

A run lives in one directory (:func:`gemkit.data.sac.train_sac` writes it):

- ``sac_state.safetensors``: everything the next step depends on, in one file written
  atomically: the networks (actor, critics, target critics, entropy coefficient), the three Adam
  states, the replay buffer so far, the counters, the last observation, the MuJoCo env mid-episode
  (:func:`gemkit.data.sac_state.env_state`) and the global torch / numpy / Python generator states.
  A JSON header (safetensors metadata) holds the config, the counters and the evaluations.
- ``policy.safetensors``: the actor alone (:func:`load_sac_policy`, no stable-baselines3 needed).
- ``sac.json``: the config, the step, whether the target was reached and the evaluations.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors import safe_open
from safetensors.torch import load_file
from safetensors.torch import save as save_safetensors

from gemkit.data.sac_state import (
    SACActor,
    capture_rngs,
    env_state,
    restore_rngs,
    set_env_state,
)
from gemkit.errors import CheckpointError, GemkitError
from gemkit.models.io import atomic_write_bytes

__all__ = [
    "MAY_CHANGE",
    "POLICY_FILE",
    "STATE_FILE",
    "SACConfig",
    "SACRun",
    "load_run",
    "load_sac_policy",
    "read_header",
    "read_replay",
    "read_sac_run",
    "save_run",
    "sb3_actor",
]

STATE_FILE = "sac_state.safetensors"
POLICY_FILE = "policy.safetensors"
RUN_FILE = "sac.json"
_FORMAT, _VERSION, _KEY = "gemkit-sac-state", 1, "gemkit"
_REPLAY = ("observations", "next_observations", "actions", "rewards", "dones", "timeouts")


@dataclasses.dataclass(frozen=True)
class SACConfig:
    """One SAC run (SB3's SAC defaults but ``learning_starts``, as rl-baselines3-zoo's MuJoCo).

    ``max_steps``, ``target_return`` and ``checkpoint_every`` may change when a run resumes; the
    other keys may not.
    """

    env_id: str = "Hopper-v5"
    seed: int = 0
    max_steps: int = 1_000_000
    target_return: float | None = None
    eval_every: int = 10_000
    eval_episodes: int = 10
    checkpoint_every: int = 50_000
    learning_starts: int = 10_000
    batch_size: int = 256
    learning_rate: float = 3e-4
    gamma: float = 0.99
    tau: float = 0.005
    hidden: tuple[int, ...] = (256, 256)

    def __post_init__(self) -> None:
        for name in ("max_steps", "eval_every", "eval_episodes", "checkpoint_every", "batch_size"):
            if int(getattr(self, name)) < 1:
                raise GemkitError(f"SAC {name} must be >= 1, got {getattr(self, name)}.")
        object.__setattr__(self, "hidden", tuple(int(h) for h in self.hidden))

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready fields."""
        d = dataclasses.asdict(self)
        d["hidden"] = list(self.hidden)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> SACConfig:
        """The config :meth:`to_dict` wrote."""
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})


MAY_CHANGE = ("max_steps", "target_return", "checkpoint_every")


@dataclasses.dataclass(frozen=True)
class SACRun:
    """Where a SAC run stands.

    Attributes:
        run_dir: its directory.
        config: its config.
        steps: environment steps trained (= gradient steps + ``learning_starts``).
        reached: whether an evaluation reached ``config.target_return``.
        evals: ``(step, mean return, std)`` of every evaluation so far.
        trained_steps: steps trained by the call that returned this (0 when already done).
        elapsed_s: seconds that call spent training and evaluating.
    """

    run_dir: Path
    config: SACConfig
    steps: int
    reached: bool
    evals: list[tuple[int, float, float]]
    trained_steps: int = 0
    elapsed_s: float = 0.0

    @property
    def last_return(self) -> float | None:
        """The last evaluation's mean return (``None`` before the first)."""
        return self.evals[-1][1] if self.evals else None


def sb3_actor(model: Any, config: SACConfig) -> SACActor:
    """A copy of an SB3 SAC model's actor as a :class:`SACActor`."""
    space = model.action_space
    actor = SACActor(
        int(np.prod(model.observation_space.shape)),
        int(np.prod(space.shape)),
        config.hidden,
        space.low,
        space.high,
    )
    missing = actor.load_state_dict(model.actor.state_dict(), strict=False).missing_keys
    if set(missing) != {"low", "high"}:  # pragma: no cover - an SB3 layout change
        raise GemkitError(f"SB3's SAC actor no longer matches gemkit's SACActor ({missing}).")
    return actor


def _optimizers(model: Any) -> dict[str, torch.optim.Optimizer]:
    return {
        "actor": model.actor.optimizer,
        "critic": model.critic.optimizer,
        "ent": model.ent_coef_optimizer,
    }


def save_run(model: Any, config: SACConfig, run_dir: Path, evals: list[Any], reached: bool) -> None:
    """Write the run's state, its policy and ``sac.json`` (each file atomically)."""
    tensors: dict[str, torch.Tensor] = {
        f"policy.{k}": v.detach().clone() for k, v in model.policy.state_dict().items()
    }
    tensors["ent.log_coef"] = model.log_ent_coef.detach().clone()
    for name, opt in _optimizers(model).items():
        for pid, st in opt.state_dict()["state"].items():
            for k, v in st.items():
                tensors[f"optim.{name}.{pid}.{k}"] = torch.as_tensor(v).clone()
    rng_tensors, rng_info = capture_rngs()
    tensors |= rng_tensors
    venv = model.get_env()
    tensors["env.mujoco"], env_info = env_state(venv.envs[0])
    tensors["last.obs"] = torch.from_numpy(np.array(model._last_obs))
    tensors["last.episode_starts"] = torch.from_numpy(np.array(model._last_episode_starts))
    buf = model.replay_buffer
    n = buf.buffer_size if buf.full else buf.pos
    for field in _REPLAY:
        tensors[f"replay.{field}"] = torch.from_numpy(np.array(getattr(buf, field)[:n, 0]))
    header = {
        "format": _FORMAT,
        "version": _VERSION,
        "config": config.to_dict(),
        "num_timesteps": int(model.num_timesteps),
        "n_updates": int(model._n_updates),
        "episode_num": int(model._episode_num),
        "replay_n": int(n),
        "evals": evals,
        "reached": reached,
        "rng": rng_info,
        "env": env_info,
        "action_space_rng": model.action_space.np_random.bit_generator.state,
    }
    run_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(
        run_dir / STATE_FILE, save_safetensors(tensors, metadata={_KEY: json.dumps(header)})
    )
    actor = sb3_actor(model, config)
    policy_meta = {
        "format": "gemkit-sac-policy",
        "env_id": config.env_id,
        "hidden": list(config.hidden),
        "state_dim": actor.state_dim,
        "action_dim": actor.action_dim,
        "step": int(model.num_timesteps),
        "eval_return": evals[-1][1] if evals else None,
    }
    policy = {k: v.contiguous() for k, v in actor.state_dict().items()}
    atomic_write_bytes(
        run_dir / POLICY_FILE,
        save_safetensors(policy, metadata={_KEY: json.dumps(policy_meta)}),
    )
    summary = {k: header[k] for k in ("config", "num_timesteps", "reached", "evals")}
    atomic_write_bytes(run_dir / RUN_FILE, json.dumps(summary, indent=1).encode())


def read_header(path: Path, fmt: str = _FORMAT) -> dict[str, Any]:
    """The JSON header of a gemkit SAC file (state or policy), or a one-line error."""
    try:
        with safe_open(str(path), framework="pt") as f:
            header = json.loads((f.metadata() or {}).get(_KEY, ""))
    except Exception as exc:
        raise CheckpointError(f"{path} is truncated or not a gemkit SAC file ({exc}).") from None
    if not isinstance(header, dict) or header.get("format") != fmt:
        raise CheckpointError(f"{path} is not a gemkit SAC file ({fmt}).")
    return header


def read_sac_run(run_dir: str | Path) -> SACRun | None:
    """Where the run in ``run_dir`` stands, or ``None`` when it holds no SAC state yet."""
    path = Path(run_dir) / STATE_FILE
    if not path.is_file():
        return None
    h = read_header(path, _FORMAT)
    evals = [(int(s), float(m), float(d)) for s, m, d in h["evals"]]
    config = SACConfig.from_dict(h["config"])
    return SACRun(Path(run_dir), config, int(h["num_timesteps"]), bool(h["reached"]), evals)


def load_run(model: Any, config: SACConfig, run_dir: Path, header: dict[str, Any]) -> None:
    """Put a freshly built SB3 SAC back into the state saved in ``run_dir``."""
    t = load_file(str(run_dir / STATE_FILE))
    model.policy.load_state_dict({k[7:]: v for k, v in t.items() if k.startswith("policy.")})
    with torch.no_grad():
        model.log_ent_coef.copy_(t["ent.log_coef"])
    for name, opt in _optimizers(model).items():
        state: dict[int, dict[str, torch.Tensor]] = {}
        prefix = f"optim.{name}."
        for k, v in t.items():
            if k.startswith(prefix):
                pid, field = k[len(prefix) :].split(".", 1)
                state.setdefault(int(pid), {})[field] = v
        opt.load_state_dict({"state": state, "param_groups": opt.state_dict()["param_groups"]})
    buf = model.replay_buffer
    n = int(header["replay_n"])
    if n > buf.buffer_size:
        raise GemkitError(
            f"the SAC run in {run_dir} holds {n:,} steps; max_steps {config.max_steps:,} is less."
        )
    for field in _REPLAY:
        getattr(buf, field)[:n, 0] = t[f"replay.{field}"].numpy()
    buf.pos, buf.full = n % buf.buffer_size, n == buf.buffer_size
    model.num_timesteps = int(header["num_timesteps"])
    model._n_updates = int(header["n_updates"])
    model._episode_num = int(header["episode_num"])
    env = model.get_env().envs[0]
    env.reset(seed=0)  # arms the wrappers; the state is overwritten next
    set_env_state(env, t["env.mujoco"], header["env"])
    model._last_obs = t["last.obs"].numpy().copy()
    model._last_episode_starts = t["last.episode_starts"].numpy().copy()
    model.action_space.np_random.bit_generator.state = header["action_space_rng"]
    restore_rngs(t, header["rng"])


def load_sac_policy(path: str | Path) -> SACActor:
    """The actor of a SAC run (``policy.safetensors``, or the run directory holding it).

    Raises:
        CheckpointError: no such file, or not a gemkit SAC policy.
    """
    p = Path(path)
    p = p / POLICY_FILE if p.is_dir() else p
    if not p.is_file():
        raise CheckpointError(f"no SAC policy at {p}; train one with gemkit.data.train_sac.")
    meta = read_header(p, "gemkit-sac-policy")
    t = load_file(str(p))
    actor = SACActor(
        int(meta["state_dim"]), int(meta["action_dim"]), tuple(meta["hidden"]), t["low"], t["high"]
    )
    actor.load_state_dict(t)
    return actor


def read_replay(run_dir: str | Path) -> dict[str, np.ndarray]:
    """The replay buffer of a SAC run, as SB3 stored it: ``observations``, ``next_observations``
    ``[n, S]``, ``actions [n, A]`` (SB3's scaled actions in ``[-1, 1]``), ``rewards``, ``dones``,
    ``timeouts [n]``, in the order the steps were taken.

    Raises:
        CheckpointError: ``run_dir`` holds no SAC state.
    """
    path = Path(run_dir) / STATE_FILE
    if not path.is_file():
        raise CheckpointError(f"{run_dir} holds no SAC run ({STATE_FILE}).")
    read_header(path, _FORMAT)
    out: dict[str, np.ndarray] = {}
    with safe_open(str(path), framework="pt") as f:
        for field in _REPLAY:
            out[field] = f.get_tensor(f"replay.{field}").numpy()
    return out
