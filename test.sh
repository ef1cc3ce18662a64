#!/usr/bin/env bash
# THE test command of stox: unit/integration tests of the crate (cargo test --all-targets), then the
# real-peer integration suite (integration/run.sh: Prosody, ejabberd, Kamailio, baresip, SIPp), then
# the cargo tests that drive SIPp themselves (#[ignore]d in a plain cargo test).
# Extra arguments go to pytest, e.g.  ./test.sh -k prosody
# Exit status: non-zero if anything failed.  The last line is the total: "total: N passed, M failed".
set -uo pipefail
ROOT=$(cd "$(dirname "$0")" && pwd)
cd "$ROOT"
LOGS=$(mktemp -d)
trap 'rm -rf "$LOGS"' EXIT

# The store's lock test drives a real second process: the sqlite3 shell.
if ! command -v sqlite3 >/dev/null; then
    echo "==> installing sqlite3 (apt-get)"
    { apt-get update -qq && apt-get install -y -qq --no-install-recommends sqlite3; } \
        || echo "WARNING: could not install sqlite3; the store lock test will fail and say so"
fi

echo "==> cargo test --all-targets"
cargo test --all-targets 2>&1 | tee "$LOGS/cargo.log"
cargo_rc=${PIPESTATUS[0]}

echo "==> integration/run.sh"
bash "$ROOT/integration/run.sh" "$@" 2>&1 | tee "$LOGS/integration.log"
it_rc=${PIPESTATUS[0]}

# The cargo tests that drive a real SIPp are #[ignore]d so a plain `cargo test` needs no peer;
# integration/run.sh has installed SIPp by now, so they run here and count like the others.
echo "==> cargo test --test scenario_sip_call -- --ignored (SIPp)"
cargo test --test scenario_sip_call -- --ignored 2>&1 | tee "$LOGS/cargo-peers.log"
peers_rc=${PIPESTATUS[0]}
[ "$cargo_rc" -eq 0 ] && cargo_rc=$peers_rc

# counts: cargo prints "test result: ok. N passed; M failed; ..." per test binary,
# pytest ends with "== N passed, M failed, K errors in Xs =="
read -r c_pass c_fail < <(awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($(i) ~ /^passed;?$/) p += $(i-1); if ($(i) ~ /^failed;?$/) f += $(i-1) } }
                               END { print p + 0, f + 0 }' "$LOGS/cargo.log" "$LOGS/cargo-peers.log")
pytest_line=$(grep -E '^=+ .*(passed|failed|error|no tests ran).* in [0-9.]+s' "$LOGS/integration.log" | tail -1)
i_pass=$(echo "$pytest_line" | grep -oE '[0-9]+ passed' | grep -oE '[0-9]+' || true)
i_fail=$(echo "$pytest_line" | grep -oE '[0-9]+ failed' | grep -oE '[0-9]+' || true)
i_err=$(echo "$pytest_line" | grep -oE '[0-9]+ errors?' | grep -oE '[0-9]+' || true)
i_pass=${i_pass:-0}; i_fail=$(( ${i_fail:-0} + ${i_err:-0} ))
# a suite that failed without reporting any failed test (build error, setup crash) counts as one failure
[ "$cargo_rc" -ne 0 ] && [ "$c_fail" -eq 0 ] && c_fail=1
[ "$it_rc" -ne 0 ] && [ "$i_fail" -eq 0 ] && i_fail=1

status() { [ "$1" -eq 0 ] && echo "ok" || echo "FAILED (exit $1)"; }
echo
echo "==================== test.sh summary ===================="
echo "cargo test --all-targets : $(status "$cargo_rc") - $c_pass passed, $c_fail failed"
echo "integration/run.sh       : $(status "$it_rc") - $i_pass passed, $i_fail failed"
echo "total: $(( c_pass + i_pass )) passed, $(( c_fail + i_fail )) failed"
[ "$cargo_rc" -eq 0 ] && [ "$it_rc" -eq 0 ]
