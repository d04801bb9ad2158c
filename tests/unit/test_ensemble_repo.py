"""Ensembles in the model repository: their step models are found, checked and rendered with them."""

from pathlib import Path

import pytest

from perseus.errors import InputError
from perseus.scenario import parse
from perseus.server import repository

REPO = Path(__file__).resolve().parents[2] / "model_repository"


def scenario(server=None):
    tenant = {"name": "photos", "model": "image_pipeline", "sla_ms": 100, "load": {"arrival": "poisson", "rate": 1}}
    if server:
        tenant["server"] = server
    return parse({"name": "x", "tenants": [tenant]}, "x.toml")


def test_steps_in_order():
    assert repository.steps(REPO, "image_pipeline") == ["image_preprocess", "resnet", "image_postprocess"]
    assert repository.steps(REPO, "resnet") == []


def test_render_copies_the_steps_under_their_own_names(tmp_path):
    rendered = repository.render(scenario(), ["photos"], REPO, tmp_path, gpu=False)
    assert set(rendered) == {"photos", "image_preprocess", "resnet", "image_postprocess"}
    assert rendered["photos"].platform == "ensemble" and rendered["photos"].name == "photos"
    assert (tmp_path / "resnet" / "config.pbtxt").exists()
    assert (tmp_path / "image_preprocess" / "1" / "model.py").exists()


def test_batching_settings_on_an_ensemble_are_refused():
    with pytest.raises(InputError, match="is an ensemble") as info:
        repository.check_models(scenario({"instances": 2}), REPO, "x.toml")
    assert info.value.field == "tenants[0].server.instances"


def test_missing_step_model_is_bad_input(tmp_path):
    (tmp_path / "pipe").mkdir()
    text = (REPO / "image_pipeline" / "config.pbtxt").read_text().replace('name: "image_pipeline"', 'name: "pipe"')
    (tmp_path / "pipe" / "config.pbtxt").write_text(text)
    s = parse(
        {
            "name": "x",
            "tenants": [{"name": "a", "model": "pipe", "sla_ms": 1, "load": {"arrival": "poisson", "rate": 1}}],
        },
        "x.toml",
    )
    with pytest.raises(InputError, match="needs model 'image_preprocess'"):
        repository.check_models(s, tmp_path, "x.toml")
