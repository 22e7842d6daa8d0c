#!/usr/bin/env bash
# 52_audit_fail_closed: a record that cannot be written stops the request (docs/design.md "Audit
# log"; issue 5, audit.fail_closed). The audit file lives on a small tmpfs that the test
# fills with dd (ENOSPC):
#   - fail_closed = true, empty file: an allowed stop-test request gets 500 SystemError and
#     the simulator records nothing; /healthz is 503 "audit log failing"; other paths are
#     still forwarded; after the filler is removed the next request is forwarded and /healthz
#     is 200 again
#   - the same with records already in the file (its last page part full): requests succeed
#     until the space runs out, then 500 and nothing forwarded; the file never holds a
#     partial line (cut back to the last good line); verify passes at the end
#   - fail_closed = false (a second smsguard, its own full tmpfs): forwarded (200), /healthz
#     stays 200, the loss is logged
#   - audit.file in a read-only filesystem: `smsguard -t` says file:line, start-up refused
#   - the audit file removed while smsguard runs: the next allowed request is refused or its
#     record is found at the configured path (never forwarded with its record in a file
#     nobody can see).
# Needs root and mount(2) (tmpfs): skipped, with a message, where mounting is not permitted.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

[[ -x $SMSGUARD_AUDIT ]] || fail "SMSGUARD_AUDIT=$SMSGUARD_AUDIT is not an executable"

FS=$WORK/fs
mount_tmpfs "$FS" 256k || skip "cannot mount a tmpfs here (not root, or no CAP_SYS_ADMIN)"
AUDIT=$FS/audit.log
mkdir -p "$WORK/c"

start_sim
guard_conf "$WORK/closed.conf" "extra=audit = { file = \"$AUDIT\"; sync = \"always\"; fail_closed = true; };"
start_guard "$WORK/closed.conf"

# fill DIR: fill the filesystem of DIR with DIR/filler until ENOSPC.
fill() {
    dd if=/dev/zero of="$1/filler" bs=4k >/dev/null 2>&1 || true
    dd if=/dev/zero of="$1/filler2" bs=1 count=4096 >/dev/null 2>&1 || true
    echo "   $1: $(df -k --output=avail "$1" | tail -n 1 | tr -d ' ') KiB left"
}
unfill() { rm -f "$1/filler" "$1/filler2"; }

# healthz URL: the admin /healthz status and body ("CODE BODY").
healthz() {
    local body
    body=$(curl -sS --max-time 5 -o - -w '\n%{http_code}' "$1/healthz" 2>/dev/null) || true
    echo "${body##*$'\n'} $(head -n 1 <<<"$body")"
}

# refused PROTO MOID: an allowed request refused with 500 SystemError, never forwarded.
refused() {
    stop_post "$1" "$2" "$WORK/c/$2"
    echo "   $2 over $1: $REQ_CODE"
    assert_eq 500 "$REQ_CODE" "$2 over $1 with the audit log failing: status; body $(head -c 300 "$WORK/c/$2.body")"
    assert_vim_fault "$WORK/c/$2.body" "$WORK/c/$2.hdr" SystemError "$2 over $1"
    sleep 0.1
    [[ -z $(record_grep "$2") ]] || fail "$2 was forwarded although its audit record could not be written"
}

# forwarded PROTO MOID: an allowed request answered 200 and recorded by the simulator.
forwarded() {
    stop_post "$1" "$2" "$WORK/c/$2"
    echo "   $2 over $1: $REQ_CODE"
    assert_eq 200 "$REQ_CODE" "$2 over $1: status; body $(head -c 300 "$WORK/c/$2.body")"
    [[ -n $(record_grep "$2") ]] || fail "$2 answered 200 but the simulator did not record it"
}

check "fail_closed: /healthz 200 while the audit log is writable"
assert_eq "200 ok" "$(healthz "$SG_ADMIN_URL")" "/healthz"

check "fail_closed, full filesystem, empty audit file: refused with SystemError, nothing forwarded"
fill "$FS"
refused http1.1 vasa-full-a-h1
refused http2 vasa-full-a-h2
h=$(healthz "$SG_ADMIN_URL")
echo "   /healthz: $h"
assert_eq "503 audit log failing" "$h" "/healthz with the audit log failing"
grep -q 'audit log failing' "$SG_LOG" || fail "smsguard did not log that the audit log is failing"
out=$(sg_curl -o /dev/null -w '%{http_code}' "$SG_URL/sim/echo/unguarded-while-failing")
assert_eq 200 "$out" "an unguarded path while the audit log is failing"

check "space freed: the next request is forwarded, /healthz 200 again"
unfill "$FS"
forwarded http2 vasa-freed-a-h2
assert_eq "200 ok" "$(healthz "$SG_ADMIN_URL")" "/healthz after space was freed"
forwarded http1.1 vasa-freed-a-h1

check "fail_closed, full filesystem, records in the file: refused once the space runs out"
fill "$FS"
NOK=0
NREF=0
for i in $(seq 1 40); do
    proto=http1.1
    ((i % 2)) || proto=http2
    moid=vasa-fill-$i
    stop_post "$proto" "$moid" "$WORK/c/$moid"
    if [[ $REQ_CODE == 200 ]]; then
        [[ -n $(record_grep "$moid") ]] || fail "$moid answered 200 but the simulator did not record it"
        NOK=$((NOK + 1))
        continue
    fi
    assert_eq 500 "$REQ_CODE" "$moid over $proto: status; body $(head -c 300 "$WORK/c/$moid.body")"
    assert_vim_fault "$WORK/c/$moid.body" "$WORK/c/$moid.hdr" SystemError "$moid over $proto"
    sleep 0.1
    [[ -z $(record_grep "$moid") ]] || fail "$moid was forwarded although its audit record could not be written"
    NREF=$((NREF + 1))
    ((NREF < 3)) || break
done
echo "   $NOK forwarded while the last page had room, then $NREF refused"
assert_eq 3 "$NREF" "requests refused once the filesystem was full"
assert_eq "503 audit log failing" "$(healthz "$SG_ADMIN_URL")" "/healthz with the audit log failing"
read -r n _ last <<<"$(audit_chain_check "$AUDIT")"
echo "   the file on the full filesystem: $n complete lines, last seq $last, no partial line"
unfill "$FS"
forwarded http1.1 vasa-freed-b-h1
forwarded http2 vasa-freed-b-h2
assert_eq "200 ok" "$(healthz "$SG_ADMIN_URL")" "/healthz after space was freed"

check "every forwarded request has its decision (allow) record, and an outcome if it could be written; verify passes"
stop_guard_term
audit_chain_check "$AUDIT" >/dev/null
python3 - "$AUDIT" "$SIM_RECORD" <<'PY' || fail "the audit file does not account for every forwarded request"
import json, re, sys
recs = [json.loads(l) for l in open(sys.argv[1], "rb")]
sims = [json.loads(l) for l in open(sys.argv[2], "rb") if l.strip()]
bad = 0
for s in sims:
    m = re.search(r"/VasaProvider/([^/]+)/TestFailoverReplicationGroupStop_Task$", s["path"])
    if not m:
        continue
    moid = m.group(1)
    dec = [r for r in recs if r.get("provider") == moid and r.get("stage") == "decision"]
    out = [r for r in recs if r.get("provider") == moid and r.get("stage") == "outcome"]
    if [r.get("decision") for r in dec] != ["allow"] or len(out) > 1:
        print("   %s: decisions %s, %d outcome(s)" % (moid, [r.get("decision") for r in dec], len(out))); bad = 1
    elif not out:
        # forwarded while the last page had room, answered after it ran out: the outcome
        # record could not be written (the writer drops a failed batch; nobody waits on it)
        print("   WARN: %s: forwarded with its decision record, but its outcome record was lost" % moid)
print("   %d records; each of the %d forwarded stop-test requests has its decision record" % (
    len(recs), sum(1 for s in sims if s["path"].endswith("_Task"))))
sys.exit(bad)
PY
audit_verify "$AUDIT"
echo "   verify: $AV_OUT"
assert_eq 0 "$AV_RC" "verify after the full-filesystem episodes ($AV_OUT)"

# ---------------------------------------------------------------------------------------
check "fail_closed = false on a full filesystem: forwarded, /healthz stays 200, the loss logged"
FS2=$WORK/fs2
mount_tmpfs "$FS2" 64k || fail "a second tmpfs could not be mounted"
guard_conf "$WORK/open.conf" "extra=audit = { file = \"$FS2/audit.log\"; sync = \"always\"; fail_closed = false; };"
start_guard "$WORK/open.conf"
fill "$FS2"
forwarded http1.1 vasa-open-h1
forwarded http2 vasa-open-h2
h=$(healthz "$SG_ADMIN_URL")
echo "   /healthz: $h"
[[ $h == "200 "* ]] || fail "/healthz with fail_closed = false and the audit log failing: '$h', expected 200"
grep -q 'audit log failing' "$SG_LOG" || fail "smsguard did not log that the audit log is failing"
unfill "$FS2"
stop_guard_term

# ---------------------------------------------------------------------------------------
check "audit.file on a read-only filesystem: start-up refused with file:line"
RO=$WORK/ro
mount_tmpfs "$RO" 16k || fail "a third tmpfs could not be mounted"
mount -o remount,ro "$RO" || fail "cannot remount $RO read-only"
guard_conf "$WORK/ro.conf" "extra=audit = {
  file = \"$RO/audit.log\";
  sync = \"always\"; fail_closed = true; };"
line=$(grep -n "file = \"$RO/audit.log\"" "$WORK/ro.conf" | cut -d: -f1)
rc=0
out=$("$SMSGUARD" -t -c "$WORK/ro.conf" 2>&1) || rc=$?
echo "   smsguard -t: exit $rc: $out"
assert_eq 1 "$rc" "smsguard -t exit status"
assert_contains "$out" "$WORK/ro.conf:$line" "smsguard -t's message"
rc=0
timeout 10 "$SMSGUARD" -c "$WORK/ro.conf" >"$WORK/ro.out" 2>"$WORK/ro-run.log" || rc=$?
echo "   smsguard -c: exit $rc: $(head -n 1 "$WORK/ro-run.log")"
[[ $rc != 0 && $rc != 124 ]] || fail "smsguard started (exit $rc) with its audit file on a read-only filesystem"

# ---------------------------------------------------------------------------------------
check "the audit file removed while smsguard runs: refused, or the record is where it should be"
RM=$WORK/rm
mkdir -p "$RM"
guard_conf "$WORK/rm.conf" "extra=audit = { file = \"$RM/audit.log\"; sync = \"always\"; fail_closed = true; };"
start_guard "$WORK/rm.conf"
forwarded http1.1 vasa-before-rm
rm -f "$RM/audit.log"
stop_post http2 vasa-after-rm "$WORK/c/vasa-after-rm"
echo "   after rm: $REQ_CODE"
if [[ $REQ_CODE == 200 ]]; then
    grep -qs 'vasa-after-rm' "$RM/audit.log" ||
        fail "POST for vasa-after-rm after the audit file was removed: forwarded (200) with its audit record in no file at '$RM/audit.log' (written to the unlinked inode: lost); expected 500 SystemError and nothing forwarded, or the file reopened"
else
    assert_eq 500 "$REQ_CODE" "after rm: status"
    assert_vim_fault "$WORK/c/vasa-after-rm.body" "$WORK/c/vasa-after-rm.hdr" SystemError "after rm"
    [[ -z $(record_grep vasa-after-rm) ]] || fail "vasa-after-rm was forwarded although refused"
fi
stop_guard_term

echo "PASS: $TEST_NAME"
