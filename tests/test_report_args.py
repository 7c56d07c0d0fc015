"""reproductions/report.py: where its outputs go (smoke runs never touch docs/)."""

from __future__ import annotations

from pathlib import Path
from types import ModuleType

import pytest
from script_fixtures import load_script

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def report() -> ModuleType:
    return load_script("reproductions/report.py", "report")


def test_full_run_writes_the_fork_report_in_docs(report: ModuleType) -> None:
    args = report.parse_args([])
    assert args.doc == ROOT / "docs" / "results-fork.md"  # docs/results.md is the mazes'
    assert args.datasets == ["fork"]
    assert args.out == ROOT / "reproductions" / "out"


def test_smoke_run_writes_to_a_scratch_folder(report: ModuleType, tmp_path: Path) -> None:
    args = report.parse_args(["--smoke"])
    docs = (ROOT / "docs").resolve()
    assert not args.doc.resolve().is_relative_to(docs)
    assert not args.out.resolve().is_relative_to(docs)
    assert args.doc.parent == args.out and args.fork_train_steps == 40
    args = report.parse_args(["--smoke", "--out", str(tmp_path)])
    assert args.doc == tmp_path / "results-fork.md"
    for bad in (["--doc", str(ROOT / "docs" / "results-fork.md")], ["--out", str(ROOT / "docs")]):
        with pytest.raises(SystemExit):
            report.parse_args(["--smoke", *bad])


def test_report_takes_a_backend(report: ModuleType) -> None:
    """The report's training runs and sweeps fan out on gemkit.backends (serial by default)."""
    assert report.parse_args(["--smoke"]).backend == "serial"
    args = report.parse_args(["--smoke", "--backend", "ray", "--address", "auto"])
    assert (args.backend, args.address, args.cpus_per_task) == ("ray", "auto", 1.0)
