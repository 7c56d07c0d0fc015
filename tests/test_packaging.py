"""The install: one top-level package (``gemkit``), the CLI as ``gemkit.cli``, ``python -m``."""

from __future__ import annotations

import pathlib
import subprocess
import sys
from importlib import metadata


def _python(code: str, cwd: pathlib.Path) -> str:
    """Run ``code`` in a fresh interpreter outside the repository (so only the install counts)."""
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=cwd, capture_output=True, text=True, check=True
    )
    return done.stdout.strip()


def test_install_puts_no_top_level_cli_package_on_the_path(tmp_path: pathlib.Path) -> None:
    out = _python(
        "import importlib.util as u; "
        "print(u.find_spec('cli') is None, u.find_spec('gemkit.cli') is not None)",
        tmp_path,
    )
    assert out == "True True"
    top_level = metadata.distribution("gemkit").read_text("top_level.txt")
    assert top_level is None or top_level.split() == ["gemkit"]


def test_console_script_points_into_gemkit() -> None:
    (script,) = [ep for ep in metadata.entry_points(group="console_scripts") if ep.name == "gemkit"]
    assert script.value == "gemkit.cli.main:main"


def test_python_dash_m_gemkit_runs_the_cli(tmp_path: pathlib.Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "gemkit", "--help"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=True,
        env={"COLUMNS": "100", "PATH": "/usr/bin:/bin"},
    )
    assert "Usage: gemkit" in done.stdout
