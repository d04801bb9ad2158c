#!/usr/bin/env bash
# The demo command (README): set up, then measure the three-tenant mixed scenario end to end.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/perseus run scenarios/mixed.toml "$@"
