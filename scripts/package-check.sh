#!/usr/bin/env bash
# Packaging check: build the Debian package with cargo-deb, inspect it, install it for real,
# verify the systemd unit, run the unit's command line as the package's unprivileged user, and
# purge the package again. Meant for CI (root, throwaway machine); prints "package-check: ok" or
# "package-check: FAIL: <reason>" and exits non-zero.
#
#   scripts/package-check.sh              every step below, in order, purging at the end
#   scripts/package-check.sh STEP...      only these steps (integration/test_packaging.py runs them
#                                         one by one with a shared PKG_CHECK_DIR, purge last)
#
# Steps: build contents install verify run purge
#   build     install cargo-deb if missing (pinned), build the .deb
#   contents  dpkg-deb --info/--contents: the expected files, modes, owners, conffile, scripts
#   install   dpkg -i (root only: as another user this FAILS, it is never skipped), then
#             stox --version, the stox user, the config's owner and mode, the unit enabled but
#             not started, stox check-config on the packaged config (as root and as stox); a
#             second dpkg -i (upgrade path) keeps an edit of the conffile, its owner and mode
#   verify    systemd-analyze verify on the installed unit: exit 0 and no output at all;
#             systemd-analyze security rates its sandbox at most 2.5 (of 10)
#   run       the unit's ExecStart, as user stox with only CAP_NET_BIND_SERVICE (the unit's
#             User=, AmbientCapabilities=, NoNewPrivileges=, UMask=), a test config with SIP on a
#             port below 1024 and the component link pointing at a closed port: alive and
#             listening (UDP and TCP) after 2 s, the state database created, SIGTERM, exit 0
#   purge     dpkg --purge stox if this check installed it; nothing of it left (the stox user
#             too, if this check created it)
#
# Environment:
#   STOX_DEB_PROFILE   dev (default) or release. dev packages the debug binary that
#                      integration/run.sh has already built (cargo deb --no-build --profile dev):
#                      the same package with an unoptimized binary and no -dbgsym package, in
#                      seconds. release is the real package (cargo deb --locked), which costs a
#                      full optimized build (minutes to half an hour on two cores).
#   STOX_DEB           check this .deb instead of building one (the build step only copies it)
#   CARGO_DEB_VERSION  cargo-deb version installed when it is missing or different (default 3.8.0)
#   PKG_CHECK_DIR      work directory shared by the steps (default: a fresh temporary directory,
#                      removed at the end when all steps ran and passed)
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT" || exit 1
export CARGO_TERM_COLOR=never LC_ALL=C

CARGO_DEB_VERSION=${CARGO_DEB_VERSION:-3.8.0}
PROFILE=${STOX_DEB_PROFILE:-dev}
ALL_STEPS="build contents install verify run purge"
UNIT=/usr/lib/systemd/system/stox.service   # = /lib/systemd/system/stox.service (merged /usr)
CONF=/etc/stox/component.toml

t0=$(date +%s)
say() { echo "[package-check] $* ($(( $(date +%s) - t0 ))s)"; }
indent() { sed 's/^/    /'; }
fail() { echo "package-check: FAIL: $*" >&2; exit 1; }

steps=${*:-$ALL_STEPS}
for s in $steps; do
    case " $ALL_STEPS " in *" $s "*) ;; *) fail "unknown step '$s' (steps: $ALL_STEPS)" ;; esac
done

own_dir=0
if [ -z "${PKG_CHECK_DIR:-}" ]; then
    PKG_CHECK_DIR=$(mktemp -d "${TMPDIR:-/tmp}/stox-package-check.XXXXXX")
    own_dir=1
fi
mkdir -p "$PKG_CHECK_DIR" || fail "cannot create $PKG_CHECK_DIR"
# user stox must reach the test config and state dir of the run step
chmod 755 "$PKG_CHECK_DIR"
DEB=$PKG_CHECK_DIR/stox.deb

need_root() {
    [ "$(id -u)" -eq 0 ] || fail "$1 needs root (dpkg -i / dpkg --purge); run this check as root, as CI does"
}

# dpkg, waiting (up to 10 min) while another dpkg/apt run holds the lock instead of failing
dpkg_locked() {
    local out rc
    for _ in $(seq 300); do
        out=$(DEBIAN_FRONTEND=noninteractive dpkg "$@" </dev/null 2>&1); rc=$?
        if [ $rc -ne 0 ] && grep -q 'locked by another process' <<<"$out"; then
            sleep 2
            continue
        fi
        indent <<<"$out"
        return $rc
    done
    indent <<<"$out"
    return 1
}

# first port in [from, to] that nothing listens on, over TCP and UDP
free_port() {
    local p
    for p in $(seq "$1" "$2"); do
        if ! ss -Hlntu 2>/dev/null | awk '{print $5}' | grep -qE "[:.]$p\$"; then
            echo "$p"
            return 0
        fi
    done
    return 1
}

# ------------------------------------------------------------------------------------------ build
step_build() {
    if [ -n "${STOX_DEB:-}" ]; then
        cp "$STOX_DEB" "$DEB" || fail "cannot copy STOX_DEB=$STOX_DEB"
        say "build: using $STOX_DEB"
        return
    fi
    local have
    have=$(cargo deb --version 2>/dev/null | awk '{print $2}')
    if [ "$have" != "$CARGO_DEB_VERSION" ]; then
        say "build: installing cargo-deb $CARGO_DEB_VERSION (found: ${have:-none})"
        cargo install cargo-deb --locked --version "$CARGO_DEB_VERSION" </dev/null \
            || fail "cargo install cargo-deb --locked --version $CARGO_DEB_VERSION failed"
        say "build: cargo-deb installed"
    fi
    local out=$PKG_CHECK_DIR/deb
    rm -rf "$out" && mkdir -p "$out"
    case "$PROFILE" in
        dev)
            # cargo-deb warns that it does not support the dev profile: that is intended here,
            # the check is about the packaging, and version $CARGO_DEB_VERSION is pinned. cargo-deb
            # strips the debug binary; no -dbgsym package and light compression save time.
            say "build: cargo build --bin stox (debug; no-op when integration/run.sh built it)"
            cargo build --bin stox </dev/null || fail "cargo build --bin stox failed"
            say "build: cargo deb --no-build --profile dev --no-dbgsym --fast"
            cargo deb --no-build --profile dev --no-dbgsym --fast --output "$out/" </dev/null \
                || fail "cargo deb --no-build --profile dev failed"
            ;;
        release)
            say "build: cargo deb --locked (release build)"
            cargo deb --locked --output "$out/" </dev/null || fail "cargo deb --locked failed"
            ls "$out"/stox-dbgsym_*.ddeb >/dev/null 2>&1 || fail "build: no stox-dbgsym .ddeb next to the package"
            ;;
        *) fail "STOX_DEB_PROFILE=$PROFILE: expected dev or release" ;;
    esac
    cp "$out"/stox_*.deb "$DEB" 2>/dev/null || fail "cargo deb wrote no stox_*.deb in $out"
    [ -s "$DEB" ] || fail "cargo deb did not write $DEB"
    say "build: $DEB ($(du -h "$DEB" | cut -f1))"
}

# --------------------------------------------------------------------------------------- contents
step_contents() {
    [ -s "$DEB" ] || fail "contents: no package at $DEB (run the build step first)"
    local info contents field
    info=$(dpkg-deb --info "$DEB") || fail "dpkg-deb --info $DEB failed"
    indent <<<"$info"
    for field in "Package: stox" "Section: net" "Architecture: $(dpkg --print-architecture)"; do
        echo "$info" | grep -qx " $field" || fail "contents: control has no '$field'"
    done
    echo "$info" | grep -q '^ Maintainer: .\+<.\+@.\+>$' || fail "contents: no Maintainer with an e-mail"
    echo "$info" | grep -q '^ Depends: .*libc6' || fail "contents: Depends lacks libc6 (\$auto did not run)"
    echo "$info" | grep -q '^ Depends: .*systemd' || fail "contents: Depends lacks systemd (needed for systemd-sysusers)"
    for field in postinst prerm postrm conffiles; do
        echo "$info" | grep -qE "^ +[0-9]+ bytes, +[0-9]+ lines +(\* +)?$field( |$)" \
            || fail "contents: control archive has no $field"
    done
    [ "$(dpkg-deb --ctrl-tarfile "$DEB" | tar -xO ./conffiles)" = "$CONF" ] \
        || fail "contents: conffiles is not exactly $CONF"
    dpkg-deb --ctrl-tarfile "$DEB" | tar -xO ./postinst | grep -q 'systemd-sysusers.*stox.conf' \
        || fail "contents: postinst does not run systemd-sysusers"
    dpkg-deb --ctrl-tarfile "$DEB" | tar -xO ./postinst | grep -q 'deb-systemd-helper enable stox.service' \
        || fail "contents: postinst does not enable stox.service"
    if dpkg-deb --ctrl-tarfile "$DEB" | tar -xO ./postinst | grep -qE 'deb-systemd-invoke (start|restart) '; then
        fail "contents: postinst starts stox.service on install (it must only try-restart on upgrade)"
    fi

    contents=$(dpkg-deb --contents "$DEB") || fail "dpkg-deb --contents $DEB failed"
    indent <<<"$contents"
    # every regular file, with mode and owner; nothing more, nothing less
    local want got
    want=$(cat <<EOF
-rw-r----- 0/0 ./etc/stox/component.toml
-rwxr-xr-x 0/0 ./usr/bin/stox
-rw-r--r-- 0/0 ./usr/lib/systemd/system/stox.service
-rw-r--r-- 0/0 ./usr/lib/sysusers.d/stox.conf
-rw-r--r-- 0/0 ./usr/share/doc/stox/README.md
-rw-r--r-- 0/0 ./usr/share/doc/stox/component.toml.example
-rw-r--r-- 0/0 ./usr/share/doc/stox/copyright
EOF
)
    got=$(echo "$contents" | awk '$1 ~ /^-/ {print $1, $2, $6}' | sort -k3)
    if [ "$got" != "$want" ]; then
        diff <(echo "$want") <(echo "$got") | indent >&2
        fail "contents: files or modes differ from the expected list (< expected, > in the package)"
    fi
    if echo "$contents" | awk '$1 ~ /^d/ && ($1 != "drwxr-xr-x" || $2 != "0/0")' | grep -q .; then
        fail "contents: a directory that is not root-owned 0755"
    fi
    # debug info belongs in the -dbgsym package, not in the 100+ MB binary
    local sections
    dpkg-deb --fsys-tarfile "$DEB" | tar -xO ./usr/bin/stox > "$PKG_CHECK_DIR/stox.bin" \
        || fail "contents: cannot extract /usr/bin/stox"
    sections=$(readelf -S -W "$PKG_CHECK_DIR/stox.bin" 2>&1) \
        || fail "contents: readelf on the packaged /usr/bin/stox failed: $sections"
    rm -f "$PKG_CHECK_DIR/stox.bin"
    if grep -q '\.debug_info' <<<"$sections"; then fail "contents: /usr/bin/stox is not stripped"; fi
    # the files are the ones in the tree, not stale copies
    local f
    for f in "packaging/stox.service:./usr/lib/systemd/system/stox.service" \
             "packaging/stox.sysusers:./usr/lib/sysusers.d/stox.conf" \
             "component.toml.example:./etc/stox/component.toml"; do
        cmp -s "${f%%:*}" <(dpkg-deb --fsys-tarfile "$DEB" | tar -xO "${f#*:}") \
            || fail "contents: ${f#*:} differs from ${f%%:*}"
    done
    say "contents: ok"
}

# ---------------------------------------------------------------------------------------- install
step_install() {
    need_root "install"
    [ -s "$DEB" ] || fail "install: no package at $DEB (run the build step first)"
    local st
    st=$(dpkg-query -W -f '${Status}' stox 2>/dev/null)
    if [ -n "$st" ] && [ "${st##* }" != "not-installed" ]; then
        fail "install: package stox is on this machine already ($st); this check installs and purges it, so it will not run here"
    fi
    if ! command -v systemd-sysusers >/dev/null || ! command -v systemd-analyze >/dev/null; then
        say "install: apt-get install systemd (systemd-sysusers for the postinst, systemd-analyze)"
        { apt-get -o DPkg::Lock::Timeout=600 update -qq \
            && DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends systemd; } \
            </dev/null || fail "apt-get install systemd failed"
    fi
    if getent passwd stox >/dev/null; then echo 1 > "$PKG_CHECK_DIR/user-existed"; else echo 0 > "$PKG_CHECK_DIR/user-existed"; fi
    echo 1 > "$PKG_CHECK_DIR/installed"
    say "install: dpkg -i"
    dpkg_locked -i "$DEB" || fail "dpkg -i $DEB failed"

    local v want_v
    v=$(/usr/bin/stox --version) || fail "install: /usr/bin/stox --version failed"
    want_v="stox $(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -1)"
    [ "$v" = "$want_v" ] || fail "install: /usr/bin/stox --version says '$v', expected '$want_v'"
    echo "    $v"
    getent passwd stox >/dev/null || fail "install: user stox was not created (systemd-sysusers)"
    [ "$(stat -c '%U:%G %a' "$CONF" 2>/dev/null)" = "root:stox 640" ] \
        || fail "install: $CONF is '$(stat -c '%U:%G %a' "$CONF" 2>&1)', expected root:stox 640"
    [ -L /etc/systemd/system/multi-user.target.wants/stox.service ] \
        || fail "install: stox.service is not enabled (no multi-user.target.wants link)"
    if [ -d /run/systemd/system ] && systemctl is-active --quiet stox; then
        fail "install: stox.service was started by the install (it must only be enabled)"
    fi
    [ -e /lib/systemd/system/stox.service ] || fail "install: /lib/systemd/system/stox.service does not exist"

    local out rc
    out=$(/usr/bin/stox check-config --config "$CONF" 2>&1); rc=$?
    echo "    $out"
    if [ $rc -ne 0 ] || [ "$out" != "$CONF: ok" ]; then
        fail "install: stox check-config on the packaged $CONF: exit $rc: $out"
    fi
    out=$(runuser -u stox -- /usr/bin/stox check-config --config "$CONF" 2>&1); rc=$?
    [ $rc -eq 0 ] || fail "install: stox check-config as user stox: exit $rc: $out"

    # the upgrade path of the maintainer scripts (same version again): an admin's edit of the
    # conffile and its owner and mode survive
    echo "# edited by package-check" >> "$CONF"
    say "install: dpkg -i again (upgrade path)"
    dpkg_locked -i "$DEB" || fail "second dpkg -i $DEB (upgrade path) failed"
    tail -n 1 "$CONF" | grep -qx '# edited by package-check' || fail "install: the upgrade overwrote the edited $CONF"
    [ "$(stat -c '%U:%G %a' "$CONF")" = "root:stox 640" ] \
        || fail "install: after the upgrade $CONF is '$(stat -c '%U:%G %a' "$CONF")', expected root:stox 640"
    say "install: ok"
}

# ----------------------------------------------------------------------------------------- verify
step_verify() {
    [ -f "$UNIT" ] || fail "verify: $UNIT is not installed (run the install step first)"
    command -v systemd-analyze >/dev/null || fail "verify: systemd-analyze is missing"
    local out rc
    say "verify: systemd-analyze verify $UNIT"
    out=$(systemd-analyze verify "$UNIT" 2>&1); rc=$?
    [ -n "$out" ] && indent <<<"$out"
    [ $rc -eq 0 ] || fail "verify: systemd-analyze verify exited $rc"
    [ -z "$out" ] || fail "verify: systemd-analyze verify printed warnings (above)"
    # systemd's own rating of the sandbox, 0-10, lower is better (1.6 with systemd 252): above
    # 2.5, some hardening line was lost
    out=$(systemd-analyze security --offline=true --threshold=25 "$UNIT" 2>&1); rc=$?
    grep 'Overall exposure' <<<"$out" | indent
    [ $rc -eq 0 ] || { indent <<<"$out" >&2; fail "verify: systemd-analyze security rates the unit above 2.5"; }
    say "verify: ok"
}

# -------------------------------------------------------------------------------------------- run
RUN_PID=
stop_run() {
    if [ -n "$RUN_PID" ] && kill -0 "$RUN_PID" 2>/dev/null; then
        kill -KILL "$RUN_PID" 2>/dev/null
        wait "$RUN_PID" 2>/dev/null
    fi
    RUN_PID=
}

step_run() {
    need_root "run"
    [ -f "$UNIT" ] || fail "run: $UNIT is not installed (run the install step first)"
    getent passwd stox >/dev/null || fail "run: no user stox"
    local exec_start user dir sip_port msrp_port xmpp_port cfg log
    exec_start=$(sed -n 's/^ExecStart=//p' "$UNIT")
    user=$(sed -n 's/^User=//p' "$UNIT")
    [ "$user" = "stox" ] || fail "run: the unit's User= is '$user', expected stox"
    grep -qx 'AmbientCapabilities=CAP_NET_BIND_SERVICE' "$UNIT" || fail "run: the unit lost AmbientCapabilities=CAP_NET_BIND_SERVICE"
    grep -qx 'UMask=0077' "$UNIT" || fail "run: the unit lost UMask=0077"
    # the unit's command with the test config instead of the packaged one
    case "$exec_start" in
        *" --config $CONF"*) ;;
        *) fail "run: ExecStart '$exec_start' does not pass --config $CONF" ;;
    esac
    dir=$PKG_CHECK_DIR/run
    rm -rf "$dir"
    install -d -m 0755 "$dir"
    install -d -m 0700 -o stox -g stox "$dir/state"
    cfg=$dir/component.toml
    log=$dir/stox.log
    sip_port=$(free_port 600 700) || fail "run: no free port in 600-700 for SIP"
    msrp_port=$(free_port 28550 28650) || fail "run: no free port for MSRP"
    xmpp_port=$(free_port 28660 28760) || fail "run: no closed port for the component link"
    (umask 027; echo "package-check-secret" > "$dir/secret") && chgrp stox "$dir/secret"

    # the packaged config with what an admin must change, plus test-only ports and paths
    sed -e "s|^server = .*|server = \"127.0.0.1:$xmpp_port\"|" \
        -e "s|^secret = .*|secret_file = \"$dir/secret\"|" \
        -e "s|^reconnect_max_secs = .*|reconnect_max_secs = 2|" \
        -e "s|^listen = .*|listen = [\"udp:127.0.0.1:$sip_port\", \"tcp:127.0.0.1:$sip_port\"]|" \
        -e "s|^state_dir = .*|state_dir = \"$dir/state\"|" \
        -e "s|^msrp_listen = .*|msrp_listen = \"127.0.0.1:$msrp_port\"|" \
        "$CONF" > "$cfg" || fail "run: cannot write $cfg"
    for want in "127.0.0.1:$xmpp_port" "secret_file = \"$dir/secret\"" "tcp:127.0.0.1:$sip_port" \
                "state_dir = \"$dir/state\"" "127.0.0.1:$msrp_port"; do
        grep -qF "$want" "$cfg" || fail "run: could not put '$want' into the test config (did $CONF change shape?)"
    done
    chgrp stox "$cfg" && chmod 0640 "$cfg"
    local cmd="${exec_start/ --config $CONF/ --config $cfg}"
    # the unit's Environment= lines (one assignment each)
    local -a envs
    mapfile -t envs < <(sed -n 's/^Environment=//p' "$UNIT")
    out=$(runuser -u stox -- /usr/bin/stox check-config --config "$cfg" 2>&1) \
        || fail "run: the test config does not validate as user stox (every parent of $PKG_CHECK_DIR must be searchable by stox): $out"

    say "run: $cmd  (as stox, SIP udp+tcp 127.0.0.1:$sip_port, component link to closed port $xmpp_port)"
    # what the unit gives the process: User=/Group= with its groups, Environment=, UMask=0077,
    # AmbientCapabilities= + CapabilityBoundingSet= CAP_NET_BIND_SERVICE, NoNewPrivileges=yes
    # shellcheck disable=SC2086  # ExecStart is split into words, as systemd does
    setpriv --reuid=stox --regid=stox --init-groups \
        --inh-caps=-all,+net_bind_service --ambient-caps=-all,+net_bind_service \
        --bounding-set=-all,+net_bind_service --no-new-privs \
        -- /usr/bin/env -i PATH=/usr/bin:/bin "${envs[@]}" \
        /bin/sh -c 'umask 0077; exec "$@"' stox $cmd >"$log" 2>&1 &
    RUN_PID=$!
    sleep 2
    if ! kill -0 "$RUN_PID" 2>/dev/null; then
        wait "$RUN_PID"; local rc=$?
        indent <"$log" >&2
        RUN_PID=
        fail "run: stox exited within 2 s (status $rc); log above"
    fi
    [ "$(stat -c %U "/proc/$RUN_PID")" = "stox" ] || fail "run: the process does not run as stox"
    local proto ok
    for proto in udp tcp; do
        ok=0
        for _ in $(seq 50); do
            if ss -Hln --"$proto" -p 2>/dev/null | grep -E "127\.0\.0\.1:$sip_port\b" | grep -q "pid=$RUN_PID,"; then
                ok=1; break
            fi
            sleep 0.1
        done
        [ $ok -eq 1 ] || { indent <"$log" >&2; fail "run: stox (pid $RUN_PID) is not listening on $proto 127.0.0.1:$sip_port"; }
    done
    echo "    alive after 2 s, listening on udp and tcp 127.0.0.1:$sip_port as $(stat -c %U "/proc/$RUN_PID")"
    [ "$(stat -c '%U %a' "$dir/state/stox.sqlite3" 2>/dev/null)" = "stox 600" ] \
        || fail "run: state database is '$(stat -c '%U %a' "$dir/state/stox.sqlite3" 2>&1)', expected 'stox 600' (UMask=0077)"

    kill -TERM "$RUN_PID"
    local rc=
    for _ in $(seq 100); do
        kill -0 "$RUN_PID" 2>/dev/null || break
        sleep 0.1
    done
    if kill -0 "$RUN_PID" 2>/dev/null; then
        indent <"$log" >&2
        fail "run: stox still runs 10 s after SIGTERM"
    fi
    wait "$RUN_PID"; rc=$?
    RUN_PID=
    tail -n 5 "$log" | indent
    [ $rc -eq 0 ] || { indent <"$log" >&2; fail "run: stox exited with status $rc after SIGTERM, expected 0"; }
    if grep -q 'panicked' "$log"; then fail "run: stox panicked (log: $log)"; fi
    if grep -q $'\e\\[' "$log"; then fail "run: ANSI escapes in the log despite the unit's Environment=NO_COLOR=1"; fi
    say "run: ok (clean exit 0 after SIGTERM)"
}

# ------------------------------------------------------------------------------------------ purge
step_purge() {
    need_root "purge"
    # only what this check installed: a stox package that was here before is not ours to purge
    if [ ! -f "$PKG_CHECK_DIR/installed" ]; then
        say "purge: nothing to do (this check did not install stox)"
        return
    fi
    local st
    st=$(dpkg-query -W -f '${Status}' stox 2>/dev/null)
    if [ -n "$st" ] && [ "${st##* }" != "not-installed" ]; then
        say "purge: dpkg --purge stox"
        dpkg_locked --purge stox || fail "dpkg --purge stox failed"
    fi
    local left=
    for f in /usr/bin/stox "$UNIT" /usr/lib/sysusers.d/stox.conf /etc/stox /var/lib/stox \
             /etc/systemd/system/multi-user.target.wants/stox.service /usr/share/doc/stox; do
        [ -e "$f" ] || [ -L "$f" ] && left="$left $f"
    done
    dpkg-statoverride --list "$CONF" >/dev/null 2>&1 && left="$left statoverride:$CONF"
    # the stox user: Debian leaves it behind on purge; this check removes it if it created it
    if [ "$(cat "$PKG_CHECK_DIR/user-existed" 2>/dev/null)" = "0" ] && getent passwd stox >/dev/null; then
        userdel stox || left="$left user:stox"
        getent group stox >/dev/null && { groupdel stox || left="$left group:stox"; }
    fi
    rm -f "$PKG_CHECK_DIR/installed"
    [ -z "$left" ] || fail "purge: left behind:$left"
    say "purge: ok"
}

# --------------------------------------------------------------------------------------------- main
# shellcheck disable=SC2317  # called by the trap
on_exit() {
    local rc=$?
    trap - EXIT
    stop_run
    if [ $# -eq 0 ] && [ -f "$PKG_CHECK_DIR/installed" ]; then
        # all steps and one failed: purge anyway, so the machine is left as found
        ( step_purge ) || rc=1
    fi
    if [ $rc -eq 0 ] && [ $own_dir -eq 1 ]; then
        rm -rf "$PKG_CHECK_DIR"
    elif [ $rc -ne 0 ]; then
        echo "[package-check] work directory kept: $PKG_CHECK_DIR" >&2
    fi
    exit $rc
}
if [ $# -eq 0 ]; then trap 'on_exit' EXIT; else trap 'on_exit only-steps' EXIT; fi
for s in $steps; do
    "step_$s"
done
if [ $# -eq 0 ]; then
    echo "package-check: ok ($(( $(date +%s) - t0 ))s, ${STOX_DEB:-profile $PROFILE})"
else
    echo "package-check: ok ($steps)"
fi
