#!/usr/bin/env bash
# Regenerates docs/samples/, the committed artifacts behind the README's sample figures:
#   docs/samples/mixed/  `perseus run scenarios/mixed.toml`, reported with cost at capacity from
#                        `perseus capacity scenarios/mixed.toml` (both folders' tables are kept)
#   docs/samples/fleet/  `perseus plan scenarios/fleet.toml --quick`
#   docs/samples/calibration/  `perseus calibrate` (its defaults: 10 ms service, rho 0.5 and 0.8, 60 s
#                        each); docs/benchmarks.md's calibration table is then
#                        `.venv/bin/python benchmarks/calibration_table.py` (tests/unit/test_docs_tables.py)
# About 23 minutes on 2 cores (`bash scripts/samples.sh mixed`, `... fleet` or `... calibration` for one). The run
# folders themselves go to a temporary folder and are removed.
set -euo pipefail
what=${1:-all}
cd "$(dirname "$0")/.."
bash scripts/setup.sh
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
perseus=.venv/bin/perseus

keep() {
  local src=$1 dst=$2
  shift 2
  rm -rf "$dst"
  mkdir -p "$dst"
  for f in "$@"; do cp "$src/$f" "$dst/"; done
}
if [ "$what" = all ] || [ "$what" = mixed ]; then
  "$perseus" run scenarios/mixed.toml --out "$work/mixed"
  "$perseus" capacity scenarios/mixed.toml --duration 10 --warmup 2 --max-probes 6 --precision 0.2 \
    --no-interference --out "$work/capacity"
  "$perseus" report "$work/mixed" --capacity "$work/capacity"
  keep "$work/mixed" docs/samples/mixed manifest.json summary.csv deployments.csv chargeback.csv capacity.csv \
    capacity_cost.csv report.md
  cp "$work/capacity/probes.csv" docs/samples/mixed/capacity_probes.csv
fi
if [ "$what" = all ] || [ "$what" = fleet ]; then
  # A plan that is not verified exits 1: its artifacts are kept all the same, and say why.
  start=$(date +%s)
  "$perseus" plan scenarios/fleet.toml --quick --out "$work/fleet" || echo "samples.sh: perseus plan exited $?" >&2
  echo "perseus plan took $(($(date +%s) - start)) s" >&2
  keep "$work/fleet" docs/samples/fleet manifest.json plan.csv plan.toml plan.md probes.csv predictions.csv
  cp "$work/fleet/plots/packing.png" docs/samples/fleet/packing.png
fi
if [ "$what" = all ] || [ "$what" = calibration ]; then
  # A calibration that misses its targets exits 1: its table is kept all the same, and says which.
  # The machine's load before and after, kept beside the table: on a shared 2-core machine it decides
  # how far the busy-wait service time and the generator's lag stray.
  before=$(cat /proc/loadavg)
  "$perseus" calibrate --out "$work/calibration" || echo "samples.sh: perseus calibrate exited $?" >&2
  keep "$work/calibration" docs/samples/calibration manifest.json calibration.csv calibration.md
  printf 'before: %s\nafter: %s\n' "$before" "$(cat /proc/loadavg)" >docs/samples/calibration/loadavg.txt
fi
echo "docs/samples/ regenerated ($what)"
