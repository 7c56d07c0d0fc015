"""The command line of a suite run (``reproductions/mazes.py``, ``gemkit experiment``): the
stage and a :class:`~gemkit.experiments.suites.SuiteConfig` with the suite's defaults."""

from __future__ import annotations

import argparse
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import attrs

from gemkit.backends import BACKENDS
from gemkit.experiments.stages import STAGES
from gemkit.experiments.suites import STRESS_PRESETS, SUITES, SuiteConfig, read_settings

__all__ = ["parse", "parse_args"]

#: the repository root: a suite's default folders (``reproductions/out``, ``docs/``) are in it
ROOT = Path(__file__).resolve().parents[2]


def _default(name: str) -> Any:
    """The default of :class:`SuiteConfig`'s field ``name`` (one source for the flag's)."""
    default: Any = attrs.fields_dict(SuiteConfig)[name].default
    factory = getattr(default, "factory", None)  # an attrs Factory: a fresh list each call
    return factory() if callable(factory) else default


def parse(
    argv: Sequence[str] | None = None, description: str | None = None, prog: str | None = None
) -> tuple[str, SuiteConfig]:
    """The stage and the suite run's settings from the command line."""
    pre = argparse.ArgumentParser(add_help=False)
    pre.add_argument("--suite", choices=list(SUITES), default=None)
    pre.add_argument("--config", type=Path, default=None)
    known = pre.parse_known_args(argv)[0]
    settings = read_settings(known.config) if known.config is not None else {}
    suite = SUITES[known.suite or settings.get("suite", "mazes")]
    d = suite.defaults
    out = ROOT / "reproductions" / "out" / suite.name
    p = argparse.ArgumentParser(
        prog=prog, description=description, formatter_class=argparse.RawTextHelpFormatter
    )
    p.add_argument("stage", choices=list(STAGES))
    p.add_argument(
        "--config",
        type=Path,
        default=None,
        help="a .toml or .json file of suite settings (SuiteConfig's fields; e.g. one "
        "SuiteConfig.to_toml() wrote): they replace the suite's defaults, flags override them",
    )
    p.add_argument(
        "--suite",
        choices=list(SUITES),
        default=suite.name,
        help="the tasks and their defaults: " + ", ".join(
            f"{s.name} (docs/{s.doc})" for s in SUITES.values()),
    )
    p.add_argument(
        "--runs", type=Path, default=out / "runs", help="checkpoint directories <task>-s<seed>"
    )
    p.add_argument("--out", type=Path, default=out, help="cell cache")
    p.add_argument("--doc", type=Path, default=ROOT / "docs" / suite.doc)
    p.add_argument("--figures", type=Path, default=ROOT / "docs" / suite.figures)
    p.add_argument(
        "--tasks",
        "--mazes",
        dest="tasks",
        nargs="+",
        choices=suite.tasks,
        default=list(suite.default_tasks),
    )
    p.add_argument("--seeds", nargs="+", type=int, default=_default("seeds"))
    p.add_argument("--steps", type=int, default=d["steps"], help="gradient steps per run")
    p.add_argument(
        "--task-steps",
        "--maze-steps",
        dest="task_steps",
        nargs="*",
        default=[],
        metavar="TASK=STEPS",
        help="a different budget for some tasks (e.g. medium=300000)",
    )
    p.add_argument("--snapshot-every", type=int, default=d["snapshot_every"])
    p.add_argument(
        "--train-set",
        nargs="*",
        default=list(d["train_set"]),
        help="TrainConfig overrides of every run",
    )
    p.add_argument(
        "--sac-root",
        type=Path,
        default=None,
        help="locomotion: where a missing dataset's SAC run goes (<sac-root>/"
        "<env>-seed0; default gemkit's gemkit-sac/<env>-seed0)",
    )
    p.add_argument("--betas", nargs="+", type=float, default=_default("betas"))
    p.add_argument(
        "--lam0", type=float, default=_default("lam0"), help="lambda at t = 0 (cosine schedule)"
    )
    p.add_argument(
        "--lam-const",
        nargs="*",
        type=float,
        default=_default("lam_const"),
        help="constant lambdas also validated (at beta = 1): the critic's Q spread "
        "between candidates can be far below the O(1) z-scored support",
    )
    p.add_argument(
        "--lam-z",
        nargs="*",
        type=float,
        default=_default("lam_z"),
        help="constant lambdas validated with the z-scored value term (value lcb_z, "
        "beta = 1): value and support on the same O(1) scale",
    )
    p.add_argument(
        "--frontier",
        nargs="+",
        type=float,
        default=_default("frontier"),
        help="constant lambdas of the test frontier (beside the chosen knobs)",
    )
    p.add_argument("--lam-T", nargs="+", type=float, default=_default("lam_T"))
    p.add_argument("--val-n", type=int, default=_default("val_n"))
    p.add_argument("--budgets", nargs="+", type=int, default=list(d["budgets"]))
    p.add_argument("--baseline-n", type=int, default=_default("baseline_n"))
    p.add_argument(
        "--episodes", type=int, default=d["episodes"], help="validation episodes per checkpoint"
    )
    p.add_argument(
        "--test-episodes",
        type=int,
        default=d["test_episodes"],
        help="test episodes per checkpoint (one batch of environments)",
    )
    p.add_argument("--curve-episodes", type=int, default=d["curve_episodes"])
    p.add_argument(
        "--big-episodes",
        type=int,
        default=d["big_episodes"],
        help="test episodes per checkpoint at the largest N (GEM and no_pw)",
    )
    p.add_argument(
        "--mass-scales",
        nargs="*",
        type=float,
        default=list(d["mass_scales"]),
        help="MassScale factors of the robustness cells (1.0 is the nominal test)",
    )
    p.add_argument(
        "--mass-tasks",
        nargs="*",
        choices=suite.tasks,
        default=list(d["mass_tasks"]),
        help="the tasks evaluated at every --mass-scales factor",
    )
    p.add_argument("--stress", nargs="*", choices=STRESS_PRESETS, default=list(d["stress"]),
                   help="stress-test ablations (each one change from GEM) at the largest N")
    p.add_argument(
        "--worker", default=_default("worker"),
        help="i/k: this process's share of the cells (every k-th from i), to split a suite "
        "over machines that share --out without a Ray cluster"
    )
    p.add_argument("--backend", choices=BACKENDS, default=_default("backend"),
                   help="validate/test: evaluate cells in this process (serial) or as Ray "
                        "tasks, one per cell (ray), every result written by this process")
    p.add_argument("--address", default=_default("address"),
                   help="--backend ray: an existing cluster (auto, ray://HOST:10001)")
    p.add_argument("--local-cpus", type=int, default=_default("local_cpus"),
                   help="--backend ray: CPUs of the local Ray started here (default all)")
    p.add_argument("--threads", type=int, default=_default("threads"))
    p.add_argument("--runs-per-task", type=int, default=_default("runs_per_task"),
                   help="train: this many of a task's seeds in one process as one batch of runs "
                        "(gemkit.train.batch; for GPUs: on a CPU separate compiled runs are "
                        "faster, docs/performance.md)")  # fmt: skip
    p.add_argument("--device", default=_default("device"), help="train: cpu or cuda")
    p.add_argument(
        "--smoke",
        action="store_true",
        help="tiny budget into a scratch folder (never touches docs/)",
    )
    p.set_defaults(**settings)  # read_settings took SuiteConfig's fields only
    args = p.parse_args(argv)
    try:
        if not isinstance(args.task_steps, dict):  # a --config file gives the mapping itself
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
