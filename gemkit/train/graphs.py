"""Whole training steps as CUDA graphs: :class:`StepGraphs` warms up, captures and replays
one :class:`~gemkit.train.trainer.Trainer` step per phase (``Trainer(cuda_graph=True)``)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor

from gemkit.train.batches import IndexStream, PackedTransitions

__all__ = ["GRAPH_CHUNK", "GRAPH_WARMUP", "StepGraph", "StepGraphs"]

#: with ``cuda_graph``, eager steps of a phase before its step is captured (PyTorch's recipe)
GRAPH_WARMUP = 3
#: with ``cuda_graph``, minibatches whose indices are drawn and copied to the GPU at once
GRAPH_CHUNK = 1000


class StepGraphs:
    """The captured steps of one trainer, by phase, and the eager warm-up steps before them.

    The first :data:`GRAPH_WARMUP` steps of a phase run eagerly on a side stream; the next call
    captures the phase's step (gather from the index stream, losses, backward, Adam, Polyak
    update, the statistics added to a running sum) and replays it from then on. A failed
    capture warns and :meth:`steps` returns ``None``: the trainer goes on without graphs.

    Args:
        update: the trainer's step, ``update(batch, phase) -> statistics`` (what a graph holds).
        stream: the run's :class:`~gemkit.train.batches.IndexStream` of minibatch indices.
        data: the packed transitions the indices gather from.
        device: the CUDA device.
    """

    def __init__(
        self,
        update: Callable[[dict[str, Tensor], str], dict[str, Tensor]],
        stream: IndexStream,
        data: PackedTransitions,
        device: torch.device,
    ) -> None:
        self.update, self.stream, self.data, self.device = update, stream, data, device
        self.graphs: dict[str, StepGraph] = {}
        self.warm: dict[str, int] = {}
        self.keys: dict[str, list[str]] = {}

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
                start, _ = self.stream.take(1)
                out = self.update(self.data.gather(self.stream.buffer[start]), phase)
                stats = {k: v.detach().clone() for k, v in out.items()}
            self.keys[phase] = sorted(stats)
            torch.cuda.current_stream(self.device).wait_stream(side)
            return stats, 1
        start, k = self.stream.take(n)
        graph.sums.zero_()
        graph.row.fill_(start)
        for i in range(k):
            if i and stop is not None and stop():
                self.stream.untake(k - i)  # the rows not trained on stay for the next call
                k = i
                break
            graph.graph.replay()
        return dict(zip(graph.keys, graph.sums.clone().unbind(0), strict=True)), k

    def capture(self, phase: str) -> StepGraph | None:
        """Capture one step of ``phase``; on failure warn, drop every graph, return None."""
        stream, data = self.stream, self.data
        row = torch.zeros(1, dtype=torch.int64, device=self.device)
        keys = self.keys[phase]  # the statistics the warm-up steps returned
        sums = torch.zeros(len(keys), device=self.device)
        graph = torch.cuda.CUDAGraph()
        try:
            torch.cuda.synchronize(self.device)
            with torch.cuda.graph(graph):
                out = self.update(data.gather(stream.buffer.index_select(0, row).view(-1)), phase)
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
