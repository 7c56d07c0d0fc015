"""The ``--backend`` options shared by the commands whose work fans out (sweep, train --seeds)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from enum import Enum
from typing import Optional

import typer

from gemkit.backends import RayBackend, SerialBackend, make_backend

__all__ = [
    "ADDRESS",
    "BACKEND",
    "CPUS_PER_TASK",
    "GPUS_PER_TASK",
    "LOCAL_CPUS",
    "BackendName",
    "open_backend",
]


class BackendName(str, Enum):
    """Where the work runs (``gemkit.backends``)."""

    serial = "serial"
    ray = "ray"


BACKEND = typer.Option(
    BackendName.serial,
    "--backend",
    # rich markup would read [ray] as a style tag and drop it: the bracket is escaped
    help='serial (here, one after another) or ray (one Ray task each; '
    'pip install "gemkit\\[ray]").',
)
ADDRESS: Optional[str] = typer.Option(
    None,
    "--address",
    help="Ray cluster to join: auto (this node's cluster) or ray://HOST:10001 "
    "(default: start a local Ray).",
)
CPUS_PER_TASK: float = typer.Option(
    1.0, "--cpus-per-task", min=0.01, help="Ray: CPUs per task (torch threads match)."
)
GPUS_PER_TASK: float = typer.Option(0.0, "--gpus-per-task", min=0.0, help="Ray: GPUs per task.")
LOCAL_CPUS: Optional[int] = typer.Option(
    None, "--local-cpus", min=1, help="Ray: CPUs of a local Ray started here (default: all)."
)


@contextlib.contextmanager
def open_backend(
    name: BackendName,
    address: str | None,
    cpus_per_task: float,
    gpus_per_task: float,
    local_cpus: int | None,
) -> Iterator[SerialBackend | RayBackend]:
    """The backend the options ask for; a local Ray started for it is shut down at the end."""
    backend = make_backend(
        name.value,
        address=address,
        cpus_per_task=cpus_per_task,
        gpus_per_task=gpus_per_task,
        local_cpus=local_cpus,
    )
    try:
        yield backend
    finally:
        if isinstance(backend, RayBackend):
            backend.close()
