"""The ``gemkit`` console script: one typer app, sub-commands registered from sibling modules."""

from __future__ import annotations

from typing import Any

import typer

app = typer.Typer(
    name="gemkit",
    help="Candidate-based action selection for offline RL (GEM), as composable components.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


def _version(value: bool) -> None:
    if value:
        from importlib.metadata import version

        typer.echo(f"gemkit {version('gemkit')}")
        raise typer.Exit()


@app.callback()
def _root(
    show_version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print gemkit's version."
    ),
) -> None:
    """Candidate-based action selection for offline RL (GEM), as composable components."""


def _flags_take_no_value() -> None:
    """typer (0.29) shows ``<bool>`` beside every flag in help tables, as if it took a value:
    a flag (not a count) shows no type instead."""
    from typer.core import TyperOption

    shown = TyperOption.display_type_rich

    def display_type_rich(self: TyperOption, ctx: Any) -> str | None:
        if self.is_flag and not self.count:
            return None
        return shown(self, ctx)

    TyperOption.display_type_rich = display_type_rich  # type: ignore[method-assign]


_flags_take_no_value()


def _register() -> None:
    # Each module adds its commands to ``app`` on import; one import line per module.
    from . import (
        data,  # noqa: F401
        diagnose,  # noqa: F401
        experiment,  # noqa: F401
        experiments,  # noqa: F401
        selection,  # noqa: F401
        support,  # noqa: F401
        train,  # noqa: F401
    )


_register()

#: ``gemkit --help`` lists the commands in the order of the work, in panels.
WORKFLOW: dict[str, str] = {
    "quickstart": "Start here", "data": "Start here",
    "train": "Train", "fit-support": "Train", "fit-proposer": "Train",
    "compose": "Select actions", "components": "Select actions",
    "eval": "Evaluate", "sweep": "Evaluate", "experiment": "Evaluate",
    "profile": "Diagnose", "diagnose": "Diagnose",
}  # fmt: skip


def _in_workflow_order() -> None:
    order = list(WORKFLOW)
    app.registered_commands.sort(key=lambda c: order.index(c.name) if c.name in order else 99)
    infos: list[Any] = [*app.registered_commands, *app.registered_groups]
    for info in infos:
        if info.name in WORKFLOW:
            info.rich_help_panel = WORKFLOW[info.name]


_in_workflow_order()


def _reflow(doc: str) -> str:
    """A docstring's paragraphs as single lines (rich wraps them to the terminal; the source's
    hard line breaks would wrap unevenly), keeping lines that are commands or list items."""
    keep = ("gemkit ", "python ", "- ", "  ")
    out: list[str] = []
    for line in doc.splitlines():
        if out and out[-1] and line and not line.startswith(keep) and not out[-1].startswith(keep):
            out[-1] = f"{out[-1]} {line.strip()}"
        else:
            out.append(line.rstrip())
    return "\n".join(out)


def _reflow_help() -> None:
    import inspect

    stack: list[Any] = [app]
    while stack:
        sub = stack.pop()
        for info in sub.registered_commands:
            doc = info.help or (inspect.getdoc(info.callback) if info.callback else None)
            if doc:
                info.help = _reflow(doc)
        stack.extend(group.typer_instance for group in sub.registered_groups)


_reflow_help()


def main() -> None:
    """Entry point of the ``gemkit`` console script and of ``python -m gemkit``."""
    app(prog_name="gemkit")
