#!/usr/bin/env bash
# stox real-peer integration suite: build stox, install the peers it needs (via the peer kit), run pytest.
#   integration/run.sh [pytest args...]      e.g.  integration/run.sh -k prosody -x
# Env: STOX_PEERS   the peer kit (default: ../shared/peers next to the repo root)
#      PEERS_VENV   Python venv with slixmpp (+ pytest, added here); default ${TMPDIR:-/tmp}/stox-peers/venv
#      STOX_IT_KEEP=1  keep the per-run peer/gateway logs (they are always kept when a test fails)
# Exit status: pytest's.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
PEERS=${STOX_PEERS:-$ROOT/../shared/peers}
export STOX_PEERS=$PEERS
export PEERS_VENV=${PEERS_VENV:-${TMPDIR:-/tmp}/stox-peers/venv}
export PYTHONDONTWRITEBYTECODE=1

say() { echo "[integration] $*"; }
[ -x "$PEERS/install.sh" ] || { echo "[integration] ERROR: peer kit not found at $PEERS (set STOX_PEERS)" >&2; exit 2; }

say "building stox (cargo build)"
(cd "$ROOT" && cargo build --bin stox)
TARGET_DIR=$(cd "$ROOT" && cargo metadata --format-version 1 --no-deps 2>/dev/null \
    | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])' 2>/dev/null || echo "$ROOT/target")
export STOX_BIN=${STOX_BIN:-$TARGET_DIR/debug/stox}
[ -x "$STOX_BIN" ] || { echo "[integration] ERROR: $STOX_BIN was not built" >&2; exit 2; }

say "installing peers (idempotent): $PEERS/install.sh prosody ejabberd kamailio baresip sipp sipsak python"
"$PEERS/install.sh" prosody ejabberd kamailio baresip sipp sipsak python
if ! "$PEERS_VENV/bin/python" -c 'import pytest' 2>/dev/null; then
    say "pip install pytest into $PEERS_VENV"
    "$PEERS_VENV/bin/python" -m pip install -q --disable-pip-version-check pytest
fi

say "running pytest against $STOX_BIN"
cd "$ROOT/integration"
rc=0
"$PEERS_VENV/bin/python" -m pytest -c "$ROOT/integration/pytest.ini" --rootdir "$ROOT/integration" -v "$@" || rc=$?
say "pytest exit status $rc"
exit $rc
