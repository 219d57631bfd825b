#!/usr/bin/env bash
# Install Debian's Chromium for the browser tests (tests/browser): Playwright drives it through
# executable_path=/usr/bin/chromium. `playwright install` is not used: it downloads its own browser
# builds from a host that is not reachable here; Debian's package comes from the package registry.
#
# Idempotent and quiet: nothing is done when the browser is already there. Without apt-get (not a
# Debian machine) or without root, it says so and exits 0: the browser tests then fail, naming this script.
# Usage: scripts/install_chromium.sh
set -euo pipefail

CHROMIUM=/usr/bin/chromium  # where Debian's package puts it

if [[ -x "$CHROMIUM" ]]; then
  exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "install_chromium: no apt-get; install Chromium at $CHROMIUM by hand (the browser tests need it)" >&2
  exit 0
fi
SUDO=()
if [[ "$(id -u)" != 0 ]]; then
  if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
    SUDO=(sudo -n)
  else
    echo "install_chromium: not root; run: apt-get install chromium (the browser tests need it)" >&2
    exit 0
  fi
fi

install() {
  "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
    chromium >/dev/null
}
# The package lists may be missing or stale on a fresh machine: update them only when needed.
if ! install 2>/dev/null; then
  "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null
  install
fi
# (Debian's launcher may print a harmless shell warning from /etc/chromium.d/dev-shm: dropped)
echo "installed: $("$CHROMIUM" --version 2>/dev/null)"
