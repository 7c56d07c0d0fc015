"""Model directories: safetensors + manifest round trip, corrupt files get one clear error."""

from __future__ import annotations

import json

import pytest
import torch
from core_fixtures import gen, states, tiny_models

from gemkit import CheckpointError, compose
from gemkit.models import load_models, save_models
from gemkit.models.io import MANIFEST, WEIGHTS


def test_round_trip_gives_identical_selections(tmp_path) -> None:
    models = tiny_models()
    models.meta["dataset"] = "tiny"
    save_models(tmp_path, models)
    loaded = load_models(tmp_path)
    assert loaded.meta == {"dataset": "tiny"}
    a = compose(models=models, n=16).select(states(4), generator=gen(3))
    b = compose(models=tmp_path, n=16).select(states(4), generator=gen(3))
    assert torch.equal(a.action, b.action) and torch.equal(a.score, b.score)


def test_obs_normalisation_from_meta(tmp_path) -> None:
    models = tiny_models()
    models.meta.update(obs_mean=[1.0, 2.0, 3.0], obs_std=[2.0, 2.0, 2.0])
    save_models(tmp_path, models)
    s = states(3)
    raw = compose(models=tmp_path, n=4).select(s, generator=gen())
    torch.testing.assert_close(
        load_models(tmp_path).normalize_obs(s), (s - torch.tensor([1.0, 2.0, 3.0])) / 2.0
    )
    models.meta.clear()
    assert models.obs_stats() is None
    assert torch.equal(models.normalize_obs(s), s)
    ref = compose(models=models, n=4).select((s - torch.tensor([1.0, 2.0, 3.0])) / 2.0,
                                             generator=gen())  # fmt: skip
    torch.testing.assert_close(raw.score, ref.score)


def _one_line(e: pytest.ExceptionInfo[BaseException]) -> None:
    assert "\n" not in str(e.value)


def test_corrupt_checkpoints(tmp_path) -> None:
    with pytest.raises(CheckpointError, match="does not exist") as e:
        load_models(tmp_path / "missing")
    _one_line(e)
    (tmp_path / "empty").mkdir()
    with pytest.raises(CheckpointError, match="not a gemkit checkpoint") as e:
        load_models(tmp_path / "empty")
    _one_line(e)
    d = save_models(tmp_path / "ok", tiny_models())
    data = (d / WEIGHTS).read_bytes()
    (d / WEIGHTS).write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="truncated") as e:
        load_models(d)
    _one_line(e)
    d = save_models(tmp_path / "json", tiny_models())
    (d / MANIFEST).write_text("{not json")
    with pytest.raises(CheckpointError, match="not valid JSON") as e:
        load_models(d)
    _one_line(e)
    d = save_models(tmp_path / "foreign", tiny_models())
    (d / MANIFEST).write_text(json.dumps({"format": "something-else"}))
    with pytest.raises(CheckpointError, match="not a gemkit model manifest"):
        load_models(d)
    d = save_models(tmp_path / "arch", tiny_models())
    man = json.loads((d / MANIFEST).read_text())
    man["models"]["actor"]["spec"]["n_components"] = 7
    (d / MANIFEST).write_text(json.dumps(man))
    with pytest.raises(CheckpointError, match="do not fit") as e:
        load_models(d)
    _one_line(e)


def test_third_party_critics_are_not_saved(tmp_path) -> None:
    m = tiny_models()
    m.critic = torch.nn.Linear(5, 1)
    with pytest.raises(CheckpointError, match="not a gemkit network"):
        save_models(tmp_path, m)
