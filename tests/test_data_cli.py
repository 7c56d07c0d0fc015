"""``gemkit data``: make, list, info and one-line errors through the CLI."""

from __future__ import annotations

import pathlib

from gemkit.cli.main import app
from typer.testing import CliRunner


def test_make_list_info_and_errors(minari_store: pathlib.Path) -> None:
    runner = CliRunner()
    res = runner.invoke(app, ["data", "make", "fork", "--steps", "300", "--ref-episodes", "2",
                              "--threads", "1"])  # fmt: skip
    assert res.exit_code == 0, res.output
    assert "wrote gemkit/fork-v0: 300 steps" in res.output
    assert f"stored in {minari_store / 'gemkit' / 'fork-v0'}" in res.output
    res = runner.invoke(app, ["data", "list"])
    assert res.exit_code == 0
    assert "gemkit/fork-v0" in res.output
    res = runner.invoke(app, ["data", "info", "gemkit/fork-v0"])
    assert res.exit_code == 0
    assert "transitions: 300" in res.output
    res = runner.invoke(app, ["data", "info", "gemkit/missing-v0"])
    assert res.exit_code == 2
    assert "error: no local Minari dataset 'gemkit/missing-v0'" in res.output
    res = runner.invoke(app, ["data", "make", "fork", "--steps", "300"])
    assert res.exit_code == 2
    assert "already exists" in res.output
    assert len(res.output.strip().splitlines()) == 1  # the error alone, no empty "0/1" bar


def test_malformed_ids_fail_first_and_never_break_the_listing(minari_store) -> None:
    runner = CliRunner()
    r = runner.invoke(app, ["data", "make", "fork", "--id", "t/fork-v0", "--steps", "300"])
    assert r.exit_code != 0 and "malformed" in r.output and "Traceback" not in r.output
    assert not (minari_store / "t").exists()  # nothing half-written
    # a folder with a malformed id written by hand: the listing still works
    bad = minari_store / "t" / "fork-v0" / "data"
    bad.mkdir(parents=True)
    (bad / "metadata.json").write_text("{}")
    r = runner.invoke(app, ["data", "list"])
    assert r.exit_code == 0, r.output


def test_make_maze2d_reports_both_scales(minari_store: pathlib.Path) -> None:
    runner = CliRunner()
    res = runner.invoke(app, ["data", "make", "maze2d-umaze", "--steps", "500",
                              "--ref-episodes", "1"])  # fmt: skip
    assert res.exit_code == 0, res.output
    assert "wrote gemkit/maze2d-umaze-v1: 500 steps" in res.output
    assert "reference scores (D4RL's published) random 23.850, expert 161.860" in res.output
    assert "gemkit's own references (random, replanning expert)" in res.output
    res = runner.invoke(app, ["data", "info", "gemkit/maze2d-umaze-v1"])
    assert res.exit_code == 0
    assert "state dim: 4" in res.output and "terminals: 0" in res.output



def test_make_store_option_chooses_the_store(minari_store: pathlib.Path) -> None:
    other = minari_store.parent / "elsewhere"
    res = CliRunner().invoke(app, ["data", "make", "fork", "--steps", "200", "--ref-episodes", "1",
                                   "--store", str(other)])  # fmt: skip
    assert res.exit_code == 0, res.output
    assert f"stored in {other / 'gemkit' / 'fork-v0'}" in res.output
    assert (other / "gemkit" / "fork-v0" / "data" / "metadata.json").is_file()
