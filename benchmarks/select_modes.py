"""``select()`` in its three modes: eager fp32, compiled critic, bf16 critic; with accuracy.

All in one run, calls interleaved (each mode sees the same machine), at the paper's sizes
(E = 10 critics, K = 5, 256x2 MLPs, N = 1024) for B = 1 and B = 256:

- latency of each mode and its ratio to eager fp32, and eager ``select()`` over the bare critic
  forward on the same candidates (the selection's own overhead; goal <= 1.10);
- accuracy against fp32 on ``--acc-states`` random states: the share whose chosen candidate is
  the same (goal >= 99%) and the largest score difference.

Usage::

    python benchmarks/select_modes.py [--threads 1] [--quick] [--out docs/bench]
"""

from __future__ import annotations

import os
import sys

# benchmarks/select.py is named like the stdlib's ``select``: keep this folder off the path.
if sys.path and os.path.abspath(sys.path[0]) == os.path.dirname(os.path.abspath(__file__)):
    sys.path.pop(0)

import argparse
import importlib.util
import json
import subprocess
import time
from pathlib import Path
from typing import Any

import torch

from gemkit import compose
from gemkit.eval.profile import cpu_name

_spec = importlib.util.spec_from_file_location(
    "bench_select", Path(__file__).with_name("select.py")
)
assert _spec is not None and _spec.loader is not None
_bench = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_bench)
S, build, timeit_pair = _bench.S, _bench.build, _bench.timeit_pair


def interleaved(fns: dict[str, Any], reps: int) -> dict[str, float]:
    """Best wall time (s) of each function, calls interleaved round-robin."""
    for f in fns.values():
        f()
    times: dict[str, list[float]] = {k: [] for k in fns}
    for _ in range(reps):
        for k, f in fns.items():
            t0 = time.perf_counter()
            f()
            times[k].append(time.perf_counter() - t0)
    return {k: min(v) for k, v in times.items()}


def main(argv: list[str] | None = None) -> dict[str, Any]:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="tiny sizes (a smoke test)")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--reps", type=int, default=20)
    p.add_argument("--acc-states", type=int, default=2048)
    p.add_argument("--out", type=Path, default=None)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    e, k, hidden, n = (3, 2, 32, 32) if args.quick else (10, 5, 256, 1024)
    reps = 2 if args.quick else args.reps
    models = build(e, k, hidden, "bmm")
    eager = compose(models=models, n=n, beta=1.0, lam=0.01)
    bf16 = compose(models=models, n=n, beta=1.0, lam=0.01, precision="bf16")
    compiled = compose(models=models, n=n, beta=1.0, lam=0.01)
    compiled.value = torch.compile(compiled.value)  # type: ignore[assignment]
    modes = {"eager fp32": eager, "compiled": compiled, "bf16": bf16}
    flags = subprocess.run(["grep", "-o", "-m1", "-w", "avx512_bf16\\|amx_bf16", "/proc/cpuinfo"],
                           capture_output=True, text=True, check=False).stdout.split()  # fmt: skip
    res: dict[str, Any] = {"cpu": cpu_name(), "bf16_flags": sorted(set(flags)),
                           "threads": args.threads, "torch": torch.__version__,
                           "E": e, "K": k, "hidden": f"{hidden}x2", "N": n, "latency": [],
                           "accuracy": []}  # fmt: skip
    g = torch.Generator()
    for b in (1, 256) if not args.quick else (1, 8):
        st = torch.randn(b, S, generator=torch.Generator().manual_seed(b))
        t0 = time.perf_counter()
        compiled.select(st, generator=g.manual_seed(0))  # compile for this shape
        warm = time.perf_counter() - t0
        cand = eager.select(st, generator=g.manual_seed(0)).candidates
        xs = st.unsqueeze(1).expand(-1, cand.shape[1], S)

        def bare(xs: torch.Tensor = xs, cand: torch.Tensor = cand) -> None:
            with torch.no_grad():
                models.critic(xs, cand)

        fns: dict[str, Any] = {m: (lambda s=s, st=st: s.select(st, generator=g.manual_seed(0)))
                               for m, s in modes.items()}  # fmt: skip
        fns["bare critic"] = bare
        if res["latency"] and res["latency"][0]["bf16_vs_eager"] < 0.1:
            # emulated bf16 (no AVX-512 BF16 / AMX on this CPU): minutes per call at B = 256
            fns.pop("bf16")
            res["bf16_skipped_at_B"] = b
        t = interleaved(fns, reps if b > 1 else 5 * reps)
        t.setdefault("bf16", float("nan"))
        row = {"B": b, **{f"{m}_ms": v * 1e3 for m, v in t.items()},
               "compiled_vs_eager": t["eager fp32"] / t["compiled"],
               "bf16_vs_eager": t["eager fp32"] / t["bf16"],
               "select_over_bare": t["eager fp32"] / t["bare critic"],
               "compile_warmup_s": warm}  # fmt: skip
        res["latency"].append(row)
        print(f"B={b:4d}: eager {t['eager fp32']*1e3:8.2f} ms | compiled "
              f"{t['compiled']*1e3:8.2f} ms ({row['compiled_vs_eager']:.2f}x) | bf16 "
              f"{t['bf16']*1e3:8.2f} ms ({row['bf16_vs_eager']:.2f}x) | select/bare critic "
              f"{row['select_over_bare']:.3f} (goal <= 1.10)")  # fmt: skip
    n_acc = 64 if args.quick else args.acc_states
    st = torch.randn(n_acc, S, generator=torch.Generator().manual_seed(7))
    ref = eager.select(st, generator=g.manual_seed(1))
    for m in ("compiled", "bf16"):
        if m == "bf16" and "bf16_skipped_at_B" in res:
            st = st[:64]  # emulated bf16: a smaller accuracy sample
            ref = eager.select(st, generator=g.manual_seed(1))
        out = modes[m].select(st, generator=g.manual_seed(1))
        same = float((out.index == ref.index).float().mean())
        diff = float((out.score - ref.score).abs().max())
        res["accuracy"].append({"mode": m, "states": int(st.shape[0]), "same_choice": same,
                                "max_score_diff": diff})  # fmt: skip
        print(f"{m}: same chosen candidate as fp32 on {100 * same:.2f}% of {st.shape[0]} states "
              f"(goal >= 99%); max |score diff| {diff:.2e}")
    print(f"CPU: {res['cpu']}, {args.threads} thread(s)")
    if args.out is not None:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "select_modes.json").write_text(json.dumps(res, indent=2) + "\n")
    return res


if __name__ == "__main__":
    main()
