"""Whole training steps as CUDA graphs: :class:`StepGraphs` warms up, captures and replays
one :class:`~gemkit.train.trainer.Trainer` step per phase (``Trainer(cuda_graph=True)``)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor

__all__ = ["GRAPH_CHUNK", "GRAPH_WARMUP", "StepGraph", "StepGraphs"]

#: with ``cuda_graph``, eager steps of a phase before its step is captured (PyTorch's recipe)
GRAPH_WARMUP = 3
#: with ``cuda_graph``, minibatches whose indices are drawn and copied to the GPU at once
GRAPH_CHUNK = 1000


class StepGraphs:
    """The captured steps of one trainer, by phase, and the eager warm-up steps before them.

    The first :data:`GRAPH_WARMUP` steps of a phase run eagerly on a side stream; the next call
    captures the phase's step (gather from the trainer's index stream, losses, backward, Adam,
    Polyak update, the statistics added to a running sum) and replays it from then on. A
    failed capture warns, turns the trainer's ``cuda_graph`` off and returns no graph.
    """

    def __init__(self, trainer: Any) -> None:
        # the owning gemkit.train.trainer.Trainer (typed Any: trainer imports this module)
        self.trainer = trainer
        self.graphs: dict[str, StepGraph] = {}
        self.warm: dict[str, int] = {}
        self.keys: dict[str, list[str]] = {}

    def steps(
        self, n: int, stop: Callable[[], bool] | None = None
    ) -> tuple[dict[str, Tensor], int]:
        """Up to ``n`` steps of the current phase with its graph; returns (sums, steps)."""
        t = self.trainer
        assert t._stream is not None
        phase = t.phase
        if phase == "pretrain":
            n = min(n, t.pretrain_steps - t.step)
        else:
            self.graphs.pop("pretrain", None)  # never replayed again: free its memory
        graph = self.graphs.get(phase)
        if graph is None and self.warm.get(phase, 0) >= GRAPH_WARMUP:
            graph = self.capture(phase)
        if graph is None:  # a warm-up step, eager, on a side stream as PyTorch's recipe has it
            self.warm[phase] = self.warm.get(phase, 0) + 1
            side = torch.cuda.Stream(t.device)
            side.wait_stream(torch.cuda.current_stream(t.device))
            with torch.cuda.stream(side):
                out = t._update(t.sample_batch(), phase)
                stats = {k: v.detach().clone() for k, v in out.items()}
            self.keys[phase] = sorted(stats)
            torch.cuda.current_stream(t.device).wait_stream(side)
            t.step += 1
            return stats, 1
        start, k = t._stream.take(n)
        graph.sums.zero_()
        graph.row.fill_(start)
        for i in range(k):
            if i and stop is not None and stop():
                k = i
                t._stream.pos = start + k  # the rows not trained on stay for the next call
                break
            graph.graph.replay()
        t.step += k
        return dict(zip(graph.keys, graph.sums.clone().unbind(0), strict=True)), k

    def capture(self, phase: str) -> StepGraph | None:
        """Capture one step of ``phase``; on failure warn, turn graphs off, return None."""
        t = self.trainer
        assert t._stream is not None
        stream, data = t._stream, t.data
        row = torch.zeros(1, dtype=torch.int64, device=t.device)
        keys = self.keys[phase]  # the statistics the warm-up steps returned
        sums = torch.zeros(len(keys), device=t.device)
        graph = torch.cuda.CUDAGraph()
        try:
            torch.cuda.synchronize(t.device)
            with torch.cuda.graph(graph):
                out = t._update(data.gather(stream.buffer.index_select(0, row).view(-1)), phase)
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
                stacklevel=3,
            )
            t.cuda_graph = False
            self.graphs.clear()
            return None
        self.graphs[phase] = StepGraph(graph, keys, sums, row)
        return self.graphs[phase]


class StepGraph:
    """One phase's captured step: replaying ``graph`` trains on minibatch ``row`` of the index
    stream, adds the step's statistics (``keys``, sorted) to ``sums`` and moves ``row`` on."""

    def __init__(self, graph: Any, keys: list[str], sums: Tensor, row: Tensor) -> None:
        self.graph, self.keys, self.sums, self.row = graph, keys, sums, row
