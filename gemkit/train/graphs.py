"""Whole training steps as CUDA graphs: :class:`StepGraphs` warms up, captures and replays
one :class:`~gemkit.train.trainer.Trainer` step per phase (``Trainer(cuda_graph=True)``)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor

from gemkit.train.batches import IndexStream, PackedTransitions

__all__ = [
    "GRAPH_CHUNK",
    "GRAPH_WARMUP",
    "LockstepRows",
    "RunRows",
    "StepGraph",
    "StepGraphs",
    "summed_steps",
]

#: with ``cuda_graph``, eager steps of a phase before its step is captured (PyTorch's recipe)
GRAPH_WARMUP = 3
#: with ``cuda_graph``, minibatches whose indices are drawn and copied to the GPU at once
GRAPH_CHUNK = 1000


class RunRows:
    """One run's minibatches as a graph reads them: rows of its index stream, gathered from its
    packed transitions by a row number held in a device tensor (so a replay can move it on)."""

    def __init__(self, stream: IndexStream, data: PackedTransitions) -> None:
        self.stream, self.data = stream, data

    def take(self, k: int) -> tuple[int, int]:
        """Hand out up to ``k`` consecutive rows: ``(first row, how many)``."""
        return self.stream.take(k)

    def untake(self, k: int) -> None:
        """Give back the last ``k`` rows handed out (not trained on)."""
        self.stream.untake(k)

    def gather(self, row: Tensor) -> dict[str, Tensor]:
        """The minibatch of row ``row`` (a one-element int64 tensor on the stream's device)."""
        return self.data.gather(self.stream.buffer.index_select(0, row).view(-1))


class LockstepRows:
    """R runs' rows taken together (a batch of runs steps in lockstep): every run's stream
    hands out the same row numbers (equal chunk sizes refill together), and a row's minibatch
    is the runs' minibatches stacked on a leading run axis."""

    def __init__(self, runs: list[RunRows]) -> None:
        self.runs = runs

    def take(self, k: int) -> tuple[int, int]:
        got = {r.take(k) for r in self.runs}
        if len(got) != 1:
            raise RuntimeError(f"the runs' index streams are out of step: {sorted(got)}")
        return got.pop()

    def untake(self, k: int) -> None:
        for r in self.runs:
            r.untake(k)

    def gather(self, row: Tensor) -> dict[str, Tensor]:
        parts = [r.gather(row) for r in self.runs]
        return {k: torch.stack([p[k] for p in parts]) for k in parts[0]}


class StepGraphs:
    """The captured steps of one trainer, by phase, and the eager warm-up steps before them.

    The first :data:`GRAPH_WARMUP` steps of a phase run eagerly on a side stream; the next call
    captures the phase's step (gather from the index stream, losses, backward, Adam, Polyak
    update, the statistics added to a running sum) and replays it from then on. A failed
    capture warns and :meth:`steps` returns ``None``: the trainer goes on without graphs.

    Args:
        update: the step, ``update(batch, phase) -> statistics`` (what a graph holds): one
            trainer's, or a batch of runs' (statistics ``[R]``).
        rows: where the minibatches come from: :class:`RunRows` (one run) or
            :class:`LockstepRows` (a batch of runs).
        device: the CUDA device.
    """

    def __init__(
        self,
        update: Callable[[dict[str, Tensor], str], dict[str, Tensor]],
        rows: RunRows | LockstepRows,
        device: torch.device,
    ) -> None:
        self.update, self.rows, self.device = update, rows, device
        self.graphs: dict[str, StepGraph] = {}
        self.warm: dict[str, int] = {}
        self.keys: dict[str, list[str]] = {}
        self.stat_shape: dict[str, tuple[int, ...]] = {}  # () for one run, (R,) for a batch

    def steps(
        self, phase: str, n: int, stop: Callable[[], bool] | None = None
    ) -> tuple[dict[str, Tensor], int] | None:
        """Up to ``n`` steps of ``phase`` with its graph: ``(sums, steps taken)``, or ``None``
        when the capture failed (nothing was trained)."""
        if phase != "pretrain":
            self.graphs.pop("pretrain", None)  # never replayed again: free its memory
        graph = self.graphs.get(phase)
        if graph is None and self.warm.get(phase, 0) >= GRAPH_WARMUP:
            graph = self.capture(phase)
            if graph is None:
                return None
        if graph is None:  # a warm-up step, eager, on a side stream as PyTorch's recipe has it
            self.warm[phase] = self.warm.get(phase, 0) + 1
            side = torch.cuda.Stream(self.device)
            side.wait_stream(torch.cuda.current_stream(self.device))
            with torch.cuda.stream(side):
                start, _ = self.rows.take(1)
                row = torch.full((1,), start, dtype=torch.int64, device=self.device)
                out = self.update(self.rows.gather(row), phase)
                stats = {k: v.detach().clone() for k, v in out.items()}
            self.keys[phase] = sorted(stats)
            self.stat_shape[phase] = tuple(next(iter(stats.values())).shape)
            torch.cuda.current_stream(self.device).wait_stream(side)
            return stats, 1
        start, k = self.rows.take(n)
        graph.sums.zero_()
        graph.row.fill_(start)
        for i in range(k):
            if i and stop is not None and stop():
                self.rows.untake(k - i)  # the rows not trained on stay for the next call
                k = i
                break
            graph.graph.replay()
        return dict(zip(graph.keys, graph.sums.clone().unbind(0), strict=True)), k

    def steps_of(
        self, lead: Any, n: int, stop: Callable[[], bool] | None = None
    ) -> tuple[dict[str, Tensor], int] | None:
        """:meth:`steps` of ``lead``'s current phase (a trainer, the first of a batch's), at
        most to the end of its pretraining: a graph holds one phase's step."""
        if lead.phase == "pretrain":
            n = min(n, lead.pretrain_steps - lead.step)
        return self.steps(lead.phase, n, stop)

    def capture(self, phase: str) -> StepGraph | None:
        """Capture one step of ``phase``; on failure warn, drop every graph, return None."""
        row = torch.zeros(1, dtype=torch.int64, device=self.device)
        keys = self.keys[phase]  # the statistics the warm-up steps returned
        sums = torch.zeros(len(keys), *self.stat_shape[phase], device=self.device)
        graph = torch.cuda.CUDAGraph()
        try:
            torch.cuda.synchronize(self.device)
            with torch.cuda.graph(graph):
                out = self.update(self.rows.gather(row), phase)
                if sorted(out) != keys:
                    raise RuntimeError(f"the step returned {sorted(out)}, not {keys}")
                sums.add_(torch.stack([out[k].detach().float() for k in keys]))
                row.add_(1)
        except Exception as exc:  # capture raises RuntimeErrors from deep inside torch
            import warnings

            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:160]
            warnings.warn(
                f"CUDA graph capture failed ({type(exc).__name__}: {first}); training without "
                "CUDA graphs.",
                RuntimeWarning,
                stacklevel=4,
            )
            self.graphs.clear()
            return None
        self.graphs[phase] = StepGraph(graph, keys, sums, row)
        return self.graphs[phase]


class StepGraph:
    """One phase's captured step: replaying ``graph`` trains on minibatch ``row`` of the index
    stream, adds the step's statistics (``keys``, sorted) to ``sums`` and moves ``row`` on."""

    def __init__(self, graph: Any, keys: list[str], sums: Tensor, row: Tensor) -> None:
        self.graph, self.keys, self.sums, self.row = graph, keys, sums, row


def summed_steps(
    n: int,
    stop: Callable[[], bool] | None,
    chunk: Callable[[int], tuple[dict[str, Tensor], int]],
) -> tuple[dict[str, Tensor], dict[str, int]]:
    """Up to ``n`` steps, ``chunk(left) -> (statistics summed over its steps, steps)`` at a
    time (one eager step, or a stretch of graph replays); ``stop`` is asked before each chunk.
    Returns each statistic's sum over the steps and how many steps computed it."""
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}.")
    sums: dict[str, Tensor] = {}
    counts: dict[str, int] = {}
    done = 0
    while done < n and not (stop is not None and stop()):
        stats, k = chunk(n - done)
        if k == 0:
            break
        for key, v in stats.items():
            sums[key] = sums[key] + v if key in sums else v.clone()
            counts[key] = counts.get(key, 0) + k
        done += k
    return sums, counts
