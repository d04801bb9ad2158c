#!/usr/bin/env bash
# Browser-test tooling for tests/integration/test_ui_browser.py (optional; that test skips without it):
#   - Debian's Chromium at /usr/bin/chromium (apt, needs root; no browser download from a test tool)
#   - playwright-core from npm into tests/browser/node_modules (pinned by tests/browser/package-lock.json)
# Idempotent. Needs the Debian and npm registries.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -x /usr/bin/chromium ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "setup-browser: /usr/bin/chromium is missing and installing it needs root (apt-get install chromium)" >&2
    exit 1
  fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends chromium >/dev/null
fi
command -v node >/dev/null || { echo "setup-browser: node (Node.js >= 18) is required" >&2; exit 1; }
# playwright-core never downloads a browser (only the `playwright` package does); skip its download hooks anyway.
export PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1
if [ -f tests/browser/package-lock.json ]; then
  npm ci --prefix tests/browser --no-audit --no-fund --silent
else
  npm install --prefix tests/browser --no-audit --no-fund --silent
fi
/usr/bin/chromium --version
node -e "console.log('playwright-core', require('./tests/browser/node_modules/playwright-core/package.json').version)"
