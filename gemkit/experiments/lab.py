"""The selection lab: the literature's sample-and-rerank rules over the same critic and data.

Every rule of :data:`RULES` (GEM, the method presets of :data:`gemkit.config.METHOD_PRESETS`,
and GEM's rule over a diffusion model's candidates) runs over one trained checkpoint's critic
ensemble, behavior GMM and actor, at several candidate counts ``N``, so their differences are the
rules' alone. The generative samplers' chain length is the lab's second compute axis: a flow
model's Euler steps are chosen at sampling time (``chain_steps``), a diffusion model's ``T`` is
fitted (one model per ``T``, in ``<runs>/diffusion-T<T>``).

``reproductions/selection_lab.py`` plans, evaluates and reports with these functions; the cells
live in the shared store (:mod:`gemkit.experiments.cells`).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from gemkit.config import METHOD_PRESETS, SelectorConfig
from gemkit.errors import GemkitError
from gemkit.experiments.cells import make_cell
from gemkit.experiments.protocol import mean_std
from gemkit.experiments.suites import SUITES
from gemkit.experiments.tables import fmt_number, score_pm, table
from gemkit.models.generative import GENERATIVE_KINDS

__all__ = [
    "FITTED_STEPS",
    "GEM_KNOBS",
    "LAB_TITLE",
    "PROVENANCE",
    "RULES",
    "RULE_NAMES",
    "chain_steps",
    "check_provenance",
    "deployment_claim",
    "figure_name",
    "is_swept",
    "lab_cells",
    "lab_family",
    "lab_page",
    "lab_rows",
    "proposer_dir",
    "rules",
    "task_name",
]

#: GEM at each suite's chosen knobs (the ``knobs`` of ``docs/results/<suite>/<suite>_summary.json``,
#: chosen on the validation seed over the suite's tasks; tests/test_lab.py checks they agree)
GEM_KNOBS: dict[str, dict[str, Any]] = {
    "maze2d": {"value": "lcb_z", "beta": 1.0, "lam": 1.0, "lam_T": 1.0},
    "locomotion": {"value": "lcb", "beta": 0.5, "lam": 1.0, "lam_T": 0.0},
}
#: the lab's rules: GEM, the literature's presets, and GEM's rule (GEM's value plus z-scored
#: behaviour support) over the diffusion model's candidates instead of its actor's
RULE_NAMES: tuple[str, ...] = ("gem", *METHOD_PRESETS, "gem_rule_on_diffusion")


def rules(family: str) -> dict[str, dict[str, Any]]:
    """The lab's rules (:data:`RULE_NAMES`) on a task of ``family`` (a key of
    :data:`GEM_KNOBS`): GEM's two rows take that suite's knobs, the presets their papers'."""
    if family not in GEM_KNOBS:
        raise GemkitError(f"the lab has no GEM knobs for {family!r}; valid: {', '.join(GEM_KNOBS)}")
    gem = GEM_KNOBS[family]
    on_diffusion = {**gem, "proposer": "diffusion", "anchor": "none"}
    return {"gem": gem, **METHOD_PRESETS, "gem_rule_on_diffusion": on_diffusion}


#: the rules on the Maze2D suite's tasks (the lab's first task)
RULES: dict[str, dict[str, Any]] = rules("maze2d")


def lab_family(dataset: str) -> str:
    """The suite (a key of :data:`GEM_KNOBS`) whose tasks hold ``dataset``'s task: ``maze2d``
    for ``gemkit/maze2d-*``, ``locomotion`` for ``gemkit/<hopper|walker2d|halfcheetah>-*``."""
    task = task_name(dataset)
    for family in GEM_KNOBS:
        if task in SUITES[family].tasks:
            return family
    valid = ", ".join(f"gemkit/{t}-v*" for f in GEM_KNOBS for t in SUITES[f].tasks)
    raise GemkitError(f"the lab runs on the Maze2D and locomotion datasets, not {dataset!r}; "
                      f"valid: {valid}")  # fmt: skip


def task_name(dataset: str) -> str:
    """``gemkit/maze2d-umaze-v1`` -> ``maze2d-umaze``."""
    return dataset.removeprefix("gemkit/").rsplit("-v", 1)[0]


#: the sampling chain of a proposer fitted with ``gemkit fit-proposer``'s defaults
FITTED_STEPS: dict[str, int] = {k: cls.DEFAULT_STEPS for k, cls in GENERATIVE_KINDS.items()}


def proposer_dir(runs: Path, kind: str, steps: int | None = None) -> Path:
    """Where the lab's ``kind`` model lives: ``<runs>/<kind>``, or ``<runs>/diffusion-T<T>``
    for a diffusion model fitted with another ``T`` than the default."""
    if kind == "diffusion" and steps not in (None, FITTED_STEPS["diffusion"]):
        return runs / f"diffusion-T{steps}"
    return runs / kind


def lab_cells(
    dataset: str,
    names: Sequence[str],
    ns: Sequence[int],
    *,
    horizon: int,
    train_seed: int,
    episodes: int,
    eval_seed: int = 0,
    chain_n: int = 64,
    flow_steps: Sequence[int] = (),
    diffusion_steps: Sequence[int] = (),
    family: str | None = None,
) -> list[dict[str, Any]]:
    """The planned cells over the checkpoint of ``train_seed``: every rule at every ``N``, then
    the chain sweep at ``N = chain_n``: each flow rule at each of ``flow_steps`` Euler steps and
    each diffusion rule at each fitted ``T`` of ``diffusion_steps`` (the defaults,
    :data:`FITTED_STEPS`, are the base rows and are not repeated). GEM's knobs are those of
    ``family`` (default: :func:`lab_family` of ``dataset``)."""
    sweep = {"flow": flow_steps, "diffusion": diffusion_steps}
    knobs_of = rules(family or lab_family(dataset))
    out = []
    for rule in names:
        if rule not in knobs_of:
            raise GemkitError(f"unknown lab rule {rule!r}; valid: {', '.join(RULE_NAMES)}")
        proposer = SelectorConfig(**knobs_of[rule]).proposer
        points: list[tuple[int, int | None]] = [(n, None) for n in ns]
        points += [(chain_n, k) for k in sweep.get(proposer, ()) if k != FITTED_STEPS[proposer]]
        for n, k in points:
            knobs = {"horizon": horizon, **knobs_of[rule], "n": n, "chain_steps": k}
            cfg = SelectorConfig(**knobs).to_dict()["params"]
            out.append(make_cell("test", dataset, train_seed, 0, rule, cfg, [eval_seed], episodes))
    return out


def chain_steps(config: dict[str, Any]) -> int | None:
    """The sampling chain a cell's proposer ran: its ``chain_steps``, else the fitted default
    of a diffusion / flow proposer; ``None`` for a GMM proposer."""
    if config.get("chain_steps") is not None:
        return int(config["chain_steps"])
    return FITTED_STEPS.get(config["proposer"])


#: a cell's fingerprint fields, each with the cell fields that name one trained network (a
#: proposer by its fitted directory's name, :func:`proposer_dir`): one network, one fingerprint
#: (the sha256 of its weights, :func:`gemkit.models.weights_digest`)
PROVENANCE: dict[str, tuple[str, ...]] = {
    "checkpoint_sha": ("task", "train_seed"),
    "proposer_sha": ("task", "train_seed", "proposer_fit"),
}


def check_provenance(cells: Iterable[dict[str, Any]]) -> None:
    """Refuse cells that mix two trainings of one network: cells of one task and training seed
    must come from one checkpoint, and cells of one fitted proposer (kind and chain length)
    from one fit, wherever they record a fingerprint (:data:`PROVENANCE`; cells cached before
    fingerprints were recorded have none and are not checked).

    Raises:
        GemkitError: two fingerprints for one network, naming both.
    """
    seen: dict[tuple[Any, ...], str] = {}
    for c in cells:
        for field, names in PROVENANCE.items():
            sha = c.get(field)
            if sha is None:
                continue
            ident = tuple([field] + [c.get(n) for n in names])
            first = seen.setdefault(ident, sha)
            if first != sha:
                what = " ".join(f"{n}={v}" for n, v in zip(names, ident[1:], strict=True))
                raise GemkitError(
                    f"cells of {what} come from two trainings ({field} {first[:12]} and "
                    f"{sha[:12]}): keep a retrained network's cells in another --out."
                )


def timing_valid(cell: dict[str, Any]) -> bool:
    """Whether a cell's timing stands (``"timing_valid": false`` marks one measured on a core
    shared with other jobs; its score stands either way)."""
    return bool(cell.get("timing_valid", True))


def timed_rate(cell: dict[str, Any]) -> float:
    """A cell's environment steps/s, or NaN where :func:`timing_valid` says it does not stand."""
    return float(cell["steps_per_s"]) if timing_valid(cell) else float("nan")


def lab_rows(cells: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per (dataset, rule, N, chain steps): mean +- std over the checkpoints' training
    seeds."""
    groups: dict[tuple[str, str, int, int], list[dict[str, Any]]] = {}
    for r in cells:
        steps = chain_steps(r["config"])
        groups.setdefault((r["task"], r["actor"], r["config"]["n"], steps or 0), []).append(r)
    flat = []
    for (dataset, rule, n, steps), rs in sorted(groups.items()):
        rs.sort(key=lambda r: r["train_seed"])
        score, score_std = mean_std([r["score_mean"] for r in rs])
        flat.append({"dataset": dataset, "rule": rule, "n": n, "chain_steps": steps or None,
                     "train_seeds": " ".join(str(r["train_seed"]) for r in rs),
                     "score": score, "score_std": score_std,
                     "success_rate": mean_std([r["success_rate"] for r in rs])[0],
                     "critic_evals": mean_std([r["critic_evals"] for r in rs])[0],
                     "env_steps_per_s": mean_std([timed_rate(r) for r in rs])[0],
                     "episodes": rs[0]["episodes"]})  # fmt: skip
    return flat


def is_swept(row: dict[str, Any]) -> bool:
    """Whether a :func:`lab_rows` row ran its sampler at another chain length than fitted (a
    rule's proposer is the same on every task, so the Maze2D rules answer for all)."""
    fitted = FITTED_STEPS.get(SelectorConfig(**RULES[row["rule"]]).proposer)
    return row["chain_steps"] is not None and row["chain_steps"] != fitted


def deployment_claim(flat: list[dict[str, Any]], n: int = 64) -> list[str] | None:
    """The paper's deployment claim on :func:`lab_rows`: GEM at ``N = n`` within one seed-std
    (the larger of the two) of the best other rule's score at any ``N``, at a fifth or less of
    its per-decision wall-clock (environment steps/s as the measure); ``None`` without GEM's
    row or another rule's."""
    gem = next((f for f in flat if f["rule"] == "gem" and f["n"] == n), None)
    others = [f for f in flat if f["rule"] != "gem" and not is_swept(f)]
    if gem is None or not others:
        return None
    best = max(others, key=lambda f: f["score"])
    spread = max(gem["score_std"], best["score_std"])
    on_score = gem["score"] >= best["score"] - spread
    speed = gem["env_steps_per_s"] / best["env_steps_per_s"]
    return [f"GEM N={n} within one seed-std of the best rule ({best['rule']} N={best['n']}), "
            "at a fifth or less of its wall-clock",
            f"{score_pm(gem)} vs {score_pm(best)}; GEM runs "
            f"{speed:.2f}x its environment steps/s (the claim needs >= 5x)",
            f"{'holds' if on_score else 'does not hold'} on score, "
            f"{'holds' if speed >= 5 else 'does not hold'} on time"]  # fmt: skip


def figure_name(dataset: str) -> str:
    """The frontier figure of one dataset's section: ``lab_frontier_<task>.png``."""
    return f"lab_frontier_{task_name(dataset)}.png"


#: the heading of the lab's results page (``docs/results-lab.md``)
LAB_TITLE = "The selection lab: the literature's rules over the same critics"


def lab_page(
    cells: list[dict[str, Any]],
    flat: list[dict[str, Any]],
    names: Sequence[str],
    source: str = "results/lab/cells",
    figures: str = "results/lab",
    command: str = "python reproductions/selection_lab.py report",
    title: str = LAB_TITLE,
) -> str:
    """The lab's results page (Markdown) from its cells and :func:`lab_rows`: one section per
    dataset, each with its rules, claim, figure (:func:`figure_name`) and table. ``source`` and
    ``figures`` are the cells' and the figures' folders relative to the page, ``command`` the
    one that regenerates it, ``title`` the page's heading."""
    cpus = ", ".join(sorted({str(r.get("cpu")) for r in cells}))
    # the paper's task first, then the others by name
    datasets = sorted({str(r["task"]) for r in cells}, key=lambda d: (lab_family(d) != "maze2d", d))
    lines = [f"# {title}", "",
             "On each dataset below, every rule ran over the same checkpoints (each run's critic "
             "ensemble, behavior GMM and actor) on the same test episodes, scores normalised on "
             "the dataset's reference scale, mean ± std over the checkpoints' training seeds. "
             "The diffusion and flow proposers were fitted by `gemkit fit-proposer` on the same "
             "dataset, one pair per training seed (diffusion "
             f"T = {FITTED_STEPS['diffusion']}, flow {FITTED_STEPS['flow']} Euler steps, unless "
             "the chain-steps column says otherwise: a flow model's Euler steps are chosen at "
             "sampling time, a diffusion model with another T is fitted with it). GEM runs at "
             f"its suite's chosen knobs. Regenerated from the cells in `{source}` by "
             f"`{command}` (CPU: {cpus}).", "",
             *(f"- [{task_name(d)}](#{task_name(d)})" for d in datasets), ""]  # fmt: skip
    for dataset in datasets:
        lines += _lab_section(dataset, [r for r in cells if r["task"] == dataset],
                              [f for f in flat if f["dataset"] == dataset], names,
                              figures)  # fmt: skip
    return "\n".join(lines).rstrip("\n") + "\n"


def _lab_section(
    dataset: str,
    cells: list[dict[str, Any]],
    flat: list[dict[str, Any]],
    names: Sequence[str],
    figures: str,
) -> list[str]:
    first, family = cells[0], lab_family(dataset)
    shas: dict[str, str | None] = {str(r["checkpoint"]): None for r in cells}
    shas.update({str(r["checkpoint"]): r["checkpoint_sha"] for r in cells
                 if r.get("checkpoint_sha")})  # fmt: skip
    ckpts = ", ".join(f"`{c}`" + (f" (weights sha256 {h[:12]})" if h else "")
                      for c, h in sorted(shas.items()))  # fmt: skip
    swept = sorted({f["rule"] for f in flat if is_swept(f)})
    knobs_of = rules(family)
    shown = [k for k in names if any(f["rule"] == k for f in flat)]
    lines = [f"## {task_name(dataset)}", "",
             f"Checkpoints {ckpts} on `{dataset}`, {first['episodes']} test episodes each "
             f"(evaluation seed {first['eval_seeds'][0]}), scores normalised with "
             f"{SUITES[family].scale}.", "",
             "![score against candidates, critic evaluations and speed]"
             f"({figures}/{figure_name(dataset)})",
             "", "| rule | what it is |", "| --- | --- |",
             *(f"| {k} | {', '.join(f'{a}={b}' for a, b in knobs_of[k].items())} |"
               for k in shown),
             ""]  # fmt: skip
    claim = deployment_claim(flat)
    if claim is not None:
        lines += ["### The deployment claim, checked", "",
                  *table(["claim", "measured (mean ± std over training seeds)", "holds?"],
                         [claim]), ""]  # fmt: skip
    untimed = sorted({(r["actor"], r["config"]["n"]) for r in cells if not timing_valid(r)})
    if untimed:
        lines += ["Environment steps/s are n/a (and left out of the speed panel) for "
                  f"{', '.join(f'{a} N={n}' for a, n in untimed)}: those cells were timed on a "
                  "core shared with training jobs, so only their scores are kept.", ""]  # fmt: skip
    if swept:
        lines += [f"Chain-length sweep: {', '.join(swept)} at other chain lengths (rows whose "
                  "chain steps differ from the fitted default).", ""]  # fmt: skip
    goal = any(math.isfinite(f["success_rate"]) for f in flat)  # mazes; locomotion has none
    lines += table(["rule", "N", "chain steps", "training seeds", "score",
                    *(["reached the goal (share of episodes)"] if goal else []),
                    "critic evals / decision", "env steps/s"],
                   [[f["rule"], str(f["n"]),
                     "—" if f["chain_steps"] is None else str(f["chain_steps"]), f["train_seeds"],
                     score_pm(f), *([fmt_number(f["success_rate"])] if goal else []),
                     f"{f['critic_evals']:.0f}",
                     "n/a" if math.isnan(f["env_steps_per_s"])
                     else f"{f['env_steps_per_s']:.0f}"] for f in flat])  # fmt: skip
    return [*lines, ""]
