#!/usr/bin/env bash
# Install Debian's Chromium for the browser tests (Playwright drives it; it never downloads a browser of its own).
# Idempotent and quiet: does nothing when /usr/bin/chromium already runs. Needs root (CI runs as root) or sudo.
set -euo pipefail

CHROMIUM=${FLEXOPS_CHROMIUM:-/usr/bin/chromium}

if [ -x "$CHROMIUM" ] && "$CHROMIUM" --headless --no-sandbox --version >/dev/null 2>&1; then
  exit 0
fi

if [ "$(id -u)" -eq 0 ]; then
  SUDO=""
elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
  SUDO="sudo -n"
else
  echo "install_chromium: $CHROMIUM is missing and this user cannot install packages (not root, no sudo)." >&2
  echo "install_chromium: run 'apt-get install -y chromium' as root, or set FLEXOPS_CHROMIUM to a Chromium binary." >&2
  exit 1
fi

export DEBIAN_FRONTEND=noninteractive
echo "install_chromium: installing Debian's chromium (one time)..." >&2
log=$(mktemp)
trap 'rm -f "$log"' EXIT
if ! { $SUDO apt-get update -qq && $SUDO apt-get install -y -qq --no-install-recommends chromium fonts-dejavu-core; } >"$log" 2>&1; then
  tail -n 20 "$log" >&2
  echo "install_chromium: apt-get install chromium failed (see above)." >&2
  exit 1
fi

if ! "$CHROMIUM" --headless --no-sandbox --version >/dev/null 2>&1; then
  echo "install_chromium: $CHROMIUM still does not run after installation." >&2
  exit 1
fi
