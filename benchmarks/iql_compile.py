"""d3rlpy's IQL update rate on the CPU, eager against ``IQLConfig(compile_graph=True)``.

The locomotion suite trains d3rlpy's IQL beside GEM (``reproductions/iql_reference.py``), at
30-55 gradient steps/s on one CPU thread: the slowest part of a task's budget. This measures,
in one run, whether d3rlpy's own ``compile_graph`` (``torch.compile`` of its update) speeds it
up (d3rlpy 2.8.1 applies it only on a CUDA device, so on a CPU it should not): the same
synthetic dataset (hopper's sizes by default), the same config otherwise, best of ``--rounds``
timed blocks of ``--steps`` updates after ``--warmup`` untimed ones (where a compile happens),
printed as updates/s and the ratio to eager::

    python benchmarks/iql_compile.py --threads 1

Needs the d3rlpy extra (``pip install --no-deps -r constraints/d3rlpy.txt``).
"""

from __future__ import annotations

import os
import sys

# benchmarks/select.py is named like the stdlib's ``select``: keep this folder off the import path
if sys.path and os.path.abspath(sys.path[0]) == os.path.dirname(os.path.abspath(__file__)):
    sys.path.pop(0)

import argparse
import json
import time
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from gemkit.eval.profile import cpu_name


def dataset(obs_dim: int, act_dim: int, steps: int, seed: int = 0) -> Any:
    import d3rlpy

    rng = np.random.default_rng(seed)
    terminals = np.zeros(steps, dtype=np.float32)
    terminals[999::1000] = 1.0
    return d3rlpy.dataset.MDPDataset(
        observations=rng.standard_normal((steps, obs_dim)).astype(np.float32),
        actions=rng.uniform(-1, 1, (steps, act_dim)).astype(np.float32),
        rewards=rng.standard_normal(steps).astype(np.float32),
        terminals=terminals,
    )


def rate(data: Any, compile_graph: bool, warmup: int, steps: int, rounds: int) -> float:
    import d3rlpy

    d3rlpy.seed(0)
    algo = d3rlpy.algos.IQLConfig(compile_graph=compile_graph).create(device="cpu:0")
    algo.build_with_dataset(data)
    sampler = data.sample_transition_batch

    def run(k: int) -> None:
        for _ in range(k):
            algo.update(sampler(256))

    run(warmup)
    best = 0.0
    for _ in range(rounds):
        t0 = time.perf_counter()
        run(steps)
        best = max(best, steps / (time.perf_counter() - t0))
    return best


def main(argv: Sequence[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--obs-dim", type=int, default=11)
    p.add_argument("--act-dim", type=int, default=3)
    p.add_argument("--transitions", type=int, default=100_000)
    p.add_argument("--warmup", type=int, default=200)
    p.add_argument("--steps", type=int, default=500)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--json", default=None, help="write the results here too")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    data = dataset(args.obs_dim, args.act_dim, args.transitions)
    eager = rate(data, False, args.warmup, args.steps, args.rounds)
    compiled = rate(data, True, args.warmup, args.steps, args.rounds)
    knobs = {k: getattr(args, k) for k in ("obs_dim", "act_dim", "warmup", "steps", "rounds")}
    res = {"cpu": cpu_name(), "threads": args.threads, "torch": torch.__version__,
           "eager_steps_per_s": eager, "compiled_steps_per_s": compiled,
           "ratio": compiled / eager, **knobs}  # fmt: skip
    print(f"IQL updates/s on {res['cpu']}, {args.threads} thread(s): eager {eager:.1f}, "
          f"compile_graph {compiled:.1f} ({compiled / eager:.2f}x eager)")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(res, f, indent=2)


if __name__ == "__main__":
    main()
