#!/usr/bin/env bash
# 45_sigterm_under_load: SIGTERM while stop-test requests stream in (issue 9).
#   - h2load over h2 (4 connections x 4 streams) and over HTTP/1.1 (4 connections) send
#     allowed stop-test requests at a bounded rate; the simulator holds each answer 500 ms
#     (x-sim-delay-ms), so requests are in flight at any moment; audit.sync = always
#   - SIGTERM after about 2 s
#   - no request cut: every stop-test the simulator received was answered 2xx to its client,
#     and no client got any other status (requests the clients had not started, or that
#     came after GOAWAY or on a new connection, fail to connect: counted separately)
#   - /healthz answered 200 before and 503 during the drain (polled every 20 ms)
#   - smsguard exits 0; the audit file has one allow decision and one outcome (upstream
#     status 200, a distinct task) for every stop-test the simulator received, nothing
#     else, and smsguard-audit verify says ok
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
need h2load nghttp2-client

AUDIT=$WORK/audit.jsonl
VP=/sdk/vim25/8.0.3.0/sms/VasaProvider
M=TestFailoverReplicationGroupStop_Task

setup_certs
start_sim --task-ms 3000
guard_conf "$WORK/sg.conf" workers=2 "limits=drain_timeout_ms = 10000;" \
    extra="audit = { file = \"$AUDIT\"; sync = \"always\"; fail_closed = true; };"
start_guard "$WORK/sg.conf"
printf '%s' '{"groupId":[{"faultDomainId":{"id":"fd-1"},"deviceGroupId":{"id":"dg-1"}}],"force":false}' \
    >"$WORK/stop.json"
HDRS=(-H "authorization: Bearer $SG_TOKEN" -H 'content-type: application/json'
    -H 'x-sim-delay-ms: 500')

check "before: one stop-test is allowed, /healthz is 200"
out=$(sg_curl -o /dev/null -w '%{http_code}' "${HDRS[@]}" --data-binary @"$WORK/stop.json" \
    "$SG_URL$VP/vp-h2/$M")
assert_eq 200 "$out" "stop-test before the load"

check "/healthz poller (every 20 ms until the admin port closes)"
(exec "$PYBIN" - "$SG_ADMIN_PORT" >"$WORK/health.log" 2>&1 <<'PY'
import http.client, sys, time
port = int(sys.argv[1])
end = time.monotonic() + 60
while time.monotonic() < end:
    try:
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
        c.request("GET", "/healthz")
        st = c.getresponse().status
        c.close()
    except OSError:
        print("closed", flush=True)
        break
    print(st, flush=True)
    time.sleep(0.02)
PY
) &
POLL=$!
track_pid "$POLL" "healthz poller"

check "h2load: stop-tests over h2 (-c 4 -m 4) and HTTP/1.1 (-c 4), 500 ms each upstream"
timeout 60 h2load -n 2000 -c 4 -m 4 --rps 8 -d "$WORK/stop.json" "${HDRS[@]}" \
    "$SG_URL$VP/vp-h2/$M" >"$WORK/h2.out" 2>&1 &
H2=$!
track_pid "$H2" "h2load h2"
timeout 60 h2load --h1 -n 1000 -c 4 --rps 4 -d "$WORK/stop.json" "${HDRS[@]}" \
    "$SG_URL$VP/vp-h1/$M" >"$WORK/h1.out" 2>&1 &
H1=$!
track_pid "$H1" "h2load h1"
deadline=$((SECONDS + 20))
while (($(record_count) < 80)); do
    ((SECONDS < deadline)) || fail "the load did not start: $(record_count) requests recorded"
    sleep 0.1
done
grep -qx 200 "$WORK/health.log" || fail "/healthz was not 200 before SIGTERM: $(sort "$WORK/health.log" | uniq -c)"

check "SIGTERM in the middle of the load"
kill -TERM "$SG_PID"
T0=$SECONDS
while is_alive "$SG_PID" && ((SECONDS - T0 < 15)); do sleep 0.05; done
is_alive "$SG_PID" && fail "smsguard still runs 15 s after SIGTERM"
st=0
wait "$SG_PID" || st=$?
forget_pid "$SG_PID"
echo "   smsguard exited $st after $((SECONDS - T0)) s"
assert_eq 0 "$st" "smsguard's exit status after SIGTERM under load"
wait "$H2" || true
forget_pid "$H2"
wait "$H1" || true
forget_pid "$H1"
wait "$POLL" || true
forget_pid "$POLL"

check "/healthz: 200 before, 503 while draining, then closed"
echo "   /healthz answers: $(uniq -c "$WORK/health.log" | tr -s ' \n' ' ')"
grep -qx 503 "$WORK/health.log" || fail "/healthz never answered 503 during the drain"
assert_eq closed "$(tail -n 1 "$WORK/health.log")" "the poller's last observation"
python3 - "$WORK/health.log" <<'PY' || fail "/healthz went back to 200 after a 503"
import sys
seen = False
for l in open(sys.argv[1]):
    l = l.strip()
    if l == "503":
        seen = True
    elif l == "200" and seen:
        sys.exit(1)
PY

check "no request cut: every stop-test the simulator received was answered 2xx"
N_SIM=$(($(record_paths | grep -c "/$M\$" || true) - 1)) # minus the one before the load
sum_h2load() { # sum_h2load LINE_REGEX NAME: the sum of "N NAME" on that line over both runs
    local t=0 f n
    for f in "$WORK/h2.out" "$WORK/h1.out"; do
        n=$(grep -E "$1" "$f" | grep -oE "[0-9]+ $2" | cut -d' ' -f1) || n=0
        t=$((t + ${n:-0}))
    done
    echo "$t"
}
for f in h2 h1; do
    echo "   $f: $(grep -E '^requests:' "$WORK/$f.out")"
    echo "   $f: $(grep -E '^status codes:' "$WORK/$f.out")"
    grep -qE '^status codes:' "$WORK/$f.out" || fail "h2load ($f) printed no status codes: $(cat "$WORK/$f.out")"
done
OK2=$(sum_h2load '^status codes:' 2xx)
BAD=$(($(sum_h2load '^status codes:' 3xx) + $(sum_h2load '^status codes:' 4xx) + $(sum_h2load '^status codes:' 5xx)))
SUCC=$(sum_h2load '^requests:' succeeded)
FAILED=$(sum_h2load '^requests:' failed)
echo "   simulator received $N_SIM stop-tests; clients got $OK2 2xx, $BAD other statuses;" \
    "$FAILED requests never started or refused at connect/GOAWAY"
assert_lt 20 "$N_SIM" "stop-tests received before and during the drain"
assert_eq 0 "$BAD" "answers other than 2xx"
assert_eq "$N_SIM" "$OK2" "2xx answers vs stop-tests the simulator received"
assert_eq "$OK2" "$SUCC" "h2load's succeeded count"
assert_lt 0 "$FAILED" "requests the clients could not send after SIGTERM (the load was cut by the stop)"

check "the audit file: an allow decision and an outcome for each, and it verifies"
audit_verify "$AUDIT"
echo "   $AV_OUT"
assert_eq 0 "$AV_RC" "smsguard-audit verify's exit status"
got=$(python3 - "$AUDIT" "$((N_SIM + 1))" <<'PY'
import json, sys
recs = [json.loads(l) for l in open(sys.argv[1], "rb") if l.strip()]
want = int(sys.argv[2])
dec = [r for r in recs if r.get("stage") == "decision"]
out = {}
errs = []
for r in recs:
    if r.get("stage") == "outcome":
        out.setdefault(r.get("request_id"), []).append(r)
if len(dec) != want:
    errs.append("%d decision records, %d stop-tests" % (len(dec), want))
if any(d.get("decision") != "allow" for d in dec):
    errs.append("a decision other than allow")
tasks = set()
for d in dec:
    o = out.pop(d.get("request_id"), [])
    if len(o) != 1:
        errs.append("request %s: %d outcome records" % (d.get("request_id"), len(o)))
        continue
    up = o[0].get("upstream") or {}
    if up.get("status") != 200 or not up.get("task"):
        errs.append("request %s: outcome %r" % (d.get("request_id"), up))
    tasks.add(up.get("task"))
if out:
    errs.append("outcomes without a decision: %s" % list(out)[:5])
if len(tasks) != want:
    errs.append("%d distinct tasks in the outcomes, %d stop-tests" % (len(tasks), want))
other = [r.get("stage") for r in recs if r.get("stage") not in ("decision", "outcome")]
print("; ".join(errs[:10]) if errs else "OK %d records, %d other" % (len(recs), len(other)))
PY
)
echo "   $got"
[[ $got == OK* ]] || fail "audit file: $got"

echo "PASS: $TEST_NAME"
