#!/usr/bin/env bash
# 53_audit_crash: a crash loses no record of a forwarded request (docs/design.md "Audit log"; issue
# 5: the decision record is durable before a byte goes upstream). While h2load sends allowed
# stop-test requests over HTTP/2, smsguard is killed with SIGKILL. Then:
#   - every stop-test request the simulator received has a decision record (allow) in the
#     file: fewer or as many received as allow records, and for the k-th received (in time
#     order) at least k allow records written no later
#   - `smsguard-audit verify` exits 0 (a torn last line is allowed and reported as such)
#   - smsguard restarted on the same file continues the chain (seq +1, prev = the hash of
#     the last complete line; a torn tail is cut) and verify of the whole file still passes.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

[[ -x $SMSGUARD_AUDIT ]] || fail "SMSGUARD_AUDIT=$SMSGUARD_AUDIT is not an executable"
need h2load nghttp2-client

AUDIT=$WORK/audit.log
M=/sdk/vim25/8.0.3.0/sms/VasaProvider/vasa-crash/TestFailoverReplicationGroupStop_Task
GUARD_SETTINGS=("extra=audit = { file = \"$AUDIT\"; sync = \"always\"; fail_closed = true; };")
start_all
printf '%s' '{"groupId":[{"faultDomainId":{"id":"fd-1"},"deviceGroupId":{"id":"dg-crash"}}],"force":false}' >"$WORK/body.json"

# stop_count: the stop-test POSTs the simulator recorded.
stop_count() {
    [[ -s $SIM_RECORD ]] || { echo 0; return 0; }
    grep -c 'TestFailoverReplicationGroupStop_Task' "$SIM_RECORD" || true
}

check "h2load sends allowed stop-test requests; SIGKILL to smsguard after about 1 s"
# (-n is far more than 1 s of requests: a fast build would finish 3000 before the kill)
timeout 60 h2load -n 200000 -c 8 -m 4 -d "$WORK/body.json" \
    -H "authorization: Bearer $SG_TOKEN" -H 'content-type: application/json' \
    "$SG_URL$M" >"$WORK/h2load.out" 2>&1 &
H2PID=$!
track_pid "$H2PID" h2load
# about 1 s, but not before the load is under way (a slow, sanitized build)
t0=$SECONDS
deadline=$((SECONDS + 15))
sleep 0.5
while ((SECONDS < deadline)); do
    n=$(stop_count)
    if ((SECONDS - t0 >= 1 && n >= 50)); then break; fi
    sleep 0.05
done
is_alive "$H2PID" || fail "h2load ended before smsguard was killed: $(tail -n 5 "$WORK/h2load.out")"
kill -KILL "$SG_PID"
st=0
wait "$SG_PID" || st=$?
forget_pid "$SG_PID"
assert_eq 137 "$st" "smsguard's exit status after SIGKILL"
deadline=$((SECONDS + 20))
while is_alive "$H2PID" && ((SECONDS < deadline)); do sleep 0.05; done
is_alive "$H2PID" && fail "h2load still runs 20 s after smsguard was killed"
wait "$H2PID" || true
forget_pid "$H2PID"
echo "   h2load: $(grep -E '^requests:' "$WORK/h2load.out" || tail -n 1 "$WORK/h2load.out")"
sleep 0.2
NSIM=$(stop_count)
echo "   the simulator received $NSIM stop-test requests; the audit file has $(wc -l <"$AUDIT") complete line(s), $(stat -c %s "$AUDIT") bytes"
assert_le 1 "$NSIM" "stop-test requests the simulator received before the kill"

check "every request the simulator received has an allow decision record written before it"
python3 - "$AUDIT" "$SIM_RECORD" <<'PY' || fail "requests reached the simulator without a decision record"
import json, sys
data = open(sys.argv[1], "rb").read()
lines = data.split(b"\n")
torn = lines.pop()  # b"" when the file ends with a newline
if torn:
    print("   a torn last line of %d bytes (not counted)" % len(torn))
recs = [json.loads(l) for l in lines]
dec = sorted(r["time"] for r in recs if r.get("stage") == "decision" and r.get("decision") == "allow")
other = [r for r in recs if r.get("stage") == "decision" and r.get("decision") != "allow"]
out = sum(1 for r in recs if r.get("stage") == "outcome")
sims = sorted(json.loads(l)["time"] for l in open(sys.argv[2], "rb")
              if b"TestFailoverReplicationGroupStop_Task" in l)
print("   %d allow decision records, %d outcome records, %d received upstream" % (len(dec), out, len(sims)))
bad = 0
if other:
    print("   %d deny decision(s), e.g. %s" % (len(other), json.dumps(other[0])[:300])); bad = 1
if len(sims) > len(dec):
    print("   more requests received (%d) than allow records (%d)" % (len(sims), len(dec))); bad = 1
if out > len(dec):
    print("   more outcome records than decision records"); bad = 1
j = 0
for k, t in enumerate(sims):
    while j < len(dec) and dec[j] <= t:
        j += 1
    if j < k + 1:
        print("   the %d-th request received at %s: only %d allow record(s) written by then" % (k + 1, t, j))
        bad = 1
        break
sys.exit(bad)
PY

check "verify after the crash: exit 0, a torn last line only as a note"
audit_verify "$AUDIT"
echo "   $(tr '\n' '|' <<<"${AV_OUT//"$WORK/"/}")"
assert_eq 0 "$AV_RC" "verify after SIGKILL ($AV_OUT)"
# the complete lines chain (python alone)
TORN=0
if [[ -s $AUDIT && $(tail -c 1 "$AUDIT" | od -An -c | tr -d ' ') != '\n' ]]; then
    TORN=1
    assert_contains "$AV_OUT" "torn" "verify's note on the torn last line"
fi
python3 -c '
import sys
d = open(sys.argv[1], "rb").read()
open(sys.argv[2], "wb").write(d[:d.rfind(b"\n") + 1])' "$AUDIT" "$WORK/complete.log"
read -r n first last <<<"$(audit_chain_check "$WORK/complete.log")"
echo "   $n complete lines chain, seq $first..$last (torn tail: $TORN)"
LASTHASH=$(tail -n 1 "$WORK/complete.log" | tr -d '\n' | sha256sum | cut -c1-64)

check "restart on the same file: a torn tail is cut, the chain goes on"
if ((TORN == 0)); then
    # SIGKILL rarely interrupts a write(2) half-way: make the torn tail a crash in the
    # middle of an append would leave
    printf '{"seq":%d,"prev":"%s","time":"20' "$((last + 1))" "$LASTHASH" >>"$AUDIT"
    TORN=1
    audit_verify "$AUDIT"
    assert_eq 0 "$AV_RC" "verify with a torn last line ($AV_OUT)"
    assert_contains "$AV_OUT" "torn" "verify's note on the torn last line"
    echo "   a torn last line appended: verify: $(tr '\n' '|' <<<"${AV_OUT//"$WORK/"/}")"
fi
guard_conf "$WORK/again.conf" "extra=audit = { file = \"$AUDIT\"; sync = \"always\"; fail_closed = true; };"
start_guard "$WORK/again.conf"
((TORN == 0)) || grep -q 'torn last line' "$SG_LOG" || fail "smsguard did not say it cut the torn last line"
for proto in http1.1 http2; do
    stop_post "$proto" "vasa-after-$proto" "$WORK/after-$proto"
    assert_eq 200 "$REQ_CODE" "a request after the restart over $proto; body $(head -c 300 "$WORK/after-$proto.body")"
done
stop_guard_term
read -r n2 first2 last2 <<<"$(audit_chain_check "$AUDIT")"
echo "   the whole file: $n2 lines, seq $first2..$last2"
assert_eq $((n + 4)) "$n2" "lines after the restart (the complete ones and 2 x decision + outcome)"
python3 - "$AUDIT" "$n" "$last" "$LASTHASH" <<'PY' || fail "the chain does not continue after the restart"
import json, sys
lines = open(sys.argv[1], "rb").read().split(b"\n")[:-1]
n, last, h = int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
d = json.loads(lines[n])
print("   first record after the restart: seq %d, prev %s..." % (d["seq"], d["prev"][:16]))
sys.exit(0 if d["seq"] == last + 1 and d["prev"] == h else 1)
PY
audit_verify "$AUDIT"
echo "   verify: $(tr '\n' '|' <<<"${AV_OUT//"$WORK/"/}")"
assert_eq 0 "$AV_RC" "verify of the whole file after the restart ($AV_OUT)"
assert_not_contains "$AV_OUT" "torn" "verify after the restart"

check "a last line that is complete but not a record: smsguard refuses to start (no guessing)"
printf 'not a record\n' >>"$AUDIT"
rc=0
timeout 10 "$SMSGUARD" -c "$WORK/again.conf" >"$WORK/bad-tail.out" 2>"$WORK/bad-tail.log" || rc=$?
echo "   exit $rc: $(grep -m1 -i audit "$WORK/bad-tail.log" || head -n 1 "$WORK/bad-tail.log")"
[[ $rc != 0 && $rc != 124 ]] || fail "smsguard started (exit $rc) on an audit file whose last line is not a record"

echo "PASS: $TEST_NAME"
