"""Where work that fans out runs: in this process (``serial``) or as Ray tasks (``ray``).

A :class:`Backend` maps a function over items. Every item's result comes back to the driver
(the calling process), one at a time as each finishes, through ``on_result``: the driver alone
writes results, so a task that dies and is retried still gives exactly one result. Both
backends call the same function on the same items, so they give the same numbers; only the
order in which results arrive differs.

- :class:`SerialBackend` (the default everywhere): a loop in this process, in item order.
- :class:`RayBackend`: one Ray task per item, with declared resources (``num_cpus``,
  ``num_gpus``; torch's threads are set to ``num_cpus`` inside the task), on a local Ray started
  on demand or on an existing cluster (``address="auto"`` or ``"ray://HOST:10001"``). A task
  whose worker process dies is retried up to ``max_retries`` times. Ray is an optional extra
  (``pip install "gemkit[ray]"``) and is imported only when a :class:`RayBackend` runs.

Large inputs shared by every item (networks, a dataset already loaded) are passed once as
``shared`` (Ray's object store for the ``ray`` backend); files the tasks open themselves (a
Minari dataset) must lie on a path every node sees: the driver's ``MINARI_DATASETS_PATH`` is
forwarded to every task (:data:`FORWARDED_ENV`).

This module imports nothing of gemkit but its errors; torch and Ray are imported lazily.
"""

from __future__ import annotations

import os
import statistics
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol, TypeVar

import attrs

from gemkit.errors import GemkitError

__all__ = [
    "BACKENDS",
    "FORWARDED_ENV",
    "Backend",
    "FanOutReport",
    "RayBackend",
    "SerialBackend",
    "TaskTiming",
    "make_backend",
]

S = TypeVar("S")
T = TypeVar("T")
R = TypeVar("R")

BACKENDS = ("serial", "ray")
"""The backend names :func:`make_backend` takes."""

FORWARDED_ENV = ("MINARI_DATASETS_PATH",)
"""Environment variables of the driver set in every Ray task (where the datasets are)."""

RAY_INSTALL = 'the ray backend needs Ray: pip install "gemkit[ray]" (or pip install "ray>=2.40").'


@attrs.frozen
class TaskTiming:
    """Where one task's time went (seconds).

    Attributes:
        index: the item's position in the mapped sequence.
        run_s: the function's own wall time, measured inside the task.
        queue_s: from submission by the driver to the start of the function (waiting for a free
            worker, shipping the arguments, starting a worker process); 0 for ``serial``.
        return_s: from the end of the function to the driver holding the result.
    """

    index: int
    run_s: float
    queue_s: float = 0.0
    return_s: float = 0.0


@attrs.frozen
class FanOutReport:
    """One :meth:`Backend.map` call: its wall time, parallel slots and every task's timing."""

    backend: str
    wall_s: float
    slots: int
    tasks: tuple[TaskTiming, ...]

    def summary(self) -> str:
        """One line: tasks, wall time, time inside tasks, busy fraction, queue and overhead."""
        n = len(self.tasks)
        if n == 0:
            return f"{self.backend}: nothing to run"
        run = [t.run_s for t in self.tasks]
        busy = sum(run) / max(self.wall_s * self.slots, 1e-9)
        line = (
            f"{self.backend}: {n} task(s) on {self.slots} slot(s) in {self.wall_s:.1f} s wall; "
            f"time in tasks {sum(run):.1f} s (mean {statistics.fmean(run):.2f} s, max "
            f"{max(run):.2f} s), slots busy {100 * busy:.0f}%"
        )
        if self.backend != "serial":
            q = statistics.fmean(t.queue_s for t in self.tasks)
            r = statistics.fmean(t.return_s for t in self.tasks)
            line += f"; per task: queue {q:.2f} s, return {r * 1e3:.0f} ms (means)"
        return line


class Backend(Protocol):
    """Runs ``fn(shared, item)`` for every item and hands each result to the driver."""

    name: str

    def map(
        self,
        fn: Callable[[S, T], R],
        items: Sequence[T],
        on_result: Callable[[int, R], None],
        shared: S,
    ) -> FanOutReport:
        """Call ``fn(shared, item)`` for each item; ``on_result(index, result)`` in the driver.

        ``on_result`` is called once per item, in the order results arrive. ``fn`` must be a
        module-level function (Ray ships it by reference) and its result picklable.
        """
        ...


class SerialBackend:
    """In this process, one item after another, in order (what gemkit always did)."""

    name = "serial"

    def map(
        self,
        fn: Callable[[S, T], R],
        items: Sequence[T],
        on_result: Callable[[int, R], None],
        shared: S,
    ) -> FanOutReport:
        """See :meth:`Backend.map`."""
        t_start = time.perf_counter()
        timings = []
        for i, item in enumerate(items):
            t0 = time.perf_counter()
            result = fn(shared, item)
            timings.append(TaskTiming(i, time.perf_counter() - t0))
            on_result(i, result)
        return FanOutReport("serial", time.perf_counter() - t_start, 1, tuple(timings))


def _in_task(
    fn: Callable[[S, T], R], shared: S, item: T, threads: int, env: Mapping[str, str], sent: float
) -> tuple[R, float, float, float]:
    """The body of every Ray task: set threads and env, time ``fn(shared, item)``."""
    started = time.time()
    os.environ.update(env)
    import torch

    torch.set_num_threads(threads)
    t0 = time.perf_counter()
    result = fn(shared, item)
    run_s = time.perf_counter() - t0
    return result, run_s, started - sent, time.time()


def _import_ray() -> Any:
    try:
        import ray
    except ImportError:
        raise GemkitError(RAY_INSTALL) from None
    return ray


@attrs.define
class RayBackend:
    """One Ray task per item on a local Ray (started on demand) or an existing cluster.

    Attributes:
        address: ``None`` starts a local Ray in this process unless one is already
            initialised; ``"auto"`` joins the cluster this machine belongs to (``ray start``,
            ``ray up``, a KubeRay head pod); ``"ray://HOST:10001"`` connects a remote client.
        num_cpus: CPUs each task declares; torch's threads in the task are set to match.
        num_gpus: GPUs each task declares (Ray sets ``CUDA_VISIBLE_DEVICES`` for it).
        max_retries: how often a task whose worker process died is run again.
        local_cpus: CPUs of a local Ray started here (default: all of this machine's).
    """

    address: str | None = None
    num_cpus: float = 1.0
    num_gpus: float = 0.0
    max_retries: int = 3
    local_cpus: int | None = None
    name: str = attrs.field(default="ray", init=False)
    _started: bool = attrs.field(default=False, init=False)

    def __attrs_post_init__(self) -> None:
        if self.num_cpus <= 0 or self.num_gpus < 0 or self.max_retries < 0:
            raise GemkitError(
                "ray backend: num_cpus must be > 0, num_gpus and max_retries >= 0."
            )

    def start(self) -> Any:
        """Import Ray and connect (or start a local Ray); returns the ``ray`` module."""
        ray = _import_ray()
        if not ray.is_initialized():
            kwargs: dict[str, Any] = {"address": self.address, "log_to_driver": False}
            if self.address is None:
                kwargs.update(num_cpus=self.local_cpus, include_dashboard=False)
            ray.init(**kwargs)
            self._started = True
        return ray

    def close(self) -> None:
        """Shut Ray down if :meth:`start` started it (a Ray initialised by the caller stays)."""
        if self._started:
            _import_ray().shutdown()
            self._started = False

    def slots(self) -> int:
        """How many tasks the cluster runs at once (its CPUs over ``num_cpus``, at least 1)."""
        ray = self.start()
        slots = ray.cluster_resources().get("CPU", 1.0) / self.num_cpus
        if self.num_gpus > 0:
            slots = min(slots, ray.cluster_resources().get("GPU", 0.0) / self.num_gpus)
        return max(1, int(slots))

    def map(
        self,
        fn: Callable[[S, T], R],
        items: Sequence[T],
        on_result: Callable[[int, R], None],
        shared: S,
    ) -> FanOutReport:
        """See :meth:`Backend.map`; a task that failed past its retries raises ``GemkitError``."""
        ray = self.start()
        t_start = time.perf_counter()
        if not items:
            return FanOutReport("ray", 0.0, self.slots(), ())
        task = ray.remote(_in_task).options(
            num_cpus=self.num_cpus, num_gpus=self.num_gpus, max_retries=self.max_retries
        )
        env = {k: os.environ[k] for k in FORWARDED_ENV if k in os.environ}
        threads = max(1, int(self.num_cpus))
        shared_ref = ray.put(shared)
        pending = {
            task.remote(fn, shared_ref, item, threads, env, time.time()): i
            for i, item in enumerate(items)
        }
        timings = []
        try:
            while pending:
                ready, _ = ray.wait(list(pending), num_returns=1)
                for ref in ready:
                    i = pending.pop(ref)
                    try:
                        result, run_s, queue_s, ended = ray.get(ref)
                    except ray.exceptions.RayTaskError as e:  # the function raised
                        if isinstance(e.cause, GemkitError | FileNotFoundError):
                            raise e.cause from None  # a user error stays one line
                        raise
                    except (ray.exceptions.WorkerCrashedError, ray.exceptions.NodeDiedError) as e:
                        raise GemkitError(
                            f"a Ray task died {self.max_retries + 1} time(s) ({type(e).__name__})"
                            "; finished results are kept, rerun to go on."
                        ) from None
                    timings.append(TaskTiming(i, run_s, queue_s, max(0.0, time.time() - ended)))
                    on_result(i, result)
        finally:
            for ref in pending:
                ray.cancel(ref)
        return FanOutReport("ray", time.perf_counter() - t_start, self.slots(), tuple(timings))


def make_backend(
    name: str,
    *,
    address: str | None = None,
    cpus_per_task: float = 1.0,
    gpus_per_task: float = 0.0,
    max_retries: int = 3,
    local_cpus: int | None = None,
) -> SerialBackend | RayBackend:
    """The backend called ``name`` (:data:`BACKENDS`); the Ray options are refused for serial.

    Raises:
        GemkitError: an unknown name, Ray options given with ``serial``, or ``ray`` without
            Ray installed.
    """
    if name == "serial":
        if address is not None or local_cpus is not None:
            raise GemkitError("--address and --local-cpus need --backend ray.")
        return SerialBackend()
    if name == "ray":
        _import_ray()
        return RayBackend(address, cpus_per_task, gpus_per_task, max_retries, local_cpus)
    raise GemkitError(f"unknown backend {name!r}; choose one of {', '.join(BACKENDS)}.")
