"""An outside reference for the maze results: d3rlpy's IQL on the same data and budget.

Needs d3rlpy (``pip install --no-deps d3rlpy==2.8.1`` plus its runtime deps, see
``docs/wrap-a-critic.md``). Stages:

``train``
    d3rlpy's ``IQLConfig`` with its defaults (expectile 0.7, temperature 3, 256x256 networks,
    two critics, batch 256, lr 3e-4: the same IQL hyper-parameters as gemkit's Phase I) and a
    standard observation scaler, on the gemkit dataset converted with
    :func:`gemkit.data.bridges.to_d3rlpy` (every transition kept). A ``.d3`` file every
    ``--snapshot-every`` steps; an interrupted run resumes from the latest one (weights and
    optimizer states; the sampling RNG restarts).
``restore``
    Writes the cells of a committed ``report`` JSON (``--report``; its single seed is
    ``--seed``) back into ``--out``'s cell cache, marked ``restored_from``, so that a new seed
    can be reported beside runs whose snapshots are gone (machines are not kept between
    sessions).
``test``
    On the test evaluation seeds of ``reproductions/mazes.py``: IQL's own deterministic policy,
    and GEM's selection rule over IQL's critic (``gemkit.adapters.from_d3rlpy``): candidates
    from IQL's policy (its action as anchor), scored by the critic's LCB plus the z-scored
    support of the behavior GMM of the gemkit run with the same maze and seed, or of the model
    directory ``--support`` names (``gemkit fit-support``'s output: the behavior GMM fitted alone;
    ``--n`` with no values: IQL's own action only, no behavior GMM needed). Cells go to the same
    ``cells-*.jsonl`` cache format as ``mazes.py``.

Usage::

    python reproductions/iql_reference.py train --maze medium --seed 0 --steps 300000
    python reproductions/iql_reference.py test --maze medium --seed 0 --steps 300000
    python reproductions/iql_reference.py report --maze medium --seed 0
    python reproductions/iql_reference.py report --maze medium --seeds 1 2 --report R.json
    python reproductions/iql_reference.py restore --maze umaze --seed 0 --report R.json --out O
    python reproductions/iql_reference.py report --maze umaze --seeds 0 1 --up-to 200000
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

from gemkit.experiments import TEST_SEEDS, dataset_id, read_cell_file
from gemkit.experiments.runs import iql_snapshot


def _log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def task_maze(args: argparse.Namespace) -> str:
    """``umaze`` (the Minari-recipe pointmaze) or ``maze2d-umaze`` (D4RL's maze2d recipe)."""
    return args.maze if args.task == "pointmaze" else f"maze2d-{args.maze}"


def run_dir(args: argparse.Namespace) -> Path:
    return Path(args.runs) / f"{task_maze(args)}-s{args.seed}"


def stage_train(args: argparse.Namespace) -> None:
    import d3rlpy
    import torch

    from gemkit.adapters import load_d3rlpy
    from gemkit.data import load
    from gemkit.data.bridges import to_d3rlpy

    torch.set_num_threads(args.threads)
    d = run_dir(args)
    (d / "snapshots").mkdir(parents=True, exist_ok=True)
    state_path = d / "state.json"
    step = json.loads(state_path.read_text())["step"] if state_path.is_file() else 0
    if step >= args.steps:
        _log(f"{d} is at step {step} >= {args.steps}: nothing to do")
        return
    d3rlpy.seed(args.seed + 1000 * step)
    data = to_d3rlpy(load(dataset_id(task_maze(args))))
    if step:
        algo = load_d3rlpy(d / "latest.d3")
        _log(f"resuming {d} at step {step}")
    else:
        algo = d3rlpy.algos.IQLConfig(
            observation_scaler=d3rlpy.preprocessing.StandardObservationScaler(),
            weight_temp=args.weight_temp,
        ).create(device="cpu:0")
        algo.build_with_dataset(data)
    t0, start = time.perf_counter(), step
    fitter = algo.fitter(
        data,
        n_steps=args.steps - step,
        n_steps_per_epoch=args.snapshot_every,
        show_progress=False,
        save_interval=10**9,
        logger_adapter=d3rlpy.logging.NoopAdapterFactory(),
    )
    for _epoch, metrics in fitter:
        step += args.snapshot_every
        tmp = d / ".latest.d3.tmp"
        algo.save(str(tmp))
        os.replace(tmp, d / "latest.d3")
        iql_snapshot(d, step).write_bytes((d / "latest.d3").read_bytes())
        state_path.write_text(json.dumps({"step": step, "metrics": metrics}))
        rate = (step - start) / max(time.perf_counter() - t0, 1e-9)
        _log(f"{args.maze} s{args.seed} step {step}: {metrics} ({rate:.0f} steps/s so far)")


def stage_test(args: argparse.Namespace) -> None:
    import torch

    from gemkit import compose
    from gemkit.adapters import from_d3rlpy, load_d3rlpy, policy_from_d3rlpy
    from gemkit.eval.runs import evaluate_config
    from gemkit.models import load_models
    from gemkit.train import models_at

    torch.set_num_threads(args.threads)
    algo = load_d3rlpy(iql_snapshot(run_dir(args), args.steps))
    behavior: Any = None
    support = ""
    if args.n:  # GEM over IQL needs a behavior GMM; IQL's own action does not
        if args.support:  # e.g. `gemkit fit-support`'s model directory
            support_dir = Path(args.support)
        else:  # the behavior GMM of the gemkit run with the same maze and seed, at this step
            gem_run = Path(args.gem_runs) / f"{task_maze(args)}-s{args.seed}"
            support_dir = models_at(gem_run, args.steps) or gem_run
        behavior = load_models(support_dir)
        behavior.critic = from_d3rlpy(algo)
        support = str(support_dir)
    anchor, source = policy_from_d3rlpy(algo)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    sink = out / "cells-iql.jsonl"
    done = set(read_cell_file(sink))
    cells: list[tuple[str, Any]] = [("iql", None)]
    for n in args.n:
        cells.append((f"gem-over-iql n={n} {args.value} lam={args.lam:g}", n))
    def policy(states: torch.Tensor) -> torch.Tensor:
        """IQL's own deterministic action."""
        return torch.as_tensor(algo.predict(states.cpu().numpy()))

    for label, n in cells:
        key = f"{task_maze(args)}-s{args.seed}-{args.steps}-{label}"
        if key in done:
            continue
        t0 = time.perf_counter()
        actor: Any = policy
        if n is not None:  # GEM's rule over IQL's critic, candidates from IQL's policy
            actor = compose(preset="gem", models=behavior, anchor=anchor, proposer=source, n=n,
                            beta=args.beta, lam=args.lam, value=args.value)  # fmt: skip
        s = evaluate_config(None, None, dataset_id(task_maze(args)), episodes=args.episodes,
                            seeds=TEST_SEEDS, num_envs=min(args.episodes, 30),
                            policy=actor)  # fmt: skip
        row = {
            "stage": "test",
            "task": args.task,
            "maze": args.maze,
            "train_seed": args.seed,
            "step": args.steps,
            "actor": "iql (d3rlpy)",
            "series": label,
            "n": n,
            "key": key,
            "beta": args.beta,
            "lam": args.lam,
            "value": args.value,
            "support": support if n is not None else "",
            "eval_seeds": list(TEST_SEEDS),
            "episodes": args.episodes,
            **s.row(),
            "eval_s": time.perf_counter() - t0,
        }
        with sink.open("a") as f:
            f.write(json.dumps(row) + "\n")
        _log(f"{key} -> {s.score_mean:.1f} ({time.perf_counter() - t0:.0f}s)")


#: the fields of a cell that a report keeps (and that ``restore`` reads back)
CURVE_FIELDS = ("step", "n", "lam", "beta", "value", "support", "episodes", "score_mean",
                "score_ep_std", "violation", "support_z")  # fmt: skip


def gem_over_iql_curves(rows: list[dict[str, Any]], maze: str, seed: int,
                        up_to: int | None = None,
                        task: str = "pointmaze") -> dict[str, list[dict[str, Any]]]:  # fmt: skip
    """The ``test`` cells of one run as curves: per series (``iql``, ``gem-over-iql n=...``),
    its cells sorted by step (the last cell of a key wins, as a rerun's would); only the
    snapshots at or below ``up_to`` when given; cells of ``task`` only (older cells, written
    before maze2d existed, carry no task and are pointmaze's)."""
    latest = {r["key"]: r for r in rows if r["maze"] == maze and r["train_seed"] == seed
              and r.get("task", "pointmaze") == task
              and (up_to is None or r["step"] <= up_to)}  # fmt: skip
    curves: dict[str, list[dict[str, Any]]] = {}
    for r in sorted(latest.values(), key=lambda r: (r["n"] is not None, r["n"] or 0, r["step"])):
        curves.setdefault(r["series"], []).append(r)
    return curves


def curve_means(curves: dict[str, list[dict[str, Any]]]) -> dict[str, dict[str, float]]:
    """Per series: the mean score over all its snapshots and over the later half of them
    (steps above half of the last step), so a summary picks no snapshot by hand."""
    out = {}
    for series, cells in curves.items():
        late = [c["score_mean"] for c in cells if c["step"] > cells[-1]["step"] / 2]
        out[series] = {"all": sum(c["score_mean"] for c in cells) / len(cells),
                       "later_half": sum(late) / len(late), "snapshots": len(cells)}  # fmt: skip
    return out


def seed_means(per_seed: dict[int, dict[str, dict[str, float]]]) -> dict[str, dict[str, Any]]:
    """Per series present in every seed: the mean and std over seeds of each seed's
    :func:`curve_means` (``all`` and ``later_half``), with the seeds it covers."""
    seeds = sorted(per_seed)
    common = [s for s in per_seed[seeds[0]] if all(s in per_seed[k] for k in seeds)]
    out: dict[str, dict[str, Any]] = {}
    for series in common:
        row: dict[str, Any] = {"seeds": seeds}
        for part in ("all", "later_half"):
            xs = [per_seed[k][series][part] for k in seeds]
            mean = sum(xs) / len(xs)
            row[part] = mean
            row[f"{part}_std"] = (sum((x - mean) ** 2 for x in xs) / len(xs)) ** 0.5
        out[series] = row
    return out


def stage_report(args: argparse.Namespace) -> None:
    """The ``test`` cells of ``--maze`` and each seed of ``--seeds`` (default: ``--seed``) in
    ``--out``: a JSON of the curves and per-series means (per seed, and over the seeds when
    there are several) and a PNG with one panel per seed (score vs IQL's gradient steps, IQL's
    own action beside GEM's rule at each N)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from gemkit.eval.io import write_json

    sink = Path(args.out) / "cells-iql.jsonl"
    if not sink.is_file():
        raise SystemExit(f"no cells at {sink}: run the test stage with the same --out first")
    rows = list(read_cell_file(sink).values())
    seeds = args.seeds or [args.seed]
    per_seed = {seed: gem_over_iql_curves(rows, args.maze, seed, args.up_to, args.task)
                for seed in seeds}  # fmt: skip
    for seed, curves in per_seed.items():
        if not curves:
            raise SystemExit(f"{sink} has no cells of {args.maze} seed {seed}")
    default = (f"docs/results/gem_over_iql_{args.maze}.json" if args.task == "pointmaze"
               else f"docs/results/maze2d/iql_{args.maze}.json")  # fmt: skip
    report = Path(args.report or default)

    def curve_table(curves: dict[str, list[dict[str, Any]]]) -> dict[str, list[dict[str, Any]]]:
        return {k: [{f: r.get(f) for f in CURVE_FIELDS} for r in v] for k, v in curves.items()}

    scale = "D4RL's maze2d-v1 references" if args.task == "maze2d" else "gemkit's references"
    what = (f"d3rlpy IQL on {task_maze(args)} (scores on {scale}), seed(s) "
            f"{', '.join(map(str, seeds))}: its own action "
            "and GEM's rule over its critic and policy, per snapshot, on the test seeds")
    body: dict[str, Any] = {"what": what,
                            "command": "python reproductions/iql_reference.py "
                                       + " ".join(sys.argv[1:])}  # fmt: skip
    if len(seeds) == 1:
        body |= {"mean_score": curve_means(per_seed[seeds[0]]),
                 "curves": curve_table(per_seed[seeds[0]])}  # fmt: skip
    else:
        means = {seed: curve_means(c) for seed, c in per_seed.items()}
        body |= {"mean_over_seeds": seed_means(means),
                 "seeds": {str(seed): {"mean_score": means[seed], "curves": curve_table(c)}
                           for seed, c in per_seed.items()}}  # fmt: skip
    write_json(report, body)
    fig, axes = plt.subplots(1, len(seeds), figsize=(4.6 * len(seeds) + 2.4, 4.2), sharey=True,
                             squeeze=False)  # fmt: skip
    gem = [c[0] for curves in per_seed.values() for c in curves.values() if c[0]["n"] is not None]
    colour = {n: f"C{i}" for i, n in enumerate(sorted({c["n"] for c in gem}))}
    line = dict(zip(sorted({(c["value"], c["lam"]) for c in gem}), ("-", ":", "-.", "--"),
                    strict=False))  # fmt: skip
    for ax, (seed, curves) in zip(axes[0], per_seed.items(), strict=True):
        for cells in curves.values():
            first = cells[0]
            own = first["n"] is None
            label = "IQL, its own action" if own else (
                f"GEM over IQL, N = {first['n']}, {first['value']}, lambda = {first['lam']:g}")
            style: dict[str, Any] = dict(color="k", ls="--", marker="s") if own else dict(
                marker="o", color=colour[first["n"]],
                ls=line.get((first["value"], first["lam"]), "-"))  # fmt: skip
            ax.plot([c["step"] for c in cells], [c["score_mean"] for c in cells], ms=3,
                    label=label, **style)  # fmt: skip
        ax.set_title(f"{task_maze(args)}, IQL seed {seed}", fontsize=9)
        ax.set_xlabel("IQL gradient steps")
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel("normalised score (test seeds; D4RL's scale)" if args.task == "maze2d"
                          else f"normalised score ({args.maze}, test seeds)")  # fmt: skip
    handles: dict[str, Any] = {}
    for ax in axes[0]:
        for h, lab in zip(*ax.get_legend_handles_labels(), strict=True):
            handles.setdefault(lab, h)
    axes[0][-1].legend(handles.values(), handles.keys(), fontsize=7, loc="upper left",
                       bbox_to_anchor=(1.01, 1.0))  # fmt: skip
    fig.tight_layout()
    fig.savefig(report.with_suffix(".png"), dpi=120)
    plt.close(fig)
    _log(f"wrote {report} and {report.with_suffix('.png')}")


def stage_restore(args: argparse.Namespace) -> None:
    """Append the cells of the report ``--report`` to ``--out``'s cache (see the module doc)."""
    path = Path(args.report)
    if not path.is_file():
        raise SystemExit(f"--report {path}: no such file")
    body = json.loads(path.read_text())
    if "seeds" in body:
        per_seed = {int(k): v["curves"] for k, v in body["seeds"].items()}
    elif "curves" in body:
        per_seed = {args.seed: body["curves"]}
    else:
        raise SystemExit(f"{path} is not a report of this script (no curves)")
    sink = Path(args.out) / "cells-iql.jsonl"
    sink.parent.mkdir(parents=True, exist_ok=True)
    done = read_cell_file(sink)
    added = 0
    with sink.open("a") as f:
        for seed, curves in per_seed.items():
            for series, cells in curves.items():
                for c in cells:
                    key = f"{task_maze(args)}-s{seed}-{c['step']}-{series}"
                    if key in done:
                        continue
                    row = {"stage": "test", "task": args.task, "maze": args.maze,
                           "train_seed": seed,
                           "actor": "iql (d3rlpy)", "series": series, "key": key,
                           **{k: c.get(k) for k in CURVE_FIELDS},
                           "eval_seeds": list(TEST_SEEDS), "restored_from": str(path)}  # fmt: skip
                    f.write(json.dumps(row) + "\n")
                    added += 1
    _log(f"restored {added} cell(s) of seed(s) {sorted(per_seed)} from {path} into {sink}")


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("stage", choices=["train", "test", "report", "restore"])
    p.add_argument("--maze", required=True, choices=["umaze", "medium", "large"])
    p.add_argument("--task", default="pointmaze", choices=["pointmaze", "maze2d"],
                   help="pointmaze: gemkit/pointmaze-MAZE-v1 (Minari's recipe); maze2d: "
                        "gemkit/maze2d-MAZE-v1 (D4RL's maze2d-v1 recipe, the paper's task)")
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
    p.add_argument("--value", default="lcb", choices=["lcb", "lcb_z", "mean", "min"])
    p.add_argument("--episodes", type=int, default=30)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--report", default="",
                   help="report: the JSON to write (default docs/results/gem_over_iql_MAZE.json);"
                        " restore: the JSON to read")  # fmt: skip
    p.add_argument("--up-to", type=int, default=None,
                   help="report: only the snapshots at or below this step (compare seeds over "
                        "the same steps)")  # fmt: skip
    args = p.parse_args(argv)
    if args.steps % args.snapshot_every:
        p.error("--steps must be a multiple of --snapshot-every")
    stages = {"train": stage_train, "test": stage_test, "report": stage_report,
              "restore": stage_restore}  # fmt: skip
    stages[args.stage](args)


if __name__ == "__main__":
    main()
