#!/usr/bin/env bash
# bench/instructions.sh - instructions per request of smsguard (sg-full, sg-jwt and sg-fwd, HTTP/2 and
# HTTP/1.1), alone: `bench/run.sh --instructions` on a build of your choice, so that two
# builds can be compared on a busy machine (the count does not depend on other work).
#
#   bench/instructions.sh                 the build in build-bench/, as it is
#   bench/instructions.sh BUILD_DIR       another build (a directory with smsguard and sms-sim,
#                                         Release, e.g. a worktree of an older commit)
#
# Method, settings (BENCH_INSTR_N1, BENCH_INSTR_N2, BENCH_INSTR_TOOL) and the report: see
# bench/run.sh --help and docs/performance.md. Nothing is built here.
set -euo pipefail
BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
BUILD=${1:-$BENCH_DIR/../build-bench}
[[ -x $BUILD/smsguard ]] || { echo "instructions: no smsguard in $BUILD (build it first)" >&2; exit 2; }
BENCH_BUILD_DIR=$(cd "$BUILD" && pwd) exec "$BENCH_DIR/run.sh" --instructions --no-build
