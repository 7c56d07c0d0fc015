"""Every results page with committed cells regenerates from them, byte for byte, on a clone
without runs or datasets (``docs/results/<suite>/cells/report.json`` names the command)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SPECS = sorted((ROOT / "docs" / "results").glob("*/cells/report.json"))


def test_there_is_a_regenerable_page() -> None:
    assert SPECS, "no docs/results/*/cells/report.json found"


@pytest.mark.parametrize("spec", SPECS, ids=[p.parent.parent.name for p in SPECS])
def test_results_page_regenerates_byte_for_byte(spec: Path, tmp_path: Path) -> None:
    body = json.loads(spec.read_text())
    figures = Path(body["figures"])
    here = tmp_path / "clone"
    shutil.copytree(ROOT / figures, here / figures)  # the cells and the reports they read
    for out in body["outputs"]:
        (here / out).unlink(missing_ok=True)
    cells = here / spec.parent.relative_to(ROOT)
    env = {**os.environ, "MINARI_DATASETS_PATH": str(tmp_path / "no-datasets"),
           "MPLBACKEND": "Agg"}  # fmt: skip
    cmd = [sys.executable, str(ROOT / body["script"]), *body["args"], "--out", str(cells),
           "--runs", str(tmp_path / "no-runs"), "--doc", str(here / body["doc"]),
           "--figures", str(here / figures)]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600, check=False)
    assert proc.returncode == 0, proc.stderr[-2000:]
    for out in body["outputs"]:
        got, want = (here / out).read_bytes(), (ROOT / out).read_bytes()
        if out.endswith(".png"):
            assert got[:8] == b"\x89PNG\r\n\x1a\n" and got[16:24] == want[16:24], out  # size
        else:
            assert got == want, f"{out} does not regenerate from its cells"
    # the report reads its facts from the cells folder and leaves it as committed
    for f in spec.parent.iterdir():
        assert (cells / f.name).read_bytes() == f.read_bytes(), f.name


def test_cells_restored_from_a_pages_tables_rebuild_the_same_tables(tmp_path: Path) -> None:
    """reproductions/restore_cells.py: the Maze2D page's committed CSV and summary, restored
    into an empty store (every row matched to a planned cell; the plan's seed-1 cells of
    medium and large are not measured yet, so not --strict), report the same CSV
    and the same numbers in the summary (only the CPU field and the curves' final points
    could differ: the per-episode returns are not in the CSV)."""
    body = json.loads((ROOT / "docs/results/maze2d/cells/report.json").read_text())
    env = {**os.environ, "MINARI_DATASETS_PATH": str(tmp_path / "no-datasets"),
           "MPLBACKEND": "Agg"}  # fmt: skip
    fig = Path(body["figures"])
    restore = [sys.executable, str(ROOT / "reproductions/restore_cells.py"), "--csv",
               str(ROOT / fig / "maze2d_cells.csv"), "--summary",
               str(ROOT / fig / "maze2d_summary.json"), "--", *body["args"][1:],
               "--out", str(tmp_path / "cells")]  # fmt: skip
    proc = subprocess.run(restore, capture_output=True, text=True, env=env, check=False)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "(0 did not)" in proc.stdout, proc.stdout
    report = [sys.executable, str(ROOT / body["script"]), *body["args"], "--out",
              str(tmp_path / "cells"), "--runs", str(tmp_path / "no-runs"), "--doc",
              str(tmp_path / "page.md"), "--figures", str(tmp_path / "figs")]  # fmt: skip
    proc = subprocess.run(report, capture_output=True, text=True, env=env, check=False)
    assert proc.returncode == 0, proc.stderr[-2000:]
    got = (tmp_path / "figs" / "maze2d_cells.csv").read_text()
    assert got == (ROOT / fig / "maze2d_cells.csv").read_text()
    a = json.loads((tmp_path / "figs" / "maze2d_summary.json").read_text())
    b = json.loads((ROOT / fig / "maze2d_summary.json").read_text())
    assert {k: v for k, v in a.items() if k != "cpu"} == {k: v for k, v in b.items() if k != "cpu"}
