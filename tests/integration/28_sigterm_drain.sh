#!/usr/bin/env bash
# 28_sigterm_drain: SIGTERM stops accepting, lets in-flight requests finish (here a 1.5 s
# slow upstream answer, over h1 and h2), answers /healthz 503 while draining, and exits 0
# within limits.drain_timeout_ms; a request longer than the drain timeout does not keep
# smsguard alive; SIGINT behaves like SIGTERM.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

DRAIN_MS=5000
GUARD_SETTINGS=("limits=drain_timeout_ms = $DRAIN_MS;")
start_all

# wait_exit PID SECONDS: wait for PID (a child) to exit; sets RES to "STATUS ELAPSED", or
# "running SECONDS" when it did not exit in time. Not in a subshell: `wait` needs the child.
wait_exit() {
    local pid=$1 t0 st=0
    t0=$(date +%s.%N)
    while is_alive "$pid"; do
        if python3 -c 'import sys,time; sys.exit(0 if time.time()-float(sys.argv[1]) > float(sys.argv[2]) else 1)' "$t0" "$2"; then
            RES="running $2"
            return 0
        fi
        sleep 0.05
    done
    wait "$pid" || st=$?
    forget_pid "$pid"
    RES="$st $(python3 -c 'import sys,time; print("%.2f" % (time.time()-float(sys.argv[1])))' "$t0")"
}

check "before SIGTERM: /healthz is 200"
out=$(curl -sS --max-time 5 -o /dev/null -w '%{http_code}' "$SG_ADMIN_URL/healthz")
assert_eq 200 "$out" "/healthz status"

check "two slow requests (x-sim-delay-ms: 1500) in flight, over h1 and h2"
sg_curl --http1.1 -o "$WORK/slow-h1.json" -w '%{http_code}' -H 'x-sim-delay-ms: 1500' \
    "$SG_URL/sim/echo/slow-h1" >"$WORK/slow-h1.code" 2>"$WORK/slow-h1.curlerr" &
C1=$!
track_pid "$C1" "curl slow-h1"
sg_curl --http2 -o "$WORK/slow-h2.json" -w '%{http_code}' -H 'x-sim-delay-ms: 1500' \
    "$SG_URL/sim/echo/slow-h2" >"$WORK/slow-h2.code" 2>"$WORK/slow-h2.curlerr" &
C2=$!
track_pid "$C2" "curl slow-h2"
record_wait_path /sim/echo/slow-h1 3 || fail "the slow h1 request did not reach the simulator"
record_wait_path /sim/echo/slow-h2 3 || fail "the slow h2 request did not reach the simulator"

check "SIGTERM to smsguard while they are in flight"
T0=$(date +%s.%N)
kill -TERM "$SG_PID"
sleep 0.2

check "while draining: /healthz answers 503"
out=$(curl -sS --max-time 1 -o /dev/null -w '%{http_code}' "$SG_ADMIN_URL/healthz" || true)
assert_eq 503 "$out" "/healthz status while draining"

check "while draining: a new connection is not served"
rc=0
out=$(sg_curl --max-time 1 -o /dev/null -w '%{http_code}' "$SG_URL/sim/echo/after-term" 2>/dev/null) || rc=$?
echo "   curl exit $rc, status '$out'"
[[ $rc -ne 0 || $out != 200 ]] || fail "a new connection after SIGTERM was served with 200"
! record_has_path /sim/echo/after-term || fail "a request on a new connection after SIGTERM was forwarded"

check "the in-flight requests still get 200"
wait "$C1" || fail "the in-flight h1 request failed: $(cat "$WORK/slow-h1.curlerr")"
forget_pid "$C1"
wait "$C2" || fail "the in-flight h2 request failed: $(cat "$WORK/slow-h2.curlerr")"
forget_pid "$C2"
assert_eq 200 "$(cat "$WORK/slow-h1.code")" "status of the in-flight h1 request"
assert_eq 200 "$(cat "$WORK/slow-h2.code")" "status of the in-flight h2 request"
assert_eq /sim/echo/slow-h1 "$(json_eval "$WORK/slow-h1.json" 'd["path"]')" "h1 answer"
assert_eq /sim/echo/slow-h2 "$(json_eval "$WORK/slow-h2.json" 'd["path"]')" "h2 answer"

check "smsguard exits 0 within the drain timeout ($DRAIN_MS ms)"
wait_exit "$SG_PID" $((DRAIN_MS / 1000 + 2))
res=$RES
echo "   exit status and seconds after the wait began: $res"
assert_eq 0 "${res% *}" "smsguard's exit status after SIGTERM"
python3 -c 'import sys,time; sys.exit(0 if time.time()-float(sys.argv[1]) < float(sys.argv[2]) else 1)' \
    "$T0" $((DRAIN_MS / 1000 + 1)) || fail "smsguard took longer than the drain timeout to exit"

check "a request longer than drain_timeout_ms (1500) does not keep smsguard alive"
guard_conf "$WORK/short.conf" "limits=drain_timeout_ms = 1500;"
start_guard "$WORK/short.conf"
sg_curl --http1.1 -o /dev/null -w '%{http_code}' -H 'x-sim-delay-ms: 8000' \
    "$SG_URL/sim/echo/too-slow" >"$WORK/too-slow.code" 2>/dev/null &
C3=$!
track_pid "$C3" "curl too-slow"
record_wait_path /sim/echo/too-slow 3 || fail "the too-slow request did not reach the simulator"
kill -TERM "$SG_PID"
wait_exit "$SG_PID" 5
res=$RES
echo "   exit status and seconds after SIGTERM: $res"
assert_eq 0 "${res% *}" "smsguard's exit status after the drain timeout ran out"
assert_time_between "${res#* }" 1.0 4.0 "time to exit with a request still in flight"
wait "$C3" 2>/dev/null || true
forget_pid "$C3"
echo "   the too-slow request got: '$(cat "$WORK/too-slow.code")'"

check "SIGINT with nothing in flight: exit 0 promptly"
guard_conf "$WORK/int.conf"
start_guard "$WORK/int.conf"
out=$(sg_curl -o /dev/null -w '%{http_code}' "$SG_URL/sim/echo/before-int")
assert_eq 200 "$out" "status before SIGINT"
kill -INT "$SG_PID"
wait_exit "$SG_PID" 5
res=$RES
echo "   exit status and seconds after SIGINT: $res"
assert_eq 0 "${res% *}" "smsguard's exit status after SIGINT"
assert_time_between "${res#* }" 0 3 "time to exit after SIGINT"

echo "PASS: $TEST_NAME"
