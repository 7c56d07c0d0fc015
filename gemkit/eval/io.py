"""The experiments' small file helpers: CSV of dict rows, strict JSON."""

from __future__ import annotations

import csv
import json
import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

__all__ = ["finite_json", "read_csv", "write_csv", "write_json"]


def finite_json(x: Any) -> Any:
    """``x`` with NaN/inf floats as ``None`` and paths as strings (strict JSON)."""
    if isinstance(x, float):
        return x if math.isfinite(x) else None
    if isinstance(x, dict):
        return {str(k): finite_json(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [finite_json(v) for v in x]
    if isinstance(x, Path):
        return str(x)
    return x


def write_json(path: str | Path, payload: Any) -> Path:
    """Write ``payload`` as indented strict JSON (:func:`finite_json`); returns the path."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(json.dumps(finite_json(payload), indent=2, default=str) + "\n")
    return p


def write_csv(path: str | Path, rows: Sequence[dict[str, Any]]) -> Path:
    """Write dict rows (union of keys, first-seen order) as CSV; ``None`` as empty.

    Atomic: the rows go to a temporary file beside ``path`` that then replaces it.
    """
    fields: list[str] = []
    for r in rows:
        for k in r:
            if k not in fields:
                fields.append(k)
    p = Path(path)
    tmp = p.with_name(f".{p.name}.tmp")
    with tmp.open("w", newline="") as f:
        w = csv.DictWriter(f, fields)
        w.writeheader()
        for r in rows:
            w.writerow({k: "" if v is None else v for k, v in r.items()})
    os.replace(tmp, p)
    return p


def read_csv(path: str | Path) -> list[dict[str, str]]:
    """The rows of a CSV file as dicts of strings (empty when the file does not exist)."""
    p = Path(path)
    if not p.is_file():
        return []
    with p.open(newline="") as f:
        return list(csv.DictReader(f))
