#!/usr/bin/env bash
# 56_audit_syslog: the audit log's syslog copy reaches a real rsyslog and the hash chain can be
# checked from what rsyslog wrote (docs/design.md "The syslog copy"; issue 19 item 6).
#   - rsyslogd (Debian package rsyslog) runs in the foreground with its own configuration:
#     imtcp on 127.0.0.1:<free port> (octet-counted framing, RFC 6587 3.4.1), one ruleset
#     writing every raw message received ("%rawmsg%\n") to a file in $WORK
#   - smsguard with audit.syslog address tcp:127.0.0.1:PORT, facility local3; an allowed
#     request, one refused without a token, one refused for a tenant, a split batch (5
#     groups, batch.max_size 2: 3 parts upstream, 3 outcome records)
#   - `smsguard-audit verify --syslog` of rsyslog's file: ok with the record count of the
#     audit file, and so does the auto-detected form; each message is <PRI>1 with PRI
#     local3.notice, the smsguard SD-ID, the record's stage/request_id/subject/tenant/
#     upstream/decision in the structured data, and the MSG is the file's line byte for byte
#   - a copy whose structured data was changed is refused by verify
#   - rsyslog stopped: requests go on (200), the copies are dropped and counted
#     (smsguard_audit_syslog_dropped_total), the outage is logged once; rsyslog started again:
#     the copy reconnects by itself, the new file verifies from where it starts, and both
#     files together show the gap ("deleted line(s) before this one")
# Skipped when rsyslogd is not installed.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

need rsyslogd rsyslog
[[ -x $SMSGUARD_AUDIT ]] || fail "SMSGUARD_AUDIT=$SMSGUARD_AUDIT is not an executable"

AUDIT=$WORK/audit.log
mkdir -p "$WORK/c" "$WORK/rs"
openssl rand -out "$WORK/task.key" 48
free_port RS_PORT

# start_rsyslog OUT: rsyslogd on 127.0.0.1:$RS_PORT writing every raw message to OUT.
# Sets RS_PID.
start_rsyslog() {
    SG__SEQ=$((SG__SEQ + 1))
    cat >"$WORK/rsyslog-$SG__SEQ.conf" <<EOF
global(workDirectory="$WORK/rs" maxMessageSize="256k")
module(load="imtcp")
template(name="raw" type="string" string="%rawmsg%\n")
ruleset(name="smsguard") {
    action(type="omfile" file="$1" template="raw")
}
input(type="imtcp" address="127.0.0.1" port="$RS_PORT" ruleset="smsguard")
EOF
    rsyslogd -n -f "$WORK/rsyslog-$SG__SEQ.conf" -i "$WORK/rsyslog-$SG__SEQ.pid" \
        </dev/null >"$WORK/rsyslog-$SG__SEQ.out" 2>&1 &
    RS_PID=$!
    track_pid "$RS_PID" rsyslogd
    wait_port "$RS_PORT" "$RS_PID" rsyslogd "$WORK/rsyslog-$SG__SEQ.out"
}

# stop_rsyslog: SIGTERM and wait (rsyslog writes what it holds before it exits).
stop_rsyslog() {
    kill -TERM "$RS_PID"
    wait "$RS_PID" 2>/dev/null || true
    forget_pid "$RS_PID"
}

# wait_lines FILE N: wait (10 s at most) until FILE has at least N lines.
wait_lines() {
    local deadline=$((SECONDS + 10))
    until [[ -e $1 ]] && (($(wc -l <"$1") >= $2)); do
        ((SECONDS < deadline)) || fail "$1 has $(wc -l <"$1" 2>/dev/null || echo 0) lines, expected $2"
        sleep 0.1
    done
}

# dropped: smsguard_audit_syslog_dropped_total from /metrics.
dropped() {
    curl -sS --max-time 5 "$SG_ADMIN_URL/metrics" |
        sed -n 's/^smsguard_audit_syslog_dropped_total \([0-9]*\)$/\1/p'
}

# allowed MOID: a valid stop-test request, answered 200 and forwarded.
allowed() {
    stop_post http2 "$1" "$WORK/c/$1"
    assert_eq 200 "$REQ_CODE" "$1: status; body $(head -c 300 "$WORK/c/$1.body")"
    [[ -n $(record_grep "$1") ]] || fail "$1 answered 200 but the simulator did not record it"
}

start_rsyslog "$WORK/received.log"
start_sim
guard_conf "$WORK/smsguard.conf" workers=1 "policy=policy = {
  tokens = ( { id = \"test\"; sha256 = \"$(printf '%s' "$SG_TOKEN" | sha256sum | cut -c1-64)\";
               subject = \"tester\"; tenant = \"all\"; roles = [\"dr-operator\"]; },
             { id = \"narrow\"; sha256 = \"$(printf '%s' "narrow-$SG_TOKEN" | sha256sum | cut -c1-64)\";
               subject = \"narrow \\\"one\\\" ]\"; tenant = \"t-narrow\"; roles = [\"dr-operator\"]; } );
  roles = ( { name = \"dr-operator\"; privileges = [\"StorageViews.ConfigureService\"]; } );
  tenants = ( { name = \"all\"; providers = [\"*\"]; fault_domains = [\"*\"]; },
              { name = \"t-narrow\"; providers = [\"vasa-mine\"]; fault_domains = [\"*\"]; } );
};" "extra=batch = { max_size = 2; task_key_file = \"$WORK/task.key\"; };
audit = { file = \"$AUDIT\"; sync = \"always\";
          syslog = { enabled = true; facility = \"local3\"; address = \"tcp:127.0.0.1:$RS_PORT\"; }; };"
start_guard "$WORK/smsguard.conf"

check "records: allowed, refused without a token, refused for the tenant, a split batch of 5 groups"
allowed vasa-allow
STOP=/sdk/vim25/8.0.3.0/sms/VasaProvider
BODY='{"groupId":[{"faultDomainId":{"id":"fd-1"},"deviceGroupId":{"id":"dg-x"}}],"force":false}'
sg_post http1.1 "$STOP/vasa-notoken/TestFailoverReplicationGroupStop_Task" "$WORK/c/notoken" \
    -H 'Content-Type: application/json' --data-binary "$BODY"
assert_vim_fault "$WORK/c/notoken.body" "$WORK/c/notoken.hdr" NotAuthenticated "without a token"
sg_post http2 "$STOP/vasa-other/TestFailoverReplicationGroupStop_Task" "$WORK/c/tenant" \
    -H "Authorization: Bearer narrow-$SG_TOKEN" -H 'Content-Type: application/json' --data-binary "$BODY"
assert_vim_fault "$WORK/c/tenant.body" "$WORK/c/tenant.hdr" NoPermission "outside the tenant"
[[ -z $(record_grep vasa-notoken) && -z $(record_grep vasa-other) ]] || fail "a refused request was forwarded"
groups=$(python3 -c 'import json; print(json.dumps({"groupId": [{"faultDomainId": {"id": "fd-1"}, "deviceGroupId": {"id": "rg-%d" % i}} for i in range(5)], "force": False}))')
sg_req http2 POST "$STOP/vasa-split/TestFailoverReplicationGroupStop_Task" \
    "$WORK/c/split" -H 'Content-Type: application/json' --data-binary "$groups"
assert_eq 200 "$REQ_CODE" "the split batch: status; body $(head -c 300 "$WORK/c/split.body")"
assert_eq 3 "$(record_grep vasa-split | wc -l)" "the split batch: calls upstream"
n=$(wc -l <"$AUDIT")
echo "   $n lines in the audit file"
assert_eq 8 "$n" "audit lines (4 decisions, 1 + 3 outcomes)"

check "rsyslog received every line; verify --syslog of its file: ok, the same count as the file"
wait_lines "$WORK/received.log" "$n"
# verify_first ARGS...: the first line smsguard-audit verify prints (it may exit 1).
verify_first() { "$SMSGUARD_AUDIT" verify "$@" | head -n 1 || true; }
file_ok=$(verify_first "$AUDIT")
syslog_ok=$(verify_first --syslog "$WORK/received.log")
auto_ok=$(verify_first "$WORK/received.log")
[[ $syslog_ok == ok:* ]] || head -c 1500 "$WORK/received.log" >&2
echo "   file:   $file_ok"
echo "   syslog: $syslog_ok"
assert_match '^ok: [0-9]+ records' "$file_ok" "verify of the audit file"
assert_eq "$file_ok" "$syslog_ok" "verify --syslog of what rsyslog wrote"
assert_eq "$file_ok" "$auto_ok" "verify of what rsyslog wrote, detected by its first byte"

check "each message: <PRI>1 local3.notice, the SD from the record, the MSG the line byte for byte"
got=$(pyrun "$AUDIT" "$WORK/received.log" <<'PY'
import json, re, sys
lines = open(sys.argv[1], "rb").read().split(b"\n")[:-1]
msgs = open(sys.argv[2], "rb").read().split(b"\n")[:-1]
errs = []
if len(lines) != len(msgs):
    errs.append("%d lines, %d messages" % (len(lines), len(msgs)))
hdr = re.compile(rb'^<(\d+)>1 (\S+) (\S+) smsguard (\d+) audit (\[smsguard@32473(?: [a-z_]+="(?:[^"\\\]]|\\.)*")*\]) (.*)$', re.S)
def sd_esc(s):
    return re.sub(r'(["\\\]])', r'\\\1', s)
seen = set()
for line, m in zip(lines, msgs):
    g = hdr.match(m)
    if not g:
        errs.append("not the expected header: %r" % m[:120])
        continue
    pri, ts, host, pid, sd, msg = g.groups()
    if int(pri) != 19 * 8 + 5:
        errs.append("PRI %s, expected 157 (local3.notice)" % pri.decode())
    if msg != line:
        errs.append("MSG is not the file's line: %r" % msg[:80])
    rec = json.loads(line)
    if ts.decode() != rec["time"]:
        errs.append("TIMESTAMP %s, the record's time %s" % (ts.decode(), rec["time"]))
    who = rec.get("principal") or {}
    up = rec.get("upstream")
    if isinstance(up, dict):
        up = up.get("name")
    want = [("seq", str(rec["seq"])), ("stage", rec.get("stage")), ("request_id", rec.get("request_id")),
            ("tenant", who.get("tenant")), ("subject", who.get("subject")), ("upstream", up),
            ("decision", rec.get("decision"))]
    exp = "[smsguard@32473" + "".join(' %s="%s"' % (k, sd_esc(v)) for k, v in want if v is not None) + "]"
    if sd.decode() != exp:
        errs.append("SD %s, expected %s" % (sd.decode(), exp))
    seen.add((rec.get("stage"), rec.get("decision"), who.get("subject")))
for want in [("decision", "allow", "tester"), ("decision", "deny", "narrow \"one\" ]"),
             ("decision", "deny", None), ("outcome", None, None)]:
    if want not in seen:
        errs.append("no message for %r" % (want,))
print("; ".join(errs))
PY
)
[[ -z $got ]] || fail "the syslog messages: $got"
echo "   $n messages: header, structured data (escaped per RFC 5424 6.3.3) and MSG as expected"

check "a copy whose structured data was changed is refused"
sed '2s/stage="[a-z]*"/stage="forged"/' "$WORK/received.log" >"$WORK/forged.log"
out=$("$SMSGUARD_AUDIT" verify --syslog "$WORK/forged.log") && fail "verify accepted a changed SD: $out"
echo "   $out"
assert_eq "$WORK/forged.log:2: structured data does not match the record" "$out" "verify of a changed SD"

check "rsyslog stopped: requests are served, the copies are dropped and counted, logged once"
assert_eq 0 "$(dropped)" "dropped copies while rsyslog runs"
stop_rsyslog
sleep 0.3
for i in 1 2 3; do allowed "vasa-down-$i"; done
d=$(dropped)
echo "   smsguard_audit_syslog_dropped_total $d"
assert_le 4 "$d" "dropped copies after 3 requests (6 records) while rsyslog was down"
assert_eq 1 "$(grep -c 'syslog copy to tcp:127.0.0.1:.* failing' "$SG_LOG")" "outage log lines"

check "rsyslog started again: the copy reconnects by itself; the new file verifies, both show the gap"
start_rsyslog "$WORK/received2.log"
deadline=$((SECONDS + 15))
i=0
until [[ -s $WORK/received2.log ]]; do
    ((SECONDS < deadline)) || fail "no copy reached the restarted rsyslog in 15 s"
    i=$((i + 1))
    allowed "vasa-up-$i"
    sleep 0.5
done
grep -q 'syslog copy to tcp:127.0.0.1:.* working again; [0-9]* cop' "$SG_LOG" ||
    fail "smsguard did not log the end of the outage"
n=$(wc -l <"$AUDIT")
last=$(tail -n 1 "$AUDIT" | python3 -c 'import json, sys; print(json.load(sys.stdin)["seq"])')
wait_lines "$WORK/received2.log" 1
deadline=$((SECONDS + 10))
until tail -n 1 "$WORK/received2.log" | grep -q "seq=\"$last\""; do
    ((SECONDS < deadline)) || fail "the restarted rsyslog did not get seq $last"
    sleep 0.1
done
out=$("$SMSGUARD_AUDIT" verify --syslog "$WORK/received2.log")
echo "   received2.log: $(head -n 1 <<<"$out")"
assert_match '^ok: [0-9]+ records' "$out" "verify of the new file"
assert_contains "$out" "chain starts at seq" "verify of the new file: it starts mid-chain"
out=$("$SMSGUARD_AUDIT" verify --syslog "$WORK/received.log" "$WORK/received2.log") &&
    fail "verify of both files hid the dropped copies: $out"
echo "   both: $out"
assert_contains "$out" "deleted line(s) before this one" "verify of both files"
assert_match '^ok: ' "$("$SMSGUARD_AUDIT" verify "$AUDIT")" "the audit file itself"

assert_serving "the syslog receiver stopped and started again"
stop_rsyslog
stop_guard_term
echo "PASS: $TEST_NAME"
