"""``gemkit quickstart | eval | sweep | diagnose nll-gap | profile``: the experiments."""

from __future__ import annotations

import json
import math
import os
from collections.abc import Sequence
from enum import Enum
from pathlib import Path
from typing import Any, Optional

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from gemkit.config import PRESETS, SelectorConfig
from gemkit.errors import GemkitError
from gemkit.registry import REGISTRIES

from ._common import (
    AnchorName,
    PresetName,
    ProposerName,
    ReducerName,
    SupportName,
    ValueName,
    choice_name,
    guarded,
    make_console,
    set_threads,
)
from .main import app

diagnose_app = typer.Typer(help="Diagnostics of datasets and models.", no_args_is_help=True)
app.add_typer(diagnose_app, name="diagnose")


class Device(str, Enum):
    """Where to profile."""

    cpu = "cpu"
    cuda = "cuda"
    all = "all"


# ---------------------------------------------------------------------- helpers
def _split(text: str, what: str) -> list[str]:
    items = [x.strip() for x in text.split(",") if x.strip()]
    if not items:
        raise GemkitError(f"{what} must be a comma-separated list, got {text!r}.")
    return items


def _ints(text: str, what: str, minimum: int = 0) -> list[int]:
    try:
        vals = [int(x) for x in _split(text, what)]
    except ValueError:
        raise GemkitError(f"{what} must be comma-separated integers, got {text!r}.") from None
    if any(v < minimum for v in vals):
        raise GemkitError(f"{what} values must be >= {minimum}, got {text!r}.")
    return vals


def _floats(text: str, what: str, allow_none: bool = False) -> list[float | None]:
    out: list[float | None] = []
    for x in _split(text, what):
        if allow_none and x.lower() in ("none", "const"):
            out.append(None)
            continue
        try:
            v = float(x)
        except ValueError:
            hint = " (or 'const')" if allow_none else ""
            raise GemkitError(
                f"{what} must be comma-separated numbers{hint}, got {text!r}."
            ) from None
        if not math.isfinite(v):
            raise GemkitError(f"{what} values must be finite, got {text!r}.")
        out.append(v)
    return out


def _names(text: str, what: str, valid: Sequence[str]) -> list[str]:
    from gemkit.errors import UnknownComponentError, unknown_name_message

    vals = _split(text, what)
    for v in vals:
        if v not in valid:
            raise UnknownComponentError(unknown_name_message(what, v, valid))
    return vals


def _fmt(v: Any, digits: int = 3) -> str:
    if v is None or v == "":
        return "-"
    if isinstance(v, float):
        if not math.isfinite(v):
            return "-"
        return f"{v:.0f}" if abs(v) >= 100 else f"{v:.{digits}f}"
    return str(v)


def _table(title: str, rows: Sequence[dict[str, Any]], cols: Sequence[tuple[str, str]]) -> Table:
    table = Table(title=title)
    for _, head in cols:
        table.add_column(head)
    for r in rows:
        table.add_row(*[_fmt(r.get(key)) for key, _ in cols])
    return table


def _pm(mean: Any, std: Any) -> str:
    if not isinstance(mean, float) or not math.isfinite(mean):
        return "-"
    return (
        f"{mean:.1f} +- {std:.1f}"
        if isinstance(std, float) and math.isfinite(std)
        else f"{mean:.1f}"
    )


def _progress(console: Console) -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=True,
        disable=not console.is_terminal,  # piped: no bar, not even its blank line
    )


def _write_json(path: Path, payload: Any) -> None:
    from gemkit.eval.quickstart import finite_json

    path.write_text(json.dumps(finite_json(payload), indent=2, default=str) + "\n")


def _target(checkpoint: Path, dataset: str | None) -> tuple[Any, str]:
    from gemkit.models import load_models

    models = load_models(checkpoint)
    target = dataset or models.meta.get("dataset_id")
    if not target:
        raise GemkitError(
            f"{checkpoint} records no dataset id; pass --dataset (a dataset or env id)."
        )
    return models, str(target)


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
        over["seeds"] = tuple(_ints(seeds, "--seeds"))
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
    with _progress(console) as bar:
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
    rows = [{**r, "score": _pm(r["score_mean"], r["score_std"])} for r in res.table]
    console.print(
        _table(
            f"fork task, {len(cfg.seeds)} seed(s) x {cfg.episodes} episodes",
            rows,
            [
                ("label", "actor"),
                ("score", "score"),
                ("success_rate", "success"),
                ("support_z", "SupportZ"),
                ("violation", "Violation"),
                ("collapse_dist", "CollapseDist"),
                ("steps_per_s", "steps/s"),
            ],
        )
    )
    secs = ", ".join(f"{k} {v:.1f}s" for k, v in res.seconds.items())
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
    checkpoint: Path = typer.Option(..., "--checkpoint", help="Checkpoint directory."),
    dataset: Optional[str] = typer.Option(
        None, "--dataset", help="Dataset or env id to evaluate in (default: the checkpoint's)."
    ),
    preset: Optional[PresetName] = typer.Option(None, help="Start from a named preset."),
    proposer: Optional[ProposerName] = typer.Option(None, help="Source of the N candidates."),
    anchor: Optional[AnchorName] = typer.Option(None, help="Anchor a_0."),
    value: Optional[ValueName] = typer.Option(None, help="Ensemble reduction."),
    support: Optional[SupportName] = typer.Option(None, help="Support normalisation."),
    reducer: Optional[ReducerName] = typer.Option(None, help="Reducer."),
    n: str = typer.Option("", "--n", help="Candidate budget(s) N, e.g. 0,64 (one row each)."),
    k: Optional[int] = typer.Option(None, "--k", min=1, help="k of the topk reducer."),
    beta: Optional[float] = typer.Option(None, help="LCB pessimism beta."),
    lam: Optional[float] = typer.Option(None, help="Support weight lambda_0."),
    lam_t: Optional[float] = typer.Option(None, "--lam-T", help="Support weight lambda_T."),
    horizon: Optional[int] = typer.Option(
        None, help="Horizon H of the lambda schedule (default: the env's time limit)."
    ),
    z_min: Optional[float] = typer.Option(None, help="Violation threshold on SupportZ."),
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
    from gemkit.eval.plots import plot_mass_scale
    from gemkit.eval.runs import env_horizon, evaluate_config
    from gemkit.eval.sweep import write_csv

    set_threads(threads)
    models, target = _target(checkpoint, dataset)
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
        "horizon": horizon if horizon is not None else env_horizon(target),
    }
    cfg = base.evolve(**{key: v for key, v in given.items() if v is not None})
    ns = _ints(n, "--n") if n else [cfg.n]
    masses: list[float | None] = list(_floats(mass_scale, "--mass-scale")) if mass_scale else [None]
    seed_list = _ints(seeds, "--seeds")
    actor_kind = models.meta.get("actor_kind")
    kind = f" ({actor_kind} actor)" if actor_kind and actor_kind != "gmm" else ""
    console = make_console()
    rows: list[dict[str, Any]] = []
    with _progress(console) as bar:
        task = bar.add_task(f"evaluating on {target}", total=len(ns) * len(masses))
        for nv in ns:
            c = cfg.evolve(n=nv)
            for m in masses:
                s = evaluate_config(
                    models,
                    c,
                    target,
                    episodes=episodes,
                    seeds=seed_list,
                    mass_scale=m,
                    label=f"{choice_name(preset) or 'gem'} N={nv}{kind}",
                )
                rows.append(s.row())
                bar.advance(task)
    shown = [{**r, "score": _pm(r["score_mean"], r["score_std"])} for r in rows]
    title = f"{target}: {len(seed_list)} seed(s) x {episodes} episodes, checkpoint {checkpoint}"
    console.print(_table(title, shown, _EVAL_COLS))
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        write_csv(out / "eval.csv", rows)
        _write_json(
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
    checkpoint: Path = typer.Option(..., "--checkpoint", help="Checkpoint directory."),
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
    preset: str = typer.Option("gem", "--preset", help="Presets, e.g. gem,no_pw,no_lcb."),
    horizon: Optional[int] = typer.Option(None, help="Horizon H (default: env time limit)."),
    episodes: int = typer.Option(10, "--episodes", min=1, help="Episodes per cell and seed."),
    seeds: str = typer.Option("0", "--seeds", help="Evaluation seeds, e.g. 0,1,2."),
    threads: Optional[int] = typer.Option(
        None, "--threads", min=1, help="torch CPU threads (default: torch's)."
    ),
) -> None:
    """Grid over inference knobs on fixed networks; resumable; writes CSVs and PNGs."""
    from gemkit.eval.plots import (
        plot_ablation_deltas,
        plot_budget,
        plot_lambda_frontier,
        plot_norm_deltas,
    )
    from gemkit.eval.runs import env_horizon
    from gemkit.eval.sweep import SweepGrid, run_sweep, write_csv

    set_threads(threads)
    models, target = _target(checkpoint, dataset)
    supports = REGISTRIES["support"].names()
    grid = SweepGrid(
        presets=tuple(_names(preset, "preset", sorted(PRESETS))),
        n=tuple(_ints(n, "--n")),
        beta=tuple(float(x) for x in _floats(beta, "--beta") if x is not None),
        lam=tuple(float(x) for x in _floats(lam, "--lam") if x is not None),
        lam_T=tuple(_floats(lam_t, "--lam-T", allow_none=True)),
        k=tuple(_ints(k, "--k", minimum=1)),
        support=tuple(_names(support, "support", supports)),
        horizon=horizon,
    )
    h = horizon if horizon is not None else env_horizon(target)
    cells = grid.cells(h)
    seed_list = _ints(seeds, "--seeds")
    console = make_console()
    skipped = 0
    with _progress(console) as bar:
        task = bar.add_task(f"sweep on {target}", total=len(cells) * len(seed_list))

        def cb(done: int, total: int, cell: Any, seed: int, skip: bool) -> None:
            nonlocal skipped
            skipped += int(skip)
            bar.update(task, completed=done)

        rows = run_sweep(models, target, grid, out, episodes=episodes, seeds=seed_list, progress=cb)
    ref = grid.reference(h)
    written = [out / "runs.csv", out / "sweep.csv"]
    p = plot_budget(rows, ref.evolve(n=max(grid.n)), out / "budget.png")
    if p is not None:
        written.append(p)
    big = ref.evolve(n=max(grid.n))
    tables: dict[str, list[dict[str, Any]]] = {}
    for name, plot, base in (
        ("ablations", plot_ablation_deltas, big),
        ("normalization", plot_norm_deltas, ref),
        ("lambda_frontier", plot_lambda_frontier, big),
    ):
        p, table = plot(rows, base, out / f"{name}.png")
        tables[name] = table
        if p is not None:
            written.append(p)
        if table:
            write_csv(out / f"{name}.csv", table)
            written.append(out / f"{name}.csv")
    shown = [
        {
            **r,
            "score": _pm(r["score_mean"], r["score_std"]),
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
        ("score", "score"),
        ("support_z", "SupportZ"),
        ("violation", "Violation"),
        ("collapse_dist", "CollapseDist"),
        ("steps_per_s", "steps/s"),
    ]
    console.print(
        _table(f"sweep on {target} ({len(seed_list)} seed(s) x {episodes} ep)", shown, cols)
    )
    abl = tables["ablations"]
    if abl:
        console.print(
            _table(
                f"ablations at N={big.n} (delta vs GEM)",
                abl,
                [
                    ("preset", "preset"),
                    ("score", "score"),
                    ("delta_score", "delta score"),
                    ("violation", "Violation"),
                    ("delta_violation", "delta Violation"),
                ],
            )
        )
    console.print(f"{len(cells) * len(seed_list) - skipped} evaluation(s) run, {skipped} resumed")
    for w in written:
        console.print(f"wrote {w}")


# ---------------------------------------------------------------------- diagnose nll-gap
@diagnose_app.command("nll-gap")
@guarded
def nll_gap_cmd(
    dataset: str = typer.Option(..., "--dataset", help="Local Minari dataset id."),
    k: int = typer.Option(5, "--k", min=1, help="Mixture components K."),
    seeds: int = typer.Option(3, "--seeds", min=1, help="Number of fits (seeds 0..S-1)."),
    steps: int = typer.Option(2000, "--steps", min=1, help="Gradient steps per fit."),
    hidden: str = typer.Option("256,256", "--hidden", help="MLP widths of the GMM."),
    batch_size: int = typer.Option(256, "--batch-size", min=1, help="Minibatch size."),
    checkpoint: Optional[Path] = typer.Option(
        None, "--checkpoint", help="Use this checkpoint's behavior GMM instead of fitting."
    ),
    out: Optional[Path] = typer.Option(None, "--out", help="Write nll_gap.csv/json here."),
    threads: Optional[int] = typer.Option(
        None, "--threads", min=1, help="torch CPU threads (default: torch's)."
    ),
) -> None:
    """NLL gap (spec 2.7): mean NLL under the top component minus under the whole mixture."""

    from gemkit.data import load
    from gemkit.eval.nll_gap import nll_gap, nll_gap_over_seeds, summarize_gaps
    from gemkit.eval.sweep import write_csv
    from gemkit.train import TrainConfig

    set_threads(threads)
    data = load(dataset)
    console = make_console()
    if checkpoint is not None:
        from gemkit.models import load_models

        models = load_models(checkpoint)
        if models.behavior is None:
            raise GemkitError(f"{checkpoint} has no behavior GMM.")
        obs = models.normalize_obs(data.observations)
        g = nll_gap(models.behavior, obs, data.actions.float())
        summary = summarize_gaps([g], models.behavior.n_components, [0], 0)
        source = f"behavior GMM of {checkpoint}"
    else:
        cfg = TrainConfig(
            hidden=tuple(_ints(hidden, "--hidden", minimum=1)),
            n_critics=1,
            batch_size=batch_size,
        )
        with _progress(console) as bar:
            task = bar.add_task(f"fitting {seeds} K={k} GMM(s)", total=seeds * steps)

            def cb(i: int, done: int, total: int) -> None:
                if done % 50 == 0 or done == total:
                    bar.update(task, completed=i * steps + done)

            summary = nll_gap_over_seeds(
                data, k, list(range(seeds)), steps, config=cfg, progress=cb
            )
        source = f"{seeds} MLE fit(s) of {steps} steps"
    row = summary.row()
    shown = {
        "nll_gmm": f"{summary.nll_gmm_mean:.4f} +- {summary.nll_gmm_std:.4f}",
        "nll_top1": f"{summary.nll_top1_mean:.4f} +- {summary.nll_top1_std:.4f}",
        "gap": f"{summary.gap_mean:.4f} +- {summary.gap_std:.4f}",
    }
    console.print(
        _table(
            f"NLL gap on {dataset} ({len(data)} pairs), K={summary.k}, {source}",
            [shown],
            [("nll_gmm", "NLL_gmm"), ("nll_top1", "NLL_top1"), ("gap", "gap = NLL_top1 - NLL_gmm")],
        )
    )
    verdict = "mixture structure helps" if summary.gap_mean > 0 else "no gain from the mixture"
    console.print(f"gap {summary.gap_mean:.4f} ({verdict})")
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        write_csv(out / "nll_gap.csv", [{"dataset": dataset, **row}])
        _write_json(
            out / "nll_gap.json",
            {
                "dataset": dataset,
                "source": source,
                **row,
                "per_seed": [vars_(g) for g in summary.per_seed],
            },
        )
        console.print(f"wrote {out / 'nll_gap.csv'} and {out / 'nll_gap.json'}")


def vars_(obj: Any) -> dict[str, Any]:
    """attrs instance -> dict."""
    import attrs

    return attrs.asdict(obj)


# ---------------------------------------------------------------------- profile
@app.command("profile")
@guarded
def profile_cmd(
    n: str = typer.Option("1,64,1024,2048", "--n", help="Candidate budgets N of GEM."),
    t: str = typer.Option("10,20,50,100", "--T", help="Denoising steps T of the DDPM sampler."),
    device: Device = typer.Option(
        Device.all, "--device", help="cpu, cuda, or all (cpu, plus cuda when available)."
    ),
    checkpoint: Optional[Path] = typer.Option(
        None, "--checkpoint", help="Profile these networks (default: untrained ones)."
    ),
    state_dim: int = typer.Option(17, "--state-dim", min=1, help="S without a checkpoint."),
    action_dim: int = typer.Option(6, "--action-dim", min=1, help="A without a checkpoint."),
    hidden: str = typer.Option("256,256", "--hidden", help="Widths without a checkpoint."),
    n_critics: int = typer.Option(10, "--critics", min=1, help="E without a checkpoint."),
    n_components: int = typer.Option(5, "--components", min=1, help="K without a checkpoint."),
    batch: int = typer.Option(1, "--batch", min=1, help="States per call."),
    repeats: int = typer.Option(20, "--repeats", min=1, help="Timed calls per point."),
    threads: Optional[int] = typer.Option(
        None, "--threads", min=1, help="torch CPU threads (default: torch's)."
    ),
    out: Optional[Path] = typer.Option(None, "--out", help="Write profile.csv/json here."),
) -> None:
    """Latency and peak memory vs N of select(), against T-step DDPM sampling (same widths)."""
    import torch

    from gemkit.eval.profile import profile_diffusion, profile_select, random_models
    from gemkit.eval.sweep import write_csv

    set_threads(threads)
    if device is Device.cuda and not torch.cuda.is_available():
        raise GemkitError("--device cuda: CUDA is not available here; use --device cpu.")
    devices = (
        ["cpu"]
        if device is Device.cpu
        else ["cuda"]
        if device is Device.cuda
        else (["cpu", "cuda"] if torch.cuda.is_available() else ["cpu"])
    )
    widths = tuple(_ints(hidden, "--hidden", minimum=1))
    ns, ts = _ints(n, "--n"), _ints(t, "--T", minimum=1)
    console = make_console()
    rows: list[dict[str, Any]] = []
    for dev in devices:
        if checkpoint is not None:
            from gemkit.models import load_models

            models = load_models(checkpoint)
        else:
            models = random_models(state_dim, action_dim, widths, n_components, n_critics)
        ref = models.actor if models.actor is not None else models.behavior
        if ref is None:
            raise GemkitError(f"{checkpoint} has no actor or behavior GMM to profile.")
        with _progress(console) as bar:
            task = bar.add_task(f"profiling on {dev}", total=len(ns) + len(ts))

            def cb(_: Any, task: Any = task) -> None:
                bar.advance(task)

            sel = profile_select(models, ns, device=dev, batch=batch, repeats=repeats, progress=cb)
            dif = profile_diffusion(
                ref.state_dim,
                ref.action_dim,
                ref.hidden,
                ts,
                device=dev,
                batch=batch,
                repeats=repeats,
                progress=cb,
            )
        rows += [r.row() for r in sel + dif]
    cols = [
        ("method", "method"),
        ("knob", "knob"),
        ("value", "value"),
        ("device", "device"),
        ("latency_ms", "latency ms (median)"),
        ("latency_p90_ms", "p90 ms"),
        ("peak_mb", "peak MB"),
        ("weights_mb", "weights MB"),
    ]
    console.print(
        _table(
            f"deployment profile (batch {batch}, {repeats} calls each, "
            f"{torch.get_num_threads()} CPU thread(s))",
            rows,
            cols,
        )
    )
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        write_csv(out / "profile.csv", rows)
        _write_json(out / "profile.json", {"rows": rows, "threads": torch.get_num_threads()})
        console.print(f"wrote {out / 'profile.csv'} and {out / 'profile.json'}")
