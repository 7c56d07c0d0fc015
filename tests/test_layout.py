"""The shape of the code (issue 12): small modules, imports that run one way, no cycles."""

from __future__ import annotations

import ast
import pathlib
from collections.abc import Iterator

ROOT = pathlib.Path(__file__).resolve().parents[1]
MAX_LINES = 400
PENDING: set[str] = set()
"""Modules allowed over the limit while being reworked (none now)."""


def _modules() -> dict[str, pathlib.Path]:
    """Every module of the installed package by dotted name (``cli/`` is ``gemkit.cli``)."""
    mods: dict[str, pathlib.Path] = {}
    for base, prefix in ((ROOT / "gemkit", "gemkit"), (ROOT / "cli", "gemkit.cli")):
        for f in base.rglob("*.py"):
            parts = [p for p in f.relative_to(base).with_suffix("").parts if p != "__init__"]
            mods[".".join([prefix, *parts])] = f
    return mods


def _imports(name: str, path: pathlib.Path, mods: dict[str, pathlib.Path]) -> set[str]:
    """The gemkit modules ``name`` imports anywhere (module level, functions, TYPE_CHECKING)."""
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                base = f"{parent}.{base}" if base else parent
            for a in node.names:
                found.add(f"{base}.{a.name}" if f"{base}.{a.name}" in mods else base)
    return {m for m in found if m in mods and m != name}


def _cycles(graph: dict[str, set[str]]) -> Iterator[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()

    def visit(v: str) -> Iterator[list[str]]:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph[v]:
            if w not in index:
                yield from visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                yield sorted(comp)

    for v in graph:
        if v not in index:
            yield from visit(v)


def test_no_module_over_400_lines() -> None:
    long = {
        str(p.relative_to(ROOT)): n
        for p in _modules().values()
        if (n := len(p.read_text().splitlines())) > MAX_LINES
    }
    assert {k: v for k, v in long.items() if k not in PENDING} == {}


def test_data_and_envs_import_nothing_above_them() -> None:
    mods = _modules()
    above = ("gemkit.eval", "gemkit.train", "gemkit.selector", "gemkit.cli")
    upward = {
        name: sorted(m for m in _imports(name, path, mods) if m.startswith(above))
        for name, path in mods.items()
        if name.startswith(("gemkit.data", "gemkit.envs"))
    }
    assert {k: v for k, v in upward.items() if v} == {}


def test_no_import_cycle_but_the_typer_apps() -> None:
    mods = _modules()
    graph = {name: _imports(name, path, mods) for name, path in mods.items()}
    cycles = [c for c in _cycles(graph) if not all(m.startswith("gemkit.cli") for m in c)]
    assert cycles == []


def test_importing_the_protocols_loads_no_evaluation_stack() -> None:
    """``import gemkit.protocols`` (a leaf) and ``import gemkit`` stay light: no gymnasium,
    Minari or gemkit.eval until a name that needs them is used."""
    import subprocess
    import sys

    code = (
        "import sys, gemkit.protocols, gemkit\n"
        "heavy = [m for m in ('gymnasium', 'minari', 'gemkit.eval', 'matplotlib') "
        "if m in sys.modules]\n"
        "assert not heavy, heavy\n"
        "names = ['expectile_weight', 'lcb', 'lcb_z', 'mean', 'min']\n"
        "assert gemkit.registry.VALUES.names() == names\n"
        "gemkit.evaluate\n"
        "assert 'gemkit.eval' in sys.modules\n"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr


def test_scripts_import_the_package_not_each_other() -> None:
    """``reproductions/`` and ``benchmarks/`` scripts share code through ``gemkit`` (e.g.
    ``gemkit.experiments``), never by putting a script folder on ``sys.path``."""
    scripts = sorted([*ROOT.glob("reproductions/*.py"), *ROOT.glob("benchmarks/*.py")])
    assert scripts
    offenders = [str(p.relative_to(ROOT)) for p in scripts if "sys.path.insert" in p.read_text()]
    assert offenders == []


def test_script_modules_stay_short() -> None:
    """A suite script is a command line over ``gemkit.experiments``; the longest scripts are
    listed here until they move into the package too (no new ones)."""
    long = {
        str(p.relative_to(ROOT)): n
        for p in sorted([*ROOT.glob("reproductions/*.py"), *ROOT.glob("benchmarks/*.py")])
        if (n := len(p.read_text().splitlines())) > MAX_LINES
    }
    assert set(long) <= {"benchmarks/train.py"}, long
