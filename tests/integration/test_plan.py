"""`perseus plan` on a real server: the smoke tenants planned with --quick, verified, then `perseus run plan.toml`."""

from __future__ import annotations

import pandas as pd
import pytest

from perseus import results
from tests.conftest import REPO_ROOT, kill_ours, run_cli

pytestmark = pytest.mark.integration


# Shorter than --quick's probes (3 s after 1 s of warm-up), to keep the suite short: 2 s probes still
# gather the requests validity asks of this copy of the smoke scenario (probes at a low scale lengthen
# themselves to gather them), and the SLAs (100 ms) sit far above the tiny models' latencies.
PROBE_FLAGS = ["--quick", "--duration", "2", "--warmup", "0.5"]


def smoke_copy() -> str:
    """scenarios/smoke.toml with its models found from anywhere and validity's minimums for 2 s probes."""
    text = (REPO_ROOT / "scenarios" / "smoke.toml").read_text()
    text = text.replace(
        'model_repository = "../model_repository"', f'model_repository = "{REPO_ROOT / "model_repository"}"'
    )
    return text.replace("min_duration_s = 2", "min_duration_s = 1").replace("min_requests = 50", "min_requests = 30")


@pytest.fixture(scope="module")
def planned(tmp_path_factory):
    base = tmp_path_factory.mktemp("plan")
    out, marker = base / "plan", base / "tmp"
    (base / "smoke.toml").write_text(smoke_copy())
    try:
        proc = run_cli(["plan", base / "smoke.toml", *PROBE_FLAGS, "--out", out], tmpdir=marker, timeout=900)
    finally:
        kill_ours(marker)
    return proc, out, base


def test_the_plan_is_measured_solved_and_verified(planned):
    proc, out, _ = planned
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.strip().splitlines()[-1] == str(out)
    assert "all dedicated:" in proc.stdout and "capacity x" in proc.stdout  # the answer, on stdout
    plan = pd.read_csv(out / "plan.csv")
    assert sorted(" ".join(plan["tenants"]).split()) == ["series", "vision"]  # every tenant placed once
    assert plan["verified"].all() and (plan["replicas"] >= 1).all() and (plan["capacity_scale"] > 0).all()
    probes = pd.read_csv(out / "probes.csv")
    assert {"vision", "series"} <= set(probes["tenant"]) and len(probes) >= 4
    md = (out / "plan.md").read_text()
    assert "verified: every tenant VALID" in md and "all dedicated" in md
    # Every coalition of the two (each alone, and the pair) measured: the fleet's cost has a Shapley split.
    if "series+vision" in set(probes["group"]):
        assert "Shapley split" in md
    assert (out / "plan.html").is_file() and (out / results.PLOTS / "packing.png").is_file()
    manifest = results.read_manifest(out)
    assert manifest["kind"] == "plan"
    kinds = {d["kind"] for d in manifest["deployments"].values()}
    assert kinds == {"probe", "group"}  # capacity probes, then the verification of each group


def test_plan_toml_runs_the_packing(planned):
    _, out, base = planned
    again, marker = base / "again", base / "tmp2"
    try:
        proc = run_cli(["run", out / "plan.toml", "--out", again, "--duration", "2", "--warmup", "0.5"], tmpdir=marker)
    finally:
        kill_ours(marker)
    assert proc.returncode in (0, 1), proc.stderr[-3000:]  # 2 s may be too short for a VALID verdict
    groups = pd.read_csv(out / "plan.csv")["group"].tolist()
    assert list(results.read_manifest(again)["deployments"]) == groups


def test_resume_replays_the_committed_probes(planned):
    _, out, base = planned
    before = sorted(p.name for p in (out / "probes").iterdir())
    proc = run_cli(["plan", base / "smoke.toml", *PROBE_FLAGS, "--out", out], tmpdir=base / "tmp3", timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert sorted(p.name for p in (out / "probes").iterdir()) == before  # nothing new measured


def test_variants_and_capacity_from_other_hardware(planned):
    """A second plan on a dearer instance, with a second model variant for vision, that brings the first plan
    (g4dn.xlarge) in with --from: both vision variants are measured alone, the cheapest options win whatever
    folder they come from, and a group that comes from the other folder is named as not rerun here."""
    _, first, base = planned
    text = smoke_copy()
    text = text.replace('model = "resnet_tiny"', 'models = ["resnet_tiny", "bert_tiny"]')
    text = text.replace('instance = "g4dn.xlarge"', 'instance = "p3.2xlarge"')  # $3.06/h against $0.526/h
    scenario = base / "variants.toml"
    scenario.write_text(text)
    out, marker = base / "mixed", base / "tmp4"
    try:
        proc = run_cli(
            ["plan", scenario, *PROBE_FLAGS, "--max-probes", "8", "--from", first, "--out", out],
            tmpdir=marker,
            timeout=900,
        )
    finally:
        kill_ours(marker)
    assert proc.returncode == 1, proc.stderr[-3000:]  # groups from --from cannot be verified here
    probes = pd.read_csv(out / "probes.csv")
    assert set(probes.loc[probes["tenant"] == "vision", "model"]) == {"resnet_tiny", "bert_tiny"}
    assert {"vision=resnet_tiny", "vision=bert_tiny", "series"} <= set(probes["group"])
    plan = pd.read_csv(out / "plan.csv")
    assert sorted(" ".join(plan["tenants"]).split()) == ["series", "vision"]
    # Measured at a sixth of the price there, every group comes from the first plan unless one here is 6x
    # better: the plan is never dearer than the first plan's own.
    first_cost = pd.read_csv(first / "plan.csv")["usd_per_hour"].sum()
    assert plan["usd_per_hour"].sum() <= first_cost + 1e-9
    imported = plan[plan["measured_in"] == str(first)]
    assert len(imported) and (imported["instance"] == "g4dn.xlarge").all() and not imported["verified"].any()
    assert "were not rerun here" in (out / "plan.md").read_text()
    assert results.read_manifest(out)["plan"]["from"] == [str(first)]


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--headroom", "-1"], "--headroom: must be between 0 and 10"),
        (["--max-probes", "0"], "--max-probes: must be >= 1"),
        (["--from", "/no/such/plan"], "--from: /no/such/plan: no such folder"),
        (["--from", "docs/samples/mixed"], "not a `perseus plan` folder"),
    ],
)
def test_bad_plan_flags_are_one_line_and_write_nothing(tmp_path, flags, message, unchanged):
    out = tmp_path / "never"
    with unchanged(REPO_ROOT / "model_repository"):  # nothing built or rebuilt either
        proc = run_cli(["plan", "scenarios/smoke.toml", "--out", out, *flags], cwd=REPO_ROOT)
    assert proc.returncode == 2 and message in proc.stderr and "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1 and not out.exists()
