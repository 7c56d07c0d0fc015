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

The maze cell cache that ``--knobs-from`` reads is not kept between machines; ``--knobs
value=lcb beta=1 lam=0.003 lam_T=0.003`` gives the chosen knobs directly. ``restore --report
docs/results/ablations.json --out CELLS`` writes a committed report's scores back into the cache
(marked ``restored_from``), so runs of new seeds are reported beside the committed ones::

    python reproductions/ablations.py restore --out CELLS --report docs/results/ablations.json
    python reproductions/ablations.py train --runs RUNS --seed 1 --variants c_ent0 alpha1
    python reproductions/ablations.py eval --runs RUNS --out CELLS --seed 1 --variants c_ent0 \\
        alpha1 --knobs value=lcb beta=1 lam=0.003 lam_T=0.003
"""

from __future__ import annotations

import argparse
import json
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from gemkit.experiments import MAZE_NAMES, TEST_SEEDS, dataset_id
from gemkit.experiments.args import parse_args as suite_args
from gemkit.experiments.plan import selector_params, suite_knobs, train_command

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
                   help="the maze reproduction's cell cache: use the knobs its validation chose")
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
        return args.reference
    return args.runs / f"{args.maze}-{variant}-s{args.seed}"


def stage_train(args: argparse.Namespace) -> None:
    from gemkit.train import models_at

    # the maze reproduction's training command: its --train-set plus the variant's one change
    mz = suite_args(["train", "--steps", str(args.steps), "--threads", str(args.threads)])
    for v in args.variants:
        out = run_dir(args, v)
        if models_at(out, args.steps) is not None:
            continue
        cmd = train_command(mz, args.maze, args.seed, out=out,
                                  train_set=[*mz.train_set, *VARIANTS[v]])  # fmt: skip
        print(" ".join(cmd), flush=True)
        subprocess.run(cmd, check=True)


#: the knobs a cell takes from the suite (``--knobs``, or chosen in ``--knobs-from``'s cells)
KNOBS = ("value", "beta", "lam", "lam_T")


def explicit_knobs(pairs: Sequence[str]) -> dict[str, Any]:
    """``["value=lcb", "beta=1", ...]`` as knobs; every one of :data:`KNOBS` must be given."""
    got: dict[str, Any] = {}
    for kv in pairs:
        key, sep, val = kv.partition("=")
        if not sep or key not in KNOBS:
            raise SystemExit(f"--knobs {kv!r}: expected KEY=VALUE with KEY one of "
                             f"{', '.join(KNOBS)}")  # fmt: skip
        try:
            got[key] = val if key == "value" else float(val)
        except ValueError:
            raise SystemExit(f"--knobs {kv!r}: {key} takes a number") from None
    missing = [k for k in KNOBS if k not in got]
    if missing:
        raise SystemExit(f"--knobs: also give {', '.join(missing)}")
    return got


def knobs(args: argparse.Namespace) -> dict[str, Any]:
    if args.knobs and args.knobs_from is not None:
        raise SystemExit("give the knobs by --knobs or by --knobs-from, not both")
    if args.knobs:
        return explicit_knobs(args.knobs)
    if args.knobs_from is None:
        return {"beta": 1.0, "lam": 1.0, "lam_T": 1.0, "value": "lcb_z"}
    mz = suite_args(["report", "--out", str(args.knobs_from), *(
        ["--maze-steps", *args.maze_steps] if args.maze_steps else [])])  # fmt: skip
    k = suite_knobs(mz)
    return {key: k[key] for key in KNOBS}


def cells(args: argparse.Namespace) -> list[dict[str, Any]]:
    mz = suite_args(["report"])
    kn = knobs(args)
    out = []
    for v in args.variants:
        for actor, n in (("gem", 0), ("baseline", 0), ("gem", args.n)):
            cfg = selector_params(mz, args.maze, n=n, **kn)
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
        s = evaluate_config(models, SelectorConfig(**c["config"]), dataset_id(args.maze),
                            episodes=args.episodes, seeds=TEST_SEEDS,
                            num_envs=min(args.episodes, 30))  # fmt: skip
        row = {**c, "maze": args.maze, "seed": args.seed, "steps": args.steps,
               "run": str(d), "score": s.score_mean, "violation": s.row()["violation"],
               "returns": [float(x) for r in s.results for x in r.returns],
               "eval_s": time.perf_counter() - t0}  # fmt: skip
        with (args.out / "ablations.jsonl").open("a") as f:
            f.write(json.dumps(row) + "\n")
        print(f"{c['variant']:>10} {c['actor']:>8} N={c['n']:<4} -> {s.score_mean:.1f}", flush=True)


def columns(n: int) -> list[tuple[str, int]]:
    """The ``(actor, N)`` of a report's three columns: GEM's anchor, the fair baseline, GEM at
    ``n`` candidates."""
    return [("gem", 0), ("baseline", 0), ("gem", n)]


def latest_scores(rows: Sequence[dict[str, Any]], steps: int) -> dict[tuple[str, int, str, int],
                                                                      float]:  # fmt: skip
    """``(variant, seed, actor, n) -> score`` at ``steps``; a later row of a key wins."""
    return {(r["variant"], r.get("seed", 0), r["actor"], r["n"]): r["score"]
            for r in rows if r["steps"] == steps}  # fmt: skip


def across_seeds(scores: dict[tuple[str, int, str, int], float],
                 n: int) -> dict[str, dict[str, Any]]:  # fmt: skip
    """Per variant measured on more than one training seed: its three scores beside the
    reference's (``density``) on every seed where both have all three, and their means over
    those seeds (the reference's mean over the same seeds, not over all of its own)."""
    cols = columns(n)
    keys = [f"{a}_n{k}" for a, k in cols]
    out: dict[str, dict[str, Any]] = {}
    for v in VARIANTS:
        if v == "density":
            continue
        seeds = sorted({s for (v_, s, _, _) in scores if v_ == v
                        and all((w, s, a, k) in scores for w in (v, "density") for a, k in cols)})
        if len(seeds) < 2:
            continue
        per = [{"seed": s, **{f"{w}_{key}": scores[(w_, s, a, k)]
                              for w, w_ in (("reference", "density"), ("variant", v))
                              for key, (a, k) in zip(keys, cols, strict=True)}}
               for s in seeds]  # fmt: skip
        mean = {f: sum(r[f] for r in per) / len(per) for f in per[0] if f != "seed"}
        out[v] = {"set": VARIANTS[v], "seeds": seeds, "per_seed": per, "mean": mean}
    return out


def stage_report(args: argparse.Namespace) -> None:
    scores = latest_scores(read_rows(args.out), args.steps)
    cols = columns(args.n)
    order = [v for v in VARIANTS if any((v, args.seed, a, k) in scores for a, k in cols)]
    print(f"| variant | --set | GEM anchor (N=0) | fair baseline (N=0) | GEM N={args.n} |")
    print("|---|---|---:|---:|---:|")
    table = []
    for v in order:
        got = [scores.get((v, args.seed, a, k)) for a, k in cols]
        cells_ = [f"{g:.1f}" if g is not None else "-" for g in got]
        print(f"| {v} | {' '.join(VARIANTS[v]) or '(reference)'} | " + " | ".join(cells_) + " |")
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
    """Append the scores of the committed report ``--report`` to ``--out``'s cache, marked
    ``restored_from`` (their run directories are gone; ``eval`` skips nothing because of them,
    ``report`` counts them). Only the variants of ``--variants`` and the seeds of
    ``--only-seeds``, so that runs retrained on another machine are not paired with a reference
    trained elsewhere."""
    if args.report is None or not args.report.is_file():
        raise SystemExit(f"restore: --report {args.report}: no such file (a JSON that "
                         "'report --json' wrote)")  # fmt: skip
    body = json.loads(args.report.read_text())
    have = latest_scores(read_rows(args.out), body["steps"])
    args.out.mkdir(parents=True, exist_ok=True)
    added = 0
    with (args.out / "ablations.jsonl").open("a") as f:
        for r in body["every_seed"]:
            if ((r["variant"], r["seed"], r["actor"], r["n"]) in have
                    or r["variant"] not in args.variants
                    or (args.only_seeds is not None and r["seed"] not in args.only_seeds)):
                continue
            f.write(json.dumps({**r, "maze": body["maze"], "steps": body["steps"],
                                "config": None, "restored_from": str(args.report)}) + "\n")
            added += 1
    print(f"restored {added} score(s) from {args.report} into {args.out / 'ablations.jsonl'}")


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    {"train": stage_train, "eval": stage_eval, "report": stage_report,
     "restore": stage_restore}[args.stage](args)


if __name__ == "__main__":
    main()
