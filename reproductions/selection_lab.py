"""The selection lab: the literature's sample-and-rerank rules over one critic and one dataset.

Every rule of ``gemkit.config.METHOD_PRESETS`` (IDQL, SfBC, EMaQ, IFQL, best-of-N) and GEM run
over the same trained checkpoint (its critic ensemble, behavior GMM and actor) on the same
evaluation episodes, at several candidate counts ``N``, so that their differences are the rules'
alone. The diffusion and flow proposers are fitted on the checkpoint's dataset first.

Stages (resumable; every evaluated cell is cached in ``<out>/cells-lab.jsonl``)::

    python reproductions/selection_lab.py fit --dataset gemkit/maze2d-umaze-v1 --runs R
    python reproductions/selection_lab.py eval --checkpoint C --dataset gemkit/maze2d-umaze-v1 \\
        --runs R --out docs/results/lab/cells --ns 4 16 64 256 --episodes 30
    python reproductions/selection_lab.py report --out docs/results/lab/cells

``report`` writes ``docs/results-lab.md`` and its table, JSON and figure from the cells alone.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from gemkit.config import METHOD_PRESETS, SelectorConfig
from gemkit.eval.io import write_csv, write_json
from gemkit.experiments import append_cell, make_cell, read_cells
from gemkit.experiments.plan import log
from gemkit.experiments.tables import fmt_number, table

ROOT = Path(__file__).resolve().parents[1]
#: GEM at the Maze2D suite's chosen knobs (docs/results-maze2d.md), and GEM's rule (z-scored LCB
#: plus z-scored behaviour support) over the diffusion model's candidates instead of its actor's
GEM_KNOBS: dict[str, Any] = {"value": "lcb_z", "beta": 1.0, "lam": 1.0, "lam_T": 1.0}
RULES: dict[str, dict[str, Any]] = {
    "gem": GEM_KNOBS,
    **METHOD_PRESETS,
    "gem_rule_on_diffusion": {**GEM_KNOBS, "proposer": "diffusion", "anchor": "none"},
}


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("stage", choices=["fit", "eval", "report"])
    p.add_argument("--dataset", default="gemkit/maze2d-umaze-v1")
    p.add_argument("--checkpoint", type=Path, help="a gemkit train run (its critic and GMMs)")
    p.add_argument("--runs", type=Path, default=ROOT / "reproductions" / "out" / "lab",
                   help="the fitted proposers (<runs>/diffusion, <runs>/flow)")  # fmt: skip
    p.add_argument("--steps", type=int, default=100_000, help="fit: gradient steps")
    p.add_argument("--fit-seed", type=int, default=0,
                   help="fit: the proposers' seed (fit one set per training seed)")
    p.add_argument("--out", type=Path, default=ROOT / "docs" / "results" / "lab" / "cells")
    p.add_argument("--doc", type=Path, default=ROOT / "docs" / "results-lab.md")
    p.add_argument("--figures", type=Path, default=ROOT / "docs" / "results" / "lab")
    p.add_argument("--rules", nargs="+", default=list(RULES), choices=list(RULES))
    p.add_argument("--ns", nargs="+", type=int, default=[4, 16, 64, 256])
    p.add_argument("--episodes", type=int, default=30)
    p.add_argument("--seed", type=int, default=0, help="evaluation seed")
    p.add_argument("--horizon", type=int, default=None,
                   help="H of GEM's lambda schedule (default: the task's horizon)")  # fmt: skip
    p.add_argument("--threads", type=int, default=1)
    return p.parse_args(argv)


def stage_fit(args: argparse.Namespace) -> None:
    import torch

    from gemkit.data import load
    from gemkit.train.proposer_fit import fit_proposer

    torch.set_num_threads(args.threads)
    data = load(args.dataset)
    for kind in ("diffusion", "flow"):
        t0 = time.perf_counter()
        fit_proposer(data, args.runs / kind, args.steps, kind=kind, seed=args.fit_seed)
        took = time.perf_counter() - t0
        log(f"{kind}: {args.steps:,} steps in {args.runs / kind} ({took:.0f}s)")


def cells(args: argparse.Namespace, train_seed: int = 0) -> list[dict[str, Any]]:
    """The planned cells over the checkpoint of ``train_seed``: every rule at every ``N``."""
    from gemkit.experiments import horizon as task_horizon

    task = args.dataset.removeprefix("gemkit/").rsplit("-v", 1)[0]
    horizon = args.horizon or task_horizon(task)
    out = []
    for rule in args.rules:
        for n in args.ns:
            cfg = SelectorConfig(**{"horizon": horizon, **RULES[rule], "n": n}).to_dict()["params"]
            out.append(make_cell("test", args.dataset, train_seed, 0, rule, cfg, [args.seed],
                                 args.episodes))  # fmt: skip
    return out


def stage_eval(args: argparse.Namespace) -> None:
    import torch

    from gemkit.eval.profile import cpu_name
    from gemkit.eval.runs import evaluate_config
    from gemkit.models import attach_generative, load_models

    torch.set_num_threads(args.threads)
    models = load_models(args.checkpoint)
    train_seed = int(models.meta["train_config"]["seed"])
    with_gen = {k: attach_generative(load_models(args.checkpoint), args.runs / k)
                for k in ("diffusion", "flow")}  # fmt: skip
    done = read_cells(args.out)
    args.out.mkdir(parents=True, exist_ok=True)
    sink, cpu = args.out / "cells-lab.jsonl", cpu_name()
    for c in (c for c in cells(args, train_seed) if c["key"] not in done):
        cfg = SelectorConfig(**c["config"])
        nets = with_gen.get(cfg.proposer, models)
        t0 = time.perf_counter()
        s = evaluate_config(nets, cfg, args.dataset, episodes=c["episodes"], seeds=c["eval_seeds"],
                            num_envs=min(c["episodes"], 30))  # fmt: skip
        row = {**c, **{k: v for k, v in s.row().items() if k not in c["config"]},
               "eval_s": time.perf_counter() - t0, "cpu": cpu,
               "checkpoint": args.checkpoint.name}  # fmt: skip
        append_cell(sink, row)
        log(f"{c['actor']} n={c['config']['n']} -> {s.score_mean:.1f} ({row['eval_s']:.0f}s)")


def stage_report(args: argparse.Namespace) -> None:
    from gemkit.experiments import mean_std

    rows = list(read_cells(args.out).values())
    if not rows:
        raise SystemExit(f"no cells in {args.out}: run the eval stage first.")
    groups: dict[tuple[str, int], list[dict[str, Any]]] = {}
    for r in rows:
        groups.setdefault((r["actor"], r["config"]["n"]), []).append(r)
    flat = []
    for (rule, n), rs in sorted(groups.items()):
        rs.sort(key=lambda r: r["train_seed"])
        score, score_std = mean_std([r["score_mean"] for r in rs])
        seeds = " ".join(str(r["train_seed"]) for r in rs)
        flat.append({"rule": rule, "n": n, "train_seeds": seeds,
                     "score": score, "score_std": score_std,
                     "success_rate": mean_std([r["success_rate"] for r in rs])[0],
                     "critic_evals": mean_std([r["critic_evals"] for r in rs])[0],
                     "env_steps_per_s": mean_std([r["steps_per_s"] for r in rs])[0],
                     "episodes": rs[0]["episodes"]})  # fmt: skip
    args.figures.mkdir(parents=True, exist_ok=True)
    write_csv(args.figures / "lab_cells.csv", flat)
    write_json(args.figures / "lab_summary.json", {"rules": {k: RULES[k] for k in args.rules},
                                                   "cells": flat})  # fmt: skip
    _plot(flat, args.figures / "lab_frontier.png")
    first = rows[0]
    cpus = ", ".join(sorted({str(r.get("cpu")) for r in rows}))
    ckpts = ", ".join(f"`{c}`" for c in sorted({str(r["checkpoint"]) for r in rows}))
    L = ["# The selection lab: the literature's rules over the same critics", "",
         f"Every rule below ran over the same checkpoints ({ckpts}: each run's critic "
         f"ensemble, behavior GMM and actor) on `{first['task']}`, {first['episodes']} test "
         f"episodes each per checkpoint (evaluation seed {first['eval_seeds'][0]}), scores on "
         "the dataset's reference scale (D4RL's published maze2d references), mean ± std over "
         "the checkpoints' training seeds. The diffusion and flow proposers were fitted by "
         "`gemkit fit-proposer` on the same dataset, one pair per training seed. Regenerated "
         "from the cells in `results/lab/cells` by `python reproductions/selection_lab.py "
         f"report` (CPU: {cpus}).", "",
         "![score against candidates, critic evaluations and speed](results/lab/lab_frontier.png)",
         "", "| rule | what it is |", "| --- | --- |",
         *(f"| {k} | {', '.join(f'{a}={b}' for a, b in RULES[k].items())} |" for k in args.rules),
         ""]  # fmt: skip
    L += table(["rule", "N", "training seeds", "score", "reached the goal (share of episodes)",
                "critic evals / decision", "env steps/s"],
               [[f["rule"], str(f["n"]), f["train_seeds"],
                 f"{fmt_number(f['score'])} ± {fmt_number(f['score_std'])}",
                 fmt_number(f["success_rate"]), f"{f['critic_evals']:.0f}",
                 f"{f['env_steps_per_s']:.0f}"] for f in flat])  # fmt: skip
    args.doc.write_text("\n".join(L) + "\n")
    log(f"wrote {args.doc}")


def _plot(flat: list[dict[str, Any]], path: Path) -> None:
    from matplotlib.figure import Figure

    fig = Figure(figsize=(10, 3.6))
    axes = fig.subplots(1, 2)
    for i, rule in enumerate(sorted({f["rule"] for f in flat})):
        pts = sorted((f for f in flat if f["rule"] == rule), key=lambda f: f["n"])
        style = {"marker": "o", "color": f"C{i}", "label": rule}
        axes[0].plot([f["critic_evals"] for f in pts], [f["score"] for f in pts], **style)
        axes[1].plot([f["env_steps_per_s"] for f in pts], [f["score"] for f in pts], **style)
    axes[0].set_xscale("log")
    axes[0].set_xlabel("critic evaluations per decision")
    axes[1].set_xscale("log")
    axes[1].set_xlabel("environment steps per second (one CPU thread)")
    for ax in axes:
        ax.set_ylabel("normalised score")
    axes[0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    {"fit": stage_fit, "eval": stage_eval, "report": stage_report}[args.stage](args)


if __name__ == "__main__":
    main()
