"""Saving and loading gemkit's networks: safetensors weights plus a JSON manifest.

A model directory holds ``models.json`` (each network's class and constructor arguments, the
SHA-256 of the weights file, free-form metadata) and ``models.safetensors``. Both are written
atomically (temporary file, then ``os.replace``); nothing is ever unpickled.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any

import attrs
import torch
from safetensors import SafetensorError
from safetensors.torch import load as load_safetensors
from safetensors.torch import save as save_safetensors
from torch import nn

from gemkit.errors import CheckpointError, GemkitError
from gemkit.models.critic import CriticEnsemble, ValueNetwork
from gemkit.models.generative import DiffusionBehavior, FlowBehavior
from gemkit.models.gmm import ConditionalGMM

__all__ = [
    "MANIFEST",
    "NETWORK_NAMES",
    "WEIGHTS",
    "Models",
    "as_models",
    "atomic_write_bytes",
    "attach_generative",
    "load_models",
    "save_models",
    "weights_digest",
]

MANIFEST = "models.json"
WEIGHTS = "models.safetensors"
FORMAT = "gemkit-models"
VERSION = 1

NETWORK_NAMES = ("actor", "behavior", "critic", "value", "baseline", "generative")
"""The networks a :class:`Models` may hold (and a model directory may store)."""

_CLASSES: dict[str, type[nn.Module]] = {
    "ConditionalGMM": ConditionalGMM,
    "CriticEnsemble": CriticEnsemble,
    "ValueNetwork": ValueNetwork,
    "DiffusionBehavior": DiffusionBehavior,
    "FlowBehavior": FlowBehavior,
}


@attrs.define
class Models:
    """The trained networks a selector can draw on; any of them may be absent.

    Attributes:
        actor: the guided-EM GMM actor ``pi_theta`` (candidate source and anchor).
        behavior: the behavior GMM ``pi_beta`` (support; a candidate source in one ablation).
        critic: any :class:`~gemkit.protocols.Critic`; gemkit's :class:`CriticEnsemble` or not.
        value: the expectile value ``V(s)`` (training only).
        baseline: the fair same-critic baseline actor (``K = 1``), trained beside ``actor`` from
            the same minibatches, critic and value (``TrainConfig.unimodal_baseline``).
        generative: a generative behavior model (:class:`DiffusionBehavior` or
            :class:`FlowBehavior`, ``gemkit fit-proposer``): the ``diffusion`` / ``flow``
            candidate source.
        meta: free-form metadata (dataset id, observation normalisation, ...).
    """

    actor: ConditionalGMM | None = None
    behavior: ConditionalGMM | None = None
    critic: Any = None
    value: ValueNetwork | None = None
    meta: dict[str, Any] = attrs.field(factory=dict)
    baseline: ConditionalGMM | None = None
    generative: DiffusionBehavior | FlowBehavior | None = None

    def modules(self) -> dict[str, nn.Module]:
        """The present networks that are ``nn.Module``s, by name."""
        out: dict[str, nn.Module] = {}
        for name in NETWORK_NAMES:
            m = getattr(self, name)
            if isinstance(m, nn.Module):
                out[name] = m
        return out

    def require_gmm(self, name: str, role: str) -> ConditionalGMM:
        """``self.<name>`` as a GMM, or a one-line error naming the ``role`` that needs it."""
        m = getattr(self, name, None)
        if m is None:
            raise GemkitError(
                f"{role} needs a {name} GMM: pass compose(models=...) a checkpoint directory or a "
                f"Models with {name}=ConditionalGMM(...)."
            )
        if not isinstance(m, ConditionalGMM):
            raise GemkitError(f"{role} needs models.{name} to be a ConditionalGMM, got {type(m)}.")
        return m

    def require_generative(
        self, cls: type[DiffusionBehavior] | type[FlowBehavior], role: str
    ) -> DiffusionBehavior | FlowBehavior:
        """``self.generative`` as a ``cls``, or a one-line error naming the ``role``."""
        m = self.generative
        if not isinstance(m, cls):
            have = "none" if m is None else type(m).__name__
            raise GemkitError(
                f"{role} needs a {cls.__name__} (models.generative is {have}): fit one with "
                "'gemkit fit-proposer' and attach it (compose --proposer-from DIR, or "
                "gemkit.models.attach_generative(models, DIR))."
            )
        return m

    def obs_stats(self) -> tuple[torch.Tensor, torch.Tensor] | None:
        """``(obs_mean [S], obs_std [S])`` the networks were trained on (``meta``), or ``None``."""
        mean, std = self.meta.get("obs_mean"), self.meta.get("obs_std")
        if mean is None or std is None:
            return None
        return (torch.as_tensor(mean, dtype=torch.float32),
                torch.as_tensor(std, dtype=torch.float32))  # fmt: skip

    def normalize_obs(self, observations: torch.Tensor) -> torch.Tensor:
        """Raw ``observations [..., S]`` as the networks see them (unchanged without stats)."""
        stats = self.obs_stats()
        obs = observations.detach().float()
        if stats is None:
            return obs
        mean, std = (t.to(obs.device) for t in stats)
        return (obs - mean) / std

    def unimodal(self) -> Models:
        """The fair same-critic baseline: these models with ``baseline`` as the actor.

        Raises:
            GemkitError: the checkpoint has no baseline actor (trained before gemkit recorded
                one, or with ``unimodal_baseline=false``).
        """
        if self.baseline is None:
            raise GemkitError(
                "these models hold no same-critic baseline actor; retrain with "
                "'gemkit train' (unimodal_baseline=true, the default)."
            )
        return Models(
            actor=self.baseline,
            behavior=self.behavior,
            critic=self.critic,
            value=self.value,
            meta={**self.meta, "actor_kind": "unimodal (same-critic baseline)"},
            generative=self.generative,
        )

    def agreed_dim(self, dim: str) -> int | None:
        """The ``dim`` (``state_dim`` / ``action_dim``) the networks agree on, or ``None``.

        Raises:
            GemkitError: two networks disagree.
        """
        seen = {
            name: getattr(getattr(self, name), dim)
            for name in ("actor", "behavior", "critic")
            if isinstance(getattr(getattr(self, name), dim, None), int)
        }
        if len(set(seen.values())) > 1:
            found = ", ".join(f"{name} {d}" for name, d in seen.items())
            raise GemkitError(f"the networks disagree on {dim} ({found}); load them from one run.")
        return next(iter(seen.values()), None)

    def to(self, device: torch.device | str) -> Models:
        """Move every module to ``device`` (in place) and return self."""
        for m in self.modules().values():
            m.to(device)
        return self


def attach_generative(models: Models, directory: str | Path) -> Models:
    """``models`` with the generative behavior model of ``gemkit fit-proposer``'s ``directory``
    (in place; returned). Its observation statistics must be ``models``' own: it was fitted on
    the same dataset.

    Raises:
        CheckpointError: ``directory`` holds no generative model.
        GemkitError: it was fitted with other observation statistics (another dataset).
    """
    other = load_models(directory)
    if other.generative is None:
        raise CheckpointError(
            f"{str(directory)!r} holds no generative model; fit one with 'gemkit fit-proposer'."
        )
    mine, theirs = models.obs_stats(), other.obs_stats()
    if mine is not None and theirs is not None and not all(
        torch.allclose(a, b) for a, b in zip(mine, theirs, strict=True)
    ):
        raise GemkitError(
            f"the proposer in {str(directory)!r} was fitted with other observation statistics "
            "than these models: fit it on the dataset they were trained on."
        )
    models.generative = other.generative
    if mine is None and theirs is not None:
        models.meta = {**models.meta, "obs_mean": theirs[0].tolist(), "obs_std": theirs[1].tolist()}
    return models


def as_models(models: Models | str | Path | None) -> Models:
    """``models`` as :class:`Models`: itself, loaded from a checkpoint directory, or empty."""
    if models is None:
        return Models()
    if isinstance(models, (str, Path)):
        return load_models(models)
    if not isinstance(models, Models):
        raise GemkitError(
            f"models must be a gemkit.models.Models or a checkpoint directory, got {type(models)}."
        )
    return models


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` so that a reader sees the old file or the new, never half."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _external(name: str, obj: Any) -> dict[str, Any]:
    """How to rebuild a network gemkit cannot serialise, or a one-line refusal.

    An adapter that was built from a file records it as ``rebuild = {"adapter": ..., "path":
    ...}`` (e.g. :func:`gemkit.adapters.from_d3rlpy` given a ``.d3`` path).
    """
    rebuild = getattr(obj, "rebuild", None)
    if isinstance(rebuild, dict) and rebuild.get("adapter") in _ADAPTERS and rebuild.get("path"):
        return {"adapter": str(rebuild["adapter"]), "path": str(rebuild["path"])}
    raise CheckpointError(
        f"cannot save {name}: {type(obj).__name__} is not a gemkit network and records no file "
        "to rebuild it from; save it with its own library and set models."
        f"{name} after load_models, or wrap its saved file (e.g. from_d3rlpy('model.d3'))."
    )


def _rebuild(name: str, entry: dict[str, Any]) -> Any:
    adapter, path = entry.get("adapter"), entry.get("path")
    if adapter not in _ADAPTERS or not isinstance(path, str):
        raise CheckpointError(f"{MANIFEST}: cannot rebuild {name} from {entry!r}.")
    return _ADAPTERS[adapter](path)


def _from_d3rlpy(path: str) -> Any:
    from gemkit.adapters.d3rlpy import from_d3rlpy

    return from_d3rlpy(path)


#: Adapters whose components a model directory can record by the file they were loaded from.
_ADAPTERS = {"d3rlpy": _from_d3rlpy}


def save_models(directory: str | Path, models: Models) -> Path:
    """Write every network of ``models`` to ``directory`` atomically; return the directory.

    gemkit's networks are stored as weights; a component built by an adapter from a file is
    recorded by that file (and rebuilt from it by :func:`load_models`).

    Raises:
        CheckpointError: a network that is neither gemkit's nor rebuildable from a file (the
            message says how to keep it).
    """
    d = Path(directory)
    tensors: dict[str, torch.Tensor] = {}
    entries: dict[str, Any] = {}
    external: dict[str, Any] = {}
    for name in NETWORK_NAMES:
        obj = getattr(models, name)
        if obj is not None and type(obj).__name__ not in _CLASSES:
            external[name] = _external(name, obj)
    for name, m in models.modules().items():
        if name in external:
            continue
        cls = type(m).__name__
        entries[name] = {"class": cls, "spec": m.spec()}  # type: ignore[operator]
        for k, v in m.state_dict().items():
            tensors[f"{name}.{k}"] = v.detach().to("cpu").contiguous()
    d.mkdir(parents=True, exist_ok=True)
    data = save_safetensors(tensors)
    atomic_write_bytes(d / WEIGHTS, data)
    manifest = {
        "format": FORMAT,
        "version": VERSION,
        "sha256": hashlib.sha256(data).hexdigest(),
        "models": entries,
        "external": external,
        "meta": models.meta,
    }
    atomic_write_bytes(d / MANIFEST, json.dumps(manifest, indent=2).encode())
    return d


def weights_digest(directory: str | Path) -> str:
    """The sha256 of a model directory's weights as its manifest records it, read without
    loading the networks: a fingerprint that tells two trainings of one seed apart.

    Raises:
        CheckpointError: ``directory`` holds no gemkit manifest with a weights hash.
    """
    path = Path(directory) / MANIFEST
    try:
        digest = json.loads(path.read_text()).get("sha256")
    except (OSError, json.JSONDecodeError, UnicodeDecodeError, AttributeError):
        digest = None
    if not isinstance(digest, str):
        raise CheckpointError(
            f"{str(path)!r} is not a readable gemkit manifest: pass a directory written by "
            "'gemkit train' or 'gemkit fit-proposer'."
        )
    return digest


def load_models(directory: str | Path, device: torch.device | str = "cpu") -> Models:
    """Load a directory written by :func:`save_models` (no unpickling).

    Raises:
        CheckpointError: missing files, a foreign or corrupt manifest, weights that do not match
            the manifest's hash, or tensors that do not fit the recorded architectures.
    """
    d = Path(directory)
    man_path, w_path = d / MANIFEST, d / WEIGHTS
    if not d.is_dir():
        raise CheckpointError(
            f"checkpoint directory {str(d)!r} does not exist; train one with "
            "'gemkit train' or pass the right path."
        )
    if not man_path.is_file() or not w_path.is_file():
        raise CheckpointError(
            f"{str(d)!r} is not a gemkit checkpoint: it lacks {MANIFEST} or {WEIGHTS}."
        )
    try:
        manifest = json.loads(man_path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise CheckpointError(
            f"{man_path} is not valid JSON: the checkpoint is corrupt, re-save it."
        ) from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise CheckpointError(f"{man_path} is not a gemkit model manifest.")
    data = w_path.read_bytes()
    if hashlib.sha256(data).hexdigest() != manifest.get("sha256"):
        raise CheckpointError(
            f"{w_path} does not match its manifest (truncated or replaced); "
            "re-save the checkpoint or resume training to rewrite it."
        )
    try:
        tensors = load_safetensors(data)
    except (SafetensorError, ValueError, RuntimeError) as exc:
        raise CheckpointError(f"{w_path} cannot be read as safetensors ({exc}).") from None
    out = Models(meta=dict(manifest.get("meta", {})))
    for name, entry in manifest.get("models", {}).items():
        cls = _CLASSES.get(entry.get("class"))
        if cls is None or name not in NETWORK_NAMES:
            raise CheckpointError(
                f"{man_path}: unknown network {name!r} of class {entry.get('class')!r}."
            )
        module = cls(**entry["spec"])
        prefix = f"{name}."
        sd = {k[len(prefix) :]: v for k, v in tensors.items() if k.startswith(prefix)}
        try:
            module.load_state_dict(sd, strict=True)
        except RuntimeError as exc:
            first = str(exc).strip().splitlines()[0]
            raise CheckpointError(
                f"{w_path}: weights of {name!r} do not fit its architecture ({first})."
            ) from None
        setattr(out, name, module.to(device).eval())
    for name, entry in manifest.get("external", {}).items():
        if name not in NETWORK_NAMES or not isinstance(entry, dict):
            raise CheckpointError(f"{man_path}: unknown external network {name!r}.")
        setattr(out, name, _rebuild(name, entry))
    return out
