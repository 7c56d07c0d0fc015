"""Why GEM's actor trails early: Phase I variants retrained on one maze, scored side by side.

The maze reproduction's learning curves show the K = 5 guided-EM actor's anchor below the fair
K = 1 baseline for the first ~150k steps on medium, then level with it. This script retrains one
factor at a time and scores each run at the same step with the suite's chosen knobs:

- ``density``: the reference (the reproduction's own run, or one trained here);
- ``censored``: ``gmm_likelihood=censored`` (clipped actions score the mass beyond the edge);
- ``undetached``: ``detach_gamma=false`` (gradients through the responsibilities);
- ``k2``: ``n_components=2`` (actor and behavior GMMs);
- ``c_ent0``: ``c_ent=0`` (no gating-entropy bonus);
- ``alpha1`` / ``alpha10``: guidance strength 1 or 10 (ours: 3).

Each run is scored on the test evaluation seeds: GEM's anchor alone (N = 0), the run's own fair
baseline (N = 0), and GEM at N = 64. One training seed per variant by default: read the table as
a screen, not a verdict.

Usage::

    python reproductions/ablations.py train --runs RUNS --steps 60000 --variants censored undetached
    python reproductions/ablations.py eval --runs RUNS --out CELLS --reference REF_RUN_DIR \\
        --knobs-from MAZE_CELLS --maze-steps medium=300000
    python reproductions/ablations.py report --out CELLS --json docs/results/ablations.json
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import mazes

VARIANTS: dict[str, list[str]] = {
    "density": [],
    "censored": ["gmm_likelihood=censored"],
    "undetached": ["detach_gamma=false"],
    "k2": ["n_components=2"],
    "c_ent0": ["c_ent=0"],
    "alpha1": ["alpha=1.0"],
    "alpha10": ["alpha=10.0"],
}


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("stage", choices=["train", "eval", "report"])
    p.add_argument("--runs", type=Path, default=Path("reproductions/out/ablations/runs"))
    p.add_argument("--out", type=Path, default=Path("reproductions/out/ablations"))
    p.add_argument("--maze", default="medium", choices=mazes.MAZE_NAMES)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--steps", type=int, default=60_000)
    p.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    p.add_argument("--reference", type=Path, default=None,
                   help="a run directory to score as 'density' instead of training one")
    p.add_argument("--knobs-from", type=Path, default=None,
                   help="the maze reproduction's cell cache: use the knobs its validation chose")
    p.add_argument("--maze-steps", nargs="*", default=[])
    p.add_argument("--n", type=int, default=64)
    p.add_argument("--episodes", type=int, default=30)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--json", type=Path, default=None, help="report: also write the table here")
    return p.parse_args(argv)


def run_dir(args: argparse.Namespace, variant: str) -> Path:
    if variant == "density" and args.reference is not None:
        return args.reference
    return args.runs / f"{args.maze}-{variant}-s{args.seed}"


def stage_train(args: argparse.Namespace) -> None:
    from gemkit.train import models_at

    # the maze reproduction's training command: its --train-set plus the variant's one change
    mz = mazes.parse_args(["train", "--steps", str(args.steps), "--threads", str(args.threads)])
    for v in args.variants:
        out = run_dir(args, v)
        if models_at(out, args.steps) is not None:
            continue
        cmd = mazes.train_command(mz, args.maze, args.seed, out=out,
                                  train_set=[*mz.train_set, *VARIANTS[v]])  # fmt: skip
        print(" ".join(cmd), flush=True)
        subprocess.run(cmd, check=True)


def knobs(args: argparse.Namespace) -> dict[str, Any]:
    if args.knobs_from is None:
        return {"beta": 1.0, "lam": 1.0, "lam_T": 1.0, "value": "lcb_z"}
    mz = mazes.parse_args(["report", "--out", str(args.knobs_from), *(
        ["--maze-steps", *args.maze_steps] if args.maze_steps else [])])  # fmt: skip
    k = mazes.suite_knobs(mz)
    return {key: k[key] for key in ("beta", "lam", "lam_T", "value")}


def cells(args: argparse.Namespace) -> list[dict[str, Any]]:
    mz = mazes.parse_args(["report"])
    kn = knobs(args)
    out = []
    for v in args.variants:
        for actor, n in (("gem", 0), ("baseline", 0), ("gem", args.n)):
            cfg = mazes.selector_params(mz, args.maze, n=n, **kn)
            out.append({"variant": v, "actor": actor, "n": n, "config": cfg})
    return out


def read_rows(out: Path) -> list[dict[str, Any]]:
    path = out / "ablations.jsonl"
    return [json.loads(x) for x in path.read_text().splitlines() if x] if path.is_file() else []


def _ident(c: dict[str, Any], seed: int) -> tuple[str, int, str, int, str]:
    return (c["variant"], seed, c["actor"], c["n"], json.dumps(c["config"], sort_keys=True))


def stage_eval(args: argparse.Namespace) -> None:
    import torch

    from gemkit.config import SelectorConfig
    from gemkit.eval.runs import evaluate_config
    from gemkit.models import load_models
    from gemkit.train import models_at

    torch.set_num_threads(args.threads)
    args.out.mkdir(parents=True, exist_ok=True)
    done = {_ident(r, r["seed"]) for r in read_rows(args.out) if r["steps"] == args.steps}
    for c in cells(args):
        d = models_at(run_dir(args, c["variant"]), args.steps)
        if _ident(c, args.seed) in done or d is None:
            continue
        models = load_models(d)
        if c["actor"] == "baseline":
            models = models.unimodal()
        t0 = time.perf_counter()
        s = evaluate_config(models, SelectorConfig(**c["config"]), mazes.dataset_id(args.maze),
                            episodes=args.episodes, seeds=mazes.TEST_SEEDS,
                            num_envs=min(args.episodes, 30))  # fmt: skip
        row = {**c, "maze": args.maze, "seed": args.seed, "steps": args.steps,
               "run": str(d), "score": s.score_mean, "violation": s.row()["violation"],
               "returns": [float(x) for r in s.results for x in r.returns],
               "eval_s": time.perf_counter() - t0}  # fmt: skip
        with (args.out / "ablations.jsonl").open("a") as f:
            f.write(json.dumps(row) + "\n")
        print(f"{c['variant']:>10} {c['actor']:>8} N={c['n']:<4} -> {s.score_mean:.1f}", flush=True)


def stage_report(args: argparse.Namespace) -> None:
    rows = [r for r in read_rows(args.out)
            if r["steps"] == args.steps and r.get("seed", 0) == args.seed]  # fmt: skip
    by = {(r["variant"], r["actor"], r["n"]): r for r in rows}
    order = [v for v in VARIANTS if any(k[0] == v for k in by)]
    cols = [("gem", 0), ("baseline", 0), ("gem", args.n)]
    print(f"| variant | --set | GEM anchor (N=0) | fair baseline (N=0) | GEM N={args.n} |")
    print("|---|---|---:|---:|---:|")
    table = []
    for v in order:
        got = [by.get((v, a, n)) for a, n in cols]
        cells_ = [f"{g['score']:.1f}" if g else "-" for g in got]
        print(f"| {v} | {' '.join(VARIANTS[v]) or '(reference)'} | " + " | ".join(cells_) + " |")
        scores = {f"{a}_n{n}": (g["score"] if g else None)
                  for (a, n), g in zip(cols, got, strict=True)}  # fmt: skip
        table.append({"variant": v, "set": VARIANTS[v], **scores})
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        every = [{k: r[k] for k in ("variant", "seed", "actor", "n", "score")}
                 for r in read_rows(args.out) if r["steps"] == args.steps]  # fmt: skip
        args.json.write_text(json.dumps({"maze": args.maze, "seed": args.seed, "steps": args.steps,
                                         "episodes": args.episodes, "rows": table,
                                         "every_seed": every}, indent=1))  # fmt: skip


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    {"train": stage_train, "eval": stage_eval, "report": stage_report}[args.stage](args)


if __name__ == "__main__":
    main()
