"""Quiet, readable output: no third-party notices, full-width tables when piped."""

from __future__ import annotations

import subprocess
import sys

import torch
from gemkit.cli.main import app
from typer.testing import CliRunner

from gemkit.models import ConditionalGMM, CriticEnsemble, Models
from gemkit.registry import REGISTRIES


def test_registering_robotics_prints_nothing() -> None:
    """gymnasium-robotics prints an Adroit notice on import (stderr); gemkit keeps it out."""
    code = "from gemkit.envs import register_robotics; assert register_robotics()"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120, check=False)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "" and "Adroit" not in proc.stderr, proc.stderr


def test_tables_keep_their_width_when_piped() -> None:
    """CliRunner's output is not a terminal: rows stay whole, no cell cut short with '…'."""
    res = CliRunner().invoke(app, ["components"])
    assert res.exit_code == 0, res.output
    assert "…" not in res.output
    rows = [[c.strip() for c in line.split("│")[1:-1]] for line in res.output.splitlines()]
    for kind, registry in REGISTRIES.items():
        for name, doc in registry.describe().items():
            assert [kind, name, doc] in rows, (kind, name)


def test_profile_leaves_the_callers_networks_where_they_are() -> None:
    """profile_select on another device runs a copy; the shared networks do not move."""
    from gemkit.eval.profile import on_device

    models = Models(actor=ConditionalGMM(3, 2, 2, hidden=(8,)),
                    behavior=ConditionalGMM(3, 2, 2, hidden=(8,)),
                    critic=CriticEnsemble(3, 2, 2, hidden=(8,)))  # fmt: skip
    assert on_device(models, "cpu") is models
    moved = on_device(models, "meta")  # a device that allocates nothing
    assert moved is not models
    assert all(p.device.type == "meta" for m in moved.modules().values() for p in m.parameters())
    assert all(p.device.type == "cpu" for m in models.modules().values() for p in m.parameters())
    assert models.actor is not None and torch.isfinite(models.actor.means_head.weight).all()


def test_version_and_escaped_extras_in_help() -> None:
    from importlib.metadata import version

    runner = CliRunner()
    res = runner.invoke(app, ["--version"])
    assert res.exit_code == 0 and res.output.strip() == f"gemkit {version('gemkit')}"
    res = runner.invoke(app, ["train", "--help"], terminal_width=200)
    assert res.exit_code == 0
    assert '"gemkit[ray]"' in res.output  # rich markup would eat an unescaped [ray]


def test_help_lists_the_commands_in_the_order_of_the_work() -> None:
    from gemkit.cli.main import WORKFLOW

    out = CliRunner().invoke(app, ["--help"], terminal_width=120).output
    at = {name: out.index(f"│ {name} ") for name in WORKFLOW}
    assert sorted(at, key=at.get) == list(WORKFLOW), at
    for panel in ("Start here", "Train", "Select actions", "Evaluate", "Diagnose"):
        assert f"─ {panel} ─" in out


def test_flags_show_no_value_type_in_help() -> None:
    """A flag takes no value: no ``<bool>`` beside ``--quiet``, ``--compile`` or ``--help``."""
    from gemkit.cli.main import app
    from typer.testing import CliRunner

    for command in (["train"], ["eval"], ["compose"], ["fit-proposer"], []):
        out = CliRunner().invoke(app, [*command, "--help"], env={"COLUMNS": "100"}).output
        assert "--help" in out and "<bool>" not in out, command


def test_help_paragraphs_wrap_to_the_terminal_not_to_the_source() -> None:
    """A docstring's hard line breaks do not survive into ``--help`` (they wrapped unevenly)."""
    from gemkit.cli.main import app
    from typer.testing import CliRunner

    out = CliRunner().invoke(app, ["train", "--help"], env={"COLUMNS": "80"}).output
    lines = [line.strip() for line in out.splitlines()]
    assert "steps/4) steps, then updates every network; the plan is printed before" in lines
    assert all(len(line) <= 80 for line in out.splitlines())


def test_quickstart_says_what_the_candidates_added_from_its_own_rows() -> None:
    """The quickstart's last key line is computed from its table: GEM with N candidates minus
    its anchor alone (and the unimodal actor likewise), within 80 columns; where the candidates
    added nothing it says why and where they do."""
    from gemkit.cli._common import candidates_line

    rows = [{"label": "GEM, N=64", "score_mean": 100.0},
            {"label": "GEM anchor, N=0", "score_mean": 100.0},
            {"label": "unimodal, N=0", "score_mean": 40.0},
            {"label": "unimodal, N=64", "score_mean": 95.5}]  # fmt: skip
    text = candidates_line(rows)
    assert "GEM +0.0, unimodal +55.5" in text and "docs/results-maze2d.md" in text
    assert all(len(line) <= 80 for line in text.splitlines())
    rows[0]["score_mean"], rows[1]["score_mean"] = 120.6, 41.8
    text = candidates_line(rows)
    assert "GEM +78.8" in text and "Maze2D" not in text
