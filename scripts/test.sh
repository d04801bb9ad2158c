#!/usr/bin/env bash
# The test command (README, CI): set up, lint, then unit and integration tests against a real
# tritonserver and real Locust. The browser test of `perseus ui` needs Debian's Chromium and
# playwright-core; they are installed when possible, and that one test skips (saying why) otherwise.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
# A private log file, not a fixed /tmp path: concurrent runs or other users cannot clobber it. It is
# kept (and named) only when the setup fails; a successful setup's log is removed.
browser_log="$(mktemp -t perseus-setup-browser.XXXXXX)"
if bash scripts/setup-browser.sh >"$browser_log" 2>&1; then
  rm -f "$browser_log"
else
  echo "test.sh: browser tooling not installed (see $browser_log); the UI browser test will skip" >&2
fi
# The other serving frameworks (server.kind), each in its own environment under the cache folder:
# about 30-40 s each on the 2-core VM with a warm pip cache; nothing when already installed. As with the
# browser tooling, a failed install (no index reachable) is said, and only that framework's tests skip.
for kind in mlserver bentoml; do
  if ! .venv/bin/python -m perseus.cli servers install "$kind"; then
    echo "test.sh: $kind not installed; its tests in tests/integration/test_frameworks.py will skip" >&2
  fi
done
.venv/bin/ruff check .
.venv/bin/ruff format --check .
.venv/bin/lint-imports  # the layers and no cycles (pyproject.toml [tool.importlinter], docs/architecture.md)
.venv/bin/python -m pytest -q "$@"
