"""One registry per component kind: names -> factories, with did-you-mean errors.

A factory takes the trained networks and the selector config and returns a component::

    @SOURCES.register("my-source")
    def _my_source(models: Models, config: SelectorConfig) -> CandidateSource: ...

Third-party packages can register components without importing gemkit first, through entry
points in the groups ``gemkit.sources``, ``gemkit.anchors``, ``gemkit.values``, ``gemkit.supports``
and ``gemkit.reducers`` (each entry point names a factory; its name is the registry name).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterator
from importlib.metadata import entry_points
from typing import Any, Generic, TypeVar

from gemkit.errors import UnknownComponentError, unknown_name_message

__all__ = ["ANCHORS", "REDUCERS", "REGISTRIES", "SOURCES", "SUPPORTS", "VALUES", "Registry"]

F = TypeVar("F", bound=Callable[..., Any])


class Registry(Generic[F]):
    """Names -> factories for one component kind.

    Args:
        kind: what the names are (used in messages, e.g. ``"value"``).
        group: the entry-point group scanned once, lazily, for third-party factories.
        builtin: the module that registers gemkit's own factories, imported on first use (so
            the built-ins are there however gemkit was imported).
    """

    def __init__(self, kind: str, group: str, builtin: str | None = None) -> None:
        self.kind = kind
        self.group = group
        self.builtin = builtin
        self._factories: dict[str, F] = {}
        self._loaded_entry_points = False

    def register(self, name: str, *, overwrite: bool = False) -> Callable[[F], F]:
        """Decorator registering ``factory`` under ``name``; a taken name is an error."""

        def deco(factory: F) -> F:
            if not name or not isinstance(name, str):
                raise ValueError(f"a {self.kind} name must be a non-empty string.")
            if name in self._factories and not overwrite:
                raise ValueError(
                    f"{self.kind} {name!r} is already registered; pick another name or pass "
                    "overwrite=True."
                )
            self._factories[name] = factory
            return factory

        return deco

    def _load_entry_points(self) -> None:
        if self._loaded_entry_points:
            return
        self._loaded_entry_points = True
        if self.builtin is not None:
            importlib.import_module(self.builtin)  # its decorators register the built-ins
        for ep in entry_points(group=self.group):
            if ep.name not in self._factories:
                self._factories[ep.name] = ep.load()

    def names(self) -> list[str]:
        """Every registered name, sorted."""
        self._load_entry_points()
        return sorted(self._factories)

    def get(self, name: str) -> F:
        """The factory registered as ``name``.

        Raises:
            UnknownComponentError: the name is unknown; the message lists the valid ones.
        """
        self._load_entry_points()
        try:
            return self._factories[name]
        except KeyError:
            raise UnknownComponentError(
                unknown_name_message(self.kind, name, self._factories)
            ) from None

    def __contains__(self, name: object) -> bool:
        self._load_entry_points()
        return name in self._factories

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def describe(self) -> dict[str, str]:
        """Name -> first line of the factory's docstring."""
        return {n: (self._factories[n].__doc__ or "").strip().split("\n")[0] for n in self.names()}


SOURCES: Registry[Callable[..., Any]] = Registry(
    "proposer", "gemkit.sources", "gemkit.proposers.sources"
)
ANCHORS: Registry[Callable[..., Any]] = Registry(
    "anchor", "gemkit.anchors", "gemkit.proposers.anchors"
)
VALUES: Registry[Callable[..., Any]] = Registry("value", "gemkit.values", "gemkit.scorers.values")
SUPPORTS: Registry[Callable[..., Any]] = Registry(
    "support", "gemkit.supports", "gemkit.support.behavior"
)
REDUCERS: Registry[Callable[..., Any]] = Registry("reducer", "gemkit.reducers", "gemkit.reducers")

#: Every registry by the compose() argument it serves.
REGISTRIES: dict[str, Registry[Callable[..., Any]]] = {
    "proposer": SOURCES,
    "anchor": ANCHORS,
    "value": VALUES,
    "support": SUPPORTS,
    "reducer": REDUCERS,
}
