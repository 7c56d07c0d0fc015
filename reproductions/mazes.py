"""GEM on a suite of D4RL-style tasks: the paper's knob protocol, a fair baseline, results.

A *suite* picks the tasks (``--suite``): ``mazes`` (the default: the three D4RL-recipe
PointMazes, ``docs/results.md``) or ``locomotion`` (``gemkit/hopper-medium-v0``,
``gemkit/hopper-medium-replay-v0``, ...: D4RL's MuJoCo locomotion recipe,
``docs/results-locomotion.md``; ``reproductions/locomotion.py`` is this script with
``--suite locomotion``). The suite sets the defaults (tasks, training options, episodes,
budgets, where the report goes); every one of them is a flag.

Stages (each resumable; every evaluated cell is cached in ``<out>/cells-*.jsonl``):

``train``
    Phase I for every task and training seed, one ``gemkit train`` run each (the fair
    same-critic unimodal baseline trains in the same run), with model snapshots for the learning
    curves. Runs that finished are skipped, interrupted ones resumed. A missing dataset is made
    first (locomotion: its SAC run too, in ``--sac-root``, resumable).
``validate``
    The paper's protocol (method page, section 3): an inference-only sweep of ``beta`` and
    ``lambda_T`` at ``N = 64`` on *validation* evaluation seeds, for every checkpoint. The knobs
    with the best mean validation score over the suite (all tasks and training seeds) are
    chosen once for the whole suite.
``test``
    With the chosen knobs, on *test* evaluation seeds (disjoint from validation): GEM over
    ``N``, the same-critic unimodal baseline (single-shot and with ``N`` candidates), ``no_pw``
    at the largest ``N``, the ``lambda_T`` frontier; the learning curves on the snapshots; and,
    for the tasks in ``--mass-tasks``, GEM and the baseline with every MuJoCo body mass scaled
    by each of ``--mass-scales`` (MassScale; locomotion only).
``report``
    Tables (CSV/JSON), plots (PNG) and the suite's doc (``docs/results.md`` for the mazes).

Run everything (``--workers 2`` splits the evaluation cells over two processes, one per core)::

    python reproductions/mazes.py train
    python reproductions/mazes.py validate --worker 0/2 &
    python reproductions/mazes.py validate --worker 1/2; wait
    python reproductions/mazes.py test --worker 0/2 &
    python reproductions/mazes.py test --worker 1/2; wait
    python reproductions/mazes.py report

(the same with ``reproductions/locomotion.py`` for the locomotion suite). ``auto`` evaluates
checkpoints as their runs finish (validation first; the test stage starts once every checkpoint
is validated), so it can run beside ``train``.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import time
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import attrs
import numpy as np

from gemkit.experiments import (
    MAZE2D_NAMES,
    MAZE_NAMES,
    TEST_SEEDS,
    VAL_SEEDS,
    aggregate,
    claims,
    dataset_id,
    read_cells,
    reference_scores,
)
from gemkit.experiments.plan import (
    mass_actors,
    planned_results,
    run_dir,
    steps_for,
    suite_knobs,
    test_cells,
    validation_cells,
)
from gemkit.experiments.suites import SUITES, Suite, SuiteConfig
from gemkit.experiments.tasks import split_locomotion

ROOT = Path(__file__).resolve().parents[1]


# ---------------------------------------------------------------------------- suites
def suite_of(args: SuiteConfig) -> Suite:
    return SUITES[args.suite]


# ---------------------------------------------------------------------------- arguments
def parse(argv: Sequence[str] | None = None) -> tuple[str, SuiteConfig]:
    """The stage and the suite run's settings from the command line."""
    pre = argparse.ArgumentParser(add_help=False)
    pre.add_argument("--suite", choices=list(SUITES), default="mazes")
    suite = SUITES[pre.parse_known_args(argv)[0].suite]
    d = suite.defaults
    out = ROOT / "reproductions" / "out" / suite.name
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("stage", choices=["train", "validate", "test", "auto", "report", "all"])
    p.add_argument("--suite", choices=list(SUITES), default="mazes",
                   help="the tasks and their defaults: mazes (docs/results.md) or locomotion")
    p.add_argument("--runs", type=Path, default=out / "runs",
                   help="checkpoint directories <task>-s<seed>")
    p.add_argument("--out", type=Path, default=out, help="cell cache")
    p.add_argument("--doc", type=Path, default=ROOT / "docs" / suite.doc)
    p.add_argument("--figures", type=Path, default=ROOT / "docs" / suite.figures)
    p.add_argument("--tasks", "--mazes", dest="tasks", nargs="+", choices=suite.tasks,
                   default=list(suite.default_tasks))
    p.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    p.add_argument("--steps", type=int, default=d["steps"], help="gradient steps per run")
    p.add_argument("--task-steps", "--maze-steps", dest="task_steps", nargs="*", default=[],
                   metavar="TASK=STEPS",
                   help="a different budget for some tasks (e.g. medium=300000)")
    p.add_argument("--snapshot-every", type=int, default=d["snapshot_every"])
    p.add_argument("--train-set", nargs="*", default=list(d["train_set"]),
                   help="TrainConfig overrides of every run")
    p.add_argument("--sac-root", type=Path, default=None,
                   help="locomotion: where a missing dataset's SAC run goes (<sac-root>/"
                        "<env>-seed0; default gemkit's gemkit-sac/<env>-seed0)")
    p.add_argument("--betas", nargs="+", type=float, default=[0.5, 1.0, 2.0])
    p.add_argument("--lam0", type=float, default=1.0, help="lambda at t = 0 (cosine schedule)")
    p.add_argument("--lam-const", nargs="*", type=float, default=[0.003, 0.01, 0.03],
                   help="constant lambdas also validated (at beta = 1): the critic's Q spread "
                        "between candidates can be far below the O(1) z-scored support")
    p.add_argument("--lam-z", nargs="*", type=float, default=[0.1, 0.3, 1.0],
                   help="constant lambdas validated with the z-scored value term (value lcb_z, "
                        "beta = 1): value and support on the same O(1) scale")
    p.add_argument("--frontier", nargs="+", type=float, default=[0.0, 0.003, 0.03, 0.3],
                   help="constant lambdas of the test frontier (beside the chosen knobs)")
    p.add_argument("--lam-T", nargs="+", type=float, default=[0.0, 0.1, 0.3, 1.0])
    p.add_argument("--val-n", type=int, default=64)
    p.add_argument("--budgets", nargs="+", type=int, default=list(d["budgets"]))
    p.add_argument("--baseline-n", type=int, default=64)
    p.add_argument("--episodes", type=int, default=d["episodes"],
                   help="validation episodes per checkpoint")
    p.add_argument("--test-episodes", type=int, default=d["test_episodes"],
                   help="test episodes per checkpoint (one batch of environments)")
    p.add_argument("--curve-episodes", type=int, default=d["curve_episodes"])
    p.add_argument("--big-episodes", type=int, default=d["big_episodes"],
                   help="test episodes per checkpoint at the largest N (GEM and no_pw)")
    p.add_argument("--mass-scales", nargs="*", type=float, default=list(d["mass_scales"]),
                   help="MassScale factors of the robustness cells (1.0 is the nominal test)")
    p.add_argument("--mass-tasks", nargs="*", choices=suite.tasks, default=list(d["mass_tasks"]),
                   help="the tasks evaluated at every --mass-scales factor")
    p.add_argument("--worker", default="0/1", help="i/k: evaluate every k-th cell from i")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--smoke", action="store_true",
                   help="tiny budget into a scratch folder (never touches docs/)")
    args = p.parse_args(argv)
    try:
        args.task_steps = {k: int(v) for k, v in (kv.split("=") for kv in args.task_steps)}
    except ValueError:
        p.error(f"{suite.steps_flag} takes TASK=STEPS pairs, e.g. medium=300000")
    if args.smoke:
        scratch = ROOT / "reproductions" / "out" / f"{suite.name}-smoke"
        # a scratch Minari store too: smoke datasets never shadow the real ones
        os.environ["MINARI_DATASETS_PATH"] = str(scratch / "minari")
        args.runs, args.out, args.sac_root = scratch / "runs", scratch, scratch / "sac"
        args.doc, args.figures = scratch / suite.doc, scratch / "figures"
        args.steps, args.snapshot_every, args.seeds = 300, 150, [0]
        args.train_set = ["n_critics=2", "hidden=32,32", "gmm_pretrain_steps=100"]
        args.betas, args.lam_T, args.budgets = [1.0], [0.0, 0.3], [0, 16]
        args.lam_const, args.frontier, args.lam_z = [0.01], [0.0, 1.0], [0.3]
        args.val_n = args.baseline_n = 16
        args.episodes = args.curve_episodes = args.test_episodes = args.big_episodes = 2
        args.mass_scales = [0.5, 1.0] if args.mass_scales else []
    return args.stage, SuiteConfig.from_mapping(vars(args))


def parse_args(argv: Sequence[str] | None = None) -> SuiteConfig:
    """The suite run's settings from the command line (the stage aside)."""
    return parse(argv)[1]


def _log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def make_dataset(args: SuiteConfig, task: str) -> None:
    """Make ``task``'s dataset (a tiny one with ``--smoke``)."""
    _log(f"making {dataset_id(task)}")
    if task in MAZE2D_NAMES:
        from gemkit.data import make_maze2d

        make_maze2d(task.removeprefix("maze2d-"), steps=20_000 if args.smoke else None, seed=0,
                    ref_episodes=5 if args.smoke else 100)  # fmt: skip
        return
    if task in MAZE_NAMES:
        from gemkit.data import make_pointmaze

        make_pointmaze(task, steps=20_000 if args.smoke else None, seed=0,
                       ref_episodes=5 if args.smoke else 100)  # fmt: skip
        return
    import torch

    from gemkit.data import make_locomotion
    from gemkit.data.locomotion import default_sac_dir

    torch.set_num_threads(args.threads)
    env, kind = split_locomotion(task)
    sac_dir = default_sac_dir(env, 0) if args.sac_root is None else args.sac_root / f"{env}-seed0"
    make_locomotion(env, kind, steps=2_000 if args.smoke else None, seed=0, sac_dir=sac_dir,
                    sac_steps=300 if args.smoke else None)  # fmt: skip


# ---------------------------------------------------------------------------- train
def train_command(args: SuiteConfig, task: str, seed: int, out: Path | None = None,
                  train_set: Sequence[str] | None = None) -> list[str]:
    """The exact ``gemkit train`` command of one run (resumes a run that exists), in ``out``
    (default :func:`run_dir`) with ``train_set`` (default ``--train-set``)."""
    out = run_dir(args, task, seed) if out is None else out
    common = ["--steps", str(steps_for(args, task)), "--compile", "--snapshot-every",
              str(args.snapshot_every), "--threads", str(args.threads), "--quiet"]
    if (out / "trainer_state.safetensors").is_file():
        return ["gemkit", "train", "--resume", str(out), *common]
    sets = [x for kv in (args.train_set if train_set is None else train_set)
            for x in ("--set", kv)]  # fmt: skip
    return ["gemkit", "train", "--dataset", dataset_id(task), "--seed", str(seed),
            "--out", str(out), *sets, *common]


def _fresh(args: SuiteConfig) -> SuiteConfig:
    """``args`` with a runs folder that holds nothing (the command of a fresh run)."""
    return attrs.evolve(args, runs=Path("<runs>"))


def stage_train(args: SuiteConfig) -> None:
    from gemkit.data.minari_io import dataset_exists

    for task in args.tasks:
        if not dataset_exists(dataset_id(task)):
            make_dataset(args, task)
    for task in args.tasks:
        for seed in args.seeds:
            if models_dir(args, task, seed, steps_for(args, task)) is not None:
                continue  # finished (or trained past its budget, with its snapshot there)
            cmd = train_command(args, task, seed)
            _log(" ".join(cmd))
            subprocess.run(cmd, check=True)


# ---------------------------------------------------------------------------- cells
def _models(args: SuiteConfig, task: str, seed: int, step: int, actor: str) -> Any:
    from gemkit.models import load_models

    d = models_dir(args, task, seed, step)
    if d is None:
        raise SystemExit(f"no networks of {task} seed {seed} at step {step} yet.")
    models = load_models(d)
    if models.meta.get("step") != step:
        raise SystemExit(f"{d} is at step {models.meta.get('step')}, expected {step}.")
    return models.unimodal() if actor == "baseline" else models


def models_dir(args: SuiteConfig, task: str, seed: int, step: int) -> Path | None:
    """Where the networks of a run at ``step`` are: the run's export or its snapshot.

    A run trained past ``step`` (continued for a longer budget) still has its snapshot there;
    without an LR schedule, the snapshot is exactly what a run stopped at ``step`` exports.
    """
    from gemkit.train import models_at

    d = run_dir(args, task, seed)
    found = models_at(d, step)
    # the run's own export answers only for its budget (the curves read snapshots)
    return None if found == d and step != steps_for(args, task) else found


def available(args: SuiteConfig, cell: dict[str, Any]) -> bool:
    """Whether the networks of ``cell`` exist yet."""
    return models_dir(args, cell["task"], cell["train_seed"], cell["step"]) is not None


def evaluate_cells(args: SuiteConfig, cells: list[dict[str, Any]]) -> int:
    """Evaluate this worker's share of ``cells`` not cached yet whose networks exist.

    Returns the number of cells of the stage still missing (all workers, unavailable included).
    """
    import torch

    from gemkit.config import SelectorConfig
    from gemkit.eval.profile import cpu_name
    from gemkit.eval.runs import evaluate_config

    torch.set_num_threads(args.threads)
    cpu = cpu_name()
    i, k = (int(x) for x in args.worker.split("/"))
    done = read_cells(args.out)
    todo = [c for c in cells if c["key"] not in done]
    mine = [c for j, c in enumerate(cells) if j % k == i and c["key"] not in done]
    mine = [c for c in mine if available(args, c)]
    Path(args.out).mkdir(parents=True, exist_ok=True)
    sink = Path(args.out) / f"cells-{i}of{k}.jsonl"
    _log(f"worker {i}/{k}: {len(mine)} cells to evaluate ({len(cells)} in the stage)")
    cache: dict[tuple[str, int, int, str], Any] = {}
    t_stage = time.perf_counter()
    for j, c in enumerate(mine):
        mkey = (c["task"], c["train_seed"], c["step"], c["actor"])
        if mkey not in cache:
            cache.clear()
            cache[mkey] = _models(args, *mkey)
        t0 = time.perf_counter()
        s = evaluate_config(cache[mkey], SelectorConfig(**c["config"]), dataset_id(c["task"]),
                            episodes=c["episodes"], seeds=c["eval_seeds"],
                            mass_scale=c.get("mass_scale"), num_envs=min(c["episodes"], 30))
        row = {**c, **{f: v for f, v in s.row().items() if f not in c["config"]},
               "eval_s": time.perf_counter() - t0, "cpu": cpu}
        row["returns"] = [float(x) for r in s.results for x in r.returns]
        with sink.open("a") as f:
            f.write(json.dumps(row) + "\n")
        mass = f" mass {c['mass_scale']:g}" if c.get("mass_scale") is not None else ""
        _log(f"{j + 1}/{len(mine)} {c['stage']} {c['task']} s{c['train_seed']} "
             f"step {c['step']} {c['actor']} n={c['config']['n']}{mass} -> {s.score_mean:.1f} "
             f"({time.perf_counter() - t0:.0f}s; {time.perf_counter() - t_stage:.0f}s total)")
    return len(todo) - len(mine)


def stage_auto(args: SuiteConfig, poll_s: float = 60.0) -> None:
    """Validate checkpoints as their runs finish, then test; until every cell is done."""
    while True:
        left = evaluate_cells(args, validation_cells(args))
        left += evaluate_cells(args, test_cells(args, None))
        if left == 0:
            knobs = suite_knobs(args)
            if evaluate_cells(args, test_cells(args, knobs)) == 0:
                return
        time.sleep(poll_s)


# ---------------------------------------------------------------------------- analysis
# ---------------------------------------------------------------------------- plots
def plot_budget(test: list[dict[str, Any]], tasks: Sequence[str], paper: Mapping[str, Any],
                path: Path) -> Path:
    from matplotlib.figure import Figure

    fig = Figure(figsize=(4.2 * len(tasks), 6.4))
    axes = fig.subplots(2, len(tasks), squeeze=False)
    for j, task in enumerate(tasks):
        rows = [r for r in test if r["task"] == task and r["series"] not in ("curve", "mass")]
        gem = aggregate([r for r in rows if r["series"] == "gem"], ["n"])
        base = aggregate([r for r in rows if r["actor"] == "baseline"], ["n"])
        nopw = aggregate([r for r in rows if r["series"] == "no_pw"], ["n"])
        x = np.array([max(a["n"], 0.5) for a in gem])
        ax = axes[0, j]
        y, sd = np.array([a["score"] for a in gem]), np.array([a["score_std"] for a in gem])
        ax.plot(x, y, "o-", color="C0", label="GEM (K-GMM actor)")
        ax.fill_between(x, y - sd, y + sd, color="C0", alpha=0.15)
        for a in base:
            ax.errorbar([max(a["n"], 0.5)], [a["score"]], [a["score_std"]], fmt="s", color="C1",
                        capsize=3, label="fair unimodal baseline" if a is base[0] else None)
        for a in nopw:
            ax.plot([a["n"]], [a["score"]], "x", color="C3", ms=9, label="no_pw")
        if task in paper:
            ax.axhline(paper[task]["GEM"], color="C0", ls=":", lw=1, label="paper GEM (D4RL, 1M)")
            ax.axhline(paper[task]["IQL"], color="C2", ls=":", lw=1, label="paper IQL (D4RL, 1M)")
        ax.set_xscale("log")
        ax.set_title(f"{task}: normalised score")
        ax.set_xlabel("candidates N (N=0 plotted at 0.5)")
        axv = axes[1, j]
        axv.plot(x, [100 * a["violation"] for a in gem], "o-", color="C0", label="GEM")
        for a in nopw:
            axv.plot([a["n"]], [100 * a["violation"]], "x", color="C3", ms=9, label="no_pw")
        axv.set_xscale("log")
        axv.set_title(f"{task}: Violation (% of steps)")
        axv.set_xlabel("candidates N")
    axes[0, 0].legend(fontsize=7)
    axes[1, 0].legend(fontsize=7)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    return path


def plot_curves(test: list[dict[str, Any]], tasks: Sequence[str], final_steps: dict[str, int],
                n_curve: int, path: Path) -> Path:
    from matplotlib.figure import Figure

    fig = Figure(figsize=(4.2 * len(tasks), 3.4))
    axes = fig.subplots(1, len(tasks), squeeze=False)[0]
    series = (("gem", 0, "GEM actor, single-shot (N=0)", "C0", "-"),
              ("baseline", 0, "fair unimodal baseline (N=0)", "C1", "-"))
    for ax, task in zip(axes, tasks, strict=True):
        for actor, n, label, color, style in series:
            rows = [r for r in test if r["task"] == task and r["actor"] == actor
                    and r["config"]["n"] == n and (r["series"] == "curve"
                    or (r["step"] == final_steps[task] and r["series"] in ("gem", "baseline")))]
            # the final point: the test cells' first episodes, the same starts as the curve cells
            pts = aggregate([_first_episodes(r, n_curve) for r in rows], ["step"])
            if not pts:
                continue
            x = np.array([p["step"] for p in pts])
            y, sd = np.array([p["score"] for p in pts]), np.array([p["score_std"] for p in pts])
            ax.plot(x, y, style, marker="o", ms=3, color=color, label=label)
            ax.fill_between(x, y - sd, y + sd, color=color, alpha=0.12)
        ax.set_title(f"{task}: score vs gradient steps")
        ax.set_xlabel("gradient steps")
    axes[0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    return path


def _first_episodes(row: dict[str, Any], n: int) -> dict[str, Any]:
    """A test cell reduced to its first ``n`` episodes (environments seeded 0..n-1: the same
    starts as a learning-curve cell of ``n`` episodes)."""
    if len(row["returns"]) <= n:
        return row
    first = row["returns"][:n]
    ref = reference_scores(row["task"])
    score = float(np.mean([100 * (x - ref[0]) / (ref[1] - ref[0]) for x in first]))
    return {**row, "score_mean": score, "returns": first}


def plot_frontier(test: list[dict[str, Any]], tasks: Sequence[str], n: int, path: Path) -> Path:
    from matplotlib.figure import Figure

    fig = Figure(figsize=(4.2 * len(tasks), 3.4))
    axes = fig.subplots(1, len(tasks), squeeze=False)[0]
    for ax, task in zip(axes, tasks, strict=True):
        rows = [r for r in test if r["task"] == task and r["actor"] == "gem"
                and r["config"]["n"] == n and r["series"] in ("gem", "frontier")]
        pts = aggregate(rows, ["lam_T"])
        ax.plot([100 * p["violation"] for p in pts], [p["score"] for p in pts], "o-")
        for p in pts:
            ax.annotate(f"λ={p['lam_T']:g}", (100 * p["violation"], p["score"]), fontsize=7)
        ax.set_xlabel("Violation (% of steps)")
        ax.set_ylabel("normalised score")
        ax.set_title(f"{task}: λ frontier at N={n}")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    return path


# ---------------------------------------------------------------------------- report
def _fmt_row(cols: Sequence[str]) -> str:
    return "| " + " | ".join(cols) + " |"


def _table(header: Sequence[str], rows: Iterable[Sequence[str]]) -> list[str]:
    return [_fmt_row(header), _fmt_row(["---"] * len(header)), *(_fmt_row(r) for r in rows)]


def _f(x: float, pct: bool = False) -> str:
    if x is None or not math.isfinite(x):
        return "n/a"
    return f"{100 * x:.1f}%" if pct else f"{x:.1f}"


DATASETS_FILE = "datasets.jsonl"
"""In the cells folder: each task's dataset facts (size, episodes, reward sum), as last read
from the dataset itself, so a fresh clone without the datasets writes the same page."""


def dataset_stats(args: SuiteConfig) -> list[dict[str, Any]]:
    """Size and reference scores of each task's dataset: read from the dataset where it is on
    this machine (and kept in ``<out>/datasets.jsonl``), else from that file (``steps`` None:
    known from neither)."""
    from gemkit.data import load
    from gemkit.data.minari_io import dataset_exists

    path = Path(args.out) / DATASETS_FILE
    known = {}
    if path.is_file():
        known = {r["task"]: r for r in map(json.loads, path.read_text().splitlines())}
    out: list[dict[str, Any]] = []
    for task in args.tasks:
        row = {"task": task, "steps": None, "episodes": None, "ref_min": reference_scores(task)[0],
               "ref_max": reference_scores(task)[1], "reward_sum": None}
        if dataset_exists(dataset_id(task)):
            d = load(dataset_id(task))
            ends = (d.terminals.numpy() + d.timeouts.numpy()) > 0
            row.update(steps=len(d), episodes=int(ends.sum()), reward_sum=float(d.rewards.sum()))
            known[task] = row
        elif task in known:
            row = {**known[task], "ref_min": row["ref_min"], "ref_max": row["ref_max"]}
        out.append(row)
    if known:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("".join(json.dumps(known[t]) + "\n" for t in sorted(known)))
    return out


def _named(row: dict[str, Any], word: str) -> dict[str, Any]:
    """``row`` with its ``task`` field under the suite's word (the mazes' tables say ``maze``)."""
    return {(word if k == "task" else k): v for k, v in row.items()}


def mass_points(test: list[dict[str, Any]], task: str,
                args: SuiteConfig) -> dict[str, list[dict[str, Any]]]:
    """Score vs MassScale factor of each MassScale selector on ``task``, by label; the
    nominal test cells are the factor 1.0."""
    out = {}
    for actor, n in mass_actors(args):
        rows = [{**r, "mass_scale": 1.0 if r["series"] != "mass" else r["mass_scale"]}
                for r in test if r["task"] == task and r["actor"] == actor
                and r["config"]["n"] == n and r["series"] in ("mass", actor)]
        name = "GEM" if actor == "gem" else "fair unimodal"
        out[f"{name} N={n}"] = aggregate(rows, ["mass_scale"])
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
    facts: dict[tuple[str, int], dict[str, Any]] = {}
    if path.is_file():
        for line in path.read_text().splitlines():
            row = json.loads(line)
            facts[(row["task"], int(row["seed"]))] = row
    changed = False
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
            row = {"task": task, "seed": seed, "step": int(rows[-1]["step"]),
                   "median_steps_per_s": round(float(np.median(rates)), 1)}
            if facts.get((task, seed)) != row:
                facts[(task, seed)], changed = row, True
    if changed:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("".join(json.dumps(facts[k]) + "\n" for k in sorted(facts)))
    return facts


def training_rates(args: SuiteConfig) -> str:
    """The report's sentence on training speed, measured: each run's median logged
    ``steps_per_s`` (:func:`training_facts`), per task; empty where no run's rate is known
    (the report then prints the suite's note)."""
    facts = training_facts(args)
    parts = []
    for task in args.tasks:
        medians = [facts[(task, s)]["median_steps_per_s"] for s in args.seeds
                   if (task, s) in facts]  # fmt: skip
        if medians:
            parts.append(f"{task} {min(medians):.0f}-{max(medians):.0f}")
    if not parts:
        return ""
    return ("Training ran at " + ", ".join(parts) + " gradient steps/s per job (each run's "
            "median logged rate, over the seeds; one thread per job, with other runs and the "
            "evaluation sharing the two cores). ")


def cells_cpus(cells: Sequence[dict[str, Any]]) -> str:
    """The CPUs the cells were evaluated on (recorded in each cell), for the report."""
    names = sorted({str(c["cpu"]) for c in cells if c.get("cpu")})
    return ", ".join(names) if names else "not recorded"


def stage_report(args: SuiteConfig) -> None:
    import csv

    from gemkit.eval.plots import plot_mass_scale

    suite, w = suite_of(args), suite_of(args).word
    try:
        knobs = suite_knobs(args)
    except SystemExit:
        _write_empty_doc(args)
        _log(f"no validation cells in {args.out}: wrote {args.doc} saying so")
        return
    cells = planned_results(args, knobs)
    val = [c for c in cells if c["stage"] == "validate"]
    test = [c for c in cells if c["stage"] == "test"]
    figs = Path(args.figures)
    figs.mkdir(parents=True, exist_ok=True)
    big = max(args.budgets)
    claim_rows = claims(test, args.tasks, big, args.baseline_n, args.budgets)

    # tables
    flat = []
    for c in cells:
        flat.append({"stage": c["stage"], "series": c.get("series", "validate"), w: c["task"],
                     "train_seed": c["train_seed"], "step": c["step"], "actor": c["actor"],
                     **{k: c["config"][k] for k in ("n", "beta", "lam", "lam_T", "horizon")},
                     "value": c["config"].get("value", "lcb"),
                     **({"mass_scale": c.get("mass_scale")} if args.mass_tasks else {}),
                     "eval_seeds": " ".join(map(str, c["eval_seeds"])),
                     "episodes_per_seed": c["episodes"], "score_mean": c["score_mean"],
                     "score_std_over_eval_seeds": c["score_std"], "violation": c["violation"],
                     "support_z": c["support_z"], "collapse_dist": c["collapse_dist"],
                     "success_rate": c["success_rate"], "steps_per_s": c["steps_per_s"]})
    flat.sort(key=lambda r: (r["stage"], r[w], r["series"], r["actor"], r["step"], r["n"],
                             r["train_seed"], r["value"], r["lam_T"], r["beta"],
                             r.get("mass_scale") or 1.0))
    csv_path = figs / f"{suite.name}_cells.csv"
    with csv_path.open("w", newline="") as f:
        wr = csv.DictWriter(f, fieldnames=list(flat[0]))
        wr.writeheader()
        wr.writerows(flat)
    budget = {"steps": args.steps, f"{w}_steps": args.task_steps,
              **{k: getattr(args, k) for k in ("seeds", "train_set", "betas", "lam0", "lam_const",
                                               "frontier", "lam_T", "val_n", "budgets",
                                               "episodes", "test_episodes")}}
    summary: dict[str, Any] = {
        "knobs": knobs,
        "claims": [_named(c, w) for c in claim_rows],
        "datasets": [_named(d, w) for d in dataset_stats(args)],
        "budget": budget,
        f"per_{w}": {
            task: {
                series: aggregate([r for r in test if r["task"] == task
                                   and r["series"] == series], ["n"])
                for series in ("gem", "baseline", "no_pw", "bary")
            }
            for task in args.tasks
        },
        "cpu": cells_cpus(cells),
    }
    if args.mass_tasks:
        budget.update(mass_scales=args.mass_scales, mass_tasks=args.mass_tasks)
        summary["mass"] = {t: mass_points(test, t, args) for t in args.mass_tasks
                           if t in args.tasks}  # fmt: skip
    (figs / f"{suite.name}_summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    plot_budget(test, args.tasks, suite.paper, figs / f"{suite.name}_budget.png")
    plot_curves(test, args.tasks, {m: steps_for(args, m) for m in args.tasks},
                args.curve_episodes, figs / f"{suite.name}_curves.png")
    plot_frontier(test, args.tasks, args.val_n, figs / f"{suite.name}_frontier.png")
    if summary.get("mass"):
        plot_mass_scale([{"label": f"{t}: {label}", "mass_scale": a["mass_scale"],
                          "score_mean": a["score"], "score_std": a["score_std"]}
                         for t, by in summary["mass"].items() for label, pts in by.items()
                         for a in pts], figs / f"{suite.name}_mass.png")  # fmt: skip
    _write_doc(args, knobs, val, test, claim_rows, summary)
    _log(f"wrote {args.doc}, {csv_path} and the PNGs in {figs}")


def _rel(args: SuiteConfig, path: Path) -> Path:
    """``path`` relative to the doc's folder (how the doc links to it)."""
    return Path(os.path.relpath(path, Path(args.doc).parent))


def _intro(args: SuiteConfig) -> list[str]:
    """The doc's heading and, on a full run, one line pointing to the other suites' docs."""
    suite = suite_of(args)
    L = [f"# {suite.title}", ""]
    if not args.smoke:
        # the suites' docs sit side by side in docs/
        here = Path(suite.doc).parent
        others = [f"[{s.title.removeprefix('Results: ')}]"
                  f"({Path(os.path.relpath(s.doc, here)).as_posix()})"
                  for s in SUITES.values() if s.name != suite.name]  # fmt: skip
        L += [f"The same protocol on other tasks: {', '.join(others)}.", ""]
    return L


def _write_empty_doc(args: SuiteConfig) -> None:
    """The doc of a suite with no validation cells yet: says so and how to get them."""
    suite = suite_of(args)
    L = _intro(args)
    L += ["**No results yet**: the cell cache holds no validation cells of this suite's "
          f"checkpoints ({', '.join(args.tasks)}; training seeds {args.seeds}; "
          f"{', '.join(f'{t} {steps_for(args, t):,}' for t in args.tasks)} gradient steps), "
          "so no knobs are chosen and nothing is measured. Run the stages, then `report` again:",
          "", "```bash", *(f"python {suite.script} {st}" for st in
                             ("train", "validate", "test", "report")),
          "```", "", "(`docs/experiments.md` has the whole recipe.)"]  # fmt: skip
    Path(args.doc).parent.mkdir(parents=True, exist_ok=True)
    Path(args.doc).write_text("\n".join(L) + "\n")


def _write_doc(args: SuiteConfig, knobs: dict[str, Any], val: list[dict[str, Any]],
               test: list[dict[str, Any]], claim_rows: list[dict[str, Any]],
               summary: dict[str, Any]) -> None:
    suite, w = suite_of(args), suite_of(args).word
    rel = _rel(args, Path(args.figures)).as_posix()
    name = suite.name
    L = _intro(args)
    L += [f"Regenerated by `python {suite.script} report` from the cached cells of the "
          "`train`, `validate` and `test` stages (see the script's docstring for the commands). "
          "Every number below was measured by that pipeline; the tables behind it are "
          f"[`{rel}/{name}_cells.csv`]({rel}/{name}_cells.csv) (one row per evaluated cell) and "
          f"[`{rel}/{name}_summary.json`]({rel}/{name}_summary.json).", ""]
    L += ["## The claims, checked", ""]
    L += _table([w, "claim", "measured (mean ± std over training seeds)", "holds?"],
                [[c["task"], c["claim"], c["measured"], "holds" if c["holds"] else
                  "**does not hold**"] for c in claim_rows])
    L += [""]
    L += [f"## Score by {w}, beside the paper's Table 1", ""]
    rows = []
    for task in args.tasks:
        pm = summary[f"per_{w}"][task]
        g = {a["n"]: a for a in pm["gem"]}
        b = {a["n"]: a for a in pm["baseline"]}

        def cell(d: dict[int, Any], n: int) -> str:
            return f"{_f(d[n]['score'])} ± {_f(d[n]['score_std'])}" if n in d else "n/a"

        paper = suite.paper.get(task, {})
        rows.append([task, cell(g, args.baseline_n), cell(g, 0), cell(b, 0),
                     cell(b, args.baseline_n), f"{paper['GEM']:.2f}" if paper else "",
                     f"{paper['IQL']:.2f}" if paper else ""])
    L += _table([w, f"GEM N={args.baseline_n}", "GEM anchor (N=0)",
                 "fair unimodal (N=0)", f"fair unimodal N={args.baseline_n}",
                 "paper GEM*", "paper IQL*"], rows)
    L += ["", f"\\* {suite.paper_note} Other data and another budget: "
          "shown for orientation, not as a like-for-like comparison.", ""]
    L += [f"![score and Violation vs N]({rel}/{name}_budget.png)", ""]
    L += ["## Budget of every number", ""]
    sizes = ", ".join(f"{d[w]} {d['steps']:,} steps / {d['episodes']:,} episodes"
                      if d["steps"] is not None else f"{d[w]}: not on this machine"
                      for d in summary["datasets"])  # fmt: skip
    train_note = suite.train_note if args.train_set == suite.defaults["train_set"] else ""
    t0 = args.tasks[0]
    cmd = " ".join(train_command(_fresh(args), t0, 0)).replace(t0, f"<{w}>")
    cmd = cmd.replace("-s0", "-s<seed>").replace("--seed 0", "--seed <seed>")
    cmd = cmd.replace(f"--steps {steps_for(args, t0)}", "--steps <steps>")
    L += ["- Data: " + suite.data_line.format(tasks=",".join(args.tasks), sizes=sizes),
          "- Phase I: "
          + ", ".join(f"{m} {steps_for(args, m):,}" for m in args.tasks)
          + " gradient steps per run (the paper: 1M), "
          f"{' '.join(args.train_set)} on top of the defaults (10,000 behavior-only pretraining "
          f"steps, batch 256, K = 5, alpha = 3){train_note}, `--compile`; training seeds "
          f"{args.seeds}. "
          "The fair unimodal baseline (K = 1) is trained in the same runs, from the same "
          "minibatches, critic and value, for the same steps.",
          f"- Knob protocol (the paper's): `beta` in {args.betas} × `lambda_T` in {args.lam_T} "
          f"(cosine schedule from `lambda_0 = {args.lam0:g}` over the {w}'s horizon), plus "
          f"constant `lambda` in {args.lam_const} at `beta = 1`, and the z-scored value term "
          f"(`value = lcb_z`: the LCB standardised within each candidate set, like the support) "
          f"with constant `lambda` in {args.lam_z} at `beta = 1`, at "
          f"N = {args.val_n}, on validation evaluation seed(s) {list(VAL_SEEDS)} "
          f"({args.episodes} episodes per checkpoint); chosen once for the whole suite: "
          f"**value = {knobs['value']}, beta = {knobs['beta']:g}, lambda_0 = "
          f"{knobs['lam']:g}, lambda_T = {knobs['lam_T']:g}** (mean validation score "
          f"{knobs['val_score']:.1f}).",
          f"- Test: evaluation seed(s) {list(TEST_SEEDS)}, {args.test_episodes} episodes per "
          f"checkpoint ({args.test_episodes * len(args.seeds)} episodes per {w} "
          f"and configuration; {args.big_episodes} per checkpoint at N = {max(args.budgets)}), "
          "disjoint from validation. Scores are normalised "
          f"(100 × (R − R_random) / (R_expert − R_random)) with {suite.scale}; "
          "± is the std over training seeds of the per-checkpoint mean.",
          f"- Machine: {summary['cpu']}, one thread per job.",
          f"- Commands: `python {suite.script} train` runs, for each {w} and seed, "
          f"`{cmd}`; then `validate` and `test` (two `--worker i/2` processes "
          f"each) and `report`. {training_rates(args) or suite.timing_note}A run "
          f"trained further is resumed with `gemkit train --resume <runs>/<{w}>-s<seed> "
          f"--steps <steps>` (`{suite.steps_flag}`; no LR schedule, so it is the longer run).",
          ""]
    L += ["## Score vs N at the chosen knobs, with the audits", ""]
    for task in args.tasks:
        pm = summary[f"per_{w}"][task]
        L += [f"### {task}", ""]
        trs = [[f"GEM N={a['n']}", f"{_f(a['score'])} ± {_f(a['score_std'])}",
                _f(a["violation"], True), _f(a["support_z"]), _f(a["collapse_dist"]),
                f"{a['steps_per_s']:.0f}"] for a in pm["gem"]]
        trs += [[f"fair unimodal N={a['n']}", f"{_f(a['score'])} ± {_f(a['score_std'])}",
                 _f(a["violation"], True), _f(a["support_z"]), _f(a["collapse_dist"]),
                 f"{a['steps_per_s']:.0f}"] for a in pm["baseline"]]
        trs += [[f"GEM, barycenter anchor, N={a['n']}", f"{_f(a['score'])} ± "
                 f"{_f(a['score_std'])}", _f(a["violation"], True), _f(a["support_z"]),
                 _f(a["collapse_dist"]), f"{a['steps_per_s']:.0f}"] for a in pm["bary"]]
        trs += [[f"no_pw N={a['n']}", f"{_f(a['score'])} ± {_f(a['score_std'])}",
                 _f(a["violation"], True), _f(a["support_z"]), _f(a["collapse_dist"]),
                 f"{a['steps_per_s']:.0f}"] for a in pm["no_pw"]]
        L += _table(["selector", "score", "Violation", "SupportZ", "CollapseDist",
                     "env steps/s (shared CPU)"], trs)
        L += [""]
    L += [f"## The lambda frontier (N = {args.val_n})", "",
          f"Score against Violation for constant `lambda` in {args.frontier}, beside the chosen "
          "knobs (same beta), on the test episodes.", "",
          f"![score vs Violation as lambda varies]({rel}/{name}_frontier.png)", ""]
    fr = []
    for task in args.tasks:
        rows_m = [r for r in test if r["task"] == task and r["actor"] == "gem"
                  and r["config"]["n"] == args.val_n and r["series"] in ("gem", "frontier")]
        for a in aggregate(rows_m, ["lam_T"]):
            fr.append([task, f"{a['lam_T']:g}", f"{_f(a['score'])} ± {_f(a['score_std'])}",
                       _f(a["violation"], True)])
    L += [*_table([w, f"lambda (constant; {knobs['lam']:g} = chosen)", "score",
                   "Violation"], fr), ""]
    if summary.get("mass"):
        L += _mass_section(args, summary["mass"], f"{rel}/{name}_mass.png")
    L += ["## Validation sweep (inference only, same networks)", ""]
    vs = aggregate(val, ["task", "value", "beta", "lam", "lam_T"])
    L += _table([w, "value", "beta", "lambda_0", "lambda_T", "validation score",
                 "Violation"],
                [[a["task"], a["value"], f"{a['beta']:g}", f"{a['lam']:g}", f"{a['lam_T']:g}",
                  f"{_f(a['score'])} ± "
                  f"{_f(a['score_std'])}", _f(a["violation"], True)] for a in vs])
    L += [""]
    L += ["## Learning curves", "",
          "Score vs gradient steps of the two actors trained in each run, each single-shot "
          "(GEM's anchor, i.e. N = 0, and the fair unimodal baseline), from the model "
          f"snapshots every {args.snapshot_every:,} steps ({args.curve_episodes}"
          " episodes per snapshot and training seed; mean ± std over training seeds).", "",
          f"![learning curves]({rel}/{name}_curves.png)", ""]
    if suite.name == "maze2d":
        L += _outside_iql_section(args, summary)
    notes = ROOT / suite.findings
    if suite.findings and notes.is_file() and not args.smoke:
        link = Path(os.path.relpath(notes, (ROOT / "docs" / suite.doc).parent)).as_posix()
        L += ["## Findings", "",
              f"What these results show and where the claims fail, each number with its "
              f"command and file: [{Path(suite.findings).name}]({link}).", ""]  # fmt: skip
    Path(args.doc).parent.mkdir(parents=True, exist_ok=True)
    Path(args.doc).write_text("\n".join(L) + "\n")


def _outside_iql_section(args: SuiteConfig, summary: dict[str, Any]) -> list[str]:
    """Maze2D: d3rlpy's IQL on the rebuilt data (``reproductions/iql_reference.py --task maze2d``,
    its committed reports ``<figures>/iql_<maze>.json``) beside published IQL on D4RL's own
    files and this suite's fair baseline: does the rebuild reproduce IQL's numbers?"""
    suite = suite_of(args)
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
        base = {a["n"]: a for a in summary[f"per_{suite.word}"][task]["baseline"]}
        fair = f"{_f(base[0]['score'])} ± {_f(base[0]['score_std'])}" if 0 in base else "n/a"
        paper = suite.paper.get(task, {})
        rows.append([task, iql, fair, f"{paper['IQL']:.1f}" if paper else ""])
    return [
        "## Validating the rebuild against published IQL", "",
        "d3rlpy's IQL with its defaults (expectile 0.7, temperature 3, 256x256, standard "
        "observation scaler) trained on the rebuilt data (`python reproductions/iql_reference.py "
        "train --task maze2d --maze <maze>`, then `test ... --n --episodes 100` on every "
        "snapshot), scored on D4RL's scale: the mean over the later half of its snapshots "
        "(steps above half the last). Beside it this suite's fair unimodal baseline "
        "(single-shot) and IQL on D4RL's own files as published (CORL's final scores after "
        "1M steps, also the paper's IQL column). The IQL reports with every snapshot: "
        "`docs/results/maze2d/iql_<maze>.json` and `.png`.", "",
        *_table([suite.word, "d3rlpy IQL on the rebuilt data", "fair unimodal (N=0)",
                 "published IQL (D4RL's files, 1M steps)"], rows), "",
    ]  # fmt: skip


def _mass_section(args: SuiteConfig, mass: dict[str, dict[str, list[dict[str, Any]]]],
                  png: str) -> list[str]:
    """The MassScale robustness table: score at each body-mass factor, per selector."""
    labels = [f"{'GEM' if a == 'gem' else 'fair unimodal'} N={n}" for a, n in mass_actors(args)]
    rows = []
    for task, by in mass.items():
        pts = {label: {p["mass_scale"]: p for p in by[label]} for label in labels}
        for m in sorted({x for p in pts.values() for x in p}):
            rows.append([task, f"{m:g}", *(f"{_f(p[m]['score'])} ± {_f(p[m]['score_std'])}"
                                           if m in p else "n/a" for p in pts.values())])
    return [
        "## Robustness to body mass (MassScale)", "",
        "Every MuJoCo body mass scaled by the factor at test time (`gemkit.envs.MassScale`), "
        "the same networks and chosen knobs, on the test evaluation seeds "
        f"({args.test_episodes} episodes per checkpoint; 1.0 is the nominal test above). The "
        "paper's appendix A.4 runs the same perturbation (against BC).", "",
        *_table(["task", "mass scale", *labels], rows), "",
        f"![score vs MassScale factor]({png})", "",
    ]  # fmt: skip


def main(argv: Sequence[str] | None = None) -> None:
    stage_arg, args = parse(argv)
    stages = ["train", "validate", "test", "report"] if stage_arg == "all" else [stage_arg]
    for stage in stages:
        if stage == "train":
            stage_train(args)
        elif stage == "validate":
            evaluate_cells(args, validation_cells(args))
        elif stage == "auto":
            stage_auto(args, 2.0 if args.smoke else 60.0)
        elif stage == "test":
            knobs = suite_knobs(args)
            _log(f"chosen knobs: {knobs}")
            evaluate_cells(args, test_cells(args, knobs))
        else:
            stage_report(args)


if __name__ == "__main__":
    main()
