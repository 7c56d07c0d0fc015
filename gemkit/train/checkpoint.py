"""Training checkpoints: the exported models plus the full trainer state, never pickled.

A checkpoint directory holds

- ``models.json`` + ``models.safetensors``: :func:`gemkit.models.save_models` output (actor,
  behavior, critic, value; ``meta`` with ``obs_mean``, ``obs_std``, ``dataset_id``, the action
  box and the training config). This is what ``gemkit.models.load_models(dir)``,
  ``compose(models=...)`` and ``gemkit compose --checkpoint DIR`` read.
- ``trainer_state.safetensors``: everything resuming needs, in ONE file so that it is replaced
  atomically: every network's weights (the target critic included), the Adam state, the
  generator state; its safetensors metadata holds a JSON header (format tag, step, config,
  dataset fingerprint and a SHA-256 over the tensors).
- ``config.json``: the training config, for people and for ``gemkit train --config``.

Every file is written to a temporary name and moved into place (``os.replace``). Resuming reads
only ``trainer_state.safetensors``, so a kill at any moment leaves a resumable directory.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load as load_safetensors
from safetensors.torch import save as save_safetensors

from gemkit.errors import CheckpointError
from gemkit.models.io import atomic_write_bytes, save_models
from gemkit.train.config import ConfigError, TrainConfig
from gemkit.train.trainer import Trainer

__all__ = [
    "CONFIG_FILE",
    "STATE_FILE",
    "config_differences",
    "load_config",
    "load_trainer_state",
    "read_state_header",
    "resume_pretrain_steps",
    "save_checkpoint",
]

STATE_FILE = "trainer_state.safetensors"
CONFIG_FILE = "config.json"
STATE_FORMAT = "gemkit-trainer-state"
STATE_VERSION = 1
_HEADER_KEY = "gemkit"


def _tensor_digest(tensors: dict[str, torch.Tensor]) -> str:
    h = hashlib.sha256()
    for k in sorted(tensors):
        t = tensors[k]
        h.update(k.encode())
        h.update(f"{t.dtype}{list(t.shape)}".encode())
        h.update(t.reshape(-1).contiguous().view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


def _state_tensors(trainer: Trainer) -> dict[str, torch.Tensor]:
    tensors: dict[str, torch.Tensor] = {}
    for name, net in trainer.networks().items():
        for k, v in net.state_dict().items():
            tensors[f"net.{name}.{k}"] = v.detach().to("cpu").contiguous()
    for pid, st in trainer.optimizer.state_dict()["state"].items():
        for k, v in st.items():
            if not isinstance(v, torch.Tensor):
                raise CheckpointError(f"optimizer state {k!r} is not a tensor; cannot save it.")
            tensors[f"optim.{pid}.{k}"] = v.detach().to("cpu").contiguous()
    tensors["rng.generator"] = trainer.rng_state()
    return tensors


def save_checkpoint(directory: str | Path, trainer: Trainer) -> Path:
    """Write ``trainer``'s checkpoint into ``directory`` (atomically, file by file).

    The resumable state goes first (one file), then the model export and ``config.json``.

    Returns:
        The directory.
    """
    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    tensors = _state_tensors(trainer)
    header = {
        "format": STATE_FORMAT,
        "version": STATE_VERSION,
        "step": trainer.step,
        "pretrain_steps": trainer.pretrain_steps,
        "config": trainer.config.to_dict(),
        "dataset_sha256": trainer.fingerprint,
        "dataset_id": trainer.dataset_id,
        "tensors_sha256": _tensor_digest(tensors),
    }
    data = save_safetensors(tensors, metadata={_HEADER_KEY: json.dumps(header)})
    atomic_write_bytes(d / STATE_FILE, data)
    save_models(d, trainer.models())
    atomic_write_bytes(d / CONFIG_FILE, trainer.config.to_json().encode())
    return d


def read_state_header(directory: str | Path) -> dict[str, Any]:
    """The JSON header of ``directory``'s trainer state (step, config, dataset, ...).

    Raises:
        CheckpointError: no state file, or one that is truncated or not gemkit's.
    """
    path = Path(directory) / STATE_FILE
    if not Path(directory).is_dir():
        raise CheckpointError(f"checkpoint directory {str(directory)!r} does not exist.")
    if not path.is_file():
        raise CheckpointError(
            f"{str(directory)!r} holds no {STATE_FILE}: it is not a resumable gemkit checkpoint."
        )
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
    except (SafetensorError, OSError, ValueError) as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise CheckpointError(f"{path} is truncated or not a safetensors file ({first}).") from None
    try:
        header = json.loads(meta.get(_HEADER_KEY, ""))
    except json.JSONDecodeError:
        header = None
    if not isinstance(header, dict) or header.get("format") != STATE_FORMAT:
        raise CheckpointError(f"{path} is not a gemkit trainer state (foreign safetensors file).")
    if header.get("version") != STATE_VERSION:
        raise CheckpointError(
            f"{path} has trainer-state version {header.get('version')}, this gemkit reads "
            f"{STATE_VERSION}."
        )
    return header


def config_differences(recorded: Mapping[str, Any], config: TrainConfig) -> list[str]:
    """The keys (``device`` aside) in which a checkpoint's recorded config and ``config`` differ.

    ``recorded`` is read as a :class:`TrainConfig` first, so a key this gemkit added since the
    checkpoint was written counts as its default, and lists and tuples compare equal.
    """
    try:
        theirs = TrainConfig.from_dict(recorded).to_dict()
    except ConfigError:
        theirs = dict(recorded)
    ours = config.to_dict()
    keys = (set(theirs) | set(ours)) - {"device"}
    return sorted(k for k in keys if theirs.get(k) != ours.get(k))


def resume_pretrain_steps(header: Mapping[str, Any]) -> int:
    """The behavior-only steps of the run a trainer-state header belongs to.

    Headers written before gemkit recorded it hold only the config; that run pretrained for
    ``gmm_pretrain_steps``.
    """
    if "pretrain_steps" in header:
        return int(header["pretrain_steps"])
    return int(dict(header.get("config", {})).get("gmm_pretrain_steps", 0))


def load_config(directory: str | Path) -> TrainConfig:
    """The training config recorded in ``directory``'s trainer state.

    Raises:
        CheckpointError: see :func:`read_state_header`, or a config this gemkit cannot read.
    """
    header = read_state_header(directory)
    try:
        return TrainConfig.from_dict(header["config"])
    except (ConfigError, KeyError, TypeError) as exc:
        raise CheckpointError(f"the config in {str(directory)!r} is invalid ({exc}).") from None


def load_trainer_state(directory: str | Path, trainer: Trainer) -> None:
    """Restore ``trainer`` (built with the same config and dataset) from ``directory``.

    Restores every network, the target critic, the Adam state, the generator and the step, so
    that training continues exactly as if it had never stopped. Only safetensors is read.

    Raises:
        CheckpointError: a missing, truncated, corrupt or foreign state; a checkpoint of another
            dataset or of another config (``device`` may differ).
    """
    d = Path(directory)
    header = read_state_header(d)
    path = d / STATE_FILE
    try:
        tensors = load_safetensors(path.read_bytes())
    except (SafetensorError, ValueError, RuntimeError) as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise CheckpointError(f"{path} cannot be read ({first}).") from None
    if _tensor_digest(tensors) != header.get("tensors_sha256"):
        raise CheckpointError(f"{path} is corrupt: its tensors do not match their checksum.")
    diff = config_differences(header.get("config", {}), trainer.config)
    if diff:
        raise CheckpointError(
            f"{str(d)!r} was trained with a different config ({', '.join(diff)} differ); "
            "resume without --config/--set or start a new --out directory."
        )
    if header.get("dataset_sha256") != trainer.fingerprint:
        raise CheckpointError(
            f"{str(d)!r} was trained on another dataset; resume it with the dataset it was "
            "trained on."
        )

    dev = trainer.device
    try:
        for name, net in trainer.networks().items():
            prefix = f"net.{name}."
            sd = {k[len(prefix) :]: v for k, v in tensors.items() if k.startswith(prefix)}
            net.load_state_dict(sd, strict=True)
        opt_sd = trainer.optimizer.state_dict()
        state: dict[int, dict[str, torch.Tensor]] = {}
        for k, v in tensors.items():
            if k.startswith("optim."):
                _, pid, key = k.split(".", 2)
                state.setdefault(int(pid), {})[key] = v.to(dev)
        opt_sd["state"] = state
        trainer.optimizer.load_state_dict(opt_sd)
        trainer.set_rng_state(tensors["rng.generator"])
    except (RuntimeError, KeyError, ValueError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc) else type(exc).__name__
        raise CheckpointError(f"{path} does not fit this trainer ({first}).") from None
    trainer.step = int(header["step"])
    trainer.pretrain_steps = resume_pretrain_steps(header)
