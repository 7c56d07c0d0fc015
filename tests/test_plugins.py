"""Plug-ins for real: a package installed with pip registers a value through an entry point.

The package is built in a temp dir and pip-installed (no deps, no index) into a virtual
environment that sees this one's packages (``--system-site-packages``), so the running
environment never holds it; ``gemkit components`` and ``gemkit compose`` then run in that
environment.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from core_fixtures import tiny_models

from gemkit.models import save_models

NAME = "plugin_negnorm"

PYPROJECT = """\
[build-system]
requires = ["setuptools>=68"]
build-backend = "setuptools.build_meta"

[project]
name = "gemkit-test-plugin"
version = "0.0.1"

[project.entry-points."gemkit.values"]
plugin_negnorm = "gemkit_test_plugin:negnorm"
"""

MODULE = '''\
"""A gemkit value plug-in for the test suite."""

import torch


class NegNorm:
    """Value = minus the norm of each candidate action."""

    def __call__(self, states: torch.Tensor, candidates: torch.Tensor) -> torch.Tensor:
        return -candidates.norm(dim=-1)

    def __repr__(self) -> str:
        return "NegNorm()"


def negnorm(models, config):
    """Minus the candidate's norm (the test plug-in)."""
    return NegNorm()
'''

USE_IT = """\
import torch
from gemkit import compose
sel = compose(value="plugin_negnorm", models={ck!r}, n=6)
out = sel.select(torch.randn(3, 3), generator=torch.Generator().manual_seed(0))
assert torch.equal(out.value, -out.candidates.norm(dim=-1)), "the plug-in did not score"
print("scored by", sel.value)
"""


def _run(python: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COLUMNS": "200", "NO_COLOR": "1", "PYTHONWARNINGS": "ignore"}
    return subprocess.run(
        [str(python), *args], capture_output=True, text=True, env=env, timeout=240, check=False
    )


def _see_this_environment(python: Path) -> None:
    """Make the inner venv see the running environment's packages (gemkit, pip, setuptools).

    ``--system-site-packages`` shows the *base* interpreter's site-packages; when the tests run
    in a venv (gemkit installed there, not in the base), that is not where gemkit is. A ``.pth``
    line in the inner venv adds each of this interpreter's site directories with
    ``site.addsitedir``, so their own ``.pth`` files (an editable install's) are read too; the
    inner venv's site-packages stays first, so the plug-in installs and uninstalls there."""
    import site
    import sysconfig

    inner = _run(python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])")
    assert inner.returncode == 0, inner.stderr
    outer = [*site.getsitepackages(), sysconfig.get_paths()["purelib"]]
    lines = [f"import site; site.addsitedir({p!r})\n" for p in dict.fromkeys(outer)
             if Path(p).is_dir()]  # fmt: skip
    (Path(inner.stdout.strip()) / "_gemkit_test_outer_env.pth").write_text("".join(lines))


def test_a_pip_installed_plugin_value_is_listed_and_used(tmp_path: Path) -> None:
    pkg = tmp_path / "plugin"
    (pkg / "gemkit_test_plugin").mkdir(parents=True)
    (pkg / "pyproject.toml").write_text(PYPROJECT)
    (pkg / "gemkit_test_plugin" / "__init__.py").write_text(MODULE)
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", "--without-pip",
                    str(venv)], check=True, timeout=120)  # fmt: skip
    python = venv / ("Scripts/python.exe" if os.name == "nt" else "bin/python")
    _see_this_environment(python)
    ck = save_models(tmp_path / "ck", tiny_models())

    pip = ("-m", "pip", "--disable-pip-version-check", "-q")
    installed = _run(python, *pip, "install", "--no-deps", "--no-build-isolation", "--no-index",
                     str(pkg))  # fmt: skip
    assert installed.returncode == 0, installed.stdout + installed.stderr
    try:
        listed = _run(python, "-m", "gemkit", "components")
        assert listed.returncode == 0, listed.stderr
        line = next(ln for ln in listed.stdout.splitlines() if NAME in ln)
        assert "value" in line and "Minus the candidate's norm" in line

        spec = tmp_path / "spec.json"
        composed = _run(python, "-m", "gemkit", "compose", "--checkpoint", str(ck), "--value",
                        NAME, "--n", "4", "--out", str(spec))  # fmt: skip
        assert composed.returncode == 0, composed.stdout + composed.stderr
        assert "NegNorm()" in composed.stdout
        assert json.loads(spec.read_text())["params"]["value"] == NAME

        used = _run(python, "-c", USE_IT.format(ck=str(ck)))
        assert used.returncode == 0, used.stderr
        assert "scored by NegNorm()" in used.stdout
    finally:
        removed = _run(python, *pip, "uninstall", "-y", "gemkit-test-plugin")
    assert removed.returncode == 0, removed.stderr
    after = _run(python, "-m", "gemkit", "components")
    assert after.returncode == 0 and NAME not in after.stdout
    # the running environment never saw it
    from gemkit.registry import VALUES

    assert NAME not in VALUES.names()
