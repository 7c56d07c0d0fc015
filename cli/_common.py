"""Helpers shared by the CLI modules."""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from gemkit.config import ALL_PRESETS
from gemkit.errors import GemkitError, unknown_name_message
from gemkit.registry import REGISTRIES

P = ParamSpec("P")
R = TypeVar("R")

__all__ = [
    "QUICKSTART_COLS",
    "QUICKSTART_KEY",
    "AnchorName",
    "PresetName",
    "ProposerName",
    "ReducerName",
    "SupportName",
    "ValueName",
    "candidates_line",
    "choice_name",
    "fmt_cell",
    "guarded",
    "load_networks",
    "load_target",
    "make_console",
    "name_option",
    "parse_floats",
    "parse_ints",
    "parse_names",
    "plus_minus",
    "progress_bar",
    "quickstart_rows",
    "rich_table",
    "set_threads",
    "split_list",
]

PIPE_WIDTH = 400
"""Console width when the output is not a terminal: tables keep their natural width."""


def guarded(fn: Callable[P, R]) -> Callable[P, R]:
    """Turn gemkit's user errors into one red line on stderr and exit code 2 (no traceback)."""

    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return fn(*args, **kwargs)
        except (GemkitError, FileNotFoundError) as exc:
            typer.secho(f"error: {exc}", err=True, fg=typer.colors.RED)
            raise typer.Exit(2) from None

    return wrapper


def make_console(stderr: bool = False) -> Console:
    """A rich console; piped into a file or another program, wide enough that tables keep
    their natural width (no cells cut short, no 80-column squeeze) and lines are not wrapped."""
    console = Console(stderr=stderr)
    if console.is_terminal:
        return console
    return Console(stderr=stderr, width=PIPE_WIDTH)


def set_threads(threads: int | None) -> None:
    """``torch.set_num_threads(threads)`` unless ``threads`` is ``None`` (keep torch's)."""
    if threads is not None:
        import torch

        torch.set_num_threads(threads)


#: The component-name option types: plain strings (mypy and typer alike); :func:`name_option`
#: checks a value against the registry and answers an unknown one with the closest valid name.
ProposerName = str
AnchorName = str
ValueName = str
SupportName = str
ReducerName = str
PresetName = str


def _valid_names(kind: str) -> list[str]:
    if kind == "preset":
        return sorted(ALL_PRESETS)
    return list(REGISTRIES[kind].names())


def name_option(kind: str, help: str) -> Any:
    """A ``--<kind>`` option taking one registered name (default ``None``): the valid names shown
    in its help, an unknown one answered in one line with the closest valid name (names are
    read when the value is checked, so plug-ins registered later count)."""

    def parse(value: str) -> str:
        names = _valid_names(kind)
        if value not in names:
            raise typer.BadParameter(unknown_name_message(kind, value, names))
        return value

    return typer.Option(None, parser=parse, metavar=f"[{'|'.join(_valid_names(kind))}]",
                        help=help)  # fmt: skip


def choice_name(choice: object) -> str | None:
    """The registry name behind a CLI choice (an Enum member), or ``None``."""
    return None if choice is None else str(getattr(choice, "value", choice))


def split_list(text: str, what: str) -> list[str]:
    """The non-empty items of a comma-separated option value."""
    items = [x.strip() for x in text.split(",") if x.strip()]
    if not items:
        raise GemkitError(f"{what} must be a comma-separated list, got {text!r}.")
    return items


def parse_ints(text: str, what: str, minimum: int = 0) -> list[int]:
    """Comma-separated integers or ranges ``a-b`` (both ends included, ``a <= b``), each
    ``>= minimum`` (one-line error otherwise): ``0-2,5`` is ``[0, 1, 2, 5]``."""
    vals: list[int] = []
    for x in split_list(text, what):
        lo, dash, hi = x.partition("-")
        try:
            if dash and lo.strip():
                a, b = int(lo), int(hi)
                if a > b:
                    raise ValueError
                vals.extend(range(a, b + 1))
            else:
                vals.append(int(x))
        except ValueError:
            raise GemkitError(
                f"{what} must be comma-separated integers or ranges like 0-4, got {text!r}."
            ) from None
    if any(v < minimum for v in vals):
        raise GemkitError(f"{what} values must be >= {minimum}, got {text!r}.")
    return vals


def parse_floats(text: str, what: str, allow_none: bool = False) -> list[float | None]:
    """Comma-separated finite numbers; with ``allow_none``, ``const``/``none`` is ``None``."""
    out: list[float | None] = []
    for x in split_list(text, what):
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


def parse_names(text: str, what: str, valid: Sequence[str]) -> list[str]:
    """Comma-separated names, each one of ``valid`` (a did-you-mean error otherwise)."""
    from gemkit.errors import UnknownComponentError, unknown_name_message

    vals = split_list(text, what)
    for v in vals:
        if v not in valid:
            raise UnknownComponentError(unknown_name_message(what, v, valid))
    return vals


def fmt_cell(v: Any, digits: int = 3) -> str:
    """A table cell: ``-`` for missing or non-finite values, numbers rounded."""
    if v is None or v == "":
        return "-"
    if isinstance(v, float):
        if not math.isfinite(v):
            return "-"
        return f"{v:.0f}" if abs(v) >= 100 else f"{v:.{digits}f}"
    return str(v)


def rich_table(
    title: str, rows: Sequence[dict[str, Any]], cols: Sequence[tuple[str, str]]
) -> Table:
    """A rich table of ``rows`` with ``cols`` as ``(key, heading)`` pairs."""
    table = Table(title=title)
    for _, head in cols:
        table.add_column(head)
    for r in rows:
        table.add_row(*[fmt_cell(r.get(key)) for key, _ in cols])
    return table


def plus_minus(mean: Any, std: Any) -> str:
    """``"mean +- std"`` (one decimal), ``-`` for a missing mean."""
    if not isinstance(mean, float) or not math.isfinite(mean):
        return "-"
    return (
        f"{mean:.1f} +- {std:.1f}"
        if isinstance(std, float) and math.isfinite(std)
        else f"{mean:.1f}"
    )


def progress_bar(console: Console) -> Progress:
    """A transient progress bar (disabled when the console is not a terminal)."""
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=True,
        disable=not console.is_terminal,  # piped: no bar, not even its blank line
    )


def load_networks(
    checkpoint: Path | None,
    critic: str | None = None,
    support_from: Path | None = None,
    proposer_from: Path | None = None,
) -> Any:
    """The networks a selector draws on: a checkpoint, or a support fit, and a foreign critic.

    ``--support-from DIR`` (``gemkit fit-support``) stands in for a checkpoint when the critic
    comes from elsewhere; ``--critic SPEC`` replaces the checkpoint's critic;
    ``--proposer-from DIR`` (``gemkit fit-proposer``) adds a generative behavior model.
    """
    from gemkit.adapters.spec import critic_from_spec
    from gemkit.models import load_models

    if checkpoint is not None and support_from is not None:
        raise GemkitError("pass --checkpoint or --support-from, not both.")
    source = checkpoint if checkpoint is not None else support_from
    if source is None:
        raise GemkitError(
            "pass --checkpoint DIR (gemkit train) or --support-from DIR (gemkit fit-support)."
        )
    foreign = None if critic is None else critic_from_spec(critic)  # its errors first
    models = load_models(source)
    if critic is not None:
        models.critic = foreign
        models.meta["critic"] = critic
    if proposer_from is not None:
        from gemkit.models import attach_generative

        attach_generative(models, proposer_from)
    return models


def load_target(
    checkpoint: Path | None,
    dataset: str | None,
    critic: str | None = None,
    support_from: Path | None = None,
    proposer_from: Path | None = None,
) -> tuple[Any, str]:
    """The networks (:func:`load_networks`) and the dataset/env to run them on (theirs)."""
    models = load_networks(checkpoint, critic, support_from, proposer_from)
    target = dataset or models.meta.get("dataset_id")
    if not target:
        raise GemkitError(
            f"{checkpoint or support_from} records no dataset id; pass --dataset (a dataset or "
            "env id)."
        )
    return models, str(target)


CRITIC_HELP = (
    "A critic from another library, replacing the checkpoint's: d3rlpy:PATH, "
    "module:PACKAGE.MODULE:NAME or torchrl:PACKAGE.MODULE:NAME (it gets raw observations)."
)
SUPPORT_FROM_HELP = (
    "Model directory of 'gemkit fit-support' (behavior GMM), instead of a checkpoint."
)
CHAIN_HELP = (
    "Sampling steps of a flow proposer's Euler chain (default: the model's own); a diffusion "
    "model keeps the T it was fitted with."
)
PROPOSER_FROM_HELP = (
    "Model directory of 'gemkit fit-proposer' (diffusion or flow behavior model): the "
    "candidates of --proposer diffusion|flow (presets idql, sfbc, ifql)."
)


#: the quickstart table's columns: short headings, so the table fits 80 columns; the key
#: below says what each holds
QUICKSTART_COLS = [
    ("label", "selector"),
    ("score", "score"),
    ("success_rate", "succ"),
    ("support_z", "SupZ"),
    ("violation", "Viol"),
    ("critic_evals", "Q/step"),
    ("collapse_dist", "Coll"),
    ("steps_per_s", "st/s"),
]
#: decimals of the quickstart table's numeric columns
_QUICKSTART_DIGITS = {"success_rate": 2, "support_z": 2, "violation": 2, "critic_evals": 0,
                      "collapse_dist": 2, "steps_per_s": 0}  # fmt: skip
QUICKSTART_KEY = "\n".join([
    "selector: GEM = the GMM actor's anchor (N=0), or the anchor plus N candidates",
    "  scored by the critic's LCB and the z-scored behaviour support; unimodal = a",
    "  K=1 actor trained in the same run, alone or with N candidates, same critic",
    "score: normalised return, mean +- std over seeds; succ: share reaching the goal",
    "SupZ: chosen action's behaviour log-likelihood, z-scored in its candidate set",
    "Viol: share of decisions with SupZ < -1; Q/step: candidates scored per decision",
    "Coll: distance to the nearest behaviour mode; st/s: env steps per second",
])  # fmt: skip


def candidates_line(table: Sequence[dict[str, Any]]) -> str:
    """What the candidates added in this quickstart's table, computed from its rows (GEM with N
    candidates against its anchor alone, the unimodal actor likewise), and where they matter
    when they added nothing here."""
    score = {r["label"].split(",")[0] + ("" if r["label"].endswith("N=0") else "+N"):
             float(r["score_mean"]) for r in table}  # fmt: skip
    gem = score.get("GEM+N", 0.0) - score.get("GEM anchor", 0.0)
    uni = score.get("unimodal+N", 0.0) - score.get("unimodal", 0.0)
    import textwrap

    line = f"what the candidates added here: GEM {gem:+.1f}, unimodal {uni:+.1f} (score points)"
    if abs(gem) < 1.0:
        line += ("; GEM's anchor alone already takes a good route on this task, so the "
                 "candidates have little to fix: on the paper's Maze2D task they do "
                 "(docs/results-maze2d.md)")  # fmt: skip
    return textwrap.fill(line, width=80, subsequent_indent="  ")


def quickstart_rows(table: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """The quickstart's headline rows formatted for :data:`QUICKSTART_COLS`."""
    return [{**r, "score": plus_minus(r["score_mean"], r["score_std"]),
             **{k: fmt_cell(r.get(k), d) for k, d in _QUICKSTART_DIGITS.items()}}
            for r in table]  # fmt: skip
