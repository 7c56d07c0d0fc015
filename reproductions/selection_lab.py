"""The selection lab: the literature's sample-and-rerank rules over one critic and one dataset.

Every rule of ``gemkit.experiments.lab.RULE_NAMES`` (GEM at its suite's knobs, IDQL, SfBC, EMaQ,
IFQL, best-of-N, GEM's rule over diffusion candidates) runs over the same trained checkpoint of a
Maze2D or locomotion task (its critic ensemble,
behavior GMM and actor) on the same evaluation episodes, at several candidate counts ``N``, so
that their differences are the rules' alone. The diffusion and flow proposers are fitted on the
checkpoint's dataset first. The samplers' chain length is swept at ``N = --chain-n``: a flow
model's Euler steps at sampling time (``--flow-steps``), a diffusion model's ``T`` by fitting one
model per ``T`` (``--diffusion-steps``, at the fit and eval stages alike).

Stages (resumable; every evaluated cell is cached in ``<out>/cells-lab.jsonl``)::

    python reproductions/selection_lab.py fit --dataset gemkit/maze2d-umaze-v1 --runs R \\
        [--diffusion-steps 10 20]
    python reproductions/selection_lab.py eval --checkpoint C --dataset gemkit/maze2d-umaze-v1 \\
        --runs R --out docs/results/lab/cells --ns 1 4 16 64 256 --episodes 100 \\
        [--flow-steps 1 3 30 --diffusion-steps 10 20]
    python reproductions/selection_lab.py report --out docs/results/lab/cells

``report`` writes ``docs/results-lab.md`` (a section per dataset) and its table, JSON and
figures (one per dataset) from the cells alone. A cell records the sha256 of the checkpoint's and
the fitted proposer's weights; ``eval`` and ``report`` refuse a folder in which one training
seed's cells come from two trainings (``gemkit.experiments.lab.check_provenance``).
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from gemkit.config import SelectorConfig
from gemkit.eval.io import write_csv, write_json
from gemkit.experiments import append_cell, read_cells
from gemkit.experiments.figures import plot_lab_frontier
from gemkit.experiments.lab import (
    FITTED_STEPS,
    LAB_TITLE,
    RULE_NAMES,
    check_provenance,
    figure_name,
    lab_cells,
    lab_family,
    lab_page,
    lab_rows,
    proposer_dir,
    rules,
    task_name,
)
from gemkit.experiments.plan import log

ROOT = Path(__file__).resolve().parents[1]


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
    p.add_argument("--title", default=LAB_TITLE, help="report: the page's heading")
    p.add_argument("--rules", nargs="+", default=list(RULE_NAMES), choices=list(RULE_NAMES))
    p.add_argument("--ns", nargs="+", type=int, default=[1, 4, 16, 64, 256])
    p.add_argument("--chain-n", type=int, default=64, help="N of the chain-length sweep")
    p.add_argument("--flow-steps", nargs="*", type=int, default=[],
                   help="eval: a flow rule's Euler steps at --chain-n (besides the fitted 10)")
    p.add_argument("--diffusion-steps", nargs="*", type=int, default=[],
                   help="fit and eval: diffusion models fitted with these T (besides 5)")
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
    fits = [("diffusion", None), ("flow", None), *(("diffusion", t) for t in args.diffusion_steps
                                                    if t != FITTED_STEPS["diffusion"])]  # fmt: skip
    for kind, chain in fits:
        t0, out = time.perf_counter(), proposer_dir(args.runs, kind, chain)
        fit_proposer(data, out, args.steps, kind=kind, seed=args.fit_seed, chain_steps=chain)
        log(f"{kind}: {args.steps:,} steps in {out} ({time.perf_counter() - t0:.0f}s)")


def provenance(args: argparse.Namespace, cells: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """``cells`` tagged with their fingerprints: the checkpoint's, and the fitted proposer's where
    one draws on it (absent until fitted: evaluating it then fails with the fit's own message).
    Each manifest is read once."""
    from gemkit.models import weights_digest as digest
    from gemkit.models.io import MANIFEST

    base = {"checkpoint": args.checkpoint.name, "checkpoint_sha": digest(args.checkpoint)}
    fits: dict[Path, dict[str, Any]] = {}
    tagged = []
    for c in cells:
        tags = dict(base)
        kind = c["config"]["proposer"]
        if kind in FITTED_STEPS:
            d = proposer_dir(args.runs, kind, c["config"]["chain_steps"])
            if d not in fits:
                fits[d] = {"proposer_fit": d.name}
                if (d / MANIFEST).is_file():
                    fits[d]["proposer_sha"] = digest(d)
            tags.update(fits[d])
        tagged.append({**c, **tags})
    return tagged


def stage_eval(args: argparse.Namespace) -> None:
    import torch

    from gemkit.eval.profile import cpu_name
    from gemkit.eval.runs import evaluate_config
    from gemkit.experiments import horizon as task_horizon
    from gemkit.models import Models, attach_generative, load_models

    lab_family(args.dataset)  # a dataset the lab has GEM knobs for, before loading anything
    torch.set_num_threads(args.threads)
    models = load_models(args.checkpoint)
    train_seed = int(models.meta["train_config"]["seed"])
    task = task_name(args.dataset)
    planned = lab_cells(args.dataset, args.rules, args.ns, train_seed=train_seed,
                        horizon=args.horizon or task_horizon(task), episodes=args.episodes,
                        eval_seed=args.seed, chain_n=args.chain_n, flow_steps=args.flow_steps,
                        diffusion_steps=args.diffusion_steps)  # fmt: skip
    nets: dict[Path, Models] = {}
    done = read_cells(args.out)
    todo = provenance(args, [c for c in planned if c["key"] not in done])
    check_provenance([*done.values(), *todo])  # before any evaluation: no mixed checkpoints
    args.out.mkdir(parents=True, exist_ok=True)
    sink, cpu = args.out / "cells-lab.jsonl", cpu_name()
    for c in todo:
        cfg = SelectorConfig(**c["config"])
        m = models
        if cfg.proposer in FITTED_STEPS:
            d = proposer_dir(args.runs, cfg.proposer, cfg.chain_steps)
            if d not in nets:
                nets[d] = attach_generative(load_models(args.checkpoint), d)
            m = nets[d]
        load1, t0 = os.getloadavg()[0], time.perf_counter()
        s = evaluate_config(m, cfg, args.dataset, episodes=c["episodes"], seeds=c["eval_seeds"],
                            num_envs=min(c["episodes"], 30))  # fmt: skip
        row = {**c, **{k: v for k, v in s.row().items() if k not in c["config"]},
               "eval_s": time.perf_counter() - t0, "cpu": cpu, "load1": load1}  # fmt: skip
        append_cell(sink, row)
        log(f"{c['actor']} n={cfg.n} chain={cfg.chain_steps} -> {s.score_mean:.1f} "
            f"({row['eval_s']:.0f}s)")  # fmt: skip


def stage_report(args: argparse.Namespace) -> None:
    cells = list(read_cells(args.out).values())
    if not cells:
        raise SystemExit(f"no cells in {args.out}: run the eval stage first.")
    check_provenance(cells)
    flat = lab_rows(cells)
    datasets = sorted({f["dataset"] for f in flat})
    args.figures.mkdir(parents=True, exist_ok=True)
    write_csv(args.figures / "lab_cells.csv", flat)
    write_json(args.figures / "lab_summary.json",
               {"rules": {d: {k: rules(lab_family(d))[k] for k in args.rules} for d in datasets},
                "cells": flat})  # fmt: skip
    for d in datasets:
        plot_lab_frontier([f for f in flat if f["dataset"] == d], args.figures / figure_name(d),
                          args.chain_n)  # fmt: skip
    source, figures = (os.path.relpath(p, args.doc.parent) for p in (args.out, args.figures))
    command = "python reproductions/selection_lab.py report"
    if (source, figures, args.doc.name) != ("results/lab/cells", "results/lab", "results-lab.md"):
        command += f" --out docs/{source} --doc docs/{args.doc.name} --figures docs/{figures}"
    if args.title != LAB_TITLE:
        command += f" --title {args.title!r}"
    args.doc.write_text(lab_page(cells, flat, args.rules, source, figures, command, args.title))
    log(f"wrote {args.doc}")


def main(argv: Sequence[str] | None = None) -> None:
    from gemkit.errors import GemkitError

    args = parse_args(argv)
    try:
        {"fit": stage_fit, "eval": stage_eval, "report": stage_report}[args.stage](args)
    except GemkitError as e:  # a dataset the lab has no knobs for, a missing checkpoint, ...
        raise SystemExit(f"error: {e}") from None


if __name__ == "__main__":
    main()
