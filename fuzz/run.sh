#!/usr/bin/env bash
# Build the fuzz targets on the stable toolchain (RUSTC_BOOTSTRAP=1 lets cargo-fuzz
# pass its nightly-only flags) and run each one for SECONDS, one at a time, on one
# core. Usage: fuzz/run.sh [SECONDS] [TARGET...]   (default 600 s, all targets)
# Logs: fuzz/logs/TARGET/fuzz-0.log; crashes: fuzz/artifacts/TARGET/.
set -euo pipefail
cd "$(dirname "$0")"
secs=${1:-600}
shift || true
targets=("$@")
[ ${#targets[@]} -eq 0 ] && targets=(memop_raw tlb scenario)
export RUSTC_BOOTSTRAP=1
cargo fuzz build -O -a -s none
bin=target/x86_64-unknown-linux-gnu/release
for t in "${targets[@]}"; do
    mkdir -p "corpus/$t" "artifacts/$t" "logs/$t"
    extra=(-max_len=2048 -len_control=0)
    if [ "$t" = scenario ]; then
        # Seeds: the shipped examples; tokens of the format.
        cp -n ../examples/*.toml "corpus/$t/" 2>/dev/null || true
        extra=(-max_len=8192 -dict="$PWD/dicts/scenario.dict")
    fi
    (cd "logs/$t" && "../../$bin/$t" "../../corpus/$t" \
        -artifact_prefix="../../artifacts/$t/" -max_total_time="$secs" \
        -jobs=1 -workers=1 -rss_limit_mb=4096 "${extra[@]}" || true)
    tail -n 3 "logs/$t/fuzz-0.log"
done
