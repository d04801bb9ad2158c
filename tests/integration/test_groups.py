"""[[deployments]] groups on a real server: two groups, one replicated, end to end, then `perseus report` again.

The replicated group is measured as one replica carrying half of its tenant's rate; its cost counts
both replicas, priced as its own instance type.
"""

from __future__ import annotations

import pandas as pd
import pytest

from perseus import results
from perseus.pricing.catalog import lookup
from tests.conftest import REPO_ROOT, run_cli, run_scenario_text

pytestmark = pytest.mark.integration

SCENARIO = f"""
name = "groups"
[server]
model_repository = "{REPO_ROOT / "model_repository"}"
device = "cpu"
[run]
duration_s = 3
warmup_s = 0.5
baselines = false
min_duration_s = 1
min_requests = 20
[pricing]
instance = "g4dn.xlarge"
[[tenants]]
name = "vision"
model = "resnet_tiny"
sla_ms = 200
sla_percentile = 90
[tenants.load]
arrival = "poisson"
rate = 20
[[tenants]]
name = "series"
model = "lstm_tiny"
sla_ms = 200
sla_percentile = 90
[tenants.load]
arrival = "constant"
rate = 15
[[tenants]]
name = "hot"
model = "resnet_tiny"
sla_ms = 200
sla_percentile = 90
[tenants.load]
arrival = "constant"
rate = 40
[[deployments]]
name = "pair"
tenants = ["vision", "series"]
[[deployments]]
name = "hot-x2"
tenants = ["hot"]
replicas = 2
instance = "g5.xlarge"
"""


@pytest.fixture(scope="module")
def grouped(tmp_path_factory):
    return run_scenario_text(tmp_path_factory.mktemp("groups"), SCENARIO)


def test_both_groups_run_with_their_kind_replicas_and_price(grouped):
    manifest = results.read_manifest(grouped)
    assert {n: (d["kind"], d["replicas"]) for n, d in manifest["deployments"].items()} == {
        "pair": ("group", 1),
        "hot-x2": ("group", 2),
    }
    deps = pd.read_csv(grouped / results.DEPLOYMENTS_CSV).set_index("deployment")
    g5 = lookup("aws", "g5.xlarge", "us-east-1", "on-demand").usd_per_hour
    assert deps.loc["hot-x2", "servers"] == 2 and deps.loc["hot-x2", "usd_per_hour"] == pytest.approx(g5)
    assert deps.loc["pair", "servers"] == 1
    # two replicas' cost over the window: 2 x $/h x window / 3600
    hot = deps.loc["hot-x2"]
    assert hot["cost_usd"] == pytest.approx(2 * g5 * hot["duration_s"] / 3600, rel=1e-5)  # CSV: 6 digits
    assert 0 < deps.loc["pair", "busy_fraction"] < 1  # from the statistics API's execution counters


def test_a_replica_carries_its_share_of_the_rate(grouped):
    rows = pd.read_csv(grouped / results.SUMMARY_CSV).set_index("tenant")
    assert rows.loc["hot", "target_rps"] == pytest.approx(20.0, rel=0.05)  # 40 req/s over 2 replicas
    assert rows.loc["hot", "deployment"] == "hot-x2"
    for column in ("busy_fraction", "goodput_rps", "cost_per_million_good_usd"):
        assert rows[column].notna().all(), column


def test_chargeback_and_report_show_both_groups(grouped):
    charge = pd.read_csv(grouped / results.CHARGEBACK_CSV)
    assert set(charge["deployment"]) == {"pair"} and set(charge["tenant"]) == {"vision", "series"}
    assert charge["compute_share"].sum() == pytest.approx(1.0)
    md = (grouped / results.REPORT_MD).read_text()
    assert "| pair | group |" in md and "| hot-x2 | group |" in md
    assert "measured as one replica" in md
    assert (grouped / results.PLOTS / "cost_per_million.png").is_file()


def test_report_rebuilds_the_same_tables(grouped):
    before = {name: (grouped / name).read_text() for name in (results.SUMMARY_CSV, results.DEPLOYMENTS_CSV)}
    proc = run_cli(["report", grouped])
    assert proc.returncode == 0, proc.stderr
    assert {name: (grouped / name).read_text() for name in before} == before
