"""How a :class:`~gemkit.train.trainer.Trainer` compiles its loss computation: the
``torch.compile`` modes it accepts and the inductor options it passes."""

from __future__ import annotations

from typing import Any

import torch

__all__ = ["COMPILE_MODES", "CUDAGRAPH_MODES", "compile_options"]

#: ``torch.compile`` modes a :class:`Trainer` accepts.
COMPILE_MODES = ("default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs")

#: ``torch.compile`` modes that capture CUDA graphs of their own
CUDAGRAPH_MODES = ("reduce-overhead", "max-autotune")


def compile_options(mode: str, device: torch.device) -> dict[str, Any]:
    """Inductor's options for ``torch.compile``'s ``mode`` on ``device``.

    On a CPU, the compiled graph's wrapper (the code that calls its kernels and GEMMs) is
    generated as C++ rather than Python (``cpp_wrapper``): a training step is a few hundred
    small kernels. At the maze sizes a profiled compiled step took 8.2 ms against 11.3 ms with
    the Python wrapper, and wall-clock rounds ran about 3 % faster (median 1.45x against 1.41x
    eager, ``docs/performance.md``). ``torch.compile`` takes a mode or options, not both, so
    the mode's own options are merged in.
    """
    import torch._inductor

    options: dict[str, Any] = dict(torch._inductor.list_mode_options(mode))
    if device.type == "cpu":
        options["cpp_wrapper"] = True
    return options
