#!/usr/bin/env bash
# 24_h2load: 2,000 requests from h2load over h2 (10 connections x 10 streams) and over
# HTTP/1.1 (10 connections) are all answered 2xx, and all reach the simulator.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
need h2load nghttp2-client

start_all
N=2000

check "h2load -n $N -c 10 -m 10 (h2): all $N succeed with 2xx"
before=$(record_count)
timeout 120 h2load -n "$N" -c 10 -m 10 "$SG_URL/sim/echo/load-h2" >"$WORK/h2load-h2.out" 2>&1 ||
    { cat "$WORK/h2load-h2.out" >&2; fail "h2load (h2) exited non-zero"; }
grep -q 'Application protocol: h2' "$WORK/h2load-h2.out" ||
    fail "h2load did not negotiate h2: $(cat "$WORK/h2load-h2.out")"
h2load_check "$WORK/h2load-h2.out" "$N"
grep -E '^finished in' "$WORK/h2load-h2.out" | sed 's/^/   /'
after=$(record_count)
assert_eq "$N" "$((after - before))" "requests recorded by the simulator (h2)"

check "h2load --h1 -n $N -c 10: all $N succeed with 2xx"
before=$after
timeout 120 h2load --h1 -n "$N" -c 10 "$SG_URL/sim/echo/load-h1" >"$WORK/h2load-h1.out" 2>&1 ||
    { cat "$WORK/h2load-h1.out" >&2; fail "h2load (h1) exited non-zero"; }
grep -q 'Application protocol: http/1.1' "$WORK/h2load-h1.out" ||
    fail "h2load --h1 did not use http/1.1: $(cat "$WORK/h2load-h1.out")"
h2load_check "$WORK/h2load-h1.out" "$N"
grep -E '^finished in' "$WORK/h2load-h1.out" | sed 's/^/   /'
after=$(record_count)
assert_eq "$N" "$((after - before))" "requests recorded by the simulator (h1)"

check "h2load --h1 -m 4 (pipelined, 500 requests): all succeed with 2xx"
timeout 120 h2load --h1 -n 500 -c 5 -m 4 "$SG_URL/sim/echo/load-h1p" >"$WORK/h2load-h1p.out" 2>&1 ||
    { cat "$WORK/h2load-h1p.out" >&2; fail "h2load (h1, pipelined) exited non-zero"; }
h2load_check "$WORK/h2load-h1p.out" 500

check "h2load POST with a 1 KiB body (h2, 500 requests): all succeed with 2xx"
head -c 1024 /dev/zero | tr '\0' 'b' >"$WORK/post.body"
timeout 120 h2load -n 500 -c 5 -m 10 -d "$WORK/post.body" "$SG_URL/sim/echo/load-post" \
    >"$WORK/h2load-post.out" 2>&1 || { cat "$WORK/h2load-post.out" >&2; fail "h2load POST exited non-zero"; }
h2load_check "$WORK/h2load-post.out" 500

check "smsguard still answers /healthz after the load"
out=$(curl -sS --max-time 5 -o /dev/null -w '%{http_code}' "$SG_ADMIN_URL/healthz")
assert_eq 200 "$out" "/healthz status"

echo "PASS: $TEST_NAME"
