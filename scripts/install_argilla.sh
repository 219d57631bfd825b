#!/usr/bin/env bash
# Build the Argilla server's own virtual environment (default: .venv-argilla).
#
# Why a separate venv: argilla-server 2.8.0 needs huggingface_hub>=1 while the main venv is pinned
# to huggingface_hub<1 (transformers<5, span-marker). The two cannot share site-packages.
# Why the pins: argilla-server's CLI crashes on click>=8.2; osmem-server is the in-memory
# OpenSearch emulator that stands in for Elasticsearch/OpenSearch, which cannot be installed here.
#
# Idempotent: a stamp file records the requirement line; when it matches, nothing is done.
# Usage: scripts/install_argilla.sh [VENV_DIR]   (env: PY=python3.11 to pick the interpreter)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${1:-${ARGILLA_VENV:-$ROOT/.venv-argilla}}"
PY="${PY:-python3}"
REQS=("argilla-server==2.8.0" "click<8.2" "osmem-server==0.1.6")
STAMP="$VENV/.installed"
WANT="${REQS[*]}"

if [[ -f "$STAMP" && "$(cat "$STAMP")" == "$WANT" && -x "$VENV/bin/python" ]]; then
  echo "argilla venv up to date: $VENV"
  exit 0
fi

if [[ ! -x "$VENV/bin/python" ]]; then
  "$PY" -m venv "$VENV"
fi
"$VENV/bin/pip" install -q --upgrade pip
"$VENV/bin/pip" install -q "${REQS[@]}"
# Fail now rather than at `tickertag review serve` if the imports the launcher needs are missing.
"$VENV/bin/python" -c "import argilla_server, osmem_server, uvicorn"
echo "$WANT" > "$STAMP"
echo "argilla venv ready: $VENV"
