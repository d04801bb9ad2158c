#!/usr/bin/env bash
# The test command (README, CI): set up, lint, then unit and integration tests against a real
# tritonserver and real Locust.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
.venv/bin/ruff check .
.venv/bin/ruff format --check .
.venv/bin/python -m pytest -q "$@"
