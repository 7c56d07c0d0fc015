"""``gemkit train``: Phase I on a local Minari dataset, with checkpoints and resume."""

from __future__ import annotations

import shlex
from enum import Enum
from pathlib import Path
from typing import Any, Optional

import typer
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from gemkit.errors import GemkitError, unknown_name_message
from gemkit.train.trainer import COMPILE_MODES

from ._backend import (
    ADDRESS,
    BACKEND,
    CPUS_PER_TASK,
    GPUS_PER_TASK,
    LOCAL_CPUS,
    BackendName,
    open_backend,
)
from ._common import guarded, make_console, parse_ints, progress_bar, set_threads
from .main import app

SAVE_EVERY = 10_000
LOG_EVERY = 100


class Device(str, Enum):
    """Where the networks train."""

    cpu = "cpu"
    cuda = "cuda"


class Profile(str, Enum):
    """The training profiles (``gemkit.train.PROFILES``)."""

    paper = "paper"
    small = "small"


def _fmt(metrics: dict[str, float]) -> str:
    short = {
        "loss_critic": "Q",
        "loss_value": "V",
        "loss_actor": "pi",
        "loss_behavior": "beta",
    }
    parts = [f"{s} {metrics[k]:.4g}" for k, s in short.items() if metrics[k] == metrics[k]]
    return "  ".join(parts)


def resume_command(
    out: Path,
    steps: int,
    *,
    threads: int | None = None,
    compile: bool = False,
    compile_mode: str = "default",
    cuda_graph: bool = False,
    tf32: bool = False,
    save_every: int = SAVE_EVERY,
    log_every: int = LOG_EVERY,
    snapshot_every: int | None = None,
) -> str:
    """The ``gemkit train --resume`` command line that continues an interrupted run."""
    args = ["gemkit", "train", "--resume", str(out), "--steps", str(steps)]
    if save_every != SAVE_EVERY:
        args += ["--save-every", str(save_every)]
    if log_every != LOG_EVERY:
        args += ["--log-every", str(log_every)]
    if snapshot_every is not None:
        args += ["--snapshot-every", str(snapshot_every)]
    if threads is not None:
        args += ["--threads", str(threads)]
    if compile:
        args.append("--compile")
        if compile_mode != "default":
            args += ["--compile-mode", compile_mode]
    if cuda_graph:
        args.append("--cuda-graph")
    if tf32:
        args.append("--tf32")
    return shlex.join(args)


@app.command("train")
@guarded
def train_command(
    dataset: Optional[str] = typer.Option(
        None,
        "--dataset",
        help="Local Minari dataset id (e.g. gemkit/fork-v0). With --resume: the checkpoint's.",
    ),
    steps: int = typer.Option(
        ..., "--steps", min=1, help="Total gradient steps, behavior pretraining included."
    ),
    out: Optional[Path] = typer.Option(
        None, "--out", help="Checkpoint directory (with --resume: defaults to it)."
    ),
    profile: Optional[Profile] = typer.Option(
        None,
        "--profile",
        help="Config to start from: paper (the spec's sizes, default) or small (the "
        "quickstart's). Not with --resume.",
    ),
    config: Optional[Path] = typer.Option(
        None, "--config", help="TOML or JSON file of TrainConfig keys (over the profile)."
    ),
    overrides: list[str] = typer.Option(
        [], "--set", help="Override one config key: --set alpha=1.0 (repeatable)."
    ),
    save_every: int = typer.Option(SAVE_EVERY, "--save-every", min=1, help="Checkpoint period."),
    log_every: int = typer.Option(LOG_EVERY, "--log-every", min=1, help="metrics.csv row period."),
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
    compile_mode: str = typer.Option(
        "default",
        "--compile-mode",
        help="torch.compile mode with --compile: default, reduce-overhead (CUDA graphs: 4x "
        "eager on an H200, docs/performance.md), max-autotune, max-autotune-no-cudagraphs.",
    ),
    cuda_graph: bool = typer.Option(
        False,
        "--cuda-graph",
        help="GPU: replay each whole step (sampling, losses, backward, Adam, target update) as "
        "one captured CUDA graph; combine with --compile (default mode). Same minibatches.",
    ),
    tf32: bool = typer.Option(
        False,
        "--tf32",
        help="GPU: float32 matrix multiplies on TF32 tensor cores (10-bit mantissa; 1.2x with "
        "--cuda-graph on an H200). Set in this process (with --seeds: the serial backend only).",
    ),
    snapshot_every: Optional[int] = typer.Option(
        None, "--snapshot-every", min=1, help="Export models every N steps (learning curves)."
    ),
    threads: Optional[int] = typer.Option(
        None, "--threads", min=1, help="torch threads (default: torch's; 1 per job on shared CPUs)."
    ),
    seeds: Optional[str] = typer.Option(
        None,
        "--seeds",
        help="Train one run per seed, e.g. 0,1,2 or 0-4, into OUT/seed-<s> (resumable).",
    ),
    runs_per_task: int = typer.Option(
        1,
        "--runs-per-task",
        min=1,
        help="With --seeds: train this many seeds in one process as one batch of runs (every "
        "network gains a run axis; each run stays a normal run in its folder; eager, so "
        "--compile applies to single runs). On a CPU at the maze sizes, 8 runs do 1.22x the "
        "steps/s of one eager run but 0.90x of one compiled run (docs/performance.md).",
    ),
    backend: BackendName = BACKEND,
    address: Optional[str] = ADDRESS,
    cpus_per_task: float = CPUS_PER_TASK,
    gpus_per_task: float = GPUS_PER_TASK,
    local_cpus: Optional[int] = LOCAL_CPUS,
) -> None:
    """Train GEM's Phase I (critic ensemble, value, behavior GMM, actor) and checkpoint it.

    A fresh run pretrains the behavior GMM alone for min(gmm_pretrain_steps, steps/4) steps,
    then updates every network; the plan is printed before training starts. Ctrl-C saves a
    checkpoint at the current step and prints the command that resumes it. The checkpoint
    directory is what 'gemkit compose --checkpoint DIR' loads.
    """
    from gemkit.data import load
    from gemkit.train import TrainingInterrupted, TrainPlan, TrainProgress, train

    dataset, out, cfg = _run_config(dataset, out, profile, config, overrides, resume, seed, device)
    if compile_mode not in COMPILE_MODES:
        raise GemkitError(unknown_name_message("compile mode", compile_mode, COMPILE_MODES))
    if tf32:
        import torch

        torch.set_float32_matmul_precision("high")
    if runs_per_task > 1 and seeds is None:
        raise GemkitError("--runs-per-task batches the runs of --seeds; give --seeds too.")
    if seeds is not None:
        if resume is not None or seed is not None or overwrite:
            raise GemkitError(
                "--seeds trains (or resumes) OUT/seed-<s>; drop --resume, --seed and --overwrite."
            )
        _train_seeds(dataset, cfg, out, steps, parse_ints(seeds, "--seeds"),
                     backend=(backend, address, cpus_per_task, gpus_per_task, local_cpus),
                     runs_per_task=runs_per_task,
                     threads=threads, save_every=save_every, log_every=log_every,
                     compile=compile, compile_mode=compile_mode, cuda_graph=cuda_graph,
                     snapshot_every=snapshot_every)  # fmt: skip
        return
    set_threads(threads)
    import torch

    data = load(dataset)
    what = (
        "the checkpoint's config"
        if resume is not None
        else f"profile {(profile or Profile.paper).value}"
    )
    plans: list[TrainPlan] = []

    def show_plan(plan: TrainPlan) -> None:
        """The run's plan, made by train() once its directory and checkpoint are checked."""
        plans.append(plan)
        for line in plan.lines():
            typer.echo(line)
        typer.echo(
            f"run: {dataset} -> {out}; {what}, device {cfg.device}, "
            f"{torch.get_num_threads()} torch thread(s), compile {'on' if compile else 'off'}"
            + (", CUDA graphs" if cuda_graph else "")
            + (", TF32 matmuls" if tf32 else "")
        )

    columns = (
        TextColumn("[bold]{task.fields[phase]}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[rate]:>8.1f} steps/s"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        TextColumn("{task.fields[losses]}"),
    )
    # the bar starts with the first report, so an error before training shows no empty bar;
    # piped into a log, there is no bar (the plan and the summary line say what happened)
    console = make_console(stderr=True)
    bar = Progress(*columns, console=console, disable=quiet or not console.is_terminal)
    last: list[TrainProgress] = []

    def report(p: TrainProgress) -> None:
        if not last:
            bar.start()
            bar.add_task("train", total=steps, completed=plans[0].start, phase=p.phase,
                         rate=0.0, losses="")  # fmt: skip
        last[:] = [p]
        bar.update(
            bar.task_ids[0], completed=p.step, phase=p.phase, rate=p.steps_per_s,
            losses=_fmt(p.metrics),
        )  # fmt: skip

    try:
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
            compile_mode=compile_mode,
            cuda_graph=cuda_graph,
            snapshot_every=snapshot_every,
            on_plan=show_plan,
        )
    except TrainingInterrupted as stop:
        bar.stop()
        command = resume_command(
            out, steps, threads=threads, compile=compile, compile_mode=compile_mode,
            cuda_graph=cuda_graph, tf32=tf32, save_every=save_every,
            log_every=log_every, snapshot_every=snapshot_every,
        )  # fmt: skip
        typer.echo(
            f"interrupted: checkpoint saved at step {stop.step:,} of {steps:,} in {out}. "
            f"Resume with: {command}"
        )
        raise typer.Exit(130) from None
    finally:
        bar.stop()
    summary = f"  ({_fmt(last[0].metrics)})" if last else ""
    typer.echo(f"trained {dataset} to step {steps}: {out}{summary}")


def _run_config(
    dataset: str | None,
    out: Path | None,
    profile: Profile | None,
    config: Path | None,
    overrides: list[str],
    resume: Path | None,
    seed: int | None,
    device: Device | None,
) -> tuple[str, Path, Any]:
    """The run's dataset id, directory and :class:`~gemkit.train.TrainConfig`: a resumed run's
    from its checkpoint, a fresh one's from the profile; then ``--config``, ``--set``, ``--seed``
    and ``--device`` on top. One-line errors for what is missing or contradictory."""
    from gemkit.train import TrainConfig
    from gemkit.train.checkpoint import load_config, read_state_header
    from gemkit.train.config import apply_overrides

    if resume is not None:
        if out is not None and out.resolve() != resume.resolve():
            raise GemkitError(
                "--resume continues in its own directory; drop --out or give the same path."
            )
        if profile is not None:
            raise GemkitError("--resume trains on with the checkpoint's config; drop --profile.")
        out = resume
        cfg = load_config(resume)
        if dataset is None:
            dataset = read_state_header(resume).get("dataset_id")
            if dataset is None:
                raise GemkitError(
                    f"{str(resume)!r} does not record its dataset; give --dataset ID."
                )
    else:
        if dataset is None:
            raise GemkitError(
                "give --dataset ID, a local Minari dataset (e.g. gemkit/fork-v0; "
                "'gemkit data list' shows them)."
            )
        cfg = TrainConfig.profile((profile or Profile.paper).value)
    if out is None:
        raise GemkitError("give --out DIR (or --resume DIR).")
    if config is not None:
        cfg = TrainConfig.from_file(config, base=cfg)
    extra = list(overrides)
    if seed is not None:
        extra.append(f"seed={seed}")
    if device is not None:
        extra.append(f"device={device.value}")
    return dataset, out, apply_overrides(cfg, extra)


def _train_seeds(
    dataset: str,
    cfg: Any,
    out: Path,
    steps: int,
    seeds: list[int],
    *,
    backend: tuple[BackendName, str | None, float, float, int | None],
    threads: int | None,
    **kwargs: Any,
) -> None:
    """``gemkit train --seeds``: one run per seed through the backend, a bar over the seeds."""
    from gemkit.backends import FanOutReport
    from gemkit.train.seeds import train_seeds

    set_threads(threads)
    console = make_console()
    reports: list[FanOutReport] = []
    skipped: list[int] = []
    with open_backend(*backend) as runner, progress_bar(console) as bar:
        task = bar.add_task(f"training {len(seeds)} seed(s) on {dataset}", total=len(seeds))

        def done(seed: int, skip: bool) -> None:
            skipped.extend([seed] if skip else [])
            bar.advance(task)

        dirs = train_seeds(dataset, cfg, out, steps, seeds, backend=runner, progress=done,
                           timing=reports.append, tensorboard=False, **kwargs)  # fmt: skip
    if skipped:
        console.print(f"already trained to step {steps}: seed(s) {skipped}")
    console.print(f"time: {reports[0].summary()}")
    for d in dirs:
        console.print(f"trained {dataset} to step {steps}: {d}")
