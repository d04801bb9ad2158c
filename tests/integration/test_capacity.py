"""`perseus capacity --quick` on a real server: probes run, capacities and the figures are written."""

import subprocess
import sys

import pandas as pd
import pytest

pytestmark = pytest.mark.integration


def test_capacity_quick(tmp_path):
    out = tmp_path / "cap"
    proc = subprocess.run(
        [sys.executable, "-m", "perseus.cli", "capacity", "scenarios/smoke.toml", "--quick", "--max-probes", "2",
         "--out", str(out)],
        capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    lines = proc.stdout.strip().splitlines()
    assert lines[-1] == str(out)
    assert any(line.split()[:2] == ["shared", "vision"] for line in lines)  # the capacity table in the terminal
    caps = pd.read_csv(out / "capacity.csv")
    assert set(caps["deployment"]) == {"solo-vision", "solo-series", "shared"}
    assert (caps["probes"] <= 2).all()
    probes = pd.read_csv(out / "probes.csv")
    assert set(probes["search"]) == {"solo-vision", "solo-series", "shared"}
    assert probes["scale"].iloc[0] == 1.0  # every search starts at the scenario's own rates
    matrix = pd.read_csv(out / "interference.csv", index_col=0)
    assert matrix.loc["vision", "vision"] == 1.0 and matrix.loc["vision", "series"] > 0
    assert (out / "plots" / "colocation.png").stat().st_size > 0
    assert (out / "capacity.md").read_text().startswith("# perseus capacity")
