#!/usr/bin/env bash
# Try stox in one minute: Prosody (XMPP, users alice/alicepass and bob/bobpass on "localhost") on
# loopback + the stox gateway attached to it as component sip.localhost, both in the background.
#
#   ./quickstart.sh             start (installs Prosody via the peer kit if missing), print how to try it
#   ./quickstart.sh --with-sip  also start Kamailio (:5060) and a baresip SIP phone sip:bob@127.0.0.1
#   ./quickstart.sh status      show what runs
#   ./quickstart.sh stop        stop everything started here
#
# Everything runs on 127.0.0.1; state and logs go to $STOX_QUICKSTART_DIR (default ${TMPDIR:-/tmp}/stox-quickstart).
# The peer kit is ../shared/peers next to this repo (or $STOX_PEERS).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")" && pwd)
PEERS=${STOX_PEERS:-$ROOT/../shared/peers}
QS=${STOX_QUICKSTART_DIR:-${TMPDIR:-/tmp}/stox-quickstart}
export PEERS_RUN=$QS/peers
export PEERS_VENV=${PEERS_VENV:-${TMPDIR:-/tmp}/stox-peers/venv}
PIDFILE=$QS/stox.pid
LOG=$QS/stox.log
CONFIG=$QS/stox.toml

say() { echo "[quickstart] $*"; }
die() { echo "[quickstart] ERROR: $*" >&2; exit 1; }
stox_alive() { local p; p=$(cat "$PIDFILE" 2>/dev/null) && [ -n "$p" ] && kill -0 "$p" 2>/dev/null; }

stop_all() {
    if stox_alive; then
        local p i; p=$(cat "$PIDFILE")
        kill "$p" 2>/dev/null || true
        for i in $(seq 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
        kill -0 "$p" 2>/dev/null && kill -9 "$p" 2>/dev/null || true
        say "stox stopped (pid $p)"
    fi
    rm -f "$PIDFILE"
    if [ -d "$PEERS_RUN" ]; then
        [ -f "$PEERS_RUN/baresip/bob/baresip.pid" ] && "$PEERS/baresip/stop.sh" bob || true
        [ -f "$PEERS_RUN/kamailio/kamailio.main.pid" ] && "$PEERS/kamailio/stop.sh" || true
        [ -f "$PEERS_RUN/prosody/prosody.main.pid" ] && "$PEERS/prosody/stop.sh" || true
    fi
    say "stopped; logs remain in $QS"
}

case "${1:-start}" in
    stop) stop_all; exit 0 ;;
    status)
        if stox_alive; then say "stox running (pid $(cat "$PIDFILE")), log $LOG"; else say "stox not running"; fi
        for f in prosody/prosody.main.pid kamailio/kamailio.main.pid baresip/bob/baresip.pid; do
            p=$(cat "$PEERS_RUN/$f" 2>/dev/null) && kill -0 "$p" 2>/dev/null && say "${f%%/*} running (pid $p)"
        done
        exit 0 ;;
    start|--with-sip) ;;
    -h|--help) sed -n '2,13p' "$0"; exit 0 ;;
    *) die "unknown argument '$1' (start | --with-sip | status | stop)" ;;
esac
WITH_SIP=0; [ "${1:-}" = "--with-sip" ] && WITH_SIP=1

[ -x "$PEERS/install.sh" ] || die "peer kit not found at $PEERS (set STOX_PEERS)"
PEERS=$(cd "$PEERS" && pwd)
stox_alive && die "stox already running (pid $(cat "$PIDFILE")); ./quickstart.sh stop first"
mkdir -p "$QS" "$PEERS_RUN"
chmod 755 "$QS" "$PEERS_RUN"      # Prosody runs as user 'prosody' and must traverse these

# 1. peers (installed through the kit only if missing)
need=()
command -v prosody >/dev/null || need+=(prosody)
[ -x "$PEERS_VENV/bin/python" ] && "$PEERS_VENV/bin/python" -c 'import slixmpp' 2>/dev/null || need+=(python)
if [ "$WITH_SIP" = 1 ]; then
    command -v kamailio >/dev/null && command -v sipsak >/dev/null || need+=(kamailio)
    command -v baresip >/dev/null || need+=(baresip)
fi
if [ ${#need[@]} -gt 0 ]; then say "installing ${need[*]} via $PEERS/install.sh"; "$PEERS/install.sh" "${need[@]}"; fi

trap 'echo "[quickstart] failed - cleaning up" >&2; stop_all >&2' ERR
"$PEERS/prosody/start.sh"
if [ "$WITH_SIP" = 1 ]; then
    "$PEERS/kamailio/start.sh"
    BARESIP_CONTACTS="sip:alice@localhost" "$PEERS/baresip/start.sh" bob
fi

# 2. config
cat > "$CONFIG" <<TOML
# written by quickstart.sh
[component]
jid = "sip.localhost"
server = "127.0.0.1:5347"
secret = "secret"
ping_interval_secs = 30
reconnect_max_secs = 30

[sip]
listen = ["udp:127.0.0.1:5070", "tcp:127.0.0.1:5070"]
outbound_proxy = "sip:127.0.0.1:5060"   # Kamailio (./quickstart.sh --with-sip)

[addresses]
xmpp_domains = ["localhost"]
sip_domain = "127.0.0.1"

[messages]
inbound_type = "chat"
bounce_window_ms = 250

[presence]
state_dir = "$QS/state"

[chat]
# MSRP chat sessions for type='chat' (RFC 7573); the baresip phone refuses them (488) and gets
# the messages as MESSAGE instead.
mode = "auto"
msrp_listen = "127.0.0.1:2855"

[admin]
# alice may run the admin commands (XEP-0050) on sip.localhost
jids = ["alice@localhost"]

[metrics]
listen = "127.0.0.1:9477"
TOML

# 3. build and start stox
say "building stox (cargo build)"
(cd "$ROOT" && cargo build --bin stox)
TARGET_DIR=$(cd "$ROOT" && cargo metadata --format-version 1 --no-deps 2>/dev/null \
    | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])' 2>/dev/null || echo "$ROOT/target")
STOX=$TARGET_DIR/debug/stox
"$STOX" check-config --config "$CONFIG"
: > "$LOG"
NO_COLOR=1 RUST_LOG=${RUST_LOG:-stox=info} nohup "$STOX" run --config "$CONFIG" >> "$LOG" 2>&1 < /dev/null &
echo $! > "$PIDFILE"
for i in $(seq 100); do
    stox_alive || { tail -20 "$LOG" >&2; false; }
    grep -q "component online" "$LOG" && break
    sleep 0.2
done
grep -q "component online" "$LOG" || { tail -20 "$LOG" >&2; say "stox did not report 'component online' within 20 s"; false; }
trap - ERR

PY=$PEERS_VENV/bin/python
S=$PEERS/scripts
cat <<TXT

[quickstart] ready: Prosody on 127.0.0.1:5222 (alice/alicepass, bob/bobpass @localhost),
             stox attached as sip.localhost (pid $(cat "$PIDFILE")), SIP on 127.0.0.1:5070 udp+tcp
             config $CONFIG, log $LOG

Try it:
  # how an address is translated
  $STOX map --config $CONFIG 'bob@sip.localhost'
  $STOX map --config $CONFIG 'sip:carol@example.com'

  # XMPP -> SIP: alice messages the SIP user sip:bob@127.0.0.1 (JID bob@sip.localhost)
  $PY $S/xmpp_client.py alice@localhost alicepass --to 'bob@sip.localhost' --msg 'hello SIP' --wait 3
TXT
if [ "$WITH_SIP" = 1 ]; then cat <<TXT
  grep -a 'hello SIP' $PEERS_RUN/baresip/bob/baresip.log      # what the SIP phone bob received

  # SIP -> XMPP: the SIP phone bob messages alice@localhost (start the listener first)
  $PY $S/xmpp_client.py alice@localhost alicepass --wait 10 --expect 'hello XMPP' &
  sleep 2; python3 $S/baresip_ctrl.py 4442 'message hello XMPP'

  # Presence, XMPP -> SIP: alice subscribes to bob and sees him online (a RECV <presence from=bob...>)
  $PY $S/xmpp_client.py alice@localhost alicepass --subscribe bob@sip.localhost --wait 4
  # Presence, SIP -> XMPP: the phone bob asked for alice's presence when it started; while alice is
  # logged in (this client approves the request) bob's buddy list shows her Online, then Offline:
  $PY $S/xmpp_client.py alice@localhost alicepass --wait 8 &
  sleep 4; python3 $S/baresip_ctrl.py 4442 contacts; sleep 6; python3 $S/baresip_ctrl.py 4442 contacts
TXT
else cat <<TXT
  (no SIP side is running: alice gets an error back; use ./quickstart.sh --with-sip for Kamailio + a baresip phone)

  # SIP -> XMPP: any SIP client can send to sip:alice@localhost via 127.0.0.1:5070, e.g. SIPp with the
  # suite's scenario (SIPp: $PEERS/install.sh sipp):
  $PY $S/xmpp_client.py alice@localhost alicepass --wait 10 --expect 'hello XMPP' &
  sleep 2; sipp -sf $ROOT/integration/sipp/uac_message.xml 127.0.0.1:5070 -i 127.0.0.1 -p 5097 -m 1 -nostdin \\
      -key ruri_user alice -key ruri_host localhost -key from_user carol -key subject hi -key lang en \\
      -key body 'hello XMPP' | grep -E 'Successful call|Failed call'
  # (carol appears as carol@sip.localhost; OPTIONS ping: sipsak -s sip:127.0.0.1:5070)
TXT
fi
cat <<TXT

  curl -s http://127.0.0.1:9477/metrics | grep -v '^#'   # counters (OpenMetrics)
  kill -HUP \$(cat $PIDFILE); grep 'configuration reload' $LOG   # reload the config
  $STOX doctor --config $CONFIG                  # check config, ports and DNS (stop stox first:
                                                 # its own ports and component link count as taken)
  tail -f $LOG                                    # gateway log (RUST_LOG=stox=debug for more)

Stop everything:  $ROOT/quickstart.sh stop
TXT
