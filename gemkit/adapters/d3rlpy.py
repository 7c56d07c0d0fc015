"""d3rlpy 2.x algorithms as gemkit components: critic, candidate source, anchor, safe loading.

d3rlpy is imported only when one of these functions runs. d3rlpy 2.8.1 pins gymnasium 1.0.0,
older than gemkit needs; it works with gemkit's gymnasium when installed with ``--no-deps``
plus its runtime deps (see ``docs/wrap-a-critic.md``).

Every component here takes **raw** observations (``observation = "raw"``) and applies the
algorithm's own observation scaler (and action scaler) itself, exactly as d3rlpy's
``predict_value`` / ``predict`` do.
"""

from __future__ import annotations

import io
import pickle
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from gemkit.errors import CheckpointError, GemkitError

__all__ = [
    "D3rlpyAnchor",
    "D3rlpyCritic",
    "D3rlpyPolicySource",
    "from_d3rlpy",
    "load_d3rlpy",
    "policy_from_d3rlpy",
]

#: d3rlpy algorithms whose policy is a Gaussian clamped to [-1, 1] (its ``sample_action``).
_CLAMPED_GAUSSIAN = ("IQL", "AWAC")
#: d3rlpy algorithms whose policy is a tanh-squashed Gaussian.
_SQUASHED_GAUSSIAN = ("SAC", "CQL", "CalQL", "BEAR", "CRR", "PLAS")


def _d3rlpy() -> Any:
    try:
        import d3rlpy
    except ImportError:
        raise GemkitError(
            "d3rlpy is not installed; install it with 'pip install --no-deps d3rlpy==2.8.1' and "
            "its runtime deps (docs/wrap-a-critic.md)."
        ) from None
    return d3rlpy


class _NoGlobals(pickle.Unpickler):
    """An unpickler that refuses every class and function: plain dicts, str, bytes only."""

    def find_class(self, module: str, name: str) -> Any:
        raise pickle.UnpicklingError(f"refusing to load {module}.{name}")


def load_d3rlpy(path: str | Path, device: str = "cpu:0") -> Any:
    """Load a file written by d3rlpy's ``algo.save(path)`` without running pickled code.

    A ``.d3`` file is a pickled dict of plain values (the config as JSON, the weights as bytes).
    It is read with an unpickler that allows no class or function at all, the config is
    rebuilt through d3rlpy's own ``LearnableConfigWithShape.deserialize``, and the weights are
    read with ``torch.load(weights_only=True)``.

    Raises:
        CheckpointError: the file is missing, not a d3rlpy file, or holds anything but plain
            values (such a file may run code when loaded: load it with d3rlpy itself, and only
            if you wrote it).
    """
    d3rlpy = _d3rlpy()
    p = Path(path)
    if not p.is_file():
        raise CheckpointError(f"d3rlpy file {str(p)!r} does not exist; save one with algo.save().")
    try:
        with p.open("rb") as f:
            obj = _NoGlobals(f).load()
    except (pickle.UnpicklingError, EOFError, ValueError) as exc:
        raise CheckpointError(
            f"{p} is not a plain d3rlpy .d3 file ({exc}); gemkit loads only files made of plain "
            "values. Load it with d3rlpy.load_learnable only if you made it yourself."
        ) from None
    if not isinstance(obj, dict) or not {"torch", "config"} <= set(obj):
        raise CheckpointError(f"{p} is not a d3rlpy .d3 file (no 'torch'/'config' entries).")
    try:
        config = d3rlpy.base.LearnableConfigWithShape.deserialize(obj["config"])
        algo = config.create(device)
        states = torch.load(io.BytesIO(obj["torch"]), map_location="cpu", weights_only=True)
        for name, module in algo.impl.modules.create_checkpointer(device).modules.items():
            module.load_state_dict(states[name])
    except (KeyError, ValueError, RuntimeError, TypeError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CheckpointError(f"{p}: d3rlpy could not rebuild the algorithm ({first}).") from None
    return algo


def _algo(algo_or_path: Any) -> Any:
    if isinstance(algo_or_path, (str, Path)):
        return load_d3rlpy(algo_or_path)
    algo = algo_or_path
    if not hasattr(algo, "impl") or not hasattr(algo, "get_action_type"):
        raise GemkitError(
            f"expected a d3rlpy algorithm or a .d3 file path, got {type(algo).__name__}."
        )
    if algo.impl is None:
        raise GemkitError(
            f"the d3rlpy {type(algo).__name__} is not built; call algo.build_with_dataset(data) "
            "or fit it first."
        )
    if algo.get_action_type() != _d3rlpy().constants.ActionSpace.CONTINUOUS:
        raise GemkitError(
            f"d3rlpy {type(algo).__name__} is a discrete-action algorithm; GEM needs "
            "continuous actions."
        )
    return algo


class _D3rlpyPart:
    """Shared plumbing: device, scalers, the ``observation`` declaration."""

    observation = "raw"

    def __init__(self, algo: Any) -> None:
        self.rebuild: dict[str, str] | None = None
        if isinstance(algo, (str, Path)):
            # a model directory records the file, and load_models rebuilds from it
            self.rebuild = {"adapter": "d3rlpy", "path": str(Path(algo).resolve())}
        self.algo = _algo(algo)
        self.device = torch.device(str(self.algo.impl.device).replace("cpu:0", "cpu"))
        self._obs_scaler = self.algo.config.observation_scaler
        self._act_scaler = self.algo.config.action_scaler
        self.name = type(self.algo).__name__
        #: the sizes the algorithm was built for (``gemkit.testing.check_critic`` reads them)
        self.state_dim = int(np.prod(self.algo.impl.observation_shape))
        self.action_dim = int(self.algo.impl.action_size)

    def _obs(self, states: Tensor) -> Tensor:
        x = states.to(self.device, torch.float32)
        return self._obs_scaler.transform(x) if self._obs_scaler else x

    def _act_in(self, actions: Tensor) -> Tensor:
        a = actions.to(self.device, torch.float32)
        return self._act_scaler.transform(a) if self._act_scaler else a

    def _act_out(self, actions: Tensor) -> Tensor:
        return self._act_scaler.reverse_transform(actions) if self._act_scaler else actions


class D3rlpyCritic(_D3rlpyPart):
    """Every member of a d3rlpy algorithm's Q ensemble: ``[B, M, S], [B, M, A] -> [E, B, M]``.

    Matches ``algo.predict_value`` (the ensemble mean) member by member.
    """

    def __init__(self, algo: Any) -> None:
        super().__init__(algo)
        fwd = getattr(self.algo.impl, "_q_func_forwarder", None)
        if fwd is None or not hasattr(fwd, "compute_expected_q"):
            raise GemkitError(f"d3rlpy {self.name} has no continuous Q ensemble to wrap.")
        self._forwarder = fwd

    @torch.no_grad()
    def __call__(self, states: Tensor, actions: Tensor) -> Tensor:
        b, m, s = states.shape
        x = self._obs(states.reshape(b * m, s))
        a = self._act_in(actions.reshape(b * m, actions.shape[-1]))
        q = self._forwarder.compute_expected_q(x, a, reduction="none")  # [E, B*M, 1]
        return q.reshape(q.shape[0], b, m).to(states.device, states.dtype)

    def __repr__(self) -> str:
        return f"D3rlpyCritic({self.name})"


class D3rlpyAnchor(_D3rlpyPart):
    """The algorithm's deterministic action (``algo.predict``) as anchor: ``[B, S] -> [B, A]``."""

    @torch.no_grad()
    def __call__(self, states: Tensor) -> Tensor:
        a = self.algo.impl.predict_best_action(self._obs(states))
        return self._act_out(a).to(states.device, states.dtype)

    def __repr__(self) -> str:
        return f"D3rlpyAnchor({self.name})"


class D3rlpyPolicySource(_D3rlpyPart):
    """Samples of a d3rlpy algorithm's stochastic policy, drawn from gemkit's generator.

    Follows the algorithm's own ``sample_action``: IQL and AWAC sample a Gaussian around
    ``tanh(mu)`` and clamp to ``[-1, 1]``; SAC-like algorithms squash ``N(mu, std)`` with tanh.
    The action scaler (if any) maps the samples back to the env's units.
    """

    def __init__(self, algo: Any) -> None:
        super().__init__(algo)
        if self.name in _CLAMPED_GAUSSIAN:
            self.kind = "clamped"
        elif self.name in _SQUASHED_GAUSSIAN:
            self.kind = "squashed"
        else:
            raise GemkitError(
                f"d3rlpy {self.name} has no stochastic policy gemkit can sample (supported: "
                f"{', '.join(_CLAMPED_GAUSSIAN + _SQUASHED_GAUSSIAN)}); use its critic with "
                "gemkit's actor or behavior candidates instead."
            )

    @torch.no_grad()
    def sample(self, states: Tensor, n: int, generator: torch.Generator | None = None) -> Tensor:
        """``[B, S] -> [B, n, A]`` policy samples."""
        out = self.algo.impl.policy(self._obs(states))
        mu, std = out.mu, out.logstd.exp()
        eps = torch.randn(
            (mu.shape[0], n, mu.shape[-1]), generator=generator, device=mu.device, dtype=mu.dtype
        )
        if self.kind == "clamped":
            acts = (out.squashed_mu.unsqueeze(1) + std.unsqueeze(1) * eps).clamp(-1.0, 1.0)
        else:
            acts = torch.tanh(mu.unsqueeze(1) + std.unsqueeze(1) * eps)
        return self._act_out(acts).to(states.device, states.dtype)

    def __repr__(self) -> str:
        return f"D3rlpyPolicySource({self.name}, {self.kind})"


def from_d3rlpy(algo_or_path: Any) -> D3rlpyCritic:
    """Wrap a d3rlpy 2.x continuous Q-learning algorithm (or its ``.d3`` file) as a critic.

    Args:
        algo_or_path: a built d3rlpy algorithm (IQL, CQL, TD3+BC, SAC, AWAC, ...) or the path of
            a file written by ``algo.save()`` (loaded with :func:`load_d3rlpy`).

    Returns:
        A :class:`~gemkit.protocols.Critic` returning ``[E, B, M]`` over raw observations.
    """
    return D3rlpyCritic(algo_or_path)


def policy_from_d3rlpy(algo_or_path: Any) -> tuple[D3rlpyAnchor, D3rlpyPolicySource]:
    """The algorithm's deterministic action and its stochastic policy, as anchor and source.

    Pass them to ``compose(anchor=..., proposer=...)`` to propose candidates with the policy a
    user already has.
    """
    algo = _algo(algo_or_path)
    return D3rlpyAnchor(algo), D3rlpyPolicySource(algo)
