#!/usr/bin/env bash
# scripts/test.sh - install what is missing, build, and run every test twice: in build/
# (RelWithDebInfo) and in build-san/ (AddressSanitizer + UndefinedBehaviorSanitizer,
# -DSG_SANITIZE=ON). Exits non-zero when a build or a test fails in either.
#
# Then scripts/fuzz.sh runs each libFuzzer target for FUZZ_SECONDS (default 20) with clang,
# while the long soak (tests/integration/95_soak.sh for SG_SOAK_SECONDS, default 300, with
# the build/ binaries; log in build/soak-output.log) runs in the background beside it.
#
# Each phase is announced with the time since the start ("==> [m:ss] ..."); during the fuzzing
# and the soak a line every 25 s says how long each has run and about how long is left. A
# test that cannot run here (a tool missing, not root) exits 77 and is counted as skipped,
# with its reason; the closing line is "N passed, N failed, N skipped".
#
# Options: --no-san       skip the sanitizer build
#          --no-fuzz      skip the bounded fuzzing step
#          --no-soak      skip the long soak (also skipped when -R/-L/-E/-LE select tests)
#          --no-deps      do not run scripts/deps.sh
#          -R REGEX / -L LABEL   passed to ctest (e.g. -L unit, -R it_20)
set -uo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.." || exit 1
ROOT=$(pwd)

SAN=1
FUZZ=1
SOAK=1
DEPS=1
CTEST_ARGS=()
while (($#)); do
    case $1 in
    --no-san) SAN=0 ;;
    --no-fuzz) FUZZ=0 ;;
    --no-soak) SOAK=0 ;;
    --no-deps) DEPS=0 ;;
    -R | -L | -E | -LE)
        CTEST_ARGS+=("$1" "${2:?$1 needs an argument}")
        shift
        ;;
    -h | --help)
        sed -n '2,19p' "$0"
        exit 0
        ;;
    *)
        echo "test.sh: unknown option $1" >&2
        exit 2
        ;;
    esac
    shift
done

JOBS=$(nproc 2>/dev/null || echo 2)
START=$SECONDS
declare -A RESULT=()
PASSED=0
FAILED=0
SKIPPED=0
SKIP_REASONS=()

# mmss SECONDS: m:ss
mmss() { printf '%d:%02d' $(($1 / 60)) $(($1 % 60)); }
step() { printf '\n==> [%s] %s\n' "$(mmss $((SECONDS - START)))" "$*"; }

# Background processes of this script (the soak, the progress line), stopped by PID if the
# script ends early.
SOAK_PID=""
TICK_PID=""
# shellcheck disable=SC2317 # run by the EXIT trap
cleanup() {
    [[ -n $TICK_PID ]] && kill "$TICK_PID" 2>/dev/null
    [[ -n $SOAK_PID ]] && kill "$SOAK_PID" 2>/dev/null
    return 0
}
trap cleanup EXIT

# ticker ITEM...: every 25 s, one line with each item's elapsed and remaining time, until
# killed (tick_stop). An ITEM is NAME:PID:START:PLAN (START: the epoch second it started,
# PLAN: its planned seconds) or NAME:PID:START:@FILE, FILE's first line being the planned
# end (epoch second) once it is known, and until then what the step is doing. An item whose
# PID has ended is left out.
ticker() {
    local item name pid start plan end now line sp=""
    trap '[[ -n $sp ]] && kill "$sp" 2>/dev/null; exit 0' TERM
    while :; do
        sleep 25 &
        sp=$!
        wait "$sp"
        sp=""
        printf -v now '%(%s)T' -1
        line=""
        for item in "$@"; do
            IFS=: read -r name pid start plan <<<"$item"
            kill -0 "$pid" 2>/dev/null || continue
            if [[ $plan == @* ]]; then
                end=$(head -n 1 "${plan#@}" 2>/dev/null || true)
                if [[ $end =~ ^[0-9]+$ ]]; then
                    plan=$((end - start))
                else
                    line+="; $name $(mmss $((now - start))) elapsed, ${end:-starting}"
                    continue
                fi
            fi
            if ((now - start < plan)); then
                line+="; $name $(mmss $((now - start))) elapsed, about $(mmss $((plan - (now - start)))) left"
            else
                line+="; $name $(mmss $((now - start))) elapsed, finishing (planned $(mmss "$plan"))"
            fi
        done
        [[ -n $line ]] && printf '    [%s] %s\n' "$(mmss $((SECONDS - START)))" "${line#; }"
    done
}
tick_start() {
    # stderr: bash's own notes about the sleep the TERM trap kills are of no interest
    ticker "$@" 2>/dev/null &
    TICK_PID=$!
}
tick_stop() {
    [[ -n $TICK_PID ]] || return 0
    kill "$TICK_PID" 2>/dev/null
    wait "$TICK_PID" 2>/dev/null
    TICK_PID=""
}

# run_suite DIR CMAKE_ARGS...: configure, build, ctest; records RESULT[DIR].
run_suite() {
    local dir=$1 log
    shift
    step "configure $dir/ ($*)"
    if ! cmake -S "$ROOT" -B "$ROOT/$dir" "$@"; then
        RESULT[$dir]="configure failed"
        FAILED=$((FAILED + 1))
        return 1
    fi
    step "build $dir/"
    if ! cmake --build "$ROOT/$dir" -j"$JOBS"; then
        RESULT[$dir]="build failed"
        FAILED=$((FAILED + 1))
        return 1
    fi
    step "test $dir/ (ctest -j2)"
    log=$ROOT/$dir/ctest-output.log
    ctest --test-dir "$ROOT/$dir" --output-on-failure -j2 "${CTEST_ARGS[@]+"${CTEST_ARGS[@]}"}" \
        "${SUITE_ARGS[@]+"${SUITE_ARGS[@]}"}" 2>&1 | tee "$log"
    local rc=${PIPESTATUS[0]}
    # "67% tests passed, 1 tests failed out of 3": the total counts the skipped tests
    # (exit 77, SKIP_RETURN_CODE), which ctest lists under "The following tests did not
    # run:" as "  12 - it_91_deb (Skipped)"; their reason is the test's "SKIP: ..." line,
    # in ctest's log of the run.
    local line total=0 failed=0 skipped=0 t reason
    line=$(grep -E 'tests passed, [0-9]+ tests? failed out of [0-9]+' "$log" | tail -n 1)
    if [[ $line =~ ([0-9]+)\ tests?\ failed\ out\ of\ ([0-9]+) ]]; then
        failed=${BASH_REMATCH[1]}
        total=${BASH_REMATCH[2]}
        while read -r t; do
            [[ -n $t ]] || continue
            skipped=$((skipped + 1))
            reason=$(grep -m 1 -E "^SKIP: ${t#it_}: " "$ROOT/$dir/Testing/Temporary/LastTest.log" 2>/dev/null |
                sed -E 's/^SKIP: [^:]*: //' || true)
            SKIP_REASONS+=("$dir/ $t: ${reason:-(no reason given)}")
        done < <(sed -nE 's/^[[:space:]]*[0-9]+ - ([^ ]+) \(Skipped\)$/\1/p' "$log")
        PASSED=$((PASSED + total - failed - skipped))
        FAILED=$((FAILED + failed))
        SKIPPED=$((SKIPPED + skipped))
        RESULT[$dir]="$((total - failed - skipped)) passed, $failed failed, $skipped skipped"
    else
        RESULT[$dir]="ctest ran no test (exit $rc)"
        FAILED=$((FAILED + 1))
        rc=1
    fi
    if ((rc != 0)) && [[ ${RESULT[$dir]} != *"ran no test"* ]] && ((failed == 0)); then
        RESULT[$dir]+=", ctest exit $rc"
        FAILED=$((FAILED + 1))
    fi
    return "$rc"
}

rc=0
if ((DEPS)); then
    step "dependencies (scripts/deps.sh --test)"
    ./scripts/deps.sh --test || { echo "test.sh: scripts/deps.sh failed" >&2; exit 1; }
fi

# The plain build's 30-s soak is left to the long soak below, when that runs; the sanitizer
# build keeps its own (LeakSanitizer at the end of a soak).
SUITE_ARGS=()
((SOAK)) && ((${#CTEST_ARGS[@]} == 0)) && SUITE_ARGS=(-E '^it_95_soak$')
run_suite build -DCMAKE_BUILD_TYPE=RelWithDebInfo -DSG_SANITIZE=OFF -DBUILD_TESTING=ON || rc=1
SUITE_ARGS=()

if ((SAN)); then
    export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1
    export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
    run_suite build-san -DCMAKE_BUILD_TYPE=RelWithDebInfo -DSG_SANITIZE=ON -DBUILD_TESTING=ON || rc=1
fi

# The long soak: in the background so it overlaps the fuzzing (one core each), with the
# plain build only (a sanitizer build's RSS says nothing about smsguard's).
# 300 s: the 5-minute soak (it outlasts the fuzzing, so it adds to the run).
SOAK_S=${SG_SOAK_SECONDS:-300}
SOAK_LOG=$ROOT/build/soak-output.log
if ((SOAK)) && ((${#CTEST_ARGS[@]} > 0)); then
    echo "test.sh: a test selection was given: the long soak is skipped"
    SOAK=0
fi
if ((SOAK)) && [[ ! -x $ROOT/build/smsguard || ${RESULT[build]:-} == "configure failed" ||
    ${RESULT[build]:-} == "build failed" ]]; then
    RESULT[soak]="not run (build/ failed)"
    FAILED=$((FAILED + 1))
    SOAK=0
    rc=1
fi
SOAK_ITEM=""
if ((SOAK)); then
    step "soak ($(mmss "$SOAK_S"), build/, in the background; log $SOAK_LOG)"
    SG_SOAK_SECONDS=$SOAK_S SMSGUARD=$ROOT/build/smsguard SMS_SIM=$ROOT/build/sms-sim \
        SMSGUARD_AUDIT=$ROOT/build/smsguard-audit SG_SOURCE_DIR=$ROOT \
        bash "$ROOT/tests/integration/95_soak.sh" >"$SOAK_LOG" 2>&1 &
    SOAK_PID=$!
    # the soak's own set-up and checks take about 10 s besides its traffic
    SOAK_ITEM="soak:$SOAK_PID:$(printf '%(%s)T' -1):$((SOAK_S + 10))"
fi

if ((FUZZ)); then
    FUZZ_S=${FUZZ_SECONDS:-20}
    step "fuzz (scripts/fuzz.sh: build-fuzz/, then each target for $FUZZ_S s)"
    FUZZ_STATE=$(mktemp)
    # fuzz.sh writes what it does there, then the planned end of its runs (ticker)
    SG_PROGRESS_FILE=$FUZZ_STATE ./scripts/fuzz.sh "$FUZZ_S" &
    FUZZ_PID=$!
    tick_start ${SOAK_ITEM:+"$SOAK_ITEM"} "fuzz:$FUZZ_PID:$(printf '%(%s)T' -1):@$FUZZ_STATE"
    if wait "$FUZZ_PID"; then
        RESULT[build-fuzz]="no finding"
        PASSED=$((PASSED + 1))
    else
        RESULT[build-fuzz]="FAILED"
        FAILED=$((FAILED + 1))
        rc=1
    fi
    tick_stop
    rm -f "$FUZZ_STATE"
fi

if [[ -n $SOAK_PID ]]; then
    step "waiting for the soak (pid $SOAK_PID)"
    tick_start "$SOAK_ITEM"
    soak_rc=0
    wait "$SOAK_PID" || soak_rc=$?
    SOAK_PID=""
    tick_stop
    if ((soak_rc == 0)); then
        RESULT[soak]="PASSED ($SOAK_S s)"
        PASSED=$((PASSED + 1))
    elif ((soak_rc == 77)); then
        RESULT[soak]="skipped: $(grep -m 1 '^SKIP: ' "$SOAK_LOG" | sed -E 's/^SKIP: [^:]*: //')"
        SKIP_REASONS+=("soak: ${RESULT[soak]#skipped: }")
        SKIPPED=$((SKIPPED + 1))
    else
        RESULT[soak]="FAILED ($SOAK_S s; see $SOAK_LOG)"
        grep -E 'FAIL' "$SOAK_LOG" | head -n 20 || true
        FAILED=$((FAILED + 1))
        rc=1
    fi
    # the soak's own numbers: requests by class and RSS
    grep -E '^   (VmRSS|RSS|valid stop|[0-9]+ valid|hostile req)' "$SOAK_LOG" || true
fi

step "summary ($(mmss $((SECONDS - START))))"
for dir in build build-san build-fuzz soak; do
    [[ -n ${RESULT[$dir]:-} ]] && echo "  $dir: ${RESULT[$dir]}"
done
if ((${#SKIP_REASONS[@]})); then
    echo "  skipped (could not run here):"
    printf '    %s\n' "${SKIP_REASONS[@]}"
fi
if ((rc == 0)); then
    echo "test.sh: all suites passed"
else
    echo "test.sh: FAILED"
fi
echo "$PASSED passed, $FAILED failed, $SKIPPED skipped"
exit "$rc"
