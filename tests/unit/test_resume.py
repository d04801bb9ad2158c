"""`run.resume`: the one place a sweep or a plan folder is reopened, and every refusal it makes."""

from __future__ import annotations

from pathlib import Path

import pytest

from perseus.errors import InputError
from perseus.manifest import CommandKind, Manifest, Status
from perseus.run import resume


def _manifest(kind: CommandKind, hostname: str = "here", tritonserver: str = "2.51.0") -> Manifest:
    manifest = Manifest.new(
        kind=kind, scenario_file=None, requested={}, effective={"name": "s"}, deployments=[], duration_s=1.0,
        price=None, gpus=[], gpu_note=None, command="perseus plan s.toml", perseus_version="0.1",
        host={"hostname": hostname, "cpu": "Xeon"}, versions={"tritonserver": tritonserver},
    )  # fmt: skip
    manifest.close(Status.INTERRUPTED)
    return manifest


def _written(tmp_path: Path, manifest: Manifest) -> Path:
    manifest.save(tmp_path)
    return tmp_path


def same(manifest: Manifest) -> str | None:
    return None


def test_the_same_plan_on_the_same_machine_is_reopened(tmp_path: Path):
    folder = _written(tmp_path, _manifest(CommandKind.PLAN))
    reopened = resume(folder, _manifest(CommandKind.PLAN), "plan", same)
    assert reopened.status == Status.RUNNING and Manifest.load(folder).status == Status.RUNNING


@pytest.mark.parametrize(
    ("theirs", "differs", "message"),
    [
        (_manifest(CommandKind.SWEEP), same, "is not empty and is not a plan folder; use a new or empty --out folder"),
        (_manifest(CommandKind.PLAN), lambda m: "a plan of another scenario", "holds a plan of another scenario; use"),
        (
            _manifest(CommandKind.PLAN, hostname="there"),
            same,
            "was measured elsewhere (host here here, there in the folder)",
        ),
        (
            _manifest(CommandKind.PLAN, tritonserver="2.41.0"),
            same,
            "was measured elsewhere (tritonserver 2.51.0 here, 2.41.0 in the folder)",
        ),
    ],
)
def test_anything_else_is_refused_and_left_as_it_was(tmp_path: Path, theirs, differs, message):
    folder = _written(tmp_path, theirs)
    before = (folder / "manifest.json").read_bytes()
    with pytest.raises(InputError) as err:
        resume(folder, _manifest(CommandKind.PLAN), "plan", differs)
    assert err.value.field is None and message in err.value.reason
    assert (folder / "manifest.json").read_bytes() == before


def test_a_folder_without_a_manifest_is_not_one(tmp_path: Path):
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(InputError, match="is not a sweep folder"):
        resume(tmp_path, _manifest(CommandKind.SWEEP), "sweep", same)
