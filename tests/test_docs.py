"""The docs' code runs: README.md's Python blocks, the custom scorer of docs/components.md, the
doctests; and the docs stay inside the repository (the method page included)."""

from __future__ import annotations

import doctest
import pathlib
import re
from pathlib import Path

import pytest
import torch

import gemkit.adapters.modules
import gemkit.models.gmm
import gemkit.selector
from gemkit.data import FORK_DATASET_ID as FORK_ID

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
README = ROOT / "README.md"


def python_blocks(path: Path) -> list[str]:
    return re.findall(r"```python\n(.*?)```", path.read_text(), flags=re.S)


def test_custom_scorer_block_runs() -> None:
    blocks = [b for b in python_blocks(DOCS / "components.md") if "check_value(" in b]
    assert len(blocks) == 1
    exec(compile(blocks[0], "docs/components.md", "exec"), {"__name__": "docs_example"})


def section_blocks(path: Path, heading: str) -> list[str]:
    """The ```python blocks of the ``## heading`` section of ``path``."""
    sections = re.split(r"^## ", path.read_text(), flags=re.M)
    body = next(s for s in sections if s.startswith(heading + "\n"))
    return re.findall(r"```python\n(.*?)```", body, flags=re.S)


@pytest.mark.parametrize(
    ("heading", "needs"),
    [("d3rlpy", "d3rlpy"), ("Plain PyTorch modules", None), ("TorchRL", "torchrl")],
)
def test_wrap_a_critic_blocks_run(heading: str, needs: str | None) -> None:
    """docs/wrap-a-critic.md: each adapter's example runs as written."""
    if needs is not None:
        pytest.importorskip(needs)
    blocks = section_blocks(DOCS / "wrap-a-critic.md", heading)
    assert len(blocks) == 1
    exec(compile(blocks[0], "docs/wrap-a-critic.md", "exec"), {"__name__": "docs_example"})


@pytest.mark.parametrize("module", [gemkit.selector, gemkit.models.gmm, gemkit.adapters.modules])
def test_doctests(module: object) -> None:
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)  # type: ignore[arg-type]
    assert result.attempted > 0
    assert result.failed == 0


def test_readme_python_blocks_run_as_written(
    fork_store: pathlib.Path,
    tmp_path: pathlib.Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Every ```python block of README.md, run in a folder where the quickstart has run."""
    from gemkit.data import load
    from gemkit.train import TrainConfig, train

    torch.set_num_threads(1)
    blocks = python_blocks(README)
    assert blocks
    # what the quickstart leaves behind, at a tiny size: its GEM checkpoint under its --out
    cfg = TrainConfig.profile("small", hidden=(16, 16), n_critics=2, n_components=2,
                              batch_size=32)  # fmt: skip
    train(load(FORK_ID), cfg, tmp_path / "gemkit-quickstart" / "gem", 4, tensorboard=False)
    monkeypatch.chdir(tmp_path)
    namespace: dict[str, object] = {"__name__": "readme"}
    for block in blocks:
        exec(compile(block, "README.md", "exec"), namespace)
    assert namespace["out"].action.shape == (8, 2)  # type: ignore[attr-defined]


def test_docs_stay_inside_the_repository() -> None:
    """README and docs link the method page in docs/, never a file outside the repository."""
    text = README.read_text()
    assert "(docs/method.md)" in text
    method = (DOCS / "method.md").read_text()
    for eq in ("L_V = E[ |t - 1(u < 0)| * u^2 ]", "y   = r + discount * (1 - d) * V(s')",
               "g = min(exp(alpha * A), 100)", "z_i = (l_i - mean_j l_j) / max(std_j l_j, 1e-6)",
               "LCB(s, a) = mean_e Q_e(s, a) - beta * std_e Q_e(s, a)"):  # fmt: skip
        assert eq in method, eq
    for path in [README, *DOCS.glob("*.md")]:
        body = path.read_text()
        assert "../shared" not in body and "gem-method" not in body, path
    for path in (README, *(DOCS / f"{n}.md" for n in ("method", "experiments", "components"))):
        for link in re.findall(r"\]\(([^)#]+)", path.read_text()):
            if "://" not in link:
                assert (path.parent / link).exists(), (path, link)


def test_every_finding_is_dated_and_links_resolve() -> None:
    """docs/findings/: one dated entry per question (``*Updated YYYY-MM-DD.*`` under its
    title), every relative link pointing at a file of the repository."""
    findings = sorted((DOCS / "findings").glob("*.md"))
    assert findings
    for path in findings:
        lines = path.read_text().splitlines()
        assert lines[0].startswith("# ") and re.fullmatch(
            r"\*Updated \d{4}-\d{2}-\d{2}\.\*", lines[2]
        ), path
        for link in re.findall(r"\]\(([^)#]+)", path.read_text()):
            if "://" not in link:
                assert (path.parent / link).exists(), (path, link)
