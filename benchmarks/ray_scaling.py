"""The same small sweep on the serial backend and on a local Ray with 1 and 2 workers.

Makes a tiny fork dataset and trains a small checkpoint in a scratch folder, then, in each round,
runs the same sweep (``gemkit.eval.sweep.run_sweep`` into a fresh folder) serially in this
process, on a local Ray with 1 CPU and on one with 2 CPUs (1 CPU and 1 torch thread per task),
back to back. Ray's start is not timed; its workers are warmed (one task per CPU imports gemkit's
evaluation stack) before the sweep. Also measures Ray's per-task overhead: the round trip of an
empty task (submit, run, get; one at a time) and the throughput of many empty tasks at once.

Reports the wall times, the ratio 1 worker / 2 workers per round and the backends' time summaries
(``gemkit.backends.FanOutReport``); every backend's table must equal the serial one.

Usage::

    python benchmarks/ray_scaling.py --rounds 2 --out /tmp/ray-scaling
"""

from __future__ import annotations

import os
import sys

# benchmarks/select.py is named like the stdlib's ``select``: keep this folder off the path (Ray's
# workers inherit the driver's path).
if sys.path and os.path.abspath(sys.path[0]) == os.path.dirname(os.path.abspath(__file__)):
    sys.path.pop(0)

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any


def _empty() -> None:
    return None


def _warm(_: Any) -> int:
    import gemkit.eval.evaluate  # noqa: F401

    return os.getpid()


def _prepare(root: Path, train_steps: int) -> Path:
    from gemkit.data import load, make_fork
    from gemkit.train import TrainConfig, train

    os.environ["MINARI_DATASETS_PATH"] = str(root / "minari")
    make_fork(3_000, seed=0, ref_episodes=20)
    cfg = TrainConfig(hidden=(64, 64), n_critics=5, n_components=5, batch_size=64,
                      gmm_pretrain_steps=50)  # fmt: skip
    ckpt = root / "ckpt"
    train(load("gemkit/fork-v0"), cfg, ckpt, train_steps, save_every=train_steps,
          log_every=train_steps, tensorboard=False)  # fmt: skip
    return ckpt


def _overhead(ray: Any, calls: int) -> dict[str, float]:
    empty = ray.remote(_empty)
    ray.get([empty.remote() for _ in range(8)])  # workers up
    t0 = time.perf_counter()
    for _ in range(calls):
        ray.get(empty.remote())
    serial = (time.perf_counter() - t0) / calls
    t0 = time.perf_counter()
    ray.get([empty.remote() for _ in range(calls)])
    batch = (time.perf_counter() - t0) / calls
    return {"round_trip_ms": 1e3 * serial, "batched_per_task_ms": 1e3 * batch}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--episodes", type=int, default=25)
    ap.add_argument("--train-steps", type=int, default=300)
    ap.add_argument("--overhead-calls", type=int, default=200)
    ap.add_argument("--out", type=Path, default=None, help="Write ray_scaling.json here.")
    args = ap.parse_args()

    import ray
    import torch

    from gemkit.backends import FanOutReport, RayBackend, SerialBackend
    from gemkit.eval.sweep import SweepGrid, run_sweep

    torch.set_num_threads(1)
    root = Path(tempfile.mkdtemp(prefix="ray-scaling-"))
    ckpt = _prepare(root, args.train_steps)
    grid = SweepGrid(presets=("gem", "no_pw"), n=(0, 16, 64, 256), lam=(0.5, 1.0))
    seeds = (0, 1)

    def sweep(backend: Any, tag: str) -> tuple[float, FanOutReport, list[dict[str, Any]]]:
        reports: list[FanOutReport] = []
        t0 = time.perf_counter()
        rows = run_sweep(ckpt, "gemkit/fork-v0", grid, root / tag, episodes=args.episodes,
                         seeds=seeds, backend=backend, timing=reports.append)  # fmt: skip
        wall = time.perf_counter() - t0
        return wall, reports[0], [{k: v for k, v in r.items() if k != "steps_per_s"} for r in rows]

    results: list[dict[str, Any]] = []
    overhead: dict[str, float] = {}
    reference: list[dict[str, Any]] | None = None
    for rnd in range(args.rounds):
        for workers in (0, 1, 2):  # 0: the serial backend, in this process
            if workers:
                ray.init(num_cpus=workers, include_dashboard=False, log_to_driver=False)
                ray.get([ray.remote(_warm).remote(i) for i in range(workers)])
                wall, rep, rows = sweep(RayBackend(), f"r{rnd}-ray{workers}")
                if workers == 2 and rnd == 0:
                    overhead = _overhead(ray, args.overhead_calls)
                ray.shutdown()
            else:
                wall, rep, rows = sweep(SerialBackend(), f"r{rnd}-serial")
            reference = reference or rows
            assert rows == reference, "a backend's table differs from the serial one"
            name = f"ray, {workers} worker(s)" if workers else "serial"
            print(f"round {rnd}: {name}: {wall:.1f} s  [{rep.summary()}]", flush=True)
            results.append({"round": rnd, "backend": name, "wall_s": wall,
                            "tasks": len(rep.tasks), "summary": rep.summary(),
                            "task_s_mean": statistics.fmean(t.run_s for t in rep.tasks),
                            "queue_s_mean": statistics.fmean(t.queue_s for t in rep.tasks),
                            })  # fmt: skip
    print()
    print("| round | serial s | Ray 1 worker s | Ray 2 workers s | 1 worker / 2 workers |")
    print("|---|---:|---:|---:|---:|")
    for rnd in range(args.rounds):
        w = {r["backend"]: r["wall_s"] for r in results if r["round"] == rnd}
        one, two = w["ray, 1 worker(s)"], w["ray, 2 worker(s)"]
        print(f"| {rnd} | {w['serial']:.1f} | {one:.1f} | {two:.1f} | {one / two:.2f} |")
    print(f"\nempty task: round trip {overhead['round_trip_ms']:.2f} ms one at a time, "
          f"{overhead['batched_per_task_ms']:.2f} ms per task when {args.overhead_calls} "
          "are submitted at once (2 workers)")  # fmt: skip
    if args.out is not None:
        args.out.mkdir(parents=True, exist_ok=True)
        payload = {"cells": len(grid.cells(100)), "seeds": len(seeds),
                   "episodes": args.episodes, "runs": results, "overhead": overhead,
                   "load_avg": os.getloadavg(), "ray": ray.__version__}  # fmt: skip
        (args.out / "ray_scaling.json").write_text(json.dumps(payload, indent=2))


if __name__ == "__main__":
    main()
