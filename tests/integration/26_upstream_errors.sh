#!/usr/bin/env bash
# 26_upstream_errors: an upstream with nothing listening gives 502 quickly; an upstream that
# never answers gives 504 after upstream.response_timeout_ms (1000 here); smsguard keeps
# serving afterwards.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

setup_certs

check "upstream port with nothing listening: 502 quickly (h1 and h2)"
free_port DEAD_PORT
guard_conf "$WORK/dead.conf" "upstream_url=http://127.0.0.1:$DEAD_PORT"
start_guard "$WORK/dead.conf"
for proto in http1.1 http2; do
    out=$(sg_curl "--$proto" -o "$WORK/dead.out" -w '%{http_code} %{time_total}' \
        "$SG_URL/sim/echo/dead" || true)
    echo "   --$proto: $out"
    assert_eq 502 "${out% *}" "status with the upstream down (--$proto)"
    assert_time_between "${out#* }" 0 2 "time to 502 (--$proto)"
done
out=$(curl -sS --max-time 5 -o /dev/null -w '%{http_code}' "$SG_ADMIN_URL/healthz")
assert_eq 200 "$out" "/healthz while the upstream is down"

check "silent upstream with response_timeout_ms = 1000: 504 within 1-3.5 s"
start_sim
guard_conf "$WORK/silent.conf" response_timeout_ms=1000
start_guard "$WORK/silent.conf"
for proto in http1.1 http2; do
    out=$(sg_curl "--$proto" -o "$WORK/silent.out" -w '%{http_code} %{time_total}' \
        -H 'x-sim-silent: 1' "$SG_URL/sim/echo/silent-$proto" || true)
    echo "   --$proto: $out"
    assert_eq 504 "${out% *}" "status with a silent upstream (--$proto)"
    assert_time_between "${out#* }" 0.9 3.5 "time to 504 (--$proto)"
    record_has_path "/sim/echo/silent-$proto" || fail "the silent request was not forwarded at all"
done

check "a slow but answering upstream (700 ms) is within the timeout: 200"
out=$(sg_curl -o /dev/null -w '%{http_code}' -H 'x-sim-delay-ms: 700' "$SG_URL/sim/echo/slow-ok")
assert_eq 200 "$out" "status"

check "after the timeouts smsguard still serves (no reuse of the stuck connection)"
for i in 1 2 3 4 5; do
    out=$(sg_curl -o /dev/null -w '%{http_code}' "$SG_URL/sim/echo/after-$i")
    assert_eq 200 "$out" "status of request $i after the timeouts"
done

check "the simulator stopped: 502 again"
kill -TERM "$SIM_PID"
deadline=$((SECONDS + 5))
while is_alive "$SIM_PID" && ((SECONDS < deadline)); do sleep 0.05; done
is_alive "$SIM_PID" && kill -KILL "$SIM_PID"
wait "$SIM_PID" 2>/dev/null || true
forget_pid "$SIM_PID"
out=$(sg_curl -o /dev/null -w '%{http_code} %{time_total}' "$SG_URL/sim/echo/gone" || true)
echo "   $out"
assert_eq 502 "${out% *}" "status after the upstream went away"
assert_time_between "${out#* }" 0 3 "time to 502"

echo "PASS: $TEST_NAME"
