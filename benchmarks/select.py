"""Benchmark GEM's ``select()`` against the bare critic-ensemble forward, measured in one run.

Prints (and with ``--out`` writes as JSON + Markdown):

1. overhead: full ``select()`` time / bare ``critic(states, candidates)`` time on the same
   candidates (target <= 1.15), at N = 1024, E = 10, K = 5, 256x2 MLPs, B = 1 and B = 256;
2. vectorised ``select()`` vs a naive loop over states and ensemble members (target >= 5x);
3. time and peak tensor memory (torch profiler) for N in {1, 16, 64, 256, 1024, 2048};
4. GFLOP/s of the whole ``select()`` against this machine's fp32 GEMM ceiling (goal >= 75%);
5. the critic's two forward paths (``loop`` and ``bmm``), so the faster can stay the default.

Usage::

    python benchmarks/select.py                 # full run (a few minutes on 2 cores)
    python benchmarks/select.py --quick         # seconds, small sizes (a smoke test)
    python benchmarks/select.py --out docs/bench  # also write select.json and select.md
"""

from __future__ import annotations

import os
import sys

# This file is named like the stdlib's ``select``: keep its folder off the import path.
if sys.path and os.path.abspath(sys.path[0]) == os.path.dirname(os.path.abspath(__file__)):
    sys.path.pop(0)

import argparse
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from gemkit import compose
from gemkit.eval.profile import peak_memory_bytes
from gemkit.models import ConditionalGMM, CriticEnsemble, Models
from gemkit.support import zscore

S, A = 17, 6  # HalfCheetah-sized observations and actions


def build(e: int, k: int, hidden: int, mode: str = "loop", seed: int = 0) -> Models:
    torch.manual_seed(seed)  # weight initialisation only
    h = (hidden, hidden)
    return Models(
        actor=ConditionalGMM(S, A, k, hidden=h),
        behavior=ConditionalGMM(S, A, k, hidden=h),
        critic=CriticEnsemble(S, A, e, hidden=h, mode=mode),  # type: ignore[arg-type]
    ).to("cpu")


def timeit(fn: Callable[[], Any], reps: int, warmup: int = 1) -> float:
    """Best wall time (s) of ``reps`` calls after ``warmup`` calls (the minimum is the least
    disturbed by other processes, as the stdlib's ``timeit`` advises)."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def critic_flops(b: int, m: int, e: int, hidden: int) -> float:
    """Multiply-add FLOPs (2 per MAC) of the ensemble forward on ``b * m`` candidates."""
    per_row = (S + A) * hidden + hidden * hidden + hidden
    return 2.0 * e * b * m * per_row


def timeit_pair(f: Callable[[], Any], g: Callable[[], Any], reps: int) -> tuple[float, float]:
    """Best wall times (s) of ``f`` and ``g``, calls interleaved so both see the same machine."""
    f(), g()
    tf, tg = [], []
    for _ in range(reps):
        for fn, times in ((f, tf), (g, tg)):
            t0 = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t0)
    return min(tf), min(tg)


def gemm_ceiling(reps: int) -> tuple[float, str]:
    """Best fp32 GEMM GFLOP/s over a few shapes, including the critic's own layer shape."""
    best, shape = 0.0, ""
    for mm, kk, nn in ((2048, 2048, 2048), (4096, 1024, 1024), (65536, 256, 256)):
        a, b_ = torch.randn(mm, kk), torch.randn(kk, nn)
        t = timeit(lambda a=a, b_=b_: torch.mm(a, b_), reps)
        gf = 2.0 * mm * kk * nn / t / 1e9
        if gf > best:
            best, shape = gf, f"{mm}x{kk}x{nn}"
    return best, shape


def naive_select(models: Models, states: torch.Tensor, n: int, beta: float, lam: float,
                 g: torch.Generator) -> torch.Tensor:  # fmt: skip
    """The same rule written as plain loops over states and ensemble members."""
    actor, behavior, critic = models.actor, models.behavior, models.critic
    assert actor is not None and behavior is not None and isinstance(critic, CriticEnsemble)
    out = []
    for b in range(states.shape[0]):
        s = states[b : b + 1]
        cand = torch.cat([actor.mode(s).unsqueeze(1), actor.sample(s, n, generator=g)], 1)[0]
        qs = []
        for e in range(critic.n_members):
            h = torch.cat([s.expand(cand.shape[0], S), cand], -1)
            for i, layer in enumerate(critic.layers):
                h = h @ layer.weight[e] + layer.bias[e]
                if i < len(critic.layers) - 1:
                    h = torch.relu(h)
            qs.append(h.squeeze(-1))
        q = torch.stack(qs)
        value = q.mean(0) - beta * q.std(0, unbiased=False)
        ll = behavior.log_prob(s, cand.unsqueeze(0))
        score = value + lam * zscore(ll)[0]
        out.append(cand[score.argmax()])
    return torch.stack(out)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="tiny sizes, for a smoke test")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--reps", type=int, default=3)
    p.add_argument("--out", type=Path, default=None, help="folder for select.json / select.md")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    quick = args.quick
    e, k, hidden = (3, 2, 32) if quick else (10, 5, 256)
    n_main = 32 if quick else 1024
    batches = (1, 8) if quick else (1, 256)
    n_list = (1, 16, 64) if quick else (1, 16, 64, 256, 1024, 2048)
    reps = 1 if quick else args.reps
    res: dict[str, Any] = {
        "threads": args.threads, "E": e, "K": k, "hidden": f"{hidden}x2", "S": S, "A": A,
        "torch": torch.__version__,
    }  # fmt: skip
    g = torch.Generator()

    # 5. the critic's forward paths
    paths = {}
    for mode in ("loop", "bmm"):
        m = build(e, k, hidden, mode)
        st = torch.randn(batches[-1], S)
        cand = torch.rand(batches[-1], n_main + 1, A) * 2 - 1
        crit = m.critic
        xs = st.unsqueeze(1).expand(-1, n_main + 1, S)
        with torch.no_grad():
            paths[mode] = timeit(lambda crit=crit, xs=xs, cand=cand: crit(xs, cand), reps)
    res["critic_paths_s"] = paths
    best_mode = min(paths, key=paths.__getitem__)
    res["critic_default_mode"] = best_mode
    print(f"critic forward, B={batches[-1]} N={n_main}: loop {paths['loop']*1e3:.1f} ms, "
          f"bmm {paths['bmm']*1e3:.1f} ms -> faster: {best_mode}")  # fmt: skip

    models = build(e, k, hidden, best_mode)
    sel = compose(models=models, n=n_main, beta=1.0, lam=0.5)
    critic = models.critic

    # 1. overhead of select() over the bare critic forward, and 4. GFLOP/s
    ceiling, shape = gemm_ceiling(reps)
    res["gemm_ceiling_gflops"] = ceiling
    res["gemm_ceiling_shape"] = shape
    print(f"fp32 GEMM ceiling: {ceiling:.1f} GFLOP/s ({shape}, {args.threads} threads)")
    res["overhead"] = []
    for b in batches:
        st = torch.randn(b, S, generator=torch.Generator().manual_seed(b))
        out = sel.select(st, generator=g.manual_seed(0))
        cand = out.candidates
        xs = st.unsqueeze(1).expand(-1, cand.shape[1], S)
        pair_reps = reps if b > 1 else 10 * reps  # B = 1 calls take milliseconds: more samples

        def bare(xs: torch.Tensor = xs, cand: torch.Tensor = cand) -> None:
            with torch.no_grad():
                critic(xs, cand)

        t_sel, t_bare = timeit_pair(
            lambda st=st: sel.select(st, generator=g.manual_seed(0)), bare, pair_reps
        )
        flops = critic_flops(b, cand.shape[1], e, hidden)
        row = {
            "B": b, "N": n_main, "select_ms": t_sel * 1e3, "bare_critic_ms": t_bare * 1e3,
            "ratio": t_sel / t_bare, "select_gflops": flops / t_sel / 1e9,
            "select_frac_of_ceiling": flops / t_sel / 1e9 / ceiling,
        }  # fmt: skip
        res["overhead"].append(row)
        print(f"B={b:4d} N={n_main}: select {t_sel*1e3:9.2f} ms | bare critic {t_bare*1e3:9.2f} ms"
              f" | ratio {row['ratio']:.3f} (target <= 1.15) | {row['select_gflops']:.1f} GFLOP/s"
              f" = {100*row['select_frac_of_ceiling']:.0f}% of GEMM ceiling")  # fmt: skip

    # 2. vectorised vs naive loops over states and members
    res["vs_naive"] = []
    # the naive loop is slow: at N = 1024 it runs on 32 states (the ratio is per state)
    naive_cases = [(batches[-1], n) for n in n_list if n < n_main]
    naive_cases.append((min(32, batches[-1]), n_main))
    for b, n in naive_cases:
        st = torch.randn(b, S, generator=torch.Generator().manual_seed(1))
        sel_n = compose(models=models, n=n, beta=1.0, lam=0.5)
        t_vec = timeit(lambda st=st, s=sel_n: s.select(st, generator=g.manual_seed(0)), reps)
        with torch.no_grad():
            t_naive = timeit(
                lambda st=st, n=n: naive_select(models, st, n, 1.0, 0.5, g.manual_seed(0)),
                1 if not quick else reps, warmup=0,
            )  # fmt: skip
        row = {"B": b, "N": n, "vectorised_ms": t_vec * 1e3, "naive_ms": t_naive * 1e3,
               "speedup": t_naive / t_vec}  # fmt: skip
        res["vs_naive"].append(row)
        print(f"B={b} N={n}: vectorised {t_vec*1e3:.1f} ms | naive loop {t_naive*1e3:.1f} ms | "
              f"speedup {row['speedup']:.1f}x (target >= 5x)")  # fmt: skip

    # 3. time and peak memory vs N
    res["scaling"] = []
    for b in batches:
        st = torch.randn(b, S, generator=torch.Generator().manual_seed(2))
        for n in n_list:
            sel_n = compose(models=models, n=n)
            t = timeit(lambda st=st, s=sel_n: s.select(st, generator=g.manual_seed(0)), reps)
            mem = peak_memory_bytes(lambda st=st, s=sel_n: s.select(st, generator=g)) / 2**20
            res["scaling"].append({"B": b, "N": n, "ms": t * 1e3, "peak_mib": mem})
            print(f"B={b:4d} N={n:5d}: {t * 1e3:9.2f} ms, peak +{mem:8.1f} MiB")

    if args.out is not None:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "select.json").write_text(json.dumps(res, indent=2) + "\n")
        (args.out / "select.md").write_text(to_markdown(res))
        print(f"wrote {args.out / 'select.json'} and {args.out / 'select.md'}")
    return res


def to_markdown(res: dict[str, Any]) -> str:
    lines = [
        f"Measured by `python benchmarks/select.py --out docs/bench` on {res['threads']} CPU "
        f"threads, torch {res['torch']}; E = {res['E']} critics, K = {res['K']}, "
        f"{res['hidden']} MLPs, S = {res['S']}, A = {res['A']}.",
        "",
        f"fp32 GEMM ceiling (same run): **{res['gemm_ceiling_gflops']:.1f} GFLOP/s** "
        f"({res['gemm_ceiling_shape']}). Critic forward paths: "
        + ", ".join(f"{k} {v * 1e3:.1f} ms" for k, v in res["critic_paths_s"].items())
        + f" (default: `{res['critic_default_mode']}`).",
        "",
        "| B | N | select() ms | bare critic ms | ratio (<= 1.15) | GFLOP/s | % of GEMM ceiling |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in res["overhead"]:
        lines.append(f"| {r['B']} | {r['N']} | {r['select_ms']:.2f} | {r['bare_critic_ms']:.2f} | "
                     f"{r['ratio']:.3f} | {r['select_gflops']:.1f} | "
                     f"{100*r['select_frac_of_ceiling']:.0f}% |")  # fmt: skip
    lines += [
        "",
        "| B | N | vectorised ms | naive loop ms | speedup (>= 5x) |",
        "|---|---|---|---|---|",
    ]
    for r in res["vs_naive"]:
        lines.append(f"| {r['B']} | {r['N']} | {r['vectorised_ms']:.1f} | {r['naive_ms']:.1f} | "
                     f"{r['speedup']:.1f}x |")  # fmt: skip
    lines += ["", "| B | N | select() ms | peak tensor memory MiB |", "|---|---|---|---|"]
    for r in res["scaling"]:
        lines.append(f"| {r['B']} | {r['N']} | {r['ms']:.2f} | {r['peak_mib']:.1f} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
