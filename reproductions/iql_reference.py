"""An outside reference for the maze results: d3rlpy's IQL on the same data and budget.

Needs d3rlpy (``pip install --no-deps d3rlpy==2.8.1`` plus its runtime deps, see
``docs/wrap-a-critic.md``). The work is :mod:`gemkit.experiments.outside`; stages:

``train``
    d3rlpy's ``IQLConfig`` with its defaults and a standard observation scaler on the gemkit
    dataset, a ``.d3`` snapshot every ``--snapshot-every`` steps, resumable.
``test``
    One snapshot (``--steps``) on the suites' test evaluation seeds: IQL's own deterministic
    action, and GEM's rule over IQL's critic at each ``--n`` (candidates from IQL's policy, the
    support of the behavior GMM of the gemkit run with the same maze and seed in
    ``--gem-runs``, or of ``--support``; ``--n`` with no values: IQL's own action only). Cells go
    to ``--out``/``cells-iql.jsonl``.
``report``
    The curves and means of ``--seeds`` (default ``--seed``) as JSON (``--report``) and PNG.
``restore``
    Writes a committed report's cells back into ``--out`` (marked ``restored_from``), so a new
    seed is reported beside runs whose snapshots are gone.

Usage::

    python reproductions/iql_reference.py train --task maze2d --maze medium --seed 0 --steps 300000
    python reproductions/iql_reference.py test --task maze2d --maze medium --steps 20000 --n
    python reproductions/iql_reference.py report --task maze2d --maze medium --seeds 0 1
    python reproductions/iql_reference.py restore --maze umaze --seed 0 --report R.json --out O
    python reproductions/iql_reference.py report --maze umaze --seeds 0 1 --up-to 200000
    python reproductions/iql_reference.py train --task locomotion --name hopper-medium-replay \
        --seed 0 --steps 100000 --runs runs/iql-loco
    python reproductions/iql_reference.py test --task locomotion --name hopper-medium-replay \
        --steps 100000 --n 64 --value lcb_z --lam 0.3 --gem-runs runs/loco --episodes 10 \
        --runs runs/iql-loco --out runs/loco-cells

On locomotion (``--task locomotion``, ``--name`` a locomotion task) IQL's rewards are scaled as
in d3rlpy's own IQL reproduction (x 1000 / the data's episode-return range) and the report goes
to ``docs/results/locomotion/iql_<task>.json``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from gemkit.eval.io import write_json
from gemkit.experiments.figures import plot_iql_curves
from gemkit.experiments.outside import (
    FAMILIES,
    IQLRun,
    iql_report,
    iql_task,
    restore_iql_cells,
    score_iql,
    train_iql,
)
from gemkit.experiments.tasks import LOCOMOTION_NAMES, MAZE_NAMES


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("stage", choices=["train", "test", "report", "restore"])
    p.add_argument("--maze", "--name", dest="maze", required=True, metavar="NAME",
                   choices=[*MAZE_NAMES, *LOCOMOTION_NAMES],
                   help="the maze (pointmaze, maze2d) or the locomotion task")
    p.add_argument("--task", default="pointmaze", choices=list(FAMILIES),
                   help="pointmaze: gemkit/pointmaze-MAZE-v1 (Minari's recipe); maze2d: "
                        "gemkit/maze2d-MAZE-v1 (D4RL's maze2d-v1 recipe, the paper's task); "
                        "locomotion: gemkit/NAME-v0 (D4RL's locomotion recipe)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--seeds", type=int, nargs="+", default=None,
                   help="report: the training seeds to report together (default: --seed)")
    p.add_argument("--steps", type=int, default=300_000)
    p.add_argument("--snapshot-every", type=int, default=20_000)
    p.add_argument("--weight-temp", type=float, default=3.0,
                   help="train: IQL's inverse temperature (0: the actor is behaviour cloning)")
    p.add_argument("--runs", default="runs/iql")
    p.add_argument("--gem-runs", default="runs/mazes", help="gemkit runs (behavior GMM)")
    p.add_argument("--support", default="",
                   help="a model directory with a behavior GMM (e.g. from `gemkit fit-support`) "
                        "instead of the gemkit run's")  # fmt: skip
    p.add_argument("--out", default="runs/mazes-cells")
    p.add_argument("--n", type=int, nargs="*", default=[64])
    p.add_argument("--beta", type=float, default=1.0)
    p.add_argument("--lam", type=float, default=0.01)
    p.add_argument("--lam-T", type=float, default=None,
                   help="GEM over IQL: lambda at the horizon (cosine schedule from --lam; "
                        "default: --lam throughout)")  # fmt: skip
    p.add_argument("--value", default="lcb", choices=["lcb", "lcb_z", "mean", "min"])
    p.add_argument("--episodes", type=int, default=30)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--report", default="",
                   help="report: the JSON to write (default docs/results/gem_over_iql_MAZE.json "
                        "or docs/results/maze2d/iql_MAZE.json); restore: the JSON to read")
    p.add_argument("--up-to", type=int, default=None,
                   help="report: only the snapshots at or below this step (compare seeds over "
                        "the same steps)")  # fmt: skip
    args = p.parse_args(argv)
    if (args.task == "locomotion") != (args.maze in LOCOMOTION_NAMES):
        p.error(f"--name {args.maze} is not a {args.task} task: --task locomotion takes "
                f"{', '.join(LOCOMOTION_NAMES)}; the mazes take {', '.join(MAZE_NAMES)}")
    if args.steps % args.snapshot_every:
        p.error("--steps must be a multiple of --snapshot-every")
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    name = iql_task(args.task, args.maze)
    run = IQLRun(name, args.seed, Path(args.runs))
    if args.stage in ("train", "test"):
        import torch

        torch.set_num_threads(args.threads)
    if args.stage == "train":
        train_iql(run, args.steps, args.snapshot_every, args.weight_temp)
    elif args.stage == "test":
        score_iql(run, args.steps, Path(args.out), n=args.n,
                  support=Path(args.support) if args.support else None,
                  gem_runs=Path(args.gem_runs), beta=args.beta, lam=args.lam, value=args.value,
                  episodes=args.episodes, lam_T=args.lam_T)  # fmt: skip
    elif args.stage == "restore":
        restore_iql_cells(Path(args.report), Path(args.out), args.task, args.maze, args.seed)
    else:
        seeds = args.seeds or [args.seed]
        command = "python reproductions/iql_reference.py " + " ".join(sys.argv[1:])
        body, per_seed = iql_report(Path(args.out), args.maze, seeds, task=args.task,
                                    up_to=args.up_to, command=command)  # fmt: skip
        default = (f"docs/results/gem_over_iql_{args.maze}.json" if args.task == "pointmaze"
                   else f"docs/results/{args.task}/iql_{args.maze}.json")  # fmt: skip
        report = Path(args.report or default)
        write_json(report, body)
        ylabel = ("normalised score (test seeds; D4RL's scale)" if args.task != "pointmaze"
                  else f"normalised score ({args.maze}, test seeds)")  # fmt: skip
        plot_iql_curves(per_seed, name, ylabel, report.with_suffix(".png"))
        print(f"wrote {report} and {report.with_suffix('.png')}")


if __name__ == "__main__":
    main()
