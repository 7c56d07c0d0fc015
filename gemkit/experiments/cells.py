"""Evaluation cells: one selector configuration on one checkpoint, evaluated once and cached.

A cell is a JSON object (``stage``, ``task``, ``train_seed``, ``step``, ``actor``, ``config``,
``eval_seeds``, ``episodes``, and the measured fields); its ``key`` hashes everything that
determines its numbers. Cells live in ``cells-*.jsonl`` files (one per worker, append-only; a
later line with the same key wins), which a results page is rebuilt from.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

__all__ = [
    "LATE_KNOBS",
    "append_cell",
    "append_line",
    "cell_key",
    "make_cell",
    "read_cell_file",
    "read_cells",
]

#: selector knobs added after cells were first cached, with the default they had implicitly
LATE_KNOBS: dict[str, Any] = {"temperature": 1.0, "chain_steps": None}


def cell_key(cell: dict[str, Any]) -> str:
    """The identity of an evaluation cell: everything that determines its numbers.

    The task is hashed under its first name, ``"maze"``, a MassScale factor and a Phase I
    variant only where there is one, and a selector knob added since cells were first cached
    (:data:`LATE_KNOBS`) only where it is not its default, so the cells cached before keep
    their keys.
    """
    ident = {
        k: cell[k]
        for k in ("stage", "train_seed", "step", "actor", "config", "eval_seeds", "episodes")
    }
    ident["config"] = {
        k: v for k, v in cell["config"].items() if not (k in LATE_KNOBS and v == LATE_KNOBS[k])
    }
    ident["maze"] = cell["task"]
    if cell.get("mass_scale") is not None:
        ident["mass_scale"] = cell["mass_scale"]
    if cell.get("variant") is not None:  # a Phase I variant's run (gemkit.experiments.variants)
        ident["variant"] = cell["variant"]
    return hashlib.sha256(json.dumps(ident, sort_keys=True).encode()).hexdigest()[:16]


def read_cell_file(path: Path) -> dict[str, dict[str, Any]]:
    """The cells cached in one ``.jsonl`` file, by key (a rerun's later line wins); empty when
    the file does not exist. A torn last line (a writer killed mid-line, see
    :func:`append_line`) is not a cell and is skipped."""
    if not Path(path).is_file():
        return {}
    text = Path(path).read_text()
    lines = text.splitlines()
    if lines and not text.endswith("\n"):
        lines = lines[:-1]
    rows = (json.loads(line) for line in lines if line.strip())
    return {row["key"]: row for row in rows}


def append_line(path: Path, line: str) -> None:
    """Append one line whole or not at all: one write of the full line, flushed and synced.

    A torn last line (a writer killed mid-write) is cut off before appending, so a file never
    holds a partial record. The file is created when missing.
    """
    data = line if line.endswith("\n") else line + "\n"
    with Path(path).open("a+b") as f:
        f.seek(0)
        old = f.read()
        if old and not old.endswith(b"\n"):
            f.truncate(old.rfind(b"\n") + 1)
        f.seek(0, os.SEEK_END)
        f.write(data.encode())
        f.flush()
        os.fsync(f.fileno())


def append_cell(path: Path, row: dict[str, Any]) -> None:
    """Append one evaluated cell to a ``.jsonl`` store file (:func:`append_line`)."""
    append_line(path, json.dumps(row))


def read_cells(out: Path) -> dict[str, dict[str, Any]]:
    """Every cached cell (all workers' files), by key; a row of the maze-only script names
    its task ``maze``."""
    cells: dict[str, dict[str, Any]] = {}
    for path in sorted(Path(out).glob("cells-*.jsonl")):
        for row in read_cell_file(path).values():
            if "task" not in row and "maze" in row:
                row["task"] = row.pop("maze")
            cells[row["key"]] = row
    return cells


def make_cell(
    stage: str,
    task: str,
    seed: int | None,
    step: int | None,
    actor: str,
    config: dict[str, Any],
    eval_seeds: Sequence[int],
    episodes: int,
    **tags: Any,
) -> dict[str, Any]:
    cell = {
        "stage": stage,
        "task": task,
        "train_seed": seed,
        "step": step,
        "actor": actor,
        "config": config,
        "eval_seeds": list(eval_seeds),
        "episodes": episodes,
        **tags,
    }
    cell["key"] = cell_key(cell)
    return cell
