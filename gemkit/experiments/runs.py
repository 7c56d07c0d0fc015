"""Where the experiment scripts' runs keep what they trained (paths, not weights)."""

from __future__ import annotations

import argparse
from pathlib import Path

__all__ = ["iql_snapshot", "parse_labelled_run"]


def iql_snapshot(run: Path, step: int) -> Path:
    """The ``.d3`` snapshot that ``reproductions/iql_reference.py train`` wrote in ``run`` at
    ``step``."""
    return Path(run) / "snapshots" / f"step_{step:08d}.d3"


def parse_labelled_run(text: str) -> tuple[str, Path]:
    """``LABEL=DIR`` (an argparse ``type``): the label and the run directory."""
    label, sep, path = text.rpartition("=")
    if not sep or not label:
        raise argparse.ArgumentTypeError(f"--run takes LABEL=DIR, got {text!r}")
    return label, Path(path)
