"""The component protocols of GEM's Phase II, in one leaf module.

This module imports nothing of gemkit but its error types. Every component of a
:class:`~gemkit.selector.Selector` is typed by one of the protocols below, so a user can swap any
of them for their own object.

Shape letters used throughout gemkit:

- ``B``: states in a batch,
- ``S``: state (observation) dims,
- ``N``: sampled candidates, ``M``: candidates in a set (``N`` plus one where there is an anchor),
- ``A``: action dims,
- ``K``: mixture components,
- ``E``: ensemble members.

All tensors are ``float32`` unless stated and live on one device; components return tensors on
the device and in the dtype of their inputs, and never modify their inputs.

**The observation contract.** Every component that reads states says which states it takes,
with an ``observation`` attribute:

- ``"raw"``: the environment's observations, exactly as ``Selector.select`` received them;
- ``"normalized"``: gemkit's standardised states ``(s - obs_mean) / obs_std``, with the
  statistics of the :class:`~gemkit.models.Models` the selector was composed with (identical
  to raw ones when those hold no statistics).

gemkit's own networks (:class:`~gemkit.models.ConditionalGMM`,
:class:`~gemkit.models.CriticEnsemble`) declare ``"normalized"``, and the built-in components
built on them pass their network's declaration on. **Anything that does not declare is
``"raw"``**: a critic trained by another library applies its own observation scaler to the
observations the environment gives, so it must never see gemkit's normalised ones. The selector
hands each component the states it declared.
"""

from __future__ import annotations

from typing import Literal, Protocol, runtime_checkable

import torch
from torch import Tensor

from gemkit.errors import GemkitError

__all__ = [
    "OBSERVATION_KINDS",
    "Anchor",
    "CandidateSource",
    "Critic",
    "HasComponentMeans",
    "HasValueScale",
    "ObservationKind",
    "Proposer",
    "Reducer",
    "Support",
    "Value",
    "WrapsNetwork",
    "declared_device",
    "module_device",
    "observation_kind",
]


ObservationKind = Literal["raw", "normalized"]
"""Which states a component takes (the module's observation contract)."""

OBSERVATION_KINDS: tuple[str, ...] = ("raw", "normalized")
"""The valid ``observation`` declarations; a component without one takes ``"raw"``."""


def module_device(module: object) -> torch.device | None:
    """The device of ``module``'s first parameter (or buffer), ``None`` for a plain callable."""
    for getter in ("parameters", "buffers"):
        tensors = getattr(module, getter, None)
        if callable(tensors):
            first = next(iter(tensors()), None)
            if isinstance(first, Tensor):
                return first.device
    return None


def declared_device(component: object) -> torch.device | None:
    """Where a component computes, as it declares it: its ``device`` attribute, else ``None``.

    gemkit's built-in components declare the device of the network they wrap (see
    :class:`WrapsNetwork`); the selector asks its components.
    """
    d = getattr(component, "device", None)
    return torch.device(d) if isinstance(d, (str, torch.device)) else None


def observation_kind(component: object) -> str:
    """The states ``component`` takes: its ``observation`` declaration, ``"raw"`` without one.

    Raises:
        GemkitError: the declaration is not one of :data:`~gemkit.protocols.OBSERVATION_KINDS`.
    """
    kind = getattr(component, "observation", "raw")
    if kind not in OBSERVATION_KINDS:
        raise GemkitError(
            f"{type(component).__name__}.observation is {kind!r}; declare one of "
            f"{', '.join(OBSERVATION_KINDS)}."
        )
    return str(kind)


class WrapsNetwork:
    """Mixin of a component built on one network (``network``): it takes the states the
    network declares and computes where the network lives (its declared device, else its
    parameters')."""

    @property
    def network(self) -> object:
        raise NotImplementedError

    @property
    def observation(self) -> str:
        """The states the network takes (``normalized`` for gemkit's networks)."""
        return observation_kind(self.network)

    @property
    def device(self) -> torch.device | None:
        """Where the network computes (``None`` for a plain function)."""
        return declared_device(self.network) or module_device(self.network)


@runtime_checkable
class Critic(Protocol):
    """Any Q-function: gemkit's ensemble or a third-party network.

    ``critic(states, actions)`` with ``states [B, M, S]`` and ``actions [B, M, A]`` returns
    ``[E, B, M]`` (an ensemble of ``E`` members) or ``[B, M]`` (a single critic, read as
    ``E = 1``). ``states`` may be an expanded view (stride 0 along ``M``): do not write to it.

    ``states`` are raw observations unless the critic declares ``observation = "normalized"``
    (see the module's observation contract): a critic from another library gets the
    environment's observations and applies its own scaler.
    """

    def __call__(self, states: Tensor, actions: Tensor) -> Tensor: ...


@runtime_checkable
class Anchor(Protocol):
    """A deterministic action per state, ``states [B, S] -> [B, A]``.

    An anchor that returns ``None`` is "no anchor": the candidate set is the samples alone.
    Such an anchor says so with ``is_none = True`` (read by the proposer's ``has_anchor``).
    """

    def __call__(self, states: Tensor) -> Tensor | None: ...


@runtime_checkable
class CandidateSource(Protocol):
    """``sample(states [B, S], n, generator) -> [B, n, A]`` inside the action box.

    Randomness comes only from ``generator``.
    """

    def sample(
        self, states: Tensor, n: int, generator: torch.Generator | None = None
    ) -> Tensor: ...


@runtime_checkable
class Proposer(Protocol):
    """Proposes the candidate set ``C(s)`` of Eq. 1: an optional anchor plus ``n`` samples.

    ``propose(states [B, S], n, generator) -> candidates [B, M, A]`` with
    ``M = n + int(has_anchor)``; when there is an anchor it is ``candidates[:, 0]``.
    Samples lie inside the action box. Randomness comes only from ``generator``.
    """

    @property
    def has_anchor(self) -> bool: ...

    def propose(
        self, states: Tensor, n: int, generator: torch.Generator | None = None
    ) -> Tensor: ...


@runtime_checkable
class Value(Protocol):
    """Scores candidates by value: ``value(states [B, S], candidates [B, M, A]) -> [B, M]``.

    For gemkit's built-ins this is a reduction over a critic ensemble (Eq. 3:
    ``mean_e Q_e - beta * std_e Q_e``); higher is better.
    """

    def __call__(self, states: Tensor, candidates: Tensor) -> Tensor: ...


@runtime_checkable
class Support(Protocol):
    """Behavior support of each candidate (Eq. 2).

    ``log_likelihood(states [B, S], candidates [B, M, A]) -> [B, M]`` is the raw score, e.g.
    ``log pi_beta(a | s)``. ``normalize(loglik [B, M]) -> [B, M]`` standardises it per state,
    over that state's candidate set (``zscore``) or leaves it as is (``raw``).
    """

    @property
    def normalization(self) -> str: ...

    def log_likelihood(self, states: Tensor, candidates: Tensor) -> Tensor: ...

    def normalize(self, loglik: Tensor) -> Tensor: ...


@runtime_checkable
class HasComponentMeans(Protocol):
    """A support that can report its mixture's component means, for the CollapseDist audit.

    ``component_means(states [B, S]) -> [B, K, A]``.
    """

    def component_means(self, states: Tensor) -> Tensor: ...


@runtime_checkable
class HasValueScale(Protocol):
    """A value term that standardises within each candidate set and can say by how much.

    ``value_and_scale(states [B, S], candidates [B, M, A]) -> (value [B, M], scale [B] | None)``:
    the value term (what ``__call__`` returns) and the per-state scale it divided the raw value
    by (``None`` where it does not standardise), so that a cue in raw critic units (the adaptive
    budget's ensemble std) can be put in the value's units. The selector records the scale in
    :attr:`~gemkit.selection.Selection.value_scale`.
    """

    def value_and_scale(
        self, states: Tensor, candidates: Tensor
    ) -> tuple[Tensor, Tensor | None]: ...


@runtime_checkable
class Reducer(Protocol):
    """Turns a scored candidate set into one action per state (Sec. 2.5).

    ``reducer(candidates [B, M, A], score [B, M]) -> action [B, A]``. A reducer that draws
    (e.g. ``softmax``) sets ``stochastic = True`` and takes a ``generator=`` keyword too: the
    selector then passes the selection's generator, so seeded selections stay reproducible.
    """

    def __call__(self, candidates: Tensor, score: Tensor) -> Tensor: ...
