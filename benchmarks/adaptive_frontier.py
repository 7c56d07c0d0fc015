"""Decision quality per unit of compute: the adaptive budget against fixed N on a suite's task.

Score against critic evaluations per decision (candidates scored, anchor included), on the
trained networks and the test evaluation seeds of a results suite (``--suite``: ``mazes`` or
``maze2d``), at the knobs its validation chose. Fixed N = 0, 1, 16, 64, 256, 1024 come from the
suite's cell store (the same test cells its page shows); the adaptive budget (``gemkit.budget``:
n0 -> x4 -> n_max, grown where the top-1 lead is within ``kappa`` x the ensemble's std at top-1,
or while growing still gains) is evaluated here for each rule and cached
(``<out>/adaptive.jsonl``).

Goal: a rule that beats the best fixed N with no more critic evaluations by more than the seed
spread (the larger of the two std over training seeds); each adaptive point says whether it does.

Usage::

    python benchmarks/adaptive_frontier.py --maze medium --runs RUNS --cells CELLS \\
        --maze-steps medium=300000 --out OUT [--figures docs/results]
    python benchmarks/adaptive_frontier.py --suite maze2d --maze maze2d-umaze --seeds 0 1 \\
        --runs RUNS --cells docs/results/maze2d/cells --maze-steps maze2d-umaze=300000 \\
        maze2d-medium=300000 maze2d-large=300000 --suite-flag=--test-episodes=100 \\
        --suite-flag=--big-episodes=30 --n-max 256 --episodes 30 --out OUT
"""

from __future__ import annotations

import os
import sys

# benchmarks/select.py is named like the stdlib's ``select``: keep this folder off the path.
if sys.path and os.path.abspath(sys.path[0]) == os.path.dirname(os.path.abspath(__file__)):
    sys.path.pop(0)

import argparse
import json
import time
from pathlib import Path
from typing import Any

import numpy as np

from gemkit.experiments import TEST_SEEDS, VAL_SEEDS, append_cell, dataset_id, read_cells
from gemkit.experiments.args import parse_args
from gemkit.experiments.plan import selector_params, steps_for, suite_knobs, test_cells
from gemkit.experiments.stages import load_run_models

ROOT = Path(__file__).resolve().parents[1]


def fixed_rows(mz: argparse.Namespace, maze: str, knobs: dict[str, float]) -> list[dict[str, Any]]:
    """The reproduction's test cells of GEM over N at the chosen knobs, with their compute."""
    want = {c["key"] for c in test_cells(mz, knobs) if c["task"] == maze
            and c.get("series") == "gem"}  # fmt: skip
    out = []
    for r in read_cells(mz.out).values():
        if r["key"] in want:
            n = r["config"]["n"]
            out.append({"kind": "fixed", "n": n, "kappa": None, "train_seed": r["train_seed"],
                        "score": r["score_mean"], "critic_evals": n + 1,
                        "episodes": r["episodes"]})  # fmt: skip
    return out


def adaptive_rows(args: argparse.Namespace, mz: argparse.Namespace, maze: str,
                  knobs: dict[str, float], plans: list[tuple[str, int, str | None]],
                  eval_seeds: tuple[int, ...] = TEST_SEEDS,
                  episodes: int | None = None) -> list[dict[str, Any]]:  # fmt: skip
    """Each plan ``(kind, N, rule)`` (``adaptive`` with ``N`` its n_max, or ``fixed``) on every
    training seed, evaluated on ``eval_seeds`` (cached in ``<out>/adaptive.jsonl``)."""
    import torch

    from gemkit.budget import AdaptiveBudget
    from gemkit.config import SelectorConfig
    from gemkit.eval.runs import evaluate_config

    torch.set_num_threads(args.threads)
    sink = Path(args.out) / "adaptive.jsonl"
    sink.parent.mkdir(parents=True, exist_ok=True)
    done = {}
    if sink.is_file():
        for line in sink.read_text().splitlines():
            r = json.loads(line)
            done[r["key"]] = r
    step = steps_for(mz, maze)
    rows = []
    episodes = args.episodes if episodes is None else episodes
    where = "" if tuple(eval_seeds) == TEST_SEEDS else f"-evalseeds={list(eval_seeds)}"
    for seed in mz.seeds:
        for kind, n, rule in plans:
            what = (f"n0={args.n0}-nmax={n}-{rule.replace(':', '=')}" if rule is not None
                    else f"fixed-n={n}")  # fmt: skip
            key = f"{maze}-s{seed}-{step}-{what}-eps={episodes}{where}-{knobs['value']}-" \
                  f"beta={knobs['beta']:g}-lam={knobs['lam']:g}-lamT={knobs['lam_T']:g}"
            if key not in done:
                cfg = selector_params(mz, maze, n=n, beta=knobs["beta"], lam=knobs["lam"],
                                      lam_T=knobs["lam_T"], value=knobs["value"])  # fmt: skip
                budget = None
                if rule is not None:
                    cue, kappa = rule.split(":")[0], float(rule.split(":")[1])
                    budget = AdaptiveBudget(n0=args.n0, n_max=n, kappa=kappa, cue=cue)
                t0 = time.perf_counter()
                s = evaluate_config(
                    load_run_models(mz, maze, seed, step, "gem"), SelectorConfig(**cfg),
                    dataset_id(maze), episodes=episodes, seeds=list(eval_seeds),
                    num_envs=min(episodes, 30), budget=budget,
                )  # fmt: skip
                done[key] = {"key": key, "kind": kind, "n": n, "kappa": rule,
                             "train_seed": seed, "score": s.score_mean,
                             "critic_evals": s.critic_evals, "episodes": episodes,
                             "eval_seeds": list(eval_seeds),
                             "eval_s": time.perf_counter() - t0}  # fmt: skip
                append_cell(sink, done[key])
                print(f"{key}: score {s.score_mean:.1f}, {s.critic_evals:.1f} critic evals per "
                      f"decision ({time.perf_counter() - t0:.0f}s)", flush=True)
            rows.append(done[key])
    return rows


def summarize(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    groups: dict[tuple[str, int, str | None], list[dict[str, Any]]] = {}
    for r in rows:
        groups.setdefault((r["kind"], r["n"], r["kappa"]), []).append(r)
    out = []
    for (kind, n, kappa), rs in sorted(groups.items(), key=lambda kv: (kv[0][0], kv[0][1],
                                                                         str(kv[0][2]))):
        sc = np.array([r["score"] for r in rs], dtype=float)
        ev = np.array([r["critic_evals"] for r in rs], dtype=float)
        out.append({"kind": kind, "n": n, "kappa": kappa, "score": float(sc.mean()),
                    "score_std": float(sc.std()), "critic_evals": float(ev.mean()),
                    "train_seeds": len(rs)})  # fmt: skip
    return out


def plot(summary: list[dict[str, Any]], maze: str, path: Path) -> None:
    from matplotlib.figure import Figure

    fig = Figure(figsize=(5.2, 3.6))
    ax = fig.subplots()
    fixed = [r for r in summary if r["kind"] == "fixed"]
    ax.errorbar([r["critic_evals"] for r in fixed], [r["score"] for r in fixed],
                yerr=[r["score_std"] for r in fixed], marker="o", capsize=3,
                label=f"fixed N ({', '.join(str(r['n']) for r in fixed)})")  # fmt: skip
    for r in fixed:
        ax.annotate(f"N={r['n']}", (r["critic_evals"], r["score"]), fontsize=7,
                    textcoords="offset points", xytext=(3, 3))  # fmt: skip
    ad = [r for r in summary if r["kind"] == "adaptive"]
    ax.errorbar([r["critic_evals"] for r in ad], [r["score"] for r in ad],
                yerr=[r["score_std"] for r in ad], marker="s", ls="none", capsize=3,
                label="adaptive (n0 -> n_max), one point per cue:kappa")  # fmt: skip
    for r in ad:
        ax.annotate(str(r["kappa"]), (r["critic_evals"], r["score"]), fontsize=7,
                    textcoords="offset points", xytext=(3, -9))  # fmt: skip
    ax.set_xscale("log")
    ax.set_xlabel("critic evaluations per decision (candidates scored)")
    ax.set_ylabel("normalised score")
    ax.set_title(f"{maze}: score vs compute")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--suite", default="mazes", choices=["mazes", "maze2d"])
    p.add_argument("--maze", default="medium", help="a task of the suite (medium, maze2d-umaze)")
    p.add_argument("--runs", required=True, help="the reproduction's runs folder")
    p.add_argument("--cells", required=True, help="the reproduction's cell cache")
    p.add_argument("--maze-steps", nargs="*", default=[])
    p.add_argument("--suite-flag", dest="suite_flags", action="append", default=[], metavar="FLAG",
                   help="more flags of the suite run whose cells are read, e.g. "
                        "--suite-flag=--test-episodes=100 --suite-flag=--big-episodes=30")
    p.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    p.add_argument("--rules", nargs="+", default=["lead:0.05", "lead:0.2", "gain:0.1", "gain:0.5"],
                   help="adaptive rules CUE:KAPPA (cue lead or gain; see gemkit.budget)")
    p.add_argument("--n0", type=int, default=16)
    p.add_argument("--extra-n", type=int, nargs="*", default=[],
                   help="fixed N values to evaluate here too (between the suite's budgets)")
    p.add_argument("--n-max", type=int, default=1024)
    p.add_argument("--validate", type=int, default=0, metavar="EPISODES",
                   help="first evaluate the rules on the suite's validation seeds with this "
                        "many episodes and name the one with the best mean (the knob protocol)")
    p.add_argument("--episodes", type=int, default=10)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--out", required=True, help="cache of the adaptive cells")
    p.add_argument("--figures", default=None,
                   help="write adaptive_frontier.{png,json} here (--suite maze2d: "
                        "adaptive_<maze>.{png,json})")
    args = p.parse_args(argv)
    # the knobs the suite chose on all its tasks at --seeds; the frontier runs on --seeds
    mz = parse_args(["report", "--suite", args.suite, "--runs", args.runs, "--out", args.cells,
                     "--seeds", *map(str, args.seeds), *args.suite_flags,
                     "--maze-steps", *args.maze_steps])  # fmt: skip
    knobs = suite_knobs(mz)
    chosen, val_scores = None, {}
    if args.validate:
        val = adaptive_rows(args, mz, args.maze, knobs,
                            [("adaptive", args.n_max, rule) for rule in args.rules],
                            eval_seeds=VAL_SEEDS, episodes=args.validate)  # fmt: skip
        for r in summarize(val):
            val_scores[r["kappa"]] = r["score"]
        chosen = max(val_scores, key=lambda k: val_scores[k])
        print(f"validation (seeds {list(VAL_SEEDS)}, {args.validate} episodes per checkpoint): "
              + ", ".join(f"{k} {v:.1f}" for k, v in val_scores.items())
              + f"; chosen: {chosen}")
    # the adaptive rules, then fixed N values the suite did not evaluate (e.g. between its
    # budgets, where an adaptive point's cost falls)
    plans = [("adaptive", args.n_max, rule) for rule in args.rules]
    plans += [("fixed", n, None) for n in args.extra_n]
    rows = fixed_rows(mz, args.maze, knobs) + adaptive_rows(args, mz, args.maze, knobs, plans)
    summary = summarize(rows)
    fixed = [r for r in summary if r["kind"] == "fixed"]
    for r in summary:
        mark = ""
        cheaper = [f for f in fixed if f["critic_evals"] <= r["critic_evals"]]
        if r["kind"] == "adaptive" and cheaper:
            best = max(cheaper, key=lambda f: f["score"])
            spread = max(r["score_std"], best["score_std"])
            verdict = "beats" if r["score"] - best["score"] > spread else "does not beat"
            mark = (f"  {verdict} the best fixed N with no more evals (N={best['n']}, "
                    f"{best['score']:.1f}; spread {spread:.1f})")
        label = f"N={r['n']}" if r["kind"] == "fixed" else f"adaptive {r['kappa']}"
        if chosen is not None and r["kappa"] == chosen:
            label = "(validated) " + label
        print(f"{label:>22}: score {r['score']:6.1f} ± {r['score_std']:4.1f}, "
              f"{r['critic_evals']:7.1f} critic evals/decision{mark}")
    if args.figures is not None:
        figs = Path(args.figures)
        figs.mkdir(parents=True, exist_ok=True)
        name = "adaptive_frontier" if args.suite == "mazes" else f"adaptive_{args.maze}"
        plot(summary, args.maze, figs / f"{name}.png")
        (figs / f"{name}.json").write_text(json.dumps(
            {"maze": args.maze, "knobs": knobs, "n0": args.n0, "n_max": args.n_max,
             "episodes_adaptive": args.episodes, "validation": val_scores,
             "chosen_on_validation": chosen, "summary": summary, "cells": rows}, indent=2)
            + "\n")  # fmt: skip
        print(f"wrote {figs / name}.png and .json")


if __name__ == "__main__":
    main()
