"""Plain ``nn.Module`` Q(s, a) networks as a gemkit critic, one or an ensemble.

Two calling conventions cover the common libraries:

- ``inputs="pair"``: ``q(state, action)``, as CORL's ``FullyConnectedQFunction`` and most
  hand-written critics;
- ``inputs="concat"``: ``q(torch.cat([obs, act], -1))``, as each network of Stable-Baselines3's
  ``ContinuousCritic.q_networks``.

A network returns ``[N]`` or ``[N, 1]`` for ``N`` state-action pairs. The critic runs every
network under ``no_grad`` on the network's own device and dtype and returns ``[E, B, M]`` on the
inputs' device and dtype. It takes **raw** observations unless told otherwise (see the
observation contract in :mod:`gemkit.protocols`).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, Literal

import torch
from torch import Tensor, nn

from gemkit.errors import GemkitError, ShapeError
from gemkit.protocols import OBSERVATION_KINDS, ObservationKind

__all__ = ["ModuleCritic", "from_modules"]

Inputs = Literal["pair", "concat"]
INPUTS: tuple[str, ...] = ("pair", "concat")


def check_observation(observation: str) -> ObservationKind:
    """``observation`` if it is a valid declaration, else a one-line error."""
    if observation not in OBSERVATION_KINDS:
        raise GemkitError(
            f"observation must be one of {', '.join(OBSERVATION_KINDS)}, got {observation!r}."
        )
    return observation  # type: ignore[return-value]


def module_placement(module: nn.Module) -> tuple[torch.device, torch.dtype]:
    """The device and floating dtype of ``module``'s first parameter or buffer (CPU float32)."""
    for t in (*module.parameters(), *module.buffers()):
        if t.is_floating_point():
            return t.device, t.dtype
    return torch.device("cpu"), torch.float32


def first_line(exc: BaseException) -> str:
    """The first line of an exception's message, or its type name when it has none."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def flatten_modules(items: Iterable[Any]) -> list[Any]:
    """``items`` with every list, tuple or ``nn.ModuleList`` among them spliced in."""
    out: list[Any] = []
    for item in items:
        if isinstance(item, (list, tuple, nn.ModuleList)):
            out.extend(item)
        else:
            out.append(item)
    return out


def as_module_list(modules: Iterable[Any], what: str, kind: type = nn.Module) -> list[Any]:
    """``modules`` as a non-empty list of ``kind`` instances, or a one-line error."""
    out = list(modules)
    if not out:
        raise GemkitError(f"{what} needs at least one network.")
    for i, m in enumerate(out):
        if not isinstance(m, kind):
            raise GemkitError(
                f"{what}: network #{i} is a {type(m).__name__}, not a {kind.__name__}."
            )
    return out


class EnsembleCritic:
    """Shared plumbing of the module critics: ``[B, M, S], [B, M, A] -> [E, B, M]``.

    Subclasses implement :meth:`_q` (one network on flat ``[N, S]``, ``[N, A]`` inputs already
    on its device and dtype, returning ``[N]`` or ``[N, 1]``).
    """

    def __init__(self, modules: Sequence[nn.Module], observation: str) -> None:
        self.modules = list(modules)
        self.observation: ObservationKind = check_observation(observation)
        self._placement = [module_placement(m) for m in self.modules]

    @property
    def n_members(self) -> int:
        """``E``, the number of networks."""
        return len(self.modules)

    def _q(self, module: nn.Module, states: Tensor, actions: Tensor) -> Tensor:
        raise NotImplementedError

    def _describe_call(self) -> str:
        return ""

    def _describe(self) -> str:
        return ""

    @torch.no_grad()
    def __call__(self, states: Tensor, actions: Tensor) -> Tensor:
        """``states [B, M, S]``, ``actions [B, M, A] -> [E, B, M]``."""
        name = type(self).__name__
        for label, x in (("states", states), ("actions", actions)):
            if not isinstance(x, Tensor) or x.dim() != 3 or not x.is_floating_point():
                got = list(x.shape) if isinstance(x, Tensor) else type(x).__name__
                raise ShapeError(f"{name} takes float {label} [B, M, .], got {got}.")
        if states.shape[:2] != actions.shape[:2]:
            raise ShapeError(
                f"{name}: states {list(states.shape)} and actions {list(actions.shape)} must "
                "share [B, M]."
            )
        b, m = actions.shape[:2]
        flat_s = states.reshape(b * m, states.shape[-1])
        flat_a = actions.reshape(b * m, actions.shape[-1])
        out = []
        for i, (module, (device, dtype)) in enumerate(
            zip(self.modules, self._placement, strict=True)
        ):
            s, a = flat_s.to(device, dtype), flat_a.to(device, dtype)
            try:
                q = self._q(module, s, a)
            except (RuntimeError, KeyError, TypeError, ValueError) as exc:
                raise ShapeError(
                    f"{name}: network #{i} failed on states [{b * m}, {states.shape[-1]}] and "
                    f"actions [{b * m}, {actions.shape[-1]}]{self._describe_call()}: "
                    f"{first_line(exc)}"
                ) from None
            if not isinstance(q, Tensor) or q.shape not in ((b * m,), (b * m, 1)):
                got = list(q.shape) if isinstance(q, Tensor) else type(q).__name__
                raise ShapeError(
                    f"{name}: network #{i} must return [N] or [N, 1] Q-values for N = {b * m} "
                    f"state-action pairs, got {got}."
                )
            out.append(q.reshape(b, m).to(actions.device, actions.dtype))
        return torch.stack(out)

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(E={self.n_members}{self._describe()}, "
            f"observation={self.observation})"
        )


class ModuleCritic(EnsembleCritic):
    """Plain ``nn.Module`` Q-networks as a :class:`~gemkit.protocols.Critic` (see
    :func:`from_modules`)."""

    def __init__(
        self, modules: Sequence[nn.Module], inputs: Inputs = "pair", observation: str = "raw"
    ) -> None:
        if inputs not in INPUTS:
            raise GemkitError(f"inputs must be one of {', '.join(INPUTS)}, got {inputs!r}.")
        super().__init__(as_module_list(modules, "from_modules"), observation)
        self.inputs = inputs

    def _q(self, module: nn.Module, states: Tensor, actions: Tensor) -> Tensor:
        if self.inputs == "pair":
            return module(states, actions)
        return module(torch.cat([states, actions], dim=-1))

    def _describe_call(self) -> str:
        return " as q(state, action)" if self.inputs == "pair" else " as q(cat([state, action]))"

    def _describe(self) -> str:
        return f", inputs={self.inputs}"


def from_modules(
    *q_networks: nn.Module | Sequence[nn.Module],
    inputs: Inputs = "pair",
    observation: str = "raw",
) -> ModuleCritic:
    """Wrap plain ``nn.Module`` Q(s, a) networks as a critic returning ``[E, B, M]``.

    Args:
        q_networks: one network, several, or one list/``nn.ModuleList`` of them (e.g. SB3's
            ``critic.q_networks``); ``E`` is their number.
        inputs: ``"pair"`` calls ``q(state, action)``; ``"concat"`` calls
            ``q(torch.cat([state, action], -1))``.
        observation: the states the networks were trained on: ``"raw"`` (the environment's, the
            default) or ``"normalized"`` (gemkit's standardised ones).

    Returns:
        A :class:`~gemkit.protocols.Critic` (:class:`ModuleCritic`).

    Raises:
        GemkitError: no network, something that is not an ``nn.Module``, or a bad option.

    Example:
        >>> import torch
        >>> from torch import nn
        >>> q1, q2 = (nn.Sequential(nn.Linear(5, 8), nn.ReLU(), nn.Linear(8, 1)) for _ in "ab")
        >>> critic = from_modules(q1, q2, inputs="concat")
        >>> critic(torch.zeros(4, 6, 3), torch.zeros(4, 6, 2)).shape
        torch.Size([2, 4, 6])
    """
    return ModuleCritic(flatten_modules(q_networks), inputs=inputs, observation=observation)
