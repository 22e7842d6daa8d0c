#!/usr/bin/env bash
# 38_change_control: change control on the guarded operations (filters/flt_change.c; issue
# 19 items 1-4), one gateway in front of sms-sim, with the machine's clock:
#   - operations.enabled = false: ReverseReplicateGroup_Task refused with NoPermission,
#     reason "operation disabled";
#   - operations.privilege: PromoteReplicationGroup_Task needs "Example.DR.Promote"; a
#     role with ConfigureService only is refused with NoPermission whose privilegeId is
#     that name, a role listing it is forwarded;
#   - change windows in UTC computed from now: PrepareFailoverReplicationGroup_Task inside
#     "now" (now-1h .. now+1h) is forwarded; SyncReplicationGroup_Task outside "away"
#     (now+3h .. now+4h) is refused with NoPermission naming the window and when it opens;
#     a tenant's own window ("away" again) refuses its requests even where the operation
#     has none;
#   - tickets (stop call, ticket "^CHG[0-9]{7}$"): missing and not matching are refused with
#     InvalidArgument whose invalidProperty is X-Change-Ticket;
#   - four-eyes approvals (stop call, approval = true), statements made with
#     build/smsguard-approve and generated Ed25519 keys (and, for the expiry cases, with
#     openssl signing a statement of the documented form): a valid one rehearsed with
#     X-Dry-Run is not used up, then forwarded once, replayed refused; expired, exp too
#     far, another group set, self-approval (the approver is the requester), an approver
#     not for the requester's tenant, a forged one (kid carol, signed by another key), none
#     at all: refused with NoPermission;
#   - approval = true on FailoverReplicationGroup_Task (groups inside failoverParam): none
#     refused; the tool's statement forwarded once; a dry run after that use refused as a
#     replay, nothing forwarded;
#   - every refusal leaves nothing at the simulator and a deny decision record whose reason
#     says why and whose "approver" names the signer; the allowed requests' records carry
#     "ticket", "approver" and "window"; the access log carries the ticket; the change
#     headers never reach the simulator;
#   - configuration errors are file:line: an unknown zone, a bad regex, an unknown method,
#     an unknown window;
# and the same process still serves at the end.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

APPROVE=${SMSGUARD_APPROVE:-$SG_SOURCE_DIR/build/smsguard-approve}
[[ -x $APPROVE ]] || fail "SMSGUARD_APPROVE=$APPROVE is not an executable"

AUDIT=$WORK/audit.log
ACCESS=$WORK/access.log
REL=8.0.3.0
sha() { printf '%s' "$1" | sha256sum | cut -c1-64; }
T_ALICE=alice-$$-$RANDOM T_CAROL=carol-$$-$RANDOM T_BOB=bob-$$-$RANDOM T_ERIN=erin-$$-$RANDOM T_PAT=pat-$$-$RANDOM

{
    for k in carol dave mallory; do
        openssl genpkey -algorithm ed25519 -out "$WORK/$k.key" &&
            openssl pkey -in "$WORK/$k.key" -pubout -out "$WORK/$k.pub" || exit 1
    done
} >"$WORK/keys.out" 2>&1 || { cat "$WORK/keys.out" >&2; fail "openssl could not make the keys"; }

# Windows from the clock: "days" is the day a window starts on, so a window that crosses
# midnight is given its start's day.
read -r D_NOW F_NOW T_NOW D_AWAY F_AWAY T_AWAY < <(python3 -c '
import time
now = int(time.time())
def w(a, b):
    s, e = time.gmtime(now + a), time.gmtime(now + b)
    return "%s %s %s" % (time.strftime("%a", s), time.strftime("%H:%M", s), time.strftime("%H:%M", e))
print(w(-3600, 3600), w(3 * 3600, 4 * 3600))')
echo "   window now: $D_NOW $F_NOW-$T_NOW UTC; away: $D_AWAY $F_AWAY-$T_AWAY UTC"

POLICY="policy = {
  tokens = (
    { id = \"alice\"; sha256 = \"$(sha "$T_ALICE")\"; subject = \"alice\"; tenant = \"t1\"; roles = [\"op\"]; },
    { id = \"carol\"; sha256 = \"$(sha "$T_CAROL")\"; subject = \"carol\"; tenant = \"t1\"; roles = [\"op\"]; },
    { id = \"bob\"; sha256 = \"$(sha "$T_BOB")\"; subject = \"bob\"; tenant = \"t9\"; roles = [\"op\"]; },
    { id = \"erin\"; sha256 = \"$(sha "$T_ERIN")\"; subject = \"erin\"; tenant = \"t3\"; roles = [\"op\"]; },
    { id = \"pat\"; sha256 = \"$(sha "$T_PAT")\"; subject = \"pat\"; tenant = \"t1\"; roles = [\"promoter\"]; }
  );
  roles = ( { name = \"op\"; privileges = [\"StorageViews.ConfigureService\", \"StorageViews.View\"]; },
            { name = \"promoter\"; privileges = [\"Example.DR.Promote\"]; } );
  tenants = (
    { name = \"t1\"; providers = [\"*\"]; fault_domains = [\"*\"]; },
    { name = \"t9\"; providers = [\"*\"]; fault_domains = [\"*\"]; },
    { name = \"t3\"; providers = [\"*\"]; fault_domains = [\"*\"]; windows = [\"away\"]; }
  );
  approvers = (
    { name = \"carol\"; public_key = \"$WORK/carol.pub\"; tenants = [\"t1\"]; },
    { name = \"dave\"; public_key = \"$WORK/dave.pub\"; tenants = [\"t*\"]; }
  );
  max_approval_s = 600;
};"
CHANGE="audit = { file = \"$AUDIT\"; sync = \"always\"; fail_closed = true; };
change_windows = (
  { name = \"now\"; timezone = \"UTC\"; days = [\"$D_NOW\"]; from = \"$F_NOW\"; to = \"$T_NOW\"; },
  { name = \"away\"; timezone = \"UTC\"; days = [\"$D_AWAY\"]; from = \"$F_AWAY\"; to = \"$T_AWAY\"; }
);
operations = (
  { method = \"ReverseReplicateGroup_Task\"; enabled = false; },
  { method = \"PromoteReplicationGroup_Task\"; privilege = \"Example.DR.Promote\"; },
  { method = \"PrepareFailoverReplicationGroup_Task\"; windows = [\"now\"]; },
  { method = \"SyncReplicationGroup_Task\"; windows = [\"away\"]; },
  { method = \"TestFailoverReplicationGroupStop_Task\"; ticket = \"^CHG[0-9]{7}\$\"; approval = true; },
  { method = \"FailoverReplicationGroup_Task\"; approval = true; }
);"
GUARD_SETTINGS=("policy=$POLICY" "extra=$CHANGE" "access=$ACCESS")
start_all

path() { echo "/sdk/vim25/$REL/sms/VasaProvider/$1/$2"; }
group() { echo "{\"faultDomainId\":{\"id\":\"fd-1\"},\"deviceGroupId\":{\"id\":\"$1\"}}"; }
# op TOKEN MOID METHOD BODY OUT [curl args]: POST as the token's principal.
op() {
    local tok=$1 moid=$2 method=$3 body=$4 out=$5
    shift 5
    sg_post http2 "$(path "$moid" "$method")" "$WORK/$out" -H "Authorization: Bearer $tok" \
        -H 'Content-Type: application/json' --data-binary "$body" "$@"
}
stop_body() { echo "{\"groupId\":[$(group "dg-$1")],\"force\":false}"; }
# approve KEY NAME MOID [TICKET [more smsguard-approve args]]: a statement for the stop call
# on MOID with the body stop_body MOID.
approve() {
    local key=$1 name=$2 moid=$3 ticket=${4:-CHG0000001}
    shift $(($# < 4 ? $# : 4))
    stop_body "$moid" >"$WORK/$moid.json"
    "$APPROVE" --key "$WORK/$key.key" --name "$name" --upstream default --ticket "$ticket" \
        --expires-in 300 "$@" \
        "$(path "$moid" TestFailoverReplicationGroupStop_Task)" "$WORK/$moid.json"
}
# refused OUT MOID TYPE [PROP]: the answer is a TYPE fault and nothing of MOID was forwarded.
refused() {
    assert_eq 500 "$REQ_CODE" "$1: status"
    assert_vim_fault "$WORK/$1.body" "$WORK/$1.hdr" "$3" "$1"
    [[ -z ${4:-} ]] || assert_eq "$4" "$FAULT_PROP" "$1: invalidProperty"
    assert_eq "" "$(record_grep "/$2/")" "$1: requests of $2 at the simulator"
}
forwarded() {
    assert_eq 200 "$REQ_CODE" "$1: status ($(head -c 300 "$WORK/$1.body"))"
    [[ -n $(record_grep "/$2/") ]] || fail "$1: the simulator did not receive $2"
}

check "operations.enabled = false refuses the operation"
op "$T_ALICE" vp-off ReverseReplicateGroup_Task "{\"groupId\":[$(group dg-off)]}" off
refused off vp-off NoPermission

check "operations.privilege: only a role listing the deployment's privilege may promote"
promote_body() {
    echo "{\"promoteParam\":{\"_typeName\":\"PromoteParam\",\"isPlanned\":false,\"replicationGroupsToPromote\":[$(group "$1")]}}"
}
op "$T_ALICE" vp-prv0 PromoteReplicationGroup_Task "$(promote_body dg-prv0)" prv0
refused prv0 vp-prv0 NoPermission
assert_fault_ref "$WORK/prv0.body" "$WORK/prv0.hdr" NoPermission - Example.DR.Promote \
    VasaProvider vp-prv0 "prv0: the fault names the deployment's privilege"
op "$T_PAT" vp-prv1 PromoteReplicationGroup_Task "$(promote_body dg-prv1)" prv1
forwarded prv1 vp-prv1

check "a change window around now allows, one away from now refuses naming the window"
op "$T_ALICE" vp-win PrepareFailoverReplicationGroup_Task "{\"groupId\":[$(group dg-win)]}" win
forwarded win vp-win
op "$T_ALICE" vp-away SyncReplicationGroup_Task "{\"groupId\":[$(group dg-away)],\"pitName\":\"p1\"}" away
refused away vp-away NoPermission
assert_contains "$(json_eval "$WORK/away.body" 'd["faultstring"]')" "'away' opens $D_AWAY $F_AWAY UTC" "away: message"
# the tenant's window holds as well as the operation's
op "$T_ERIN" vp-tenant PrepareFailoverReplicationGroup_Task "{\"groupId\":[$(group dg-tenant)]}" tenant
refused tenant vp-tenant NoPermission

check "change tickets: missing and not matching refused naming the header"
op "$T_ALICE" vp-tk0 TestFailoverReplicationGroupStop_Task "$(stop_body vp-tk0)" tk0 \
    -H "X-Change-Approval: $(approve carol carol vp-tk0)"
refused tk0 vp-tk0 InvalidArgument X-Change-Ticket
op "$T_ALICE" vp-tk1 TestFailoverReplicationGroupStop_Task "$(stop_body vp-tk1)" tk1 \
    -H 'X-Change-Ticket: CHG12' -H "X-Change-Approval: $(approve carol carol vp-tk1 CHG12)"
refused tk1 vp-tk1 InvalidArgument X-Change-Ticket

check "an approval made with smsguard-approve is accepted once; a dry run does not use it up"
JWS=$(approve carol carol vp-ok)
op "$T_ALICE" vp-ok TestFailoverReplicationGroupStop_Task "$(stop_body vp-ok)" dry \
    -H 'X-Change-Ticket: CHG0000001' -H "X-Change-Approval: $JWS" -H 'X-Dry-Run: true'
assert_eq 200 "$REQ_CODE" "dry run: status ($(head -c 300 "$WORK/dry.body"))"
assert_eq "" "$(record_grep /vp-ok/)" "dry run: requests at the simulator"
op "$T_ALICE" vp-ok TestFailoverReplicationGroupStop_Task "$(stop_body vp-ok)" ok \
    -H 'X-Change-Ticket: CHG0000001' -H "X-Change-Approval: $JWS"
forwarded ok vp-ok
record_none_of CHG0000001 "${JWS:0:40}"
# the record keeps the request's headers: none of the change headers crossed
python3 - "$SIM_RECORD" <<'PY' || fail "a change header reached the simulator"
import sys
data = open(sys.argv[1], "rb").read().lower()
assert b"x-change-" not in data and b"x-dry-run" not in data
PY
cp "$SIM_RECORD" "$WORK/before-replay"
op "$T_ALICE" vp-ok TestFailoverReplicationGroupStop_Task "$(stop_body vp-ok)" replay \
    -H 'X-Change-Ticket: CHG0000001' -H "X-Change-Approval: $JWS"
assert_eq 500 "$REQ_CODE" "replay: status"
assert_vim_fault "$WORK/replay.body" "$WORK/replay.hdr" NoPermission replay
cmp -s "$SIM_RECORD" "$WORK/before-replay" || fail "the replayed request reached the simulator"

check "approval = true on another operation: a failover approved with smsguard-approve, once"
# The groups are inside failoverParam; the tool reads them where the gateway does. No
# ticket is required for this operation, but the one given is bound.
FO_BODY="{\"failoverParam\":{\"_typeName\":\"FailoverParam\",\"isPlanned\":true,\"checkOnly\":false,\"replicationGroupsToFailover\":[{\"groupId\":$(group dg-fo)}]}}"
printf '%s' "$FO_BODY" >"$WORK/fo.json"
FO_JWS=$("$APPROVE" --key "$WORK/carol.key" --name carol --upstream default --ticket CHG0000002 \
    --expires-in 300 "$(path vp-fo FailoverReplicationGroup_Task)" "$WORK/fo.json") ||
    fail "smsguard-approve for the failover exited $?"
op "$T_ALICE" vp-fo FailoverReplicationGroup_Task "$FO_BODY" fo-none -H 'X-Change-Ticket: CHG0000002'
refused fo-none vp-fo NoPermission
op "$T_ALICE" vp-fo FailoverReplicationGroup_Task "$FO_BODY" fo \
    -H 'X-Change-Ticket: CHG0000002' -H "X-Change-Approval: $FO_JWS"
forwarded fo vp-fo
assert_eq 1 "$(record_grep /vp-fo/ | wc -l)" "fo: requests of vp-fo at the simulator"
# A rehearsal of the used statement says what the real request would get: a replay.
cp "$SIM_RECORD" "$WORK/before-fo-dry"
op "$T_ALICE" vp-fo FailoverReplicationGroup_Task "$FO_BODY" fo-dry \
    -H 'X-Change-Ticket: CHG0000002' -H "X-Change-Approval: $FO_JWS" -H 'X-Dry-Run: true'
assert_eq 500 "$REQ_CODE" "fo-dry: status"
assert_vim_fault "$WORK/fo-dry.body" "$WORK/fo-dry.hdr" NoPermission fo-dry
assert_contains "$(json_eval "$WORK/fo-dry.body" 'd["faultstring"]')" "approval replayed" "fo-dry: message"
cmp -s "$SIM_RECORD" "$WORK/before-fo-dry" || fail "the dry run reached the simulator"

check "expired, too far, another group set, self-approved, wrong tenant, forged, missing: refused"
# A statement of the documented form signed with openssl: for the expiry cases, which
# smsguard-approve will not make.
jws() { # KEY KID DIGEST_HEX IAT EXP JTI
    python3 - "$@" <<'PY'
import base64, json, os, subprocess, sys
key, kid, dig, iat, exp, jti = sys.argv[1:7]
tmp = os.path.join(os.path.dirname(key), "jws-" + jti)
b = lambda x: base64.urlsafe_b64encode(x).rstrip(b"=").decode()
h = b(json.dumps({"alg": "EdDSA", "kid": kid, "typ": "smsguard-approval+jwt"}, separators=(",", ":")).encode())
p = b(json.dumps({"dig": b(bytes.fromhex(dig)), "iat": int(iat), "exp": int(exp), "jti": jti}, separators=(",", ":")).encode())
open(tmp, "wb").write((h + "." + p).encode())
sig = subprocess.run(["openssl", "pkeyutl", "-sign", "-inkey", key, "-rawin", "-in", tmp],
                     capture_output=True, check=True).stdout
print(h + "." + p + "." + b(sig))
PY
}
digest() {
    stop_body "$1" >"$WORK/$1.json"
    "$APPROVE" --digest --upstream default --ticket CHG0000001 \
        "$(path "$1" TestFailoverReplicationGroupStop_Task)" "$WORK/$1.json"
}
NOW=$(date +%s)
# sanity: the openssl-made statement, valid, is accepted (so the refusals below are for
# what they change)
S_OS=$(jws "$WORK/carol.key" carol "$(digest vp-os)" "$NOW" $((NOW + 300)) os-1) || fail "jws os"
S_EXPIRED=$(jws "$WORK/carol.key" carol "$(digest vp-expired)" $((NOW - 900)) $((NOW - 300)) ex-1) ||
    fail "jws expired"
S_FAR=$(jws "$WORK/carol.key" carol "$(digest vp-far)" "$NOW" $((NOW + 90000)) far-1) || fail "jws far"
op "$T_ALICE" vp-os TestFailoverReplicationGroupStop_Task "$(stop_body vp-os)" os \
    -H 'X-Change-Ticket: CHG0000001' -H "X-Change-Approval: $S_OS"
forwarded os vp-os
declare -A WHY=() WHO=()
case_refused() { # NAME TOKEN STATEMENT [BODY_MOID]
    local name=$1 tok=$2 st=$3
    op "$tok" "vp-$name" TestFailoverReplicationGroupStop_Task "$(stop_body "${4:-vp-$name}")" "$name" \
        -H 'X-Change-Ticket: CHG0000001' ${st:+-H "X-Change-Approval: $st"}
    refused "$name" "vp-$name" NoPermission
}
case_refused expired "$T_ALICE" "$S_EXPIRED"
WHY[expired]="approval expired" WHO[expired]=carol
case_refused far "$T_ALICE" "$S_FAR"
WHY[far]="approval exp too far" WHO[far]=carol
# approved for dg-vp-other, asked for dg-vp-groups: the statement binds the group set
stop_body vp-other >"$WORK/other.json"
OTHER=$("$APPROVE" --key "$WORK/carol.key" --name carol --upstream default --ticket CHG0000001 \
    --expires-in 300 "$(path vp-groups TestFailoverReplicationGroupStop_Task)" "$WORK/other.json")
case_refused groups "$T_ALICE" "$OTHER"
WHY[groups]="approval digest mismatch" WHO[groups]=carol
case_refused self "$T_CAROL" "$(approve carol carol vp-self)"
WHY[self]="approval by the requester" WHO[self]=carol
case_refused tenant9 "$T_BOB" "$(approve carol carol vp-tenant9)"
WHY[tenant9]="approver may not approve for the tenant" WHO[tenant9]=carol
case_refused forged "$T_ALICE" "$(approve mallory carol vp-forged)"
# the statement names carol (kid): the record says whose name it used, and that the
# signature is not hers
WHY[forged]="approval bad signature" WHO[forged]=carol
case_refused none "$T_ALICE" ""
WHY[none]="approval missing" WHO[none]=
# dave may approve for t9: the same request with his approval goes through
op "$T_BOB" vp-dave TestFailoverReplicationGroupStop_Task "$(stop_body vp-dave)" dave \
    -H 'X-Change-Ticket: CHG0000001' -H "X-Change-Approval: $(approve dave dave vp-dave)"
forwarded dave vp-dave

check "every request has its decision record; refusals name the reason and the approver"
ARGS=()
for n in "${!WHY[@]}"; do ARGS+=("$n=${WHY[$n]}=${WHO[$n]}"); done
python3 - "$AUDIT" "$ACCESS" "$D_NOW" "${ARGS[@]}" <<'PY' || fail "decision records are wrong (see above)"
import json, sys
recs = [json.loads(l) for l in open(sys.argv[1], "rb") if l.strip()]
dec = {}
for r in recs:
    if r.get("stage") == "decision":
        dec.setdefault(r.get("provider"), []).append(r)
errs = []
def one(moid, decision, reason=None, ticket=None, approver=None, window=None, n=1):
    ds = dec.get(moid, [])
    if len(ds) != n:
        errs.append("%s: %d decision records, expected %d" % (moid, len(ds), n)); return
    d = ds[-1]
    got = (d.get("decision"), d.get("ticket"), d.get("approver"), d.get("window"))
    if got != (decision, ticket, approver, window):
        errs.append("%s: decision/ticket/approver/window %r, expected %r" % (moid, got, (decision, ticket, approver, window)))
    if reason is not None and reason not in (d.get("reason") or ""):
        errs.append("%s: reason %r does not say %r" % (moid, d.get("reason"), reason))
    if approver and approver not in (d.get("reason") or "") and decision == "deny":
        errs.append("%s: reason %r does not name approver %r" % (moid, d.get("reason"), approver))
one("vp-off", "deny", "operation disabled")
one("vp-prv0", "deny", "no role of 'alice' grants 'Example.DR.Promote'")
one("vp-prv1", "allow", "granted by role 'promoter' in tenant 't1'")
one("vp-win", "allow", window="now")
one("vp-away", "deny", "outside change window away", window="away")
one("vp-tenant", "deny", "outside change window away", window="away")
one("vp-tk0", "deny", "change ticket is missing")
one("vp-tk1", "deny", "change ticket does not match", ticket="CHG12")
d = [r for r in dec.get("vp-ok", []) if not r.get("dry_run")]
if len(dec.get("vp-ok", [])) != 3 or len(d) != 2:
    errs.append("vp-ok: %d decision records, expected 3 (dry run, allowed, replayed)" % len(dec.get("vp-ok", [])))
if len(d) == 2 and not (d[1].get("decision") == "deny" and "approval replayed" in d[1].get("reason", "")
                        and d[1].get("approver") == "carol"):
    errs.append("vp-ok replay: %r" % d[1])
dr = [r for r in dec.get("vp-ok", []) if r.get("dry_run")]
if len(dr) != 1 or (dr[0].get("decision"), dr[0].get("approver"), dr[0].get("ticket")) != ("allow", "carol", "CHG0000001"):
    errs.append("vp-ok dry run: %r" % dr)
if len(d) == 2:
    dec["vp-ok"] = d[:1]
    one("vp-ok", "allow", ticket="CHG0000001", approver="carol")
one("vp-os", "allow", ticket="CHG0000001", approver="carol")
fo = [(r.get("decision"), r.get("dry_run"), r.get("approver"), r.get("ticket"),
       "approval replayed" in (r.get("reason") or ""), "approval missing" in (r.get("reason") or ""))
      for r in dec.get("vp-fo", [])]
if fo != [("deny", False, None, "CHG0000002", False, True),
          ("allow", False, "carol", "CHG0000002", False, False),
          ("deny", True, "carol", "CHG0000002", True, False)]:
    errs.append("vp-fo (missing, allowed, dry-run replay): %r" % fo)
one("vp-dave", "allow", ticket="CHG0000001", approver="dave")
for a in sys.argv[4:]:
    name, why, who = a.split("=")
    one("vp-" + name, "deny", why or None, ticket="CHG0000001", approver=who or None)
acc = [json.loads(l) for l in open(sys.argv[2], "rb") if l.strip()]
ok = [a for a in acc if "/vp-ok/" in a["path"]]
if not ok or ok[0].get("ticket") != "CHG0000001":
    errs.append("access log: the allowed stop call's line has ticket %r" % (ok[0].get("ticket") if ok else None))
for e in errs:
    print("   " + e)
print("   %d decision records checked" % sum(len(v) for v in dec.values()))
sys.exit(1 if errs else 0)
PY
audit_verify "$AUDIT"
assert_eq 0 "$AV_RC" "smsguard-audit verify ($AV_OUT)"

check "configuration errors name the file and line"
bad() { # WHAT SUBSTITUTION EXPECTED
    local f=$WORK/bad-$1.conf out rc=0
    sed -e "$2" "$WORK/smsguard.conf" >"$f"
    out=$("$SMSGUARD" -t -c "$f" 2>&1) || rc=$?
    assert_eq 1 "$rc" "$1: smsguard -t exit status ($out)"
    assert_match "^$f:[0-9]+: .*$3" "$out" "$1: message"
    echo "   $1: $out"
}
bad zone 's|name = "away"; timezone = "UTC"|name = "away"; timezone = "Mars/Olympus"|' "change window 'away': timezone 'Mars/Olympus'"
bad regex 's|ticket = "^CHG\[0-9\]{7}\$"|ticket = "CHG[0-9"|' "not a POSIX extended regular expression"
bad method 's|ReverseReplicateGroup_Task|ReverseReplicateGroup|' "'ReverseReplicateGroup' is not a guarded operation"
bad window 's|windows = \["now"\]|windows = ["never"]|' "unknown change window 'never'"

assert_serving "change control refusals"
