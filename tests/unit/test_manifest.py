"""The typed manifest: manifests written by the previous version load, and a round trip changes nothing.

The fixtures in tests/data/manifests/ are real manifest.json files written by perseus before the typed
manifest (commit fea04e2): `perseus run scenarios/smoke.toml`, `perseus capacity --quick`, `perseus sweep
--limit 1` and `perseus calibrate --quick`.
"""

from __future__ import annotations

import json
import shutil
import stat
from pathlib import Path

import pytest

from perseus import results
from perseus.kinds import DeploymentKind
from perseus.manifest import CommandKind, Manifest, Status
from perseus.plan import Deployment
from perseus.run import save_inputs

FIXTURES = Path(__file__).resolve().parents[1] / "data" / "manifests"


def load(tmp_path: Path, name: str) -> Manifest:
    shutil.copy(FIXTURES / f"{name}.json", tmp_path / results.MANIFEST)
    return Manifest.load(tmp_path)


def test_a_run_manifest_of_the_previous_version_loads_with_its_kinds(tmp_path):
    m = load(tmp_path, "run")
    assert m.kind == CommandKind.RUN and m.status == Status.COMPLETED
    assert {n: d.kind for n, d in m.deployments.items()} == {
        "shared": DeploymentKind.SHARED,
        "solo-vision": DeploymentKind.SOLO,
        "solo-series": DeploymentKind.SOLO,
    }
    shared = m.deployments["shared"]
    assert (
        shared.tenants == ["vision", "series"]
        and shared.requests > 0
        and shared.served
        == {
            "vision": "vision",
            "series": "series",
        }
    )
    assert m.scenario.effective["name"] == "smoke" and m.price["name"] == "g4dn.xlarge"


@pytest.mark.parametrize(
    ("name", "command", "kind"),
    [
        ("capacity", CommandKind.CAPACITY, DeploymentKind.PROBE),
        ("sweep", CommandKind.SWEEP, DeploymentKind.POINT),
        ("calibration", CommandKind.RUN, DeploymentKind.SHARED),
    ],
)
def test_other_commands_manifests_load(tmp_path, name, command, kind):
    m = load(tmp_path, name)
    assert m.kind == command and m.deployments
    if name != "calibration":  # calibrate recorded no kind; each of its deployments holds all its tenants
        assert {d.kind for d in m.deployments.values()} == {kind}
    assert all(d.status == Status.COMPLETED for d in m.deployments.values())


def test_the_sweep_book_is_typed(tmp_path):
    m = load(tmp_path, "sweep")
    assert m.sweep.sampling == "factorial" and len(m.sweep.points) == 4
    assert list(m.sweep.committed) == [m.sweep.points[0]["name"]]


@pytest.mark.parametrize("name", ["run", "capacity", "sweep", "calibration"])
def test_a_round_trip_keeps_every_field_and_adds_only_the_kinds(tmp_path, name):
    before = json.loads((FIXTURES / f"{name}.json").read_text())
    load(tmp_path, name).save(tmp_path)
    after = json.loads((tmp_path / results.MANIFEST).read_text())
    added = {"kind", "replicas", "trial", "strategy", "base"}  # defaults now written for every deployment
    for key, value in before.items():
        if key == "deployments":
            for dep, record in value.items():
                assert {k: v for k, v in after["deployments"][dep].items() if k not in added} == {
                    k: v for k, v in record.items() if k not in added
                }
        elif key == "sweep":
            assert after[key].pop("resumed") == [] and after[key] == value  # an empty list, now always written
        else:
            assert after[key] == value, key


def test_unknown_fields_survive_a_rewrite(tmp_path):
    data = json.loads((FIXTURES / "run.json").read_text())
    data["written_by_a_newer_perseus"] = {"x": 1}
    data["deployments"]["shared"]["future"] = [1, 2]
    (tmp_path / results.MANIFEST).write_text(json.dumps(data))
    Manifest.load(tmp_path).save(tmp_path)
    again = results.read_manifest(tmp_path)
    assert again["written_by_a_newer_perseus"] == {"x": 1} and again["deployments"]["shared"]["future"] == [1, 2]


def test_a_deployments_life_through_methods(tmp_path):
    m = load(tmp_path, "run")
    group = Deployment("g1", ("vision",), kind=DeploymentKind.GROUP, replicas=2)
    m.add(group, 5.0)
    assert m.deployments["g1"].status == Status.NOT_STARTED and m.deployments["g1"].replicas == 2
    assert "g1" not in m.measured()
    m.begin(group, 5.0)
    assert m.close() == Status.INTERRUPTED  # a deployment still running means the run was cut short
    m.finish("g1", status=Status.FAILED, reason="server died")
    assert m.close() == Status.FAILED and m.ended
    m.finish("g1", status=Status.COMPLETED)
    assert m.overall_status() == Status.COMPLETED
    m.save(tmp_path)
    assert Manifest.load(tmp_path).deployments["g1"].kind == DeploymentKind.GROUP


def test_what_holds_the_users_input_is_owner_only(tmp_path):
    """The manifest and the scenario copy are 0600 on purpose (docs/results.md, "File modes")."""
    scenario = tmp_path / "in.toml"
    scenario.write_text('name = "x"\n')
    scenario.chmod(0o644)
    manifest = load(tmp_path, "run")
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    save_inputs(run_dir, scenario, manifest)
    for name in (results.MANIFEST, results.SCENARIO_COPY):
        assert stat.S_IMODE((run_dir / name).stat().st_mode) == 0o600, name
    assert (run_dir / results.SCENARIO_COPY).read_text() == 'name = "x"\n'
    (run_dir / results.SCENARIO_COPY).chmod(0o644)  # a copy already there (a resumed sweep) is narrowed again
    save_inputs(run_dir, scenario, manifest)
    assert stat.S_IMODE((run_dir / results.SCENARIO_COPY).stat().st_mode) == 0o600
