"""Rebuild a suite's cell store from a committed report's tables, for a results page whose
cells were not kept (its runs and cell cache are gone; its ``<suite>_cells.csv`` and
``<suite>_summary.json`` are committed).

Every planned cell of the suite run (the same flags as the page's ``report``) is matched to its
row of the CSV by what identifies it there (stage, series, task, training seed, step, actor, N,
knobs, evaluation seeds, episodes; ``gemkit.experiments.tables.flat_row``) and written to
``<out>/cells-restored.jsonl`` with that row's measured fields, ``returns`` None (the
per-episode returns were not kept), the CPU the summary names and ``restored_from`` naming the
CSV. The datasets' facts come from the summary. A row that matches no planned cell, or a
planned cell without a row, is reported; ``--strict`` makes either an error. Then ``report``
with the same flags and ``--out`` rebuilds the page from the restored cells::

    python reproductions/restore_cells.py --csv docs/results/mazes_cells.csv \\
        --summary docs/results/mazes_summary.json -- --suite mazes --seeds 0 1 2 \\
        --maze-steps umaze=300000 medium=300000 large=300000 --out docs/results/mazes/cells
"""

from __future__ import annotations

import argparse
import csv
import json
from pathlib import Path
from typing import Any

from gemkit.experiments.args import parse_args as suite_args
from gemkit.experiments.cells import read_cell_file
from gemkit.experiments.plan import test_cells, validation_cells
from gemkit.experiments.tables import MEASURED, flat_row

#: the file the restored cells go to (a ``cells-*.jsonl`` of the store)
RESTORED = "cells-restored.jsonl"


def _ident(row: dict[str, Any]) -> tuple[str, ...]:
    """A CSV row (or a planned cell's :func:`flat_row`) without its measured fields, as the
    CSV writes it (``None`` as an empty field, numbers by ``str``)."""
    return tuple("" if v is None else str(v) for k, v in row.items() if k not in MEASURED.values())


def _number(text: str) -> float | None:
    return None if text == "" else float(text)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--csv", type=Path, required=True, help="the page's <suite>_cells.csv")
    p.add_argument("--summary", type=Path, required=True, help="the page's <suite>_summary.json")
    p.add_argument("--strict", action="store_true", help="every row and every cell must match")
    p.add_argument("suite", nargs=argparse.REMAINDER, help="-- then the suite run's flags")
    args = p.parse_args(argv)
    config = suite_args(["report", *[a for a in args.suite if a != "--"]])
    summary = json.loads(args.summary.read_text())
    word = config.suite_spec.word
    knobs = {k: summary["knobs"][k] for k in ("beta", "lam", "lam_T", "value")}
    planned = [*validation_cells(config), *test_cells(config, knobs)]
    with args.csv.open() as f:
        rows = list(csv.DictReader(f))
    by_ident = {_ident(r): r for r in rows}
    mass = "mass_scale" in rows[0]
    out = Path(config.out)
    out.mkdir(parents=True, exist_ok=True)
    done = read_cell_file(out / RESTORED)
    restored, missing, used = [], 0, set()
    for c in planned:
        ident = _ident(flat_row(c, word, mass))
        row = by_ident.get(ident)
        if row is None:
            missing += 1
            continue
        used.add(ident)
        if c["key"] in done:
            continue
        measured = {f: _number(row[col]) for f, col in MEASURED.items()}
        restored.append({**c, **measured, "returns": None, "cpu": summary.get("cpu"),
                         "restored_from": str(args.csv)})  # fmt: skip
    unmatched = len(set(by_ident) - used)
    print(f"{len(used)} of {len(rows)} rows matched a planned cell ({unmatched} did not); "
          f"{missing} of {len(planned)} planned cells have no row; {len(restored)} new")
    if args.strict and (unmatched or missing):
        raise SystemExit("--strict: the CSV and the plan differ (check the suite's flags)")
    with (out / RESTORED).open("a") as f:
        for c in restored:
            f.write(json.dumps(c) + "\n")
    facts = [{"task": d.get("task", d.get(word)), **{k: v for k, v in d.items()
              if k not in ("task", word)}} for d in summary["datasets"]]  # fmt: skip
    (out / "datasets.jsonl").write_text("".join(json.dumps(d) + "\n" for d in facts))
    print(f"wrote {out / RESTORED} and {out / 'datasets.jsonl'}")


if __name__ == "__main__":
    main()
