#!/usr/bin/env bash
# scripts/fuzz.sh - build every libFuzzer target (tests/fuzz/fuzz_*.c) with clang, ASan and
# UBSan into build-fuzz/, and run each for a bounded time over a scratch copy of its seed
# corpus (the checked-in corpus is never modified). A crash or leak fails the run; the
# reproducer is copied to tests/fuzz/regressions/<target>/ so that it can be committed and
# replayed by ctest on every build.
#
# Usage: scripts/fuzz.sh [SECONDS_PER_TARGET] (default 30; FUZZ_SECONDS works too)
# Each target's line says how long the fuzzing has left. With SG_PROGRESS_FILE set (by
# scripts/test.sh, for its progress line), that file's first line says what runs: a phrase
# while building, then the planned end of the runs (epoch seconds).
set -uo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.." || exit 1
ROOT=$(pwd)
SECS=${1:-${FUZZ_SECONDS:-30}}
SCRATCH=$(mktemp -d)
trap 'rm -rf "$SCRATCH"' EXIT

# progress WHAT: tell scripts/test.sh's progress line (SG_PROGRESS_FILE) what runs.
progress() { [[ -z ${SG_PROGRESS_FILE:-} ]] || echo "$1" >"$SG_PROGRESS_FILE"; }
mmss() { printf '%d:%02d' $(($1 / 60)) $(($1 % 60)); }

progress "building the targets (clang, ASan+UBSan, build-fuzz/)"
echo "fuzz.sh: building the targets with clang (ASan+UBSan) into build-fuzz/"
CC=clang cmake -S "$ROOT" -B "$ROOT/build-fuzz" -DSG_FUZZ=ON -DBUILD_TESTING=OFF \
    -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null || { echo "fuzz.sh: configure failed"; exit 1; }
targets=()
for src in "$ROOT"/tests/fuzz/fuzz_*.c; do
    [[ -e $src ]] || continue
    targets+=("$(basename "$src" .c)")
done
cmake --build "$ROOT/build-fuzz" -j"$(nproc)" --target "${targets[@]}" >/dev/null ||
    { echo "fuzz.sh: build failed"; exit 1; }

export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
rc=0
i=0
progress $(($(printf '%(%s)T' -1) + ${#targets[@]} * SECS))
for t in "${targets[@]}"; do
    i=$((i + 1))
    name=${t#fuzz_}
    mkdir -p "$SCRATCH/$name" "$SCRATCH/$name-artifacts"
    cp -r "$ROOT/tests/fuzz/corpus/$name/." "$SCRATCH/$name/" 2>/dev/null || true
    # The target's own <name>.dict, joined with the shared http.dict for the HTTP-facing
    # targets (libFuzzer takes a single -dict).
    dict=()
    : >"$SCRATCH/$name.dict"
    case $name in canon | h1 | h2) cat "$ROOT/tests/fuzz/http.dict" >>"$SCRATCH/$name.dict" 2>/dev/null ;; esac
    [[ -f $ROOT/tests/fuzz/$name.dict ]] && cat "$ROOT/tests/fuzz/$name.dict" >>"$SCRATCH/$name.dict"
    [[ -s $SCRATCH/$name.dict ]] && dict=(-dict="$SCRATCH/$name.dict")
    printf '==> %s (%d/%d): %s s; the fuzzing ends in about %s\n' "$t" "$i" "${#targets[@]}" \
        "$SECS" "$(mmss $(((${#targets[@]} - i + 1) * SECS)))"
    if "$ROOT/build-fuzz/$t" -max_total_time="$SECS" -timeout=10 -rss_limit_mb=2048 \
        -print_final_stats=1 "${dict[@]+"${dict[@]}"}" \
        -artifact_prefix="$SCRATCH/$name-artifacts/" "$SCRATCH/$name" >"$SCRATCH/$t.log" 2>&1; then
        grep -E 'stat::number_of_executed_units|Done [0-9]+ runs' "$SCRATCH/$t.log" | tail -n 2
    else
        rc=1
        tail -n 40 "$SCRATCH/$t.log"
        mkdir -p "$ROOT/tests/fuzz/regressions/$name"
        for a in "$SCRATCH/$name-artifacts"/*; do
            [[ -e $a ]] || continue
            h=$(sha256sum "$a" | cut -c1-64)
            cp "$a" "$ROOT/tests/fuzz/regressions/$name/$h"
            echo "fuzz.sh: $t failed; reproducer saved as tests/fuzz/regressions/$name/$h"
        done
    fi
done
if ((rc == 0)); then
    echo "fuzz.sh: ${#targets[@]} target(s) ran ${SECS} s each without a finding"
fi
exit "$rc"
