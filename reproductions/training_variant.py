"""A training variant of a suite's runs (other networks, another budget), measured by the suite's
own test cells and set beside the suite's committed ones: does the variant change what the actors
and GEM score?

Stages::

    python reproductions/locomotion.py train --runs R --tasks hopper-medium --seeds 0 1 2 \\
        --train-set n_critics=5 hidden=256,256 reward_scale=return_range
    python reproductions/training_variant.py eval --runs R --out CELLS --tasks hopper-medium \\
        --seeds 0 1 2 --train-set n_critics=5 hidden=256,256 reward_scale=return_range
    python reproductions/training_variant.py report --out CELLS --tasks hopper-medium \\
        --seeds 0 1 2 --json docs/results/locomotion/variant_<name>.json

``eval`` runs, for each variant run ``<runs>/<task>-s<seed>``, the suite's test cells that need
no knob (both actors single-shot at every snapshot and at the last: the learning curve) and GEM
and the fair baseline at ``N = --baseline-n`` at the suite's *committed* knobs (the ``knobs`` of
``docs/results/<suite>/<suite>_summary.json``: the variant is not tuned again), into ``CELLS``
(a folder of its own: a cell's key names its task, seed, step and selector, not the training
recipe). ``report`` pairs each of those cells with the suite's committed cell of the same key
and gives, per task and selector, mean ± std over training seeds for the suite and the variant
(single-shot also over the later half of the snapshots, the outside IQL reports' protocol), as
JSON, and prints a markdown table. Where the variant's runs were also validated (the suite
script's ``validate`` stage with the same ``--runs``/``--out``), the JSON's ``validation`` ranks
the knob settings on them, each beside its score on the suite's runs. Every other flag is the
suite script's (``--suite`` defaults to ``locomotion``; another suite's name selects its tasks,
budgets and committed knobs).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]

#: the report's selectors at the last checkpoint: (label, test series, actor, N; None: the
#: suite's ``--baseline-n``, which the label's ``{n}`` names)
SELECTORS = (
    ("GEM anchor (N=0)", "gem", "gem", 0),
    ("fair unimodal (N=0)", "baseline", "baseline", 0),
    ("GEM N={n}", "gem", "gem", None),
    ("fair unimodal N={n}", "baseline", "baseline", None),
)


def suite_config(argv: Sequence[str]) -> Any:
    from gemkit.experiments.args import parse

    return parse(["--suite", "locomotion", "test", *argv])[1]


def planned(config: Any) -> list[dict[str, Any]]:
    """The suite's test cells a training variant is measured on (see the module docstring)."""
    from gemkit.experiments.plan import test_cells

    summary = ROOT / "docs" / "results" / config.suite / f"{config.suite}_summary.json"
    knobs = json.loads(summary.read_text())["knobs"]
    return [c for c in test_cells(config, knobs) if c["series"] in ("curve", "gem", "baseline")
            and c["config"]["n"] in (0, config.baseline_n)]  # fmt: skip


def report(config: Any, out_json: Path) -> dict[str, Any]:
    from gemkit.experiments.cells import read_cells
    from gemkit.experiments.plan import steps_for, validation_cells
    from gemkit.experiments.protocol import aggregate, knob_key, later_half, rank_knobs

    cells = planned(config)
    mine, suite = read_cells(config.out), read_cells(ROOT / "docs" / "results" / config.suite
                                                     / "cells")  # fmt: skip
    body: dict[str, Any] = {"what": __doc__.splitlines()[0], "train_set": config.train_set,
                            "seeds": list(config.seeds), "tasks": {}}  # fmt: skip
    for task in config.tasks:
        final = steps_for(config, task)
        rows: dict[str, Any] = {}
        for name, store in (("suite", suite), ("variant", mine)):
            have = [{**store[c["key"]], "series": c["series"]} for c in cells
                    if c["task"] == task and c["key"] in store]  # fmt: skip
            part: dict[str, Any] = {}
            for label, series, actor, n in SELECTORS:
                n = config.baseline_n if n is None else n
                pick = [r for r in have if r["series"] == series and r["actor"] == actor
                        and r["config"]["n"] == n and r["step"] == final]  # fmt: skip
                agg = aggregate(pick, ["n"])
                keep = ("score", "score_std", "train_seeds")
                part[label.format(n=n)] = {k: agg[0][k] for k in keep} if agg else None
            for actor in ("gem", "baseline"):
                part[f"{actor} later half"] = later_half(have, task, actor, final)
            rows[name] = part
        body["tasks"][task] = rows
    # where the variant's runs were validated too (the suite's `validate` stage into CELLS):
    # the knob ranking on them beside the same settings' scores on the suite's runs
    val = [c for c in validation_cells(config) if c["key"] in mine]
    if val:
        ranked = rank_knobs(mine[c["key"]] for c in val)
        theirs = {knob_key(k): k["val_score"]
                  for k in rank_knobs(suite[c["key"]] for c in val if c["key"] in suite)}
        body["validation"] = [{**k, "suite_val_score": theirs.get(knob_key(k))} for k in ranked]
    out_json.parent.mkdir(parents=True, exist_ok=True)
    out_json.write_text(json.dumps(body, indent=2) + "\n")
    return body


def table(body: dict[str, Any]) -> str:
    def pm(a: dict[str, Any] | None) -> str:
        return "n/a" if a is None else f"{a['score']:.1f} ± {a['score_std']:.1f}"

    labels = list(next(iter(next(iter(body["tasks"].values())).values())))
    lines = ["| task | run | " + " | ".join(labels) + " |", "| --- " * (len(labels) + 2) + "|"]
    for task, rows in body["tasks"].items():
        for name, part in rows.items():
            lines.append(f"| {task} | {name} | " + " | ".join(pm(part[k]) for k in labels) + " |")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> None:
    argv = list(sys.argv[1:] if argv is None else argv)
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("stage", choices=("eval", "report"))
    p.add_argument("--json", type=Path, default=None, help="report: the JSON to write")
    args, rest = p.parse_known_args(argv)
    config = suite_config(rest)
    if args.stage == "eval":
        import torch

        from gemkit.experiments.stages import evaluate_cells

        torch.set_num_threads(config.threads or 1)
        evaluate_cells(config, planned(config))
        return
    if args.json is None:
        p.error("report needs --json")
    print(table(report(config, args.json)))


if __name__ == "__main__":
    main()
