"""What a SAC run is made of, as tensors and JSON: the actor, the RNGs, the MuJoCo env state.

:mod:`gemkit.data.sac` trains with stable-baselines3 and checkpoints through these helpers; none
of them pickles. :class:`SACActor` is SB3's SAC actor in plain torch (the same state-dict keys),
so a saved policy loads and acts without stable-baselines3.
"""

from __future__ import annotations

import random
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from torch import Tensor, nn

__all__ = [
    "LOG_STD_MAX",
    "LOG_STD_MIN",
    "SACActor",
    "capture_rngs",
    "env_state",
    "restore_rngs",
    "set_env_state",
]

#: SB3's clamp of the actor's log-std (``stable_baselines3.sac.policies``).
LOG_STD_MIN, LOG_STD_MAX = -20.0, 2.0


class SACActor(nn.Module):
    """SB3's SAC actor (``MlpPolicy``): ReLU MLP -> ``mu``, ``log_std``; ``tanh`` squashing.

    Its ``state_dict`` keys are SB3's (``latent_pi.{0,2,..}``, ``mu``, ``log_std``), so
    ``load_state_dict(sb3_model.actor.state_dict(), strict=False)`` fills it.

    Args:
        state_dim: observation size.
        action_dim: action size.
        hidden: hidden layer widths.
        action_low: ``[A]`` lower bound of the env's action box.
        action_high: ``[A]`` upper bound.
    """

    def __init__(
        self,
        state_dim: int,
        action_dim: int,
        hidden: tuple[int, ...],
        action_low: Any,
        action_high: Any,
    ) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        width = state_dim
        for h in hidden:
            layers += [nn.Linear(width, h), nn.ReLU()]
            width = h
        self.latent_pi = nn.Sequential(*layers)
        self.mu = nn.Linear(width, action_dim)
        self.log_std = nn.Linear(width, action_dim)
        self.register_buffer("low", torch.as_tensor(np.asarray(action_low, dtype=np.float32)))
        self.register_buffer("high", torch.as_tensor(np.asarray(action_high, dtype=np.float32)))
        self.state_dim = state_dim
        self.action_dim = action_dim

    def act(self, states: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """Actions ``[B, A]`` in the env's box for ``states [B, S]``.

        ``generator=None``: the deterministic action ``tanh(mu)``; with a generator, a sample
        ``tanh(mu + std * eps)`` drawn from it (nothing reads torch's global RNG).
        """
        with torch.no_grad():
            latent = self.latent_pi(states.to(torch.float32))
            mean = self.mu(latent)
            if generator is not None:
                log_std = self.log_std(latent).clamp(LOG_STD_MIN, LOG_STD_MAX)
                eps = torch.randn(mean.shape, generator=generator, dtype=mean.dtype)
                mean = mean + log_std.exp() * eps
            squashed = torch.tanh(mean)
            low, high = self.low, self.high
            assert isinstance(low, Tensor) and isinstance(high, Tensor)
            return low + 0.5 * (squashed + 1.0) * (high - low)

    def forward(self, states: Tensor) -> Tensor:
        """The deterministic action (a gemkit policy: ``states [B, S] -> actions [B, A]``)."""
        return self.act(states)


def capture_rngs() -> tuple[dict[str, Tensor], dict[str, Any]]:
    """``(tensors, json)`` of torch's, numpy's and Python's global generator states.

    stable-baselines3 draws from all three (torch: action noise; numpy: replay-buffer batches).
    """
    np_state = np.random.get_state(legacy=False)  # noqa: NPY002 (SB3 draws from it)
    assert isinstance(np_state, dict)
    tensors = {
        "rng.torch": torch.get_rng_state(),
        "rng.numpy_key": torch.from_numpy(np.asarray(np_state["state"]["key"]).astype(np.int64)),
    }
    py = random.getstate()
    info = {
        "numpy": {k: np_state[k] for k in ("has_gauss", "gauss")}
        | {"pos": int(np_state["state"]["pos"])},
        "python": [py[0], list(py[1]), py[2]],
    }
    return tensors, info


def restore_rngs(tensors: dict[str, Tensor], info: dict[str, Any]) -> None:
    """Set the global generators to what :func:`capture_rngs` returned."""
    torch.set_rng_state(tensors["rng.torch"])
    np.random.set_state(  # noqa: NPY002 (SB3 draws from it)
        {
            "bit_generator": "MT19937",
            "state": {
                "key": tensors["rng.numpy_key"].numpy().astype(np.uint32),
                "pos": info["numpy"]["pos"],
            },
            "has_gauss": info["numpy"]["has_gauss"],
            "gauss": info["numpy"]["gauss"],
        }
    )
    version, internal, gauss = info["python"]
    random.setstate((version, tuple(internal), gauss))


def _time_limit(env: gym.Env[Any, Any]) -> gym.wrappers.TimeLimit | None:
    e: Any = env
    while isinstance(e, gym.Wrapper):
        if isinstance(e, gym.wrappers.TimeLimit):
            return e
        e = e.env
    return None


def env_state(env: gym.Env[Any, Any]) -> tuple[Tensor, dict[str, Any]]:
    """``(tensor, json)``: a MuJoCo env mid-episode, exactly.

    The tensor is MuJoCo's full integration state (``mjSTATE_INTEGRATION``: time, qpos, qvel,
    actuator state, the solver's warm start, controls, ...); the JSON holds the time limit's
    step count and the env's own generator (it draws the next reset's noise).
    """
    import mujoco

    u: Any = env.unwrapped
    spec = mujoco.mjtState.mjSTATE_INTEGRATION
    state = np.empty(mujoco.mj_stateSize(u.model, spec))
    mujoco.mj_getState(u.model, u.data, state, spec)
    limit = _time_limit(env)
    info = {
        "elapsed_steps": None if limit is None else limit._elapsed_steps,
        "np_random": u.np_random.bit_generator.state,
    }
    return torch.from_numpy(state), info


def set_env_state(env: gym.Env[Any, Any], state: Tensor, info: dict[str, Any]) -> None:
    """Put ``env`` (reset once, so its wrappers accept steps) back into :func:`env_state`'s."""
    import mujoco

    u: Any = env.unwrapped
    mujoco.mj_setState(
        u.model, u.data, state.numpy().astype(np.float64), mujoco.mjtState.mjSTATE_INTEGRATION
    )
    limit = _time_limit(env)
    if limit is not None:
        limit._elapsed_steps = info["elapsed_steps"]
    u.np_random.bit_generator.state = info["np_random"]
