"""``gemkit compose`` and ``gemkit components``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Optional

import typer
from rich.table import Table

import gemkit
from gemkit.config import METHOD_PRESETS, PRESETS, SelectorConfig
from gemkit.registry import REGISTRIES

from ._common import (
    CHAIN_HELP,
    CRITIC_HELP,
    PROPOSER_FROM_HELP,
    SUPPORT_FROM_HELP,
    AnchorName,
    PresetName,
    ProposerName,
    ReducerName,
    SupportName,
    ValueName,
    choice_name,
    guarded,
    load_networks,
    make_console,
    name_option,
)
from .main import app


@app.command("compose")
@guarded
def compose_cmd(
    proposer: Optional[ProposerName] = name_option(
        "proposer", "Source of the N sampled candidates."
    ),
    anchor: Optional[AnchorName] = name_option("anchor", "Anchor a_0."),
    value: Optional[ValueName] = name_option("value", "Ensemble reduction."),
    support: Optional[SupportName] = name_option("support", "Support normalisation."),
    reducer: Optional[ReducerName] = name_option("reducer", "Reducer."),
    preset: Optional[PresetName] = name_option(
        "preset", "Start from a named preset: an ablation or a method of the literature."
    ),
    n: Optional[int] = typer.Option(None, "--n", help="Sampled candidates N (0 = anchor only)."),
    k: Optional[int] = typer.Option(None, "--k", help="k of the topk reducer."),
    beta: Optional[float] = typer.Option(None, help="LCB pessimism beta (>= 0)."),
    lam: Optional[float] = typer.Option(None, help="Support weight lambda_0."),
    lam_t: Optional[float] = typer.Option(
        None, "--lam-T", help="Support weight lambda_T at the horizon (default: constant)."
    ),
    horizon: Optional[int] = typer.Option(None, help="Horizon H of the cosine lambda schedule."),
    z_min: Optional[float] = typer.Option(None, help="Violation threshold on SupportZ."),
    chain_steps: Optional[int] = typer.Option(None, "--chain-steps", min=1, help=CHAIN_HELP),
    checkpoint: Optional[Path] = typer.Option(
        None, help="Checkpoint directory (from 'gemkit train') to build the selector from."
    ),
    critic: Optional[str] = typer.Option(None, "--critic", help=CRITIC_HELP),
    support_from: Optional[Path] = typer.Option(None, "--support-from", help=SUPPORT_FROM_HELP),
    proposer_from: Optional[Path] = typer.Option(
        None, "--proposer-from", help=PROPOSER_FROM_HELP
    ),
    spec: Optional[Path] = typer.Option(None, help="Start from a JSON selector spec file."),
    out: Optional[Path] = typer.Option(None, help="Write the JSON selector spec here."),
) -> None:
    """Assemble a GEM selector from components and print it (and its JSON spec with --out)."""
    if spec is not None and preset is not None:
        raise gemkit.GemkitError("pass either --spec or --preset, not both.")
    base = (
        SelectorConfig.from_json(spec)
        if spec is not None
        else SelectorConfig.preset(choice_name(preset) or "gem")
    )
    names = {"proposer": proposer, "anchor": anchor, "value": value, "support": support,
             "reducer": reducer}  # fmt: skip
    given: dict[str, Any] = {key: choice_name(v) for key, v in names.items()}
    given.update(n=n, k=k, beta=beta, lam=lam, lam_T=lam_t, horizon=horizon, z_min=z_min,
                 chain_steps=chain_steps)  # fmt: skip
    cfg = base.override(**given)
    console = make_console()
    if checkpoint is not None or support_from is not None:
        models = load_networks(checkpoint, critic, support_from, proposer_from)
        selector = gemkit.compose(config=cfg, models=models)
        rows = selector.describe()
        title = f"GEM selector from {checkpoint or support_from}"
    elif critic is not None:
        raise gemkit.GemkitError("--critic needs --checkpoint or --support-from (the support).")
    else:
        rows = [(name, str(v), "") for name, v in cfg.to_dict()["params"].items()]
        title = "GEM selector spec (no checkpoint: components not built)"
    table = Table(title=title)
    for col in ("part", "setting", "detail"):
        table.add_column(col)
    for row in rows:
        table.add_row(*row)
    console.print(table)
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        record = cfg.to_dict()
        if critic is not None or support_from is not None:
            # which networks the selector was composed from (the config itself holds names)
            record["networks"] = {
                "checkpoint": None if checkpoint is None else str(checkpoint),
                "support_from": None if support_from is None else str(support_from),
                "critic": critic,
            }
        out.write_text(json.dumps(record, indent=2) + "\n")
        console.print(f"wrote selector spec to {out}")


@app.command("components")
def components_cmd() -> None:
    """List every registered component name, and the presets."""
    console = make_console()
    table = Table(title="gemkit components")
    for col in ("kind", "name", "description"):
        table.add_column(col)
    for kind, registry in REGISTRIES.items():
        for name, doc in registry.describe().items():
            table.add_row(kind, name, doc)
    for name, changes in PRESETS.items():
        what = ", ".join(f"{key}={v}" for key, v in changes.items()) or "the GEM default"
        table.add_row("preset", name, what)
    for name, changes in METHOD_PRESETS.items():  # the literature's rules (docs/components.md)
        table.add_row("method", name, ", ".join(f"{key}={v}" for key, v in changes.items()))
    console.print(table)
