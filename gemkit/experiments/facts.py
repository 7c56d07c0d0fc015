"""What a suite report reads from outside its cells (datasets, training logs), kept beside
the cells so that a fresh clone without datasets or runs writes the same page."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from gemkit.experiments.plan import run_dir, steps_for
from gemkit.experiments.suites import SuiteConfig
from gemkit.experiments.tasks import dataset_id, reference_scores, remember_reference_scores

__all__ = [
    "DATASETS_FILE",
    "TRAINING_FILE",
    "cells_cpus",
    "dataset_stats",
    "training_facts",
    "training_rates",
]


def _read_rows(path: Path) -> list[dict[str, Any]]:
    """The JSON rows of a facts file (none where it does not exist)."""
    return [json.loads(line) for line in path.read_text().splitlines()] if path.is_file() else []


def _write_rows(path: Path, rows: list[dict[str, Any]]) -> None:
    """Write the facts file ``path`` (one JSON row a line) where its rows changed."""
    text = "".join(json.dumps(r) + "\n" for r in rows)
    if not path.is_file() or path.read_text() != text:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


DATASETS_FILE = "datasets.jsonl"
"""In the cells folder: each task's dataset facts (size, episodes, reward sum), as last read
from the dataset itself, so a fresh clone without the datasets writes the same page."""


def dataset_stats(args: SuiteConfig) -> list[dict[str, Any]]:
    """Size and reference scores of each task's dataset: read from the dataset where it is on
    this machine (and kept in ``<out>/datasets.jsonl``), else from that file (``steps`` None:
    known from neither)."""
    from gemkit.data import load
    from gemkit.data.minari_io import dataset_exists
    from gemkit.errors import DatasetNotFoundError

    path = Path(args.out) / DATASETS_FILE
    known = {r["task"]: r for r in _read_rows(path)}
    out: list[dict[str, Any]] = []
    for task in args.tasks:
        try:
            ref = reference_scores(task)
        except DatasetNotFoundError:  # stored in the dataset, which is not here: as last read
            if task not in known:
                raise
            ref = (known[task]["ref_min"], known[task]["ref_max"])
            remember_reference_scores(task, ref)
        row = {
            "task": task,
            "steps": None,
            "episodes": None,
            "ref_min": ref[0],
            "ref_max": ref[1],
            "reward_sum": None,
        }
        if dataset_exists(dataset_id(task)):
            d = load(dataset_id(task))
            ends = (d.terminals.numpy() + d.timeouts.numpy()) > 0
            # math.fsum: the exactly rounded sum, the same whatever the thread count (a float32
            # torch sum is not)
            row.update(steps=len(d), episodes=int(ends.sum()),
                       reward_sum=math.fsum(d.rewards.double().tolist()))  # fmt: skip
            known[task] = row
        elif task in known:
            row = {**known[task], "ref_min": row["ref_min"], "ref_max": row["ref_max"]}
        out.append(row)
    if known:
        _write_rows(path, [known[t] for t in sorted(known)])
    return out


TRAINING_FILE = "training.jsonl"
"""In the cells folder: one line per training run the report has seen (its median logged
steps/s and the step its log reaches), so a fresh clone, without the runs, writes the same page."""


def training_facts(args: SuiteConfig) -> dict[tuple[str, int], dict[str, Any]]:
    """Each run's training facts, by ``(task, seed)``: read from ``<out>/training.jsonl`` and
    updated there from the runs' ``metrics.csv`` (median logged ``steps_per_s`` over joint
    steps) where those are on this machine."""
    import csv

    path = Path(args.out) / TRAINING_FILE
    facts = {(r["task"], int(r["seed"])): r for r in _read_rows(path)}
    for task in args.tasks:
        for seed in args.seeds:
            log = run_dir(args, task, seed) / "metrics.csv"
            if not log.is_file():
                continue
            with log.open() as f:
                rows = [r for r in csv.DictReader(f) if r.get("phase") == "joint"]
            rates = [float(r["steps_per_s"]) for r in rows if r.get("steps_per_s")]
            if not rates:
                continue
            row = {
                "task": task,
                "seed": seed,
                "step": int(rows[-1]["step"]),
                "median_steps_per_s": round(float(np.median(rates)), 1),
            }
            facts[(task, seed)] = row
    if facts:
        _write_rows(path, [facts[k] for k in sorted(facts)])
    return facts


def training_rates(args: SuiteConfig) -> str:
    """The report's sentence on training speed, measured: each finished run's median logged
    ``steps_per_s`` (:func:`training_facts`), per task; empty where no run's rate is known
    (the report then prints the suite's note)."""
    facts = training_facts(args)
    parts = []
    for task in args.tasks:
        # only runs that reached the suite's budget: a run still training logs a partial rate
        budget = steps_for(args, task)
        finished = [facts[(task, s)] for s in args.seeds
                    if (task, s) in facts and facts[(task, s)]["step"] >= budget]  # fmt: skip
        medians = [f["median_steps_per_s"] for f in finished]
        if medians:
            parts.append(f"{task} {min(medians):.0f}-{max(medians):.0f}")
    if not parts:
        return ""
    return (
        "Training ran at " + ", ".join(parts) + " gradient steps/s per job (each run's "
        "median logged rate, over the seeds; one thread per job, with other runs and the "
        "evaluation sharing the two cores). "
    )


def cells_cpus(cells: Sequence[dict[str, Any]]) -> str:
    """The CPUs the cells were evaluated on (recorded in each cell), for the report."""
    names = sorted({str(c["cpu"]) for c in cells if c.get("cpu")})
    return ", ".join(names) if names else "not recorded"
