"""The suite report: tables (CSV/JSON), figures (PNG) and the results page (Markdown),
written from the cells of a suite run (:func:`write_report`)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from gemkit.experiments.facts import cells_cpus, dataset_stats
from gemkit.experiments.figures import plot_budget, plot_curves, plot_frontier
from gemkit.experiments.page import write_empty_page, write_page
from gemkit.experiments.plan import log, planned_results, steps_for, suite_knobs
from gemkit.experiments.protocol import aggregate, claims, later_half
from gemkit.experiments.suites import SuiteConfig
from gemkit.experiments.tables import flat_row, mass_points, named, stress_points

__all__ = ["write_report"]


def write_report(args: SuiteConfig) -> None:
    import csv

    from gemkit.eval.plots import plot_mass_scale

    suite, w = args.suite_spec, args.suite_spec.word
    try:
        knobs = suite_knobs(args)
    except SystemExit:
        write_empty_page(args)
        log(f"no validation cells in {args.out}: wrote {args.doc} saying so")
        return
    cells = planned_results(args, knobs)
    val = [c for c in cells if c["stage"] == "validate"]
    test = [c for c in cells if c["stage"] == "test"]
    figs = Path(args.figures)
    figs.mkdir(parents=True, exist_ok=True)
    big = max(args.budgets)
    claim_rows = claims(test, args.tasks, big, args.baseline_n, args.budgets)

    # tables
    flat = [flat_row(c, w, bool(args.mass_tasks)) for c in cells]
    flat.sort(
        key=lambda r: (
            r["stage"],
            r[w],
            r["series"],
            r["actor"],
            r["step"],
            r["n"],
            r["train_seed"],
            r["value"],
            r["lam_T"],
            r["beta"],
            r.get("mass_scale") or 1.0,
        )
    )
    csv_path = figs / f"{suite.name}_cells.csv"
    with csv_path.open("w", newline="") as f:
        wr = csv.DictWriter(f, fieldnames=list(flat[0]))
        wr.writeheader()
        wr.writerows(flat)
    budget = {
        "steps": args.steps,
        f"{w}_steps": args.task_steps,
        **{
            k: getattr(args, k)
            for k in (
                "seeds",
                "train_set",
                "betas",
                "lam0",
                "lam_const",
                "frontier",
                "lam_T",
                "val_n",
                "budgets",
                "episodes",
                "test_episodes",
            )
        },
    }
    summary: dict[str, Any] = {
        "knobs": knobs,
        "claims": [named(c, w) for c in claim_rows],
        "datasets": [named(d, w) for d in dataset_stats(args)],
        "budget": budget,
        f"per_{w}": {
            task: {
                series: aggregate(
                    [r for r in test if r["task"] == task and r["series"] == series], ["n"]
                )
                for series in ("gem", "baseline", "no_pw", "bary")
            }
            for task in args.tasks
        },
        "cpu": cells_cpus(cells),
        # single-shot over the later snapshots: the outside IQL reports' protocol
        "later_half": {
            task: {a: later_half(test, task, a, steps_for(args, task)) for a in ("gem", "baseline")}
            for task in args.tasks
        },
    }
    if args.stress:
        budget["stress"] = args.stress
        summary["stress"] = {t: stress_points(test, t, big) for t in args.tasks}
    if args.mass_tasks:
        budget.update(mass_scales=args.mass_scales, mass_tasks=args.mass_tasks)
        summary["mass"] = {t: mass_points(test, t, args) for t in args.mass_tasks
                           if t in args.tasks}  # fmt: skip
    (figs / f"{suite.name}_summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    plot_budget(test, args.tasks, suite.paper, figs / f"{suite.name}_budget.png")
    plot_curves(
        test,
        args.tasks,
        {m: steps_for(args, m) for m in args.tasks},
        args.curve_episodes,
        figs / f"{suite.name}_curves.png",
    )
    plot_frontier(test, args.tasks, args.val_n, figs / f"{suite.name}_frontier.png")
    if summary.get("mass"):
        plot_mass_scale([{"label": f"{t}: {label}", "mass_scale": a["mass_scale"],
                          "score_mean": a["score"], "score_std": a["score_std"]}
                         for t, by in summary["mass"].items() for label, pts in by.items()
                         for a in pts], figs / f"{suite.name}_mass.png")  # fmt: skip
    write_page(args, knobs, val, test, claim_rows, summary)
    log(f"wrote {args.doc}, {csv_path} and the PNGs in {figs}")
