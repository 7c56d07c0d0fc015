"""``gemkit data make|list|info``: gemkit's benchmark datasets in the local Minari store."""

from __future__ import annotations

import functools
import json
from enum import Enum
from typing import Any, Optional

import typer
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

from ._common import guarded, make_console, set_threads
from .main import app

data_app = typer.Typer(
    help="Make, list and inspect offline datasets (local Minari store).", no_args_is_help=True
)
app.add_typer(data_app, name="data")


class DatasetKind(str, Enum):
    """The datasets ``gemkit data make`` can record."""

    fork = "fork"
    pointmaze_umaze = "pointmaze-umaze"
    pointmaze_medium = "pointmaze-medium"
    pointmaze_large = "pointmaze-large"
    maze2d_umaze = "maze2d-umaze"
    maze2d_medium = "maze2d-medium"
    maze2d_large = "maze2d-large"
    hopper_medium = "hopper-medium"
    hopper_medium_replay = "hopper-medium-replay"
    hopper_expert = "hopper-expert"
    hopper_medium_expert = "hopper-medium-expert"
    walker2d_medium = "walker2d-medium"
    walker2d_medium_replay = "walker2d-medium-replay"
    walker2d_expert = "walker2d-expert"
    walker2d_medium_expert = "walker2d-medium-expert"
    halfcheetah_medium = "halfcheetah-medium"
    halfcheetah_medium_replay = "halfcheetah-medium-replay"
    halfcheetah_expert = "halfcheetah-expert"
    halfcheetah_medium_expert = "halfcheetah-medium-expert"


@data_app.command("make")
@guarded
def make(
    kind: DatasetKind = typer.Argument(..., help="Which dataset to record."),
    steps: Optional[int] = typer.Option(
        None,
        "--steps",
        help="Transitions (default: fork 50,000; pointmaze 1M, as Minari's D4RL/pointmaze-v2; "
        "maze2d 1M / 2M / 4M, as D4RL's maze2d-*-v1; "
        "locomotion medium and expert 1M, medium-replay the whole SAC replay buffer, "
        "medium-expert both, as D4RL).",
    ),
    seed: int = typer.Option(0, "--seed", help="Seed of the recording."),
    dense: bool = typer.Option(False, "--dense", help="PointMaze: dense reward exp(-distance)."),
    dataset_id: Optional[str] = typer.Option(None, "--id", help="Minari id to write."),
    ref_episodes: int = typer.Option(100, "--ref-episodes", help="Episodes per reference score."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing dataset."),
    store: Optional[str] = typer.Option(
        None,
        "--store",
        help="Minari store to write to (default $MINARI_DATASETS_PATH, else ~/.minari/datasets); "
        "sets MINARI_DATASETS_PATH for this command.",
    ),
    sac_steps: Optional[int] = typer.Option(
        None, "--sac-steps", help="Locomotion: SAC budget, env steps (default 1M; tiny for tests)."
    ),
    target_return: Optional[float] = typer.Option(
        None, "--target-return", help="Locomotion: stop SAC here (default: D4RL expert / 3)."
    ),
    sac_dir: Optional[str] = typer.Option(
        None, "--sac-dir", help="Locomotion: the SAC run (default gemkit-sac/<task>-seed<seed>)."
    ),
    expert_sac_steps: Optional[int] = typer.Option(
        None, "--expert-sac-steps",
        help="Expert: the SAC run continued to this many env steps in all (default 3M).",
    ),
    expert_target: Optional[float] = typer.Option(
        None, "--expert-target",
        help="Expert: stop the continuation here (default: D4RL's expert return).",
    ),
    threads: Optional[int] = typer.Option(
        None, "--threads", min=1, help="torch CPU threads (default: torch's)."
    ),
) -> None:
    """Record a dataset into the local Minari store ($MINARI_DATASETS_PATH)."""
    import os

    from gemkit.data import make_fork, make_maze2d, make_pointmaze, read_metadata
    from gemkit.data.minari_io import dataset_path

    set_threads(threads)
    if store is not None:
        os.environ["MINARI_DATASETS_PATH"] = os.path.abspath(os.path.expanduser(store))

    pointmaze = kind.value.startswith("pointmaze-")
    if dense and not pointmaze:
        raise typer.BadParameter("--dense applies to pointmaze datasets only.")
    maze2d = kind.value.startswith("maze2d-")
    locomotion = kind is not DatasetKind.fork and not pointmaze and not maze2d
    sac_opts = (sac_steps, target_return, sac_dir, expert_sac_steps, expert_target)
    if not locomotion and sac_opts != (None,) * 5:
        raise typer.BadParameter(
            "--sac-steps, --target-return, --sac-dir, --expert-*: locomotion only."
        )
    # the bar starts with the first report, so an error before recording shows no empty bar;
    # piped, there is none
    console = make_console(stderr=True)
    bar = Progress(
        TextColumn(f"[bold]{kind.value}"),
        BarColumn(),
        TextColumn("{task.description} {task.completed:,}/{task.total:,} steps {task.fields[ret]}"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=console,
        disable=not console.is_terminal,
    )

    tasks: dict[str, Any] = {}

    def task(name: str, total: int) -> Any:
        if not tasks:
            bar.start()
        if name not in tasks:
            tasks[name] = bar.add_task(name, total=total, ret="")
        return tasks[name]

    def progress(done: int, total: int) -> None:
        bar.update(task("record", total), completed=done, total=total)

    def sac_progress(done: int, total: int, ret: Optional[float]) -> None:
        note = "" if ret is None else f"eval return {ret:,.1f}"
        bar.update(task("SAC", total), completed=done, total=total, ret=note)

    try:
        if kind is DatasetKind.fork:
            kwargs: dict[str, Any] = {"dataset_id": dataset_id} if dataset_id else {}
            out = make_fork(
                steps if steps is not None else 50_000,
                seed,
                ref_episodes=ref_episodes,
                overwrite=overwrite,
                progress=progress,
                **kwargs,
            )
        elif locomotion:
            out = _make_locomotion(kind.value, steps, seed, sac_opts, dataset_id, overwrite,
                                   progress, sac_progress)  # fmt: skip
        else:  # a maze: D4RL's maze2d recipe or Minari's pointmaze one
            maker: Any = make_maze2d if maze2d else functools.partial(make_pointmaze, dense=dense)
            out = maker(
                kind.value.split("-", 1)[1],
                steps,
                seed,
                dataset_id=dataset_id,
                ref_episodes=ref_episodes,
                overwrite=overwrite,
                progress=progress,
            )
    finally:
        bar.stop()
    meta = read_metadata(out)
    scale = " (D4RL's published)" if maze2d else ""
    typer.echo(
        f"wrote {out}: {meta['total_steps']:,} steps, {meta['total_episodes']:,} episodes; "
        f"reference scores{scale} random {meta.get('ref_min_score'):.3f}, "
        f"expert {meta.get('ref_max_score'):.3f}"
    )
    typer.echo(f"stored in {dataset_path(out)} (the local Minari store; --store to choose)")
    if maze2d:
        typer.echo(
            f"gemkit's own references (random, replanning expert): "
            f"{meta['gemkit_ref_min_score']:.3f}, {meta['gemkit_ref_max_score']:.3f}"
        )


def _make_locomotion(
    name: str,
    steps: Optional[int],
    seed: int,
    sac_opts: tuple[Any, ...],
    dataset_id: Optional[str],
    overwrite: bool,
    progress: Any,
    sac_progress: Any,
) -> str:
    """``gemkit data make <task>-<kind>``: the SAC run (resumed or reused; for the expert its
    continuation too), then the data."""
    from gemkit.data import make_locomotion
    from gemkit.data.locomotion import default_sac_dir, expert_sac_dir
    from gemkit.data.sac import read_sac_run

    sac_steps, target_return, sac_dir, expert_sac_steps, expert_target = sac_opts
    task, kind = name.split("-", 1)
    run_dir = sac_dir or default_sac_dir(task, seed)
    out = make_locomotion(task, kind, steps, seed, sac_dir=run_dir, sac_steps=sac_steps,
                          target_return=target_return, expert_sac_steps=expert_sac_steps,
                          expert_target=expert_target, dataset_id=dataset_id,
                          overwrite=overwrite, progress=progress,
                          sac_progress=sac_progress)  # fmt: skip
    dirs = [run_dir] + ([expert_sac_dir(run_dir)] if "expert" in kind else [])
    for d in dirs:
        run = read_sac_run(d)
        if run is not None:
            reached = "reached" if run.reached else "NOT reached (budget spent)"
            typer.echo(
                f"SAC run {d}: {run.steps:,} steps, last evaluation return {run.last_return}, "
                f"target {run.config.target_return:.1f} {reached}"
            )
    return out


@data_app.command("list")
@guarded
def list_datasets() -> None:
    """List the datasets in the local Minari store."""
    from gemkit.data import list_local, read_metadata

    ids = list_local()
    if not ids:
        typer.echo("no local datasets; make one with `gemkit data make fork`.")
        return
    table = Table("id", "steps", "episodes", "env", "ref random", "ref expert")
    for i in ids:
        m = read_metadata(i)
        spec = m.get("env_spec")
        env = json.loads(spec)["id"] if isinstance(spec, str) else "-"
        lo, hi = m.get("ref_min_score"), m.get("ref_max_score")
        table.add_row(
            i,
            f"{m.get('total_steps', 0):,}",
            f"{m.get('total_episodes', 0):,}",
            env,
            "-" if lo is None else f"{lo:.3f}",
            "-" if hi is None else f"{hi:.3f}",
        )
    make_console().print(table)


@data_app.command("info")
@guarded
def info(dataset_id: str = typer.Argument(..., help="A local Minari dataset id.")) -> None:
    """Show one dataset's metadata and transition statistics."""
    from gemkit.data import load

    data = load(dataset_id)
    meta = data.meta
    lines = {
        "id": dataset_id,
        "env": meta.get("env_id"),
        "transitions": f"{len(data):,}",
        "episodes": f"{meta.get('total_episodes', 0):,}",
        "state dim": data.state_dim,
        "action dim": data.action_dim,
        "terminals": int(data.terminals.sum()),
        "timeouts": int(data.timeouts.sum()),
        "reward mean": f"{float(data.rewards.mean()):.4f}",
        "ref random": meta.get("ref_min_score"),
        "ref expert": meta.get("ref_max_score"),
        "dict obs keys": meta.get("obs_keys"),
    }
    for key, value in lines.items():
        typer.echo(f"{key:>14}: {value}")
