"""`gemkit compose` and `gemkit components` through typer's CliRunner."""

from __future__ import annotations

import json

from core_fixtures import tiny_models
from gemkit.cli.main import app
from typer.testing import CliRunner

from gemkit import SelectorConfig
from gemkit.models import save_models

runner = CliRunner()


def test_components_lists_every_registered_name() -> None:
    r = runner.invoke(app, ["components"])
    assert r.exit_code == 0
    for name in ("actor", "behavior", "unimodal", "mode", "bary", "lcb", "zscore", "raw",
                 "topk", "no_pw", "unimodal_actor_cands"):  # fmt: skip
        assert name in r.output


def test_compose_writes_the_spec(tmp_path) -> None:
    out = tmp_path / "spec.json"
    r = runner.invoke(app, ["compose", "--proposer", "actor", "--support", "zscore", "--value",
                            "lcb", "--reducer", "top1", "--n", "64", "--beta", "1", "--lam", "0.5",
                            "--out", str(out)])  # fmt: skip
    assert r.exit_code == 0, r.output
    cfg = SelectorConfig.from_json(out)
    assert cfg == SelectorConfig(n=64, beta=1.0, lam=0.5)
    r = runner.invoke(app, ["compose", "--spec", str(out), "--n", "7", "--support", "raw",
                            "--out", str(out)])  # fmt: skip
    assert r.exit_code == 0, r.output
    assert json.loads(out.read_text())["params"] == {
        **SelectorConfig(n=7, support="raw").to_dict()["params"]
    }


def test_compose_from_checkpoint_builds_the_selector(tmp_path) -> None:
    save_models(tmp_path / "ck", tiny_models())
    r = runner.invoke(app, ["compose", "--checkpoint", str(tmp_path / "ck"), "--preset",
                            "behavior_only_cands", "--n", "16"])  # fmt: skip
    assert r.exit_code == 0, r.output
    assert "BehaviorSource" in r.output and "M = 17" in r.output


def test_compose_errors_are_one_line() -> None:
    r = runner.invoke(app, ["compose", "--proposer", "actr"])
    assert r.exit_code == 2
    assert "actor" in r.output and "behavior" in r.output  # valid choices listed
    r = runner.invoke(app, ["compose", "--beta", "-1"])
    assert r.exit_code == 2 and "beta must be >= 0" in r.output
    assert "Traceback" not in r.output
    r = runner.invoke(app, ["compose", "--checkpoint", "/nonexistent/ck"])
    assert r.exit_code == 2 and "does not exist" in r.output


def _flat(text: str) -> str:
    """The words of an error box, its borders and line breaks gone."""
    return " ".join(text.replace("│", " ").split())


def test_a_mistyped_component_name_gets_the_closest_valid_one() -> None:
    r = runner.invoke(app, ["compose", "--support", "zscroe"], terminal_width=200)
    assert r.exit_code == 2
    assert "Did you mean 'zscore'? Valid support names: none, raw, zscore." in _flat(r.output)
    r = runner.invoke(app, ["eval", "--value", "lbc"], terminal_width=200)
    assert r.exit_code == 2 and "Did you mean 'lcb'?" in _flat(r.output)
    r = runner.invoke(app, ["compose", "--help"], terminal_width=200)
    assert "[none|raw|zscore]" in r.output  # the valid names in the help
