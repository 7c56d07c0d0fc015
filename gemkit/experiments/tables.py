"""The pieces of a suite's results page: Markdown tables, number formats, and the sections
that only some suites have (the outside IQL validation, MassScale)."""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, NamedTuple

from gemkit.experiments.plan import mass_actors
from gemkit.experiments.protocol import aggregate
from gemkit.experiments.suites import SuiteConfig

__all__ = [
    "IQL_SECTIONS",
    "IQLSection",
    "fmt_number",
    "fmt_row",
    "mass_points",
    "mass_section",
    "named",
    "outside_iql_section",
    "score_pm",
    "table",
]


def fmt_row(cols: Sequence[str]) -> str:
    return "| " + " | ".join(cols) + " |"


def table(header: Sequence[str], rows: Iterable[Sequence[str]]) -> list[str]:
    return [fmt_row(header), fmt_row(["---"] * len(header)), *(fmt_row(r) for r in rows)]


def score_pm(a: Mapping[str, Any] | None) -> str:
    """An aggregate's ``score ± score_std`` (``n/a`` where there is none)."""
    if a is None:
        return "n/a"
    return f"{fmt_number(a['score'])} ± {fmt_number(a['score_std'])}"


def fmt_number(x: float, pct: bool = False) -> str:
    if x is None or not math.isfinite(x):
        return "n/a"
    return f"{100 * x:.1f}%" if pct else f"{x:.1f}"


#: the measured fields of a cell that its row of ``<suite>_cells.csv`` keeps
MEASURED = {"score_mean": "score_mean", "score_std": "score_std_over_eval_seeds",
            "violation": "violation", "support_z": "support_z", "collapse_dist": "collapse_dist",
            "success_rate": "success_rate", "steps_per_s": "steps_per_s"}  # fmt: skip


def flat_row(c: dict[str, Any], word: str, mass: bool) -> dict[str, Any]:
    """A cell as its row of the report's ``<suite>_cells.csv``: what identifies it (the
    task under the suite's word; ``mass_scale`` where the suite has MassScale cells), then
    the measured fields (:data:`MEASURED`)."""
    return {
        "stage": c["stage"],
        "series": c.get("series", "validate"),
        word: c["task"],
        "train_seed": c["train_seed"],
        "step": c["step"],
        "actor": c["actor"],
        **{k: c["config"][k] for k in ("n", "beta", "lam", "lam_T", "horizon")},
        "value": c["config"].get("value", "lcb"),
        **({"mass_scale": c.get("mass_scale")} if mass else {}),
        "eval_seeds": " ".join(map(str, c["eval_seeds"])),
        "episodes_per_seed": c["episodes"],
        **{col: c.get(f) for f, col in MEASURED.items()},
    }


def named(row: dict[str, Any], word: str) -> dict[str, Any]:
    """``row`` with its ``task`` field under the suite's word (the mazes' tables say ``maze``)."""
    return {(word if k == "task" else k): v for k, v in row.items()}


def mass_points(
    test: list[dict[str, Any]], task: str, args: SuiteConfig
) -> dict[str, list[dict[str, Any]]]:
    """Score vs MassScale factor of each MassScale selector on ``task``, by label; the
    nominal test cells are the factor 1.0."""
    out = {}
    for actor, n in mass_actors(args):
        rows = [
            {**r, "mass_scale": 1.0 if r["series"] != "mass" else r["mass_scale"]}
            for r in test
            if r["task"] == task
            and r["actor"] == actor
            and r["config"]["n"] == n
            and r["series"] in ("mass", actor)
        ]
        name = "GEM" if actor == "gem" else "fair unimodal"
        out[f"{name} N={n}"] = aggregate(rows, ["mass_scale"])
    return out


class IQLSection(NamedTuple):
    """What the outside-IQL table of a suite's page says about the runs behind it."""

    train_flag: str  #: the training command's task flag
    test_flags: str  #: the test command's flags
    scalers: str  #: d3rlpy's preprocessing (:func:`gemkit.experiments.outside.iql_config`)
    scale: str  #: the score scale
    published: str  #: where the published IQL column comes from
    header: str  #: that column's header


#: the suites with an outside IQL reference on their page
IQL_SECTIONS = {
    "maze2d": IQLSection(
        "--task maze2d --maze <maze>", "--n --episodes 100", "standard observation scaler",
        "D4RL's scale",
        "IQL on D4RL's own files as published (CORL's final scores after 1M steps, also the "
        "paper's IQL column)", "published IQL (D4RL's files, 1M steps)"),
    "locomotion": IQLSection(
        "--task locomotion --name <task>", "--n --episodes 10",
        "standard observation scaler, rewards x 1000 / the data's episode-return range as in "
        "d3rlpy's own IQL reproduction", "D4RL's reference returns",
        "IQL on D4RL's own `*-v2` files as the paper reports it (1M steps, mujoco-py envs)",
        "the paper's IQL (D4RL's v2 files, 1M steps)"),
}  # fmt: skip


def outside_iql_section(args: SuiteConfig, summary: dict[str, Any]) -> list[str]:
    """d3rlpy's IQL on the rebuilt data (``reproductions/iql_reference.py``, its committed
    reports ``<figures>/iql_<task>.json``) beside published IQL on D4RL's own files and this
    suite's fair baseline: does the rebuild reproduce IQL's numbers? (Maze2D, locomotion.)"""
    suite = args.suite_spec
    sec = IQL_SECTIONS[suite.name]
    rows = []
    for task in args.tasks:
        path = Path(args.figures) / f"iql_{task.removeprefix('maze2d-')}.json"
        iql = "not run"
        if path.is_file():
            body = json.loads(path.read_text())
            if "mean_over_seeds" in body:
                m = body["mean_over_seeds"]["iql"]
                curves = next(iter(body["seeds"].values()))["curves"]
                iql = f"{m['later_half']:.1f} ± {m['later_half_std']:.1f} (seeds {m['seeds']})"
            else:
                m, curves = body["mean_score"]["iql"], body["curves"]
                iql = (f"{m['later_half']:.1f} (one seed; last snapshot "
                       f"{curves['iql'][-1]['score_mean']:.1f})")  # fmt: skip
            iql += f", to {max(c['step'] for c in curves['iql']):,} steps"
        per_task = summary[f"per_{suite.word}"][task]
        fair = score_pm({a["n"]: a for a in per_task["baseline"]}.get(0))
        ours = score_pm({a["n"]: a for a in per_task.get("gem", [])}.get(args.baseline_n))
        late = summary.get("later_half", {}).get(task, {})
        same = f"{score_pm(late.get('gem'))} / {score_pm(late.get('baseline'))}"
        paper = suite.paper.get(task, {})
        rows.append([task, iql, same, fair, ours, f"{paper['IQL']:.1f}" if paper else ""])
    return [
        "## Validating the rebuild against published IQL", "",
        "d3rlpy's IQL with its defaults (expectile 0.7, temperature 3, 256x256, "
        f"{sec.scalers}) trained on the rebuilt data (`python reproductions/iql_reference.py "
        f"train {sec.train_flag}`, then `test ... {sec.test_flags}` on every snapshot), scored "
        f"on {sec.scale}: the mean over the later half of its snapshots (steps above half the "
        "last). Beside it gemkit's two actors single-shot by the same protocol (GEM's "
        "anchor and the fair unimodal baseline, N = 0: the mean over their snapshots in the "
        "later half of training, the learning-curve cells and the final test cell), the fair "
        "baseline and GEM at the suite's N at the final checkpoint (the tables above) and "
        f"{sec.published}. The IQL "
        f"reports with every snapshot: `docs/{suite.figures}/iql_<{suite.word}>.json` and "
        "`.png`.", "",
        *table([suite.word, "d3rlpy IQL on the rebuilt data",
                "GEM's anchor / fair unimodal, later half (N=0)", "fair unimodal (N=0)",
                f"GEM N={args.baseline_n}", sec.header], rows), "",
    ]  # fmt: skip


def mass_section(
    args: SuiteConfig, mass: dict[str, dict[str, list[dict[str, Any]]]], png: str
) -> list[str]:
    """The MassScale robustness table: score at each body-mass factor, per selector."""
    labels = [f"{'GEM' if a == 'gem' else 'fair unimodal'} N={n}" for a, n in mass_actors(args)]
    rows = []
    for task, by in mass.items():
        pts = {label: {p["mass_scale"]: p for p in by[label]} for label in labels}
        for m in sorted({x for p in pts.values() for x in p}):
            rows.append(
                [
                    task,
                    f"{m:g}",
                    *(score_pm(p.get(m)) for p in pts.values()),
                ]
            )
    return [
        "## Robustness to body mass (MassScale)", "",
        "Every MuJoCo body mass scaled by the factor at test time (`gemkit.envs.MassScale`), "
        "the same networks and chosen knobs, on the test evaluation seeds "
        f"({args.test_episodes} episodes per checkpoint; 1.0 is the nominal test above). The "
        "paper's appendix A.4 runs the same perturbation (against BC).", "",
        *table(["task", "mass scale", *labels], rows), "",
        f"![score vs MassScale factor]({png})", "",
    ]  # fmt: skip


def stress_points(test: list[dict[str, Any]], task: str, big: int) -> list[dict[str, Any]]:
    """GEM, ``no_pw`` and every stress-test preset at the largest N on ``task``: one aggregate
    per selector, labelled ``preset`` (GEM's own row first)."""
    mine = [r for r in test if r["task"] == task]
    rows = [{**r, "preset": "gem"} for r in mine
            if r["series"] == "gem" and r["config"]["n"] == big]  # fmt: skip
    rows += [{**r, "preset": "no_pw"} for r in mine if r["series"] == "no_pw"]
    rows += [r for r in mine if r["series"] == "stress"]
    order = {"gem": 0, "no_pw": 1}
    return sorted(aggregate(rows, ["preset"]), key=lambda a: order.get(a["preset"], 2))


def stress_section(args: SuiteConfig, stress: dict[str, list[dict[str, Any]]]) -> list[str]:
    """The stress-test table: GEM beside each one-change ablation at the largest N."""
    from gemkit.config import PRESETS

    big = max(args.budgets)
    rows = [
        [task, a["preset"], ", ".join(f"{k}={v}" for k, v in PRESETS[a["preset"]].items())
         or "(GEM)", score_pm(a),
         fmt_number(a["violation"], True), fmt_number(a["support_z"]),
         fmt_number(a["collapse_dist"])]
        for task, points in stress.items() for a in points
    ]  # fmt: skip
    return [
        f"## Stress-test ablations (N = {big})", "",
        "Each preset changes one factor of GEM (`gemkit.config.PRESETS`) at the chosen knobs, "
        f"on the test episodes ({args.big_episodes} per checkpoint).", "",
        *table([args.suite_spec.word, "selector", "change", "score", "Violation", "SupportZ",
                "CollapseDist"], rows), "",
    ]  # fmt: skip
