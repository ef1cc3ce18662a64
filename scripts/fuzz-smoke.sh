#!/usr/bin/env bash
# Fuzz smoke test: build the cargo-fuzz targets in fuzz/, replay every input kept in
# fuzz/regressions/<target>/, then fuzz each target for FUZZ_SECONDS (default 20) starting from
# the seeds in fuzz/corpus/<target>/. Exits non-zero if any input crashes or breaks an invariant.
# See FUZZING.md.
#
# Environment:
#   FUZZ_SECONDS     seconds of fuzzing per target (default 20; 0 = only replay regressions)
#   FUZZ_TARGETS     space-separated subset of targets (default: all, from `cargo fuzz list`)
#   FUZZ_SANITIZER   none (default) or address; none runs 3-7x more inputs per second, see FUZZING.md
#   FUZZ_OUT         where crash inputs and logs go (default: fuzz/artifacts/smoke)
#   CARGO_FUZZ_VERSION  cargo-fuzz version installed when missing (default 0.13.2)
#
# Needs only the stable toolchain: RUSTC_BOOTSTRAP=1 lets stable rustc take the -Z flags
# cargo-fuzz passes. Runs as root, without stdin (CI).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

seconds=${FUZZ_SECONDS:-20}
sanitizer=${FUZZ_SANITIZER:-none}
out=${FUZZ_OUT:-$root/fuzz/artifacts/smoke}
export RUSTC_BOOTSTRAP=1
export CARGO_TERM_COLOR=never
# Every invariant is checked here, including those of open findings (FUZZING.md).
unset STOX_FUZZ_SKIP_KNOWN STOX_FUZZ_DEBUG

t0=$(date +%s)
elapsed() { echo "$(($(date +%s) - t0))s"; }

if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "==> installing cargo-fuzz ${CARGO_FUZZ_VERSION:-0.13.2} ($(elapsed))"
    cargo install cargo-fuzz --locked --version "${CARGO_FUZZ_VERSION:-0.13.2}" </dev/null
fi
echo "==> $(cargo fuzz --version) ($(elapsed))"

cd "$root/fuzz"
echo "==> cargo fuzz build --sanitizer $sanitizer ($(elapsed))"
cargo fuzz build --sanitizer "$sanitizer" </dev/null
# cargo builds into $CARGO_TARGET_DIR when it is set (CI's build cache, .ci/run).
bin_dir=${CARGO_TARGET_DIR:-$root/fuzz/target}/x86_64-unknown-linux-gnu/release

targets=${FUZZ_TARGETS:-$(cargo fuzz list </dev/null)}
mkdir -p "$out"
passed=0
failed=0
failures=()

for t in $targets; do
    bin=$bin_dir/$t
    if [ ! -x "$bin" ]; then
        echo "!! $t: no binary at $bin"
        failed=$((failed + 1))
        failures+=("$t (not built)")
        continue
    fi
    ok=1
    mkdir -p "$out/$t"

    # 1. Regression inputs: each must run clean.
    reg=$root/fuzz/regressions/$t
    if [ -d "$reg" ] && [ -n "$(ls -A "$reg")" ]; then
        for f in "$reg"/*; do
            if "$bin" -runs=1 "$f" >"$out/$t/regression-$(basename "$f").log" 2>&1 </dev/null; then
                echo "   $t: regression $(basename "$f") ok"
            else
                echo "!! $t: regression input fails: $f"
                echo "   log: $out/$t/regression-$(basename "$f").log"
                grep -m1 -A3 "panicked at" "$out/$t/regression-$(basename "$f").log" | sed 's/^/   | /' || true
                ok=0
                failures+=("$t regression $f")
            fi
        done
    fi

    # 2. A short fuzz run from the seeds; new inputs go to a scratch corpus, not the seeds.
    if [ "$seconds" -gt 0 ]; then
        work=$(mktemp -d "${TMPDIR:-/tmp}/stox-fuzz-$t.XXXXXX")
        log=$out/$t/fuzz.log
        dict=()
        [ -f "$root/fuzz/dict/$t.dict" ] && dict=(-dict="$root/fuzz/dict/$t.dict")
        if "$bin" "$work" "$root/fuzz/corpus/$t" -max_total_time="$seconds" -timeout=10 \
            -rss_limit_mb=2048 -print_final_stats=1 -artifact_prefix="$out/$t/" "${dict[@]}" \
            >"$log" 2>&1 </dev/null; then
            execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
            cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1)
            echo "   $t: ${seconds}s, ${execs:-?} execs, ${cov:-cov: ?}, no crash"
        else
            echo "!! $t: fuzzing found a crash; log: $log"
            grep -m1 -A3 "panicked at" "$log" | sed 's/^/   | /' || true
            grep -m1 "Test unit written to" "$log" | sed 's/^/   | /' || true
            ok=0
            failures+=("$t fuzzing (see $log)")
        fi
        rm -rf "$work"
    fi

    if [ "$ok" = 1 ]; then passed=$((passed + 1)); else failed=$((failed + 1)); fi
done

echo "==> done in $(elapsed)"
for f in "${failures[@]}"; do echo "   FAILED: $f"; done
echo "fuzz-smoke: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
