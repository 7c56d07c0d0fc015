"""``gemkit train``: Phase I on a local Minari dataset, with checkpoints and resume."""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from cli._common import guarded
from cli.main import app
from gemkit.errors import GemkitError


class Device(str, Enum):
    """Where the networks train."""

    cpu = "cpu"
    cuda = "cuda"


def _fmt(metrics: dict[str, float]) -> str:
    short = {
        "loss_critic": "Q",
        "loss_value": "V",
        "loss_actor": "pi",
        "loss_behavior": "beta",
    }
    parts = [f"{s} {metrics[k]:.4g}" for k, s in short.items() if metrics[k] == metrics[k]]
    return "  ".join(parts)


@app.command("train")
@guarded
def train_command(
    dataset: Optional[str] = typer.Option(
        None,
        "--dataset",
        help="Local Minari dataset id (e.g. gemkit/fork-v0). With --resume: the checkpoint's.",
    ),
    steps: int = typer.Option(
        ..., "--steps", min=0, help="Total gradient steps, behavior pretraining included."
    ),
    out: Optional[Path] = typer.Option(
        None, "--out", help="Checkpoint directory (with --resume: defaults to it)."
    ),
    config: Optional[Path] = typer.Option(
        None, "--config", help="TOML or JSON file of TrainConfig keys."
    ),
    overrides: list[str] = typer.Option(
        [], "--set", help="Override one config key: --set alpha=1.0 (repeatable)."
    ),
    save_every: int = typer.Option(10_000, "--save-every", min=1, help="Checkpoint period."),
    log_every: int = typer.Option(100, "--log-every", min=1, help="metrics.csv row period."),
    resume: Optional[Path] = typer.Option(
        None, "--resume", help="Continue the run checkpointed in this directory."
    ),
    device: Optional[Device] = typer.Option(None, "--device", help="cpu or cuda."),
    seed: Optional[int] = typer.Option(None, "--seed", min=0, help="Seed of the run."),
    overwrite: bool = typer.Option(
        False, "--overwrite", help="Start afresh in an --out that already holds a checkpoint."
    ),
    quiet: bool = typer.Option(False, "--quiet", help="No progress bar."),
    compile: bool = typer.Option(
        False, "--compile", help="torch.compile the loss computation (eager fallback)."
    ),
    snapshot_every: Optional[int] = typer.Option(
        None, "--snapshot-every", min=1, help="Export models every N steps (learning curves)."
    ),
    threads: Optional[int] = typer.Option(
        None, "--threads", min=1, help="torch threads (default: torch's; 1 per job on shared CPUs)."
    ),
) -> None:
    """Train GEM's Phase I (critic ensemble, value, behavior GMM, actor) and checkpoint it.

    The checkpoint directory is what 'gemkit compose --checkpoint DIR' loads.
    """
    from gemkit.data import load
    from gemkit.train import TrainConfig, TrainProgress, apply_overrides, load_config, train
    from gemkit.train.checkpoint import read_state_header

    if resume is not None:
        if out is not None and out.resolve() != resume.resolve():
            raise GemkitError(
                "--resume continues in its own directory; drop --out or give the same path."
            )
        out = resume
        header = read_state_header(resume)
        cfg = load_config(resume)
        if dataset is None:
            dataset = header.get("dataset_id")
    else:
        cfg = TrainConfig()
    if out is None:
        raise GemkitError("give --out DIR (or --resume DIR).")
    if dataset is None:
        raise GemkitError("give --dataset ID (the checkpoint does not record one).")
    if config is not None:
        cfg = TrainConfig.from_file(config)
    extra = list(overrides)
    if seed is not None:
        extra.append(f"seed={seed}")
    if device is not None:
        extra.append(f"device={device.value}")
    cfg = apply_overrides(cfg, extra)

    if threads is not None:
        import torch

        torch.set_num_threads(threads)
    console = Console(stderr=True)
    data = load(dataset)
    columns = (
        TextColumn("[bold]{task.fields[phase]}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[rate]:>8.1f} steps/s"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        TextColumn("{task.fields[losses]}"),
    )
    with Progress(*columns, console=console, disable=quiet, transient=False) as bar:
        task = bar.add_task("train", total=steps, phase="start", rate=0.0, losses="")
        last: list[TrainProgress] = []

        def report(p: TrainProgress) -> None:
            last[:] = [p]
            bar.update(
                task, completed=p.step, phase=p.phase, rate=p.steps_per_s, losses=_fmt(p.metrics)
            )

        train(
            data,
            cfg,
            out,
            steps,
            save_every=save_every,
            log_every=log_every,
            resume=resume is not None,
            overwrite=overwrite,
            dataset_id=dataset,
            progress=report,
            compile=compile,
            snapshot_every=snapshot_every,
        )
    summary = f"  ({_fmt(last[0].metrics)})" if last else ""
    typer.echo(f"trained {dataset} to step {steps}: {out}{summary}")
