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
import os
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from gemkit.experiments import (
    MAZE2D_NAMES,
    MAZE_NAMES,
    dataset_id,
    read_cells,
)
from gemkit.experiments.plan import (
    log,
    run_dir,
    steps_for,
    suite_knobs,
    test_cells,
    train_command,
    validation_cells,
)
from gemkit.experiments.report import write_report
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


def make_dataset(args: SuiteConfig, task: str) -> None:
    """Make ``task``'s dataset (a tiny one with ``--smoke``)."""
    log(f"making {dataset_id(task)}")
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
            log(" ".join(cmd))
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
    log(f"worker {i}/{k}: {len(mine)} cells to evaluate ({len(cells)} in the stage)")
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
        log(f"{j + 1}/{len(mine)} {c['stage']} {c['task']} s{c['train_seed']} "
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








# ---------------------------------------------------------------------------- report




































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
            log(f"chosen knobs: {knobs}")
            evaluate_cells(args, test_cells(args, knobs))
        else:
            write_report(args)


if __name__ == "__main__":
    main()
