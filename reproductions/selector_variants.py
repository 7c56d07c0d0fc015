"""Selector variants on a suite's trained runs: what, within GEM's inference-time knobs, changes
the score of a task (more pessimism, more support, top-k, another value term, other candidates)?

Stages::

    python reproductions/selector_variants.py run --runs R --task T --seeds 0 1 2 --out DIR
    python reproductions/selector_variants.py collect --out DIR --cells C.jsonl
    python reproductions/selector_variants.py report --cells C.jsonl --summary S.json

``run`` calls ``gemkit sweep`` on each run ``<runs>/<task>-s<seed>`` (with ``--snapshot STEP``
its snapshot at that gradient step) for each grid of :data:`GRIDS`, at N = ``--n``, on the
suite's test evaluation seed (``--episodes`` episodes), into ``<out>/<task>/s<seed>``
(``s<seed>-step<STEP>`` for a snapshot); a rerun skips finished cells. ``collect`` gathers the
cells of every task under ``--out``, tagged with the task, training seed and step, into one JSONL
(the committed file); ``report`` gives each
variant's score mean and std over training seeds (each seed's cell is the mean of its episodes),
as JSON and CSV, and prints a markdown table.
"""

from __future__ import annotations

import argparse
import json
import subprocess
from pathlib import Path
from typing import Any

from gemkit.eval.io import write_csv, write_json
from gemkit.experiments.protocol import mean_std

#: the sweeps of ``run``: each a ``gemkit sweep`` grid around GEM at the locomotion suite's
#: knobs (lcb_z, beta 1, lambda 0.3), one or two factors at a time
GRIDS: list[list[str]] = [
    ["--value", "lcb_z", "--beta", "1,3", "--lam", "0.3,3", "--k", "1,8"],
    ["--value", "mean,min", "--beta", "1", "--lam", "0.3"],
    ["--preset", "behavior_only_cands,no_pw", "--value", "lcb_z", "--beta", "1", "--lam", "0.3"],
]
#: what a report row keeps of a cell
FIELDS = ("score_mean", "support_z", "violation", "critic_evals")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("stage", choices=["run", "collect", "report"])
    p.add_argument("--runs", default="runs/loco")
    p.add_argument("--task", default="hopper-medium-replay", help="run: the task")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--snapshot", type=int, default=None,
                   help="run: the runs' snapshot at this gradient step instead of their final "
                        "models")  # fmt: skip
    p.add_argument("--n", type=int, default=64)
    p.add_argument("--episodes", type=int, default=10)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--out", nargs="+", default=["runs/variants"],
                   help="run: where the per-run folders go; collect: the folders to gather")
    p.add_argument("--cells", default="docs/results/locomotion/variants_cells.jsonl")
    p.add_argument("--summary", default="docs/results/locomotion/variants_summary.json")
    return p.parse_args(argv)


def folder(seed: int, step: int | None) -> str:
    """A run's folder under ``--out``: ``s<seed>``, or ``s<seed>-step<step>`` for a snapshot."""
    return f"s{seed}" if step is None else f"s{seed}-step{step}"


def parse_folder(name: str) -> tuple[int, int | None]:
    """:func:`folder`'s inverse: ``(seed, step)``."""
    seed, _, step = name.removeprefix("s").partition("-step")
    return int(seed), int(step) if step else None


def label(cell: dict[str, Any]) -> str:
    """A variant's name: the preset and the knobs that the grids vary."""
    c = cell["config"]
    return (f"{cell['preset']} {c['proposer']} {c['value']} beta={c['beta']:g} "
            f"lam={c['lam']:g} k={c['k']} N={c['n']}")  # fmt: skip


def collect(outs: list[Path], cells_path: Path) -> int:
    """Every sweep cell under ``<out>/<task>/s<seed>[-step<step>]/cells-0of1.jsonl``, tagged
    with the task, training seed and step (``final`` for the run's last models), into one JSONL
    sorted by (task, step, label, seed); returns the number of cells."""
    rows = []
    for out in outs:
        for f in sorted(Path(out).glob("*/s*/cells-0of1.jsonl")):
            task = f.parent.parent.name
            seed, step = parse_folder(f.parent.name)
            latest = {}
            for line in f.read_text().splitlines():
                r = json.loads(line)
                latest[r["key"]] = r  # a rerun's later line wins, as in every cell store
            for r in latest.values():
                rows.append({**r, "task": task, "train_seed": seed,
                             "step": "final" if step is None else step})  # fmt: skip
    if not rows:
        raise SystemExit(f"no s*/cells-0of1.jsonl under {outs}: run the `run` stage first")
    rows.sort(key=lambda r: (r["task"], str(r["step"]), label(r), r["train_seed"]))
    cells_path.parent.mkdir(parents=True, exist_ok=True)
    cells_path.write_text("".join(json.dumps(r, sort_keys=True) + "\n" for r in rows))
    return len(rows)


def report(cells_path: Path) -> list[dict[str, Any]]:
    """Per task, step and variant: each field's mean and std over training seeds."""
    groups: dict[tuple[str, str, str], dict[int, dict[str, Any]]] = {}
    for line in cells_path.read_text().splitlines():
        r = json.loads(line)
        groups.setdefault((r["task"], str(r["step"]), label(r)), {})[r["train_seed"]] = r
    table = []
    for (task, step, name), by_seed in sorted(groups.items()):
        row: dict[str, Any] = {"task": task, "step": step, "variant": name,
                               "seeds": sorted(by_seed)}  # fmt: skip
        for k in FIELDS:
            row[k], row[f"{k}_std"] = mean_std([by_seed[s][k] for s in sorted(by_seed)])
        table.append(row)
    return table


def markdown(table: list[dict[str, Any]]) -> str:
    lines = ["| task | step | variant | seeds | score | SupportZ | Violation |",
             "| --- | --- | --- | --- | --- | --- | --- |"]  # fmt: skip
    for r in table:
        lines.append(f"| {r['task']} | {r['step']} | {r['variant']} | {len(r['seeds'])} | "
                     f"{r['score_mean']:.1f} ± {r['score_mean_std']:.1f} | "
                     f"{r['support_z']:.2f} | {100 * r['violation']:.1f}% |")  # fmt: skip
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.stage == "run":
        from gemkit.train import snapshot_dir  # imports torch: only the run stage needs it

        for seed in args.seeds:
            models = Path(args.runs) / f"{args.task}-s{seed}"
            if args.snapshot is not None:
                models = snapshot_dir(models, args.snapshot)
            for grid in GRIDS:
                cmd = ["gemkit", "sweep", "--checkpoint", str(models), "--dataset",
                       f"gemkit/{args.task}-v0", "--out",
                       f"{args.out[0]}/{args.task}/{folder(seed, args.snapshot)}", "--n",
                       str(args.n),
                       "--episodes", str(args.episodes), "--seeds", "0", "--threads",
                       str(args.threads), *grid]  # fmt: skip
                print(" ".join(cmd), flush=True)
                subprocess.run(cmd, check=True)
    elif args.stage == "collect":
        n = collect([Path(o) for o in args.out], Path(args.cells))
        print(f"wrote {n} cells to {args.cells}")
    else:
        table = report(Path(args.cells))
        summary = Path(args.summary)
        write_json(summary, {"cells": Path(args.cells).name, "rows": table})
        write_csv(summary.with_suffix(".csv"), table)
        print(markdown(table))
        print(f"wrote {summary} and {summary.with_suffix('.csv')}")


if __name__ == "__main__":
    main()
