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

``--knobs-from docs/results/mazes/cells --maze-steps umaze=300000 medium=300000
large=300000`` takes the knobs the PointMaze suite chose (its cells are committed); ``--knobs
value=lcb beta=1 lam=0.003 lam_T=0.003`` gives them directly. The cells are ordinary evaluation
cells of ``gemkit.experiments`` (tagged with their variant and run; ``<out>/cells-*.jsonl``).
``restore --report docs/results/ablations.json --out CELLS`` writes a committed report's scores
back into the store (marked ``restored_from``), so runs of new seeds are reported beside the
committed ones::

    python reproductions/ablations.py restore --out CELLS --report docs/results/ablations.json
    python reproductions/ablations.py train --runs RUNS --seed 1 --variants c_ent0 alpha1
    python reproductions/ablations.py eval --runs RUNS --out CELLS --seed 1 --variants c_ent0 \\
        alpha1 --knobs value=lcb beta=1 lam=0.003 lam_T=0.003
"""

from __future__ import annotations

import argparse
import json
import subprocess
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from gemkit.experiments import MAZE_NAMES, TEST_SEEDS, make_cell, read_cells
from gemkit.experiments.args import parse_args as suite_args
from gemkit.experiments.plan import suite_knobs, train_command
from gemkit.experiments.stages import evaluate_cells
from gemkit.experiments.variants import (
    KNOBS,
    VARIANTS,
    across_seeds,
    columns,
    parse_knobs,
    variant_cells,
    variant_scores,
)

#: where ``restore`` puts a committed report's scores (a ``cells-*.jsonl`` of the store)
RESTORED = "cells-restored.jsonl"


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("stage", choices=["train", "eval", "report", "restore"])
    p.add_argument("--runs", type=Path, default=Path("reproductions/out/ablations/runs"))
    p.add_argument("--out", type=Path, default=Path("reproductions/out/ablations"))
    p.add_argument("--maze", default="medium", choices=MAZE_NAMES)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--steps", type=int, default=60_000)
    p.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    p.add_argument("--reference", type=Path, default=None,
                   help="a run directory to score as 'density' instead of training one")
    p.add_argument("--knobs-from", type=Path, default=None,
                   help="the maze suite's cell store: use the knobs its validation chose")
    p.add_argument("--maze-steps", nargs="*", default=[])
    p.add_argument("--knobs", nargs="*", default=[], metavar="KEY=VALUE",
                   help=f"the selection knobs themselves ({', '.join(KNOBS)}), instead of "
                        "--knobs-from")
    p.add_argument("--report", type=Path, default=None,
                   help="restore: the committed report JSON whose scores go back into --out")
    p.add_argument("--only-seeds", type=int, nargs="*", default=None,
                   help="restore: only these training seeds (default: all; --variants applies)")
    p.add_argument("--n", type=int, default=64)
    p.add_argument("--episodes", type=int, default=30)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--json", type=Path, default=None, help="report: also write the table here")
    return p.parse_args(argv)


def run_dir(args: argparse.Namespace, variant: str) -> Path:
    if variant == "density" and args.reference is not None:
        return Path(args.reference)
    return Path(args.runs) / f"{args.maze}-{variant}-s{args.seed}"


def stage_train(args: argparse.Namespace) -> None:
    from gemkit.train import models_at

    # the maze suite's training command: its --train-set plus the variant's one change
    mz = suite_args(["train", "--steps", str(args.steps), "--threads", str(args.threads)])
    for v in args.variants:
        out = run_dir(args, v)
        if models_at(out, args.steps) is not None:
            continue
        cmd = train_command(mz, args.maze, args.seed, out=out,
                            train_set=[*mz.train_set, *VARIANTS[v]])  # fmt: skip
        print(" ".join(cmd), flush=True)
        subprocess.run(cmd, check=True)


def knobs(args: argparse.Namespace) -> dict[str, Any]:
    if args.knobs and args.knobs_from is not None:
        raise SystemExit("give the knobs by --knobs or by --knobs-from, not both")
    if args.knobs:
        return parse_knobs(args.knobs)
    if args.knobs_from is None:
        return {"beta": 1.0, "lam": 1.0, "lam_T": 1.0, "value": "lcb_z"}
    mz = suite_args(["report", "--out", str(args.knobs_from), *(
        ["--maze-steps", *args.maze_steps] if args.maze_steps else [])])  # fmt: skip
    k = suite_knobs(mz)
    return {key: k[key] for key in KNOBS}


def cells(args: argparse.Namespace) -> list[dict[str, Any]]:
    runs = {v: run_dir(args, v) for v in args.variants}
    return variant_cells(suite_args(["report"]), args.maze, args.seed, args.steps, runs,
                         knobs(args), args.n, args.episodes)  # fmt: skip


def stage_eval(args: argparse.Namespace) -> None:
    config = suite_args(["report", "--out", str(args.out), "--threads", str(args.threads)])
    evaluate_cells(config, cells(args))


def stage_report(args: argparse.Namespace) -> None:
    scores = variant_scores(read_cells(args.out).values(), args.steps)
    cols = columns(args.n)
    order = [v for v in VARIANTS if any((v, args.seed, a, k) in scores for a, k in cols)]
    print(f"| variant | --set | GEM anchor (N=0) | fair baseline (N=0) | GEM N={args.n} |")
    print("|---|---|---:|---:|---:|")
    table = []
    for v in order:
        got = [scores.get((v, args.seed, a, k)) for a, k in cols]
        text = [f"{g:.1f}" if g is not None else "-" for g in got]
        print(f"| {v} | {' '.join(VARIANTS[v]) or '(reference)'} | " + " | ".join(text) + " |")
        table.append({"variant": v, "set": VARIANTS[v],
                      **{f"{a}_n{k}": g for (a, k), g in zip(cols, got, strict=True)}})
    several = across_seeds(scores, args.n)
    for v, body in several.items():
        print(f"\n{v} ({' '.join(body['set'])}) against the reference, per training seed "
              f"(reference / {v}):")
        print(f"| training seed | anchor | baseline | GEM N={args.n} |")
        print("|---|---|---|---|")
        for r in [*body["per_seed"], {"seed": "mean", **body["mean"]}]:
            print(f"| {r['seed']} | " + " | ".join(
                f"{r[f'reference_{a}_n{k}']:.1f} / {r[f'variant_{a}_n{k}']:.1f}"
                for a, k in cols) + " |")
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        every = [{"variant": v, "seed": s, "actor": a, "n": k, "score": x}
                 for (v, s, a, k), x in scores.items()]  # fmt: skip
        args.json.write_text(json.dumps({"maze": args.maze, "seed": args.seed, "steps": args.steps,
                                         "episodes": args.episodes, "rows": table,
                                         "across_seeds": several, "every_seed": every},
                                        indent=1))  # fmt: skip


def stage_restore(args: argparse.Namespace) -> None:
    """Append the scores of the committed report ``--report`` to ``--out``'s store as cells
    marked ``restored_from`` (their configs and run directories are gone: ``config`` holds N
    alone; ``report`` counts them). Only the variants of ``--variants`` and the seeds of
    ``--only-seeds``, so that runs retrained on another machine are not paired with a reference
    trained elsewhere."""
    if args.report is None or not args.report.is_file():
        raise SystemExit(f"restore: --report {args.report}: no such file (a JSON that "
                         "'report --json' wrote)")  # fmt: skip
    body = json.loads(args.report.read_text())
    have = variant_scores(read_cells(args.out).values(), body["steps"])
    args.out.mkdir(parents=True, exist_ok=True)
    sink = args.out / RESTORED
    added = 0
    with sink.open("a") as f:
        for r in body["every_seed"]:
            if ((r["variant"], r["seed"], r["actor"], r["n"]) in have
                    or r["variant"] not in args.variants
                    or (args.only_seeds is not None and r["seed"] not in args.only_seeds)):
                continue
            c = make_cell("test", body["maze"], r["seed"], body["steps"], r["actor"],
                          {"n": r["n"]}, TEST_SEEDS, body["episodes"], series="variant",
                          variant=r["variant"])  # fmt: skip
            f.write(json.dumps({**c, "score_mean": r["score"],
                                "restored_from": str(args.report)}) + "\n")
            added += 1
    print(f"restored {added} score(s) from {args.report} into {sink}")


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    {"train": stage_train, "eval": stage_eval, "report": stage_report,
     "restore": stage_restore}[args.stage](args)


if __name__ == "__main__":
    main()
