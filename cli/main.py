"""The ``gemkit`` console script: one typer app, sub-commands registered from sibling modules."""

from __future__ import annotations

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


def _register() -> None:
    # Each module adds its commands to ``app`` on import; one import line per module.
    from . import (
        data,  # noqa: F401
        diagnose,  # noqa: F401
        experiments,  # noqa: F401
        selection,  # noqa: F401
        support,  # noqa: F401
        train,  # noqa: F401
    )


_register()


def main() -> None:
    """Entry point of the ``gemkit`` console script and of ``python -m gemkit``."""
    app(prog_name="gemkit")
