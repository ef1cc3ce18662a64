#!/usr/bin/env bash
# stox real-peer integration suite: build stox, install the peers it needs (via the peer kit), run pytest.
#   integration/run.sh [pytest args...]      e.g.  integration/run.sh -k prosody -x
# Env: STOX_PEERS   the peer kit (default: ../shared/peers next to the repo root)
#      PEERS_VENV   Python venv with slixmpp (+ pytest and aiortc, added here); default ${TMPDIR:-/tmp}/stox-peers/venv
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
# coturn: the STUN server of the media.stun_server test (test_media_relay.py); Debian's package.
if ! command -v turnserver >/dev/null; then
    say "apt-get install coturn"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends coturn >/dev/null
fi
if ! "$PEERS_VENV/bin/python" -c 'import pytest' 2>/dev/null; then
    say "pip install pytest into $PEERS_VENV"
    "$PEERS_VENV/bin/python" -m pip install -q --disable-pip-version-check pytest
fi
# jingle_peer.py (the XMPP call peer, JINGLE_PEER.md): aiortc and everything it pulls in, pinned, wheels only
AIORTC_PINS="aiortc==1.16.0 aioice==0.13.0 av==18.1.0 pylibsrtp==1.0.0 cryptography==50.0.2 pyOpenSSL==26.4.0
    google-crc32c==1.9.0 pyee==13.0.1 dnspython==2.9.2 ifaddr==0.2.0"
if ! "$PEERS_VENV/bin/python" -c 'import sys, aiortc, av; sys.exit(aiortc.__version__ != "1.16.0")' 2>/dev/null; then
    say "pip install aiortc (pinned) into $PEERS_VENV"
    # shellcheck disable=SC2086 # the pins are words
    "$PEERS_VENV/bin/python" -m pip install -q --disable-pip-version-check --only-binary=:all: $AIORTC_PINS
fi

say "running pytest against $STOX_BIN"
cd "$ROOT/integration"
rc=0
"$PEERS_VENV/bin/python" -m pytest -c "$ROOT/integration/pytest.ini" --rootdir "$ROOT/integration" -v "$@" || rc=$?
say "pytest exit status $rc"
exit $rc
