#!/usr/bin/env bash
# Build the Argilla server's own virtual environment (default: .venv-argilla in the checkout),
# as `make install` and the tests' Argilla fixture want it. The work is package code,
# `tickertag review install-server` (workers/review/server_install.py: why a venv of its own,
# why the pins), so an installed wheel can do the same; this runs that module with the
# checkout on the path. Idempotent: an up-to-date venv is left as it is.
# Usage: scripts/install_argilla.sh [VENV_DIR [--dry-run|--force]]   (env: PY=python3.11 picks
# the interpreter)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${1:-${ARGILLA_VENV:-$ROOT/.venv-argilla}}"
PY="${PY:-python3}"
[[ $# -gt 0 ]] && shift
# The module needs only the standard library, so any Python 3.11 runs it; it creates the venv
# with the interpreter that runs it.
PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}" exec "$PY" -m workers.review.server_install "$VENV" "$@"
