#!/usr/bin/env bash
# Builds the fuzz targets and runs each for SECONDS (default 60), one after the
# other, one process each; exits non-zero if any target crashed (the input is
# then in tests/fuzz/artifacts/TARGET/). See tests/fuzz/README.md.
#
#   tests/fuzz/run.sh [SECONDS] [TARGET...]
#
# With cargo-fuzz installed it is used; without it the targets are built with
# cargo +nightly and the same instrumentation flags cargo-fuzz passes (what CI
# does, to save installing cargo-fuzz). FUZZ_ARGS adds libFuzzer flags.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
secs="${1:-60}"
shift || true
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(frame_path capture_reader scenario_parse replay)
triple="$(rustc +nightly -vV | sed -n 's/^host: //p')"

# Seeds from captures/ (regenerated each run, so they follow the captures).
python3 "$here/seeds.py" "$root/captures" "$here/corpus"

if cargo fuzz --version >/dev/null 2>&1; then
    build() { (cd "$root" && cargo +nightly fuzz build --fuzz-dir tests/fuzz -O -a -s none "$@"); }
    bin_dir="$here/target/$triple/release"
else
    # cargo-fuzz's flags for `-O -a -s none` (cargo-fuzz 0.13, src/project.rs).
    build() {
        RUSTFLAGS="-Cpasses=sancov-module -Cllvm-args=-sanitizer-coverage-level=4 \
-Cllvm-args=-sanitizer-coverage-inline-8bit-counters -Cllvm-args=-sanitizer-coverage-pc-table \
-Cllvm-args=-sanitizer-coverage-trace-compares --cfg fuzzing \
-Cllvm-args=-simplifycfg-branch-fold-threshold=0 -Cllvm-args=-sanitizer-coverage-stack-depth \
-Cdebug-assertions -Ccodegen-units=1" \
            cargo +nightly build --manifest-path "$here/Cargo.toml" --target "$triple" --release \
            --config 'profile.release.debug="line-tables-only"' --bins
    }
    bin_dir="$here/target/$triple/release"
fi
build

failed=()
for t in "${targets[@]}"; do
    mkdir -p "$here/corpus/$t" "$here/artifacts/$t"
    log="$here/artifacts/$t.log"
    echo "== $t for ${secs}s"
    # -timeout: an input running 10 s is a hang, reported as a crash.
    # The stats at the end say how many inputs ran and how fast.
    before=$(ls "$here/artifacts/$t" | wc -l)
    status=0
    "$bin_dir/$t" "$here/corpus/$t" -artifact_prefix="$here/artifacts/$t/" -max_total_time="$secs" \
        -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 ${FUZZ_ARGS:-} >"$log" 2>&1 || status=$?
    # A crash is a non-zero exit, or (with FUZZ_ARGS="-fork=1 -ignore_crashes=1",
    # which goes on after a crash) a new input in artifacts/.
    if [ "$status" -ne 0 ] || [ "$(ls "$here/artifacts/$t" | wc -l)" -ne "$before" ]; then
        echo "CRASH in $t: see $log and $here/artifacts/$t/"
        grep -E 'panicked at|^SUMMARY|Test unit written|deadly signal' "$log" | sort | uniq -c | head -10 || true
        failed+=("$t")
    fi
    grep -E '^stat::(number_of_executed_units|average_exec_per_sec)|^Done|^#[0-9]+: cov' "$log" | tail -3 | tr '\n' ' '
    echo
done
if [ ${#failed[@]} -gt 0 ]; then
    echo "crashed: ${failed[*]}"
    exit 1
fi
echo "all clean: ${targets[*]}"
