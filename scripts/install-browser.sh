#!/usr/bin/env bash
# Installs what the browser test (tests/browser/) needs: Debian's headless
# `chromium` (apt) and `playwright-core` (npm, pinned; it downloads no
# browser) into .cache/playwright. Idempotent. Without CI=true a missing
# tool is reported and the script exits 2 (the caller skips the suite);
# with CI=true every failure fails loudly.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
version="1.65.1"
dest="$root/.cache/playwright"
fail() {
  echo "install-browser: $*" >&2
  if [ "${CI:-}" = "true" ]; then exit 1; else exit 2; fi
}
if ! command -v chromium >/dev/null 2>&1; then
  sudo=""
  if [ "$(id -u)" != "0" ]; then
    command -v sudo >/dev/null 2>&1 || fail "chromium is missing and there is no root or sudo to install it"
    sudo="sudo"
  fi
  $sudo apt-get update -qq || fail "apt-get update failed"
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq chromium >/dev/null \
    || fail "apt-get install chromium failed"
fi
command -v node >/dev/null 2>&1 || fail "node is missing (apt-get install nodejs npm)"
command -v npm >/dev/null 2>&1 || fail "npm is missing (apt-get install npm)"
installed="$(node -p "require('$dest/node_modules/playwright-core/package.json').version" 2>/dev/null || true)"
if [ "$installed" != "$version" ]; then
  mkdir -p "$dest"
  [ -f "$dest/package.json" ] || echo '{"private": true}' >"$dest/package.json"
  npm install --silent --no-audit --no-fund --prefix "$dest" "playwright-core@$version" \
    || fail "npm install playwright-core@$version failed"
fi
echo "browser test tools: $(chromium --version 2>/dev/null | head -1), playwright-core $version"
