"""``gemkit quickstart | eval | sweep``: the experiments on trained networks."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Optional

import typer

from gemkit.config import PRESETS, SelectorConfig
from gemkit.registry import REGISTRIES

from ._backend import (
    ADDRESS,
    BACKEND,
    CPUS_PER_TASK,
    GPUS_PER_TASK,
    LOCAL_CPUS,
    BackendName,
    open_backend,
)
from ._common import (
    CHAIN_HELP,
    CRITIC_HELP,
    PROPOSER_FROM_HELP,
    QUICKSTART_COLS,
    QUICKSTART_KEY,
    SUPPORT_FROM_HELP,
    AnchorName,
    PresetName,
    ProposerName,
    ReducerName,
    SupportName,
    ValueName,
    candidates_line,
    choice_name,
    guarded,
    load_target,
    make_console,
    name_option,
    parse_floats,
    parse_ints,
    parse_names,
    plus_minus,
    progress_bar,
    quickstart_rows,
    rich_table,
    set_threads,
)
from .main import app


# ---------------------------------------------------------------------- quickstart
@app.command("quickstart")
@guarded
def quickstart_cmd(
    out: Path = typer.Option(Path("gemkit-quickstart"), "--out", help="Output directory."),
    steps: Optional[int] = typer.Option(
        None, "--steps", min=1, help="Phase I gradient steps (default 4000; --fast: 300)."
    ),
    seed: int = typer.Option(0, "--seed", min=0, help="Seed of data, training and baseline."),
    fast: bool = typer.Option(False, "--fast", help="Seconds-long smoke budget (tiny nets)."),
    episodes: Optional[int] = typer.Option(None, "--episodes", min=1, help="Episodes per seed."),
    seeds: Optional[str] = typer.Option(None, "--seeds", help="Evaluation seeds, e.g. 0,1,2."),
    store: Optional[Path] = typer.Option(
        None, "--store", help="Minari store for the dataset (default: $MINARI_DATASETS_PATH)."
    ),
    threads: int = typer.Option(
        1, "--threads", min=1, help="torch CPU threads (1: fastest for these small networks)."
    ),
    overwrite: bool = typer.Option(
        False, "--overwrite", help="Train and evaluate afresh instead of reusing a previous run."
    ),
) -> None:
    """Fork task end to end: make data, train, GEM vs a same-critic unimodal actor, plot.

    Writes results.csv, results.json and quickstart.png (paths of both actors on the fork task,
    score vs candidate budget N) under --out, plus both checkpoints. Run again in the same
    --out, it reuses what the previous run finished (and says so); --overwrite starts afresh.
    """
    from gemkit.eval.quickstart import QuickstartConfig, run_quickstart
    from gemkit.train import TrainingInterrupted

    # Small networks gain nothing from intra-op threads, and on a busy machine OpenMP threads
    # that wait for each other cost far more than they give (docs/experiments.md).
    set_threads(threads)
    over: dict[str, Any] = {"seed": seed}
    if steps is not None:
        over["steps"] = steps
    if episodes is not None:
        over["episodes"] = episodes
    if seeds is not None:
        over["seeds"] = tuple(parse_ints(seeds, "--seeds"))
    cfg = QuickstartConfig.fast(**over) if fast else QuickstartConfig(**over)
    if store is not None:
        os.environ["MINARI_DATASETS_PATH"] = str(store.resolve())
    console = make_console()
    names = {
        "data": "making the fork dataset",
        "train": "training Phase I",
        "unimodal": "fitting the unimodal actor",
        "eval": "evaluating",
        "paths": "recording paths",
    }
    with progress_bar(console) as bar:
        tasks: dict[str, Any] = {}

        def cb(stage: str, done: int, total: int) -> None:
            if stage not in tasks:
                tasks[stage] = bar.add_task(names.get(stage, stage), total=total)
            bar.update(tasks[stage], completed=done, total=total)

        try:
            res = run_quickstart(out, cfg, overwrite=overwrite, progress=cb)
        except TrainingInterrupted as stop:
            bar.stop()
            console.print(
                f"interrupted: Phase I checkpoint saved at step {stop.step:,} in {stop.directory}; "
                f"rerun the same gemkit quickstart command (--out {out}) to resume it."
            )
            raise typer.Exit(130) from None
    made = "made" if res.dataset["made"] else "reused"
    console.print(
        f"dataset {res.dataset['id']} ({made}, {res.dataset['transitions']} transitions) "
        f"at {res.dataset['path']}"
    )
    if any(not v.startswith(("trained", "computed")) for v in res.status.values()):
        console.print(
            f"{out}: Phase I {res.status['train']}; results {res.status['results']} "
            "(--overwrite recomputes everything)"
        )
    rows = quickstart_rows(res.table)
    console.print(
        rich_table(
            f"fork task, {len(cfg.seeds)} seed(s) x {cfg.episodes} episodes",
            rows,
            QUICKSTART_COLS,
        )
    )
    console.print(QUICKSTART_KEY, soft_wrap=False)
    console.print(candidates_line(res.table))
    # the unimodal actor is read from the Phase I run (trained beside GEM's): no time of its own
    secs = ", ".join(f"{k} {v:.1f}s" for k, v in res.seconds.items() if k != "unimodal")
    console.print(f"time: {secs}")
    for key in ("results_csv", "results_json", "png", "gem_checkpoint", "unimodal_checkpoint"):
        console.print(f"wrote {key}: {res.files[key]}")


# ---------------------------------------------------------------------- eval
_EVAL_COLS = [
    ("label", "config"),
    ("mass_scale", "mass"),
    ("score", "score (mean +- std)"),
    ("success_rate", "success"),
    ("support_z", "SupportZ"),
    ("violation", "Violation"),
    ("collapse_dist", "CollapseDist"),
    ("steps_per_s", "steps/s"),
]


@app.command("eval")
@guarded
def eval_cmd(
    checkpoint: Optional[Path] = typer.Option(None, "--checkpoint", help="Checkpoint directory."),
    critic: Optional[str] = typer.Option(None, "--critic", help=CRITIC_HELP),
    support_from: Optional[Path] = typer.Option(None, "--support-from", help=SUPPORT_FROM_HELP),
    proposer_from: Optional[Path] = typer.Option(
        None, "--proposer-from", help=PROPOSER_FROM_HELP
    ),
    dataset: Optional[str] = typer.Option(
        None, "--dataset", help="Dataset or env id to evaluate in (default: the checkpoint's)."
    ),
    preset: Optional[PresetName] = name_option("preset", "Start from a named preset."),
    proposer: Optional[ProposerName] = name_option("proposer", "Source of the N candidates."),
    anchor: Optional[AnchorName] = name_option("anchor", "Anchor a_0."),
    value: Optional[ValueName] = name_option("value", "Ensemble reduction."),
    support: Optional[SupportName] = name_option("support", "Support normalisation."),
    reducer: Optional[ReducerName] = name_option("reducer", "Reducer."),
    n: str = typer.Option("", "--n", help="Candidate budget(s) N, e.g. 0,64 (one row each)."),
    adaptive: bool = typer.Option(
        False, "--adaptive", help="Also evaluate the adaptive budget (N grows per state)."
    ),
    n0: int = typer.Option(16, "--n0", min=1, help="Adaptive budget: first round's N."),
    n_max: int = typer.Option(1024, "--n-max", min=1, help="Adaptive budget: the largest N."),
    kappa: float = typer.Option(1.0, "--kappa", help="Adaptive budget: threshold (x Q std)."),
    cue: str = typer.Option("lead", "--cue", help="Adaptive budget: lead or gain (gemkit.budget)."),
    k: Optional[int] = typer.Option(None, "--k", min=1, help="k of the topk reducer."),
    beta: Optional[float] = typer.Option(None, help="LCB pessimism beta."),
    lam: Optional[float] = typer.Option(None, help="Support weight lambda_0."),
    lam_t: Optional[float] = typer.Option(None, "--lam-T", help="Support weight lambda_T."),
    horizon: Optional[int] = typer.Option(
        None, help="Horizon H of the lambda schedule (default: the env's time limit)."
    ),
    z_min: Optional[float] = typer.Option(None, help="Violation threshold on SupportZ."),
    chain_steps: Optional[int] = typer.Option(None, "--chain-steps", min=1, help=CHAIN_HELP),
    episodes: int = typer.Option(10, "--episodes", min=1, help="Episodes per seed."),
    seeds: str = typer.Option("0", "--seeds", help="Evaluation seeds, e.g. 0,1,2."),
    mass_scale: str = typer.Option(
        "", "--mass-scale", help="MassScale factors, e.g. 0.5,1,1.5 (MuJoCo envs; one row each)."
    ),
    out: Optional[Path] = typer.Option(None, "--out", help="Write eval.csv/eval.json here."),
    threads: Optional[int] = typer.Option(
        None, "--threads", min=1, help="torch CPU threads (default: torch's)."
    ),
) -> None:
    """Evaluate a selector on fixed networks: score (mean +- std over seeds) and audits."""
    from gemkit.eval.io import write_csv, write_json
    from gemkit.eval.plots import plot_mass_scale
    from gemkit.eval.runs import env_horizon, evaluate_budgets

    set_threads(threads)
    models, target = load_target(checkpoint, dataset, critic, support_from, proposer_from)
    base = SelectorConfig.preset(choice_name(preset) or "gem")
    given: dict[str, Any] = {
        "proposer": choice_name(proposer),
        "anchor": choice_name(anchor),
        "value": choice_name(value),
        "support": choice_name(support),
        "reducer": choice_name(reducer),
        "k": k,
        "beta": beta,
        "lam": lam,
        "lam_T": lam_t,
        "z_min": z_min,
        "chain_steps": chain_steps,
        "horizon": horizon if horizon is not None else env_horizon(target),
    }
    cfg = base.override(**given)
    ns = parse_ints(n, "--n") if n else [cfg.n]
    masses: list[float | None] = (
        list(parse_floats(mass_scale, "--mass-scale")) if mass_scale else [None]
    )
    seed_list = parse_ints(seeds, "--seeds")
    budget = None
    if adaptive:
        from gemkit.budget import AdaptiveBudget

        budget = AdaptiveBudget(n0=n0, n_max=n_max, kappa=kappa, cue=cue)
    console = make_console()
    with progress_bar(console) as bar:
        rows_total = (len(ns) + (budget is not None)) * len(masses)
        task = bar.add_task(f"evaluating on {target}", total=rows_total)
        summaries = evaluate_budgets(
            models,
            cfg,
            target,
            ns,
            masses,
            episodes=episodes,
            seeds=seed_list,
            name=choice_name(preset) or "gem",
            progress=lambda: bar.advance(task),
            adaptive=budget,
        )
    rows = [s.row() for s in summaries]
    shown = [{**r, "score": plus_minus(r["score_mean"], r["score_std"])} for r in rows]
    title = f"{target}: {len(seed_list)} seed(s) x {episodes} episodes, checkpoint {checkpoint}"
    console.print(rich_table(title, shown, _EVAL_COLS))
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        write_csv(out / "eval.csv", rows)
        write_json(
            out / "eval.json", {"checkpoint": str(checkpoint), "target": target, "rows": rows}
        )
        console.print(f"wrote {out / 'eval.csv'} and {out / 'eval.json'}")
        if len(masses) > 1:
            png = plot_mass_scale(rows, out / "mass_scale.png")
            if png is not None:
                console.print(f"wrote {png}")


# ---------------------------------------------------------------------- sweep
@app.command("sweep")
@guarded
def sweep_cmd(
    checkpoint: Optional[Path] = typer.Option(None, "--checkpoint", help="Checkpoint directory."),
    critic: Optional[str] = typer.Option(None, "--critic", help=CRITIC_HELP),
    support_from: Optional[Path] = typer.Option(None, "--support-from", help=SUPPORT_FROM_HELP),
    proposer_from: Optional[Path] = typer.Option(
        None, "--proposer-from", help=PROPOSER_FROM_HELP
    ),
    out: Path = typer.Option(..., "--out", help="Output directory (reruns resume from it)."),
    dataset: Optional[str] = typer.Option(
        None, "--dataset", help="Dataset or env id (default: the checkpoint's)."
    ),
    n: str = typer.Option("0,1,64,1024", "--n", help="Candidate budgets N."),
    beta: str = typer.Option("1.0", "--beta", help="LCB pessimism values."),
    lam: str = typer.Option("0.5", "--lam", help="lambda_0 values."),
    lam_t: str = typer.Option(
        "const", "--lam-T", help="lambda_T values ('const' = constant lambda_0)."
    ),
    k: str = typer.Option("1", "--k", help="top-k sizes (k > 1 uses the topk reducer)."),
    support: str = typer.Option("zscore", "--support", help="Normalisations: zscore,raw."),
    value: str = typer.Option("lcb", "--value", help="Value terms, e.g. lcb,lcb_z,mean,min."),
    preset: str = typer.Option("gem", "--preset", help="Presets, e.g. gem,no_pw,no_lcb."),
    horizon: Optional[int] = typer.Option(None, help="Horizon H (default: env time limit)."),
    episodes: int = typer.Option(10, "--episodes", min=1, help="Episodes per cell and seed."),
    seeds: str = typer.Option("0", "--seeds", help="Evaluation seeds, e.g. 0,1,2."),
    threads: Optional[int] = typer.Option(
        None, "--threads", min=1, help="torch CPU threads (default: torch's)."
    ),
    backend: BackendName = BACKEND,
    address: Optional[str] = ADDRESS,
    cpus_per_task: float = CPUS_PER_TASK,
    gpus_per_task: float = GPUS_PER_TASK,
    local_cpus: Optional[int] = LOCAL_CPUS,
) -> None:
    """Grid over inference knobs on fixed networks; resumable; writes CSVs and PNGs.

    --backend ray runs each (cell, seed) as a Ray task, on a local Ray or an existing cluster
    (--address auto); the datasets must lie on a path every node sees.
    """
    from gemkit.backends import FanOutReport
    from gemkit.eval.runs import env_horizon
    from gemkit.eval.sweep import STORE, SweepGrid, run_sweep, write_sweep_report

    set_threads(threads)
    models, target = load_target(checkpoint, dataset, critic, support_from, proposer_from)
    grid = SweepGrid(
        presets=tuple(parse_names(preset, "preset", sorted(PRESETS))),
        n=tuple(parse_ints(n, "--n")),
        beta=tuple(float(x) for x in parse_floats(beta, "--beta") if x is not None),
        lam=tuple(float(x) for x in parse_floats(lam, "--lam") if x is not None),
        lam_T=tuple(parse_floats(lam_t, "--lam-T", allow_none=True)),
        k=tuple(parse_ints(k, "--k", minimum=1)),
        support=tuple(parse_names(support, "support", REGISTRIES["support"].names())),
        value=tuple(parse_names(value, "value", REGISTRIES["value"].names())),
        horizon=horizon,
    )
    h = horizon if horizon is not None else env_horizon(target)
    seed_list = parse_ints(seeds, "--seeds")
    console = make_console()
    skipped = 0
    reports: list[FanOutReport] = []
    with (
        open_backend(backend, address, cpus_per_task, gpus_per_task, local_cpus) as runner,
        progress_bar(console) as bar,
    ):
        task = bar.add_task(f"sweep on {target}", total=len(grid.cells(h)) * len(seed_list))

        def cb(done: int, total: int, cell: Any, seed: int, skip: bool) -> None:
            nonlocal skipped
            skipped += int(skip)
            bar.update(task, completed=done)

        rows = run_sweep(models, target, grid, out, episodes=episodes, seeds=seed_list,
                         progress=cb, backend=runner, timing=reports.append)  # fmt: skip
    analysis, written = write_sweep_report(rows, grid, h, out)
    shown = [
        {
            **r,
            "score": plus_minus(r["score_mean"], r["score_std"]),
            "lam_T": "const" if r["lam_T"] is None else r["lam_T"],
        }
        for r in rows
    ]
    cols = [
        ("preset", "preset"),
        ("n", "N"),
        ("beta", "beta"),
        ("lam", "lam"),
        ("lam_T", "lam_T"),
        ("k", "k"),
        ("support", "support"),
        ("value", "value"),
        ("score", "score"),
        ("support_z", "SupportZ"),
        ("violation", "Violation"),
        ("collapse_dist", "CollapseDist"),
        ("steps_per_s", "steps/s"),
    ]
    console.print(
        rich_table(f"sweep on {target} ({len(seed_list)} seed(s) x {episodes} ep)", shown, cols)
    )
    abl = analysis.tables["ablations"]
    if abl:
        console.print(
            rich_table(
                f"ablations at N={analysis.big.n} (delta vs GEM)",
                abl,
                [
                    ("preset", "preset"),
                    ("score_mean", "score"),
                    ("delta_score", "delta score"),
                    ("violation", "Violation"),
                    ("delta_violation", "delta Violation"),
                ],
            )
        )
    runs = len(grid.cells(h)) * len(seed_list)
    console.print(f"{runs - skipped} evaluation(s) run, {skipped} resumed")
    console.print(f"time: {reports[0].summary()}")
    for w in [out / STORE, out / "sweep.csv", *written]:
        console.print(f"wrote {w}")
