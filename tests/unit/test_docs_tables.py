"""Figures in the docs come from committed artifacts: docs/benchmarks.md's calibration table is exactly
what benchmarks/calibration_table.py prints from docs/samples/calibration/ (regenerate both with
`bash scripts/samples.sh calibration`, then paste the script's output)."""

from benchmarks.calibration_table import BEGIN, END, SAMPLE, from_folder
from tests.conftest import REPO_ROOT


def test_the_calibration_table_is_the_committed_artifact():
    assert (SAMPLE / "calibration.csv").is_file() and (SAMPLE / "manifest.json").is_file()
    text = (REPO_ROOT / "docs" / "benchmarks.md").read_text(encoding="utf-8")
    assert text.count(BEGIN) == 1 and text.count(END) == 1
    block = text[text.index(BEGIN) : text.index(END) + len(END)]
    assert block == from_folder(SAMPLE)
