#!/usr/bin/env bash
# The test command (README, CI): set up, lint, then unit and integration tests against a real
# tritonserver and real Locust. The browser test of `perseus ui` needs Debian's Chromium and
# playwright-core; they are installed when possible, and that one test skips (saying why) otherwise.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
if ! bash scripts/setup-browser.sh >/tmp/perseus-setup-browser.log 2>&1; then
  echo "test.sh: browser tooling not installed (see /tmp/perseus-setup-browser.log); the UI browser test will skip" >&2
fi
.venv/bin/ruff check .
.venv/bin/ruff format --check .
.venv/bin/python -m pytest -q "$@"
