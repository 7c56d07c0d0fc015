"""The docs' code runs: the custom scorer of docs/components.md, and the doctests."""

from __future__ import annotations

import doctest
import re
from pathlib import Path

import pytest

import gemkit.models.gmm
import gemkit.selector

DOCS = Path(__file__).resolve().parents[1] / "docs"


def python_blocks(path: Path) -> list[str]:
    return re.findall(r"```python\n(.*?)```", path.read_text(), flags=re.S)


def test_custom_scorer_block_runs() -> None:
    blocks = [b for b in python_blocks(DOCS / "components.md") if "check_value(" in b]
    assert len(blocks) == 1
    exec(compile(blocks[0], "docs/components.md", "exec"), {"__name__": "docs_example"})


@pytest.mark.parametrize("module", [gemkit.selector, gemkit.models.gmm])
def test_doctests(module: object) -> None:
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)  # type: ignore[arg-type]
    assert result.attempted > 0
    assert result.failed == 0
