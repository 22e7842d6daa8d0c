#!/usr/bin/env bash
# 61_composite_query: queries on a composite SmsTask handle (docs/design.md "Batch splitting and
# composite tasks", issue 6). sms-sim runs tasks for 1.5 s; smsguard splits in parts of 4.
#   - a 10-group stop-test (one group fail-x) gives a composite handle; QuerySmsTaskInfo on it
#     at once: 200 SmsTaskInfo with key and task.value the handle, state running or queued,
#     progress; QuerySmsTaskResult at once: 204; polled until success: result one
#     ArrayOfGroupOperationResult with the 10 entries in the client's order, fail-x a
#     GroupErrorResult in its place; QuerySmsTaskResult then 200 with the same entries.
#     Every query asks each part upstream once (the record), over HTTP/1.1 and HTTP/2;
#     QuerySmsTaskResult asks for the parts' QuerySmsTaskInfo (issue 14: only the task's state
#     tells "no result yet" from "never a result"; sms-sim's infos carry the result).
#   - refused with 500 ManagedObjectNotFound and nothing forwarded: a character flipped in
#     the payload, one flipped in the MAC, a truncated handle, the payload without its MAC,
#     another tenant's token with a valid handle, a handle signed with another key (an
#     instance whose key changed)
#   - an ordinary task id (SmsTask-1, and an unknown one) passes through to the simulator
#   - a second smsguard with the same key answers for the handle; so does the first after
#     a restart
#   - no handle ever reaches the simulator
#   - mixed failure (issue 6): sms-sim --max-batch 3, max_size 4, max_parts 4, max_parallel 1,
#     12 groups: the first part is refused with TooMany and re-split (3, 1), the other two are
#     refused too but may not be re-split (max_parts): the client still gets a handle; its
#     QuerySmsTaskInfo says error with the TooMany fault and the 4 results of the accepted
#     parts; QuerySmsTaskResult gives those 4; only the accepted parts are queried upstream.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

VP=/sdk/vim25/8.0.3.0/sms/VasaProvider
ST=/sdk/vim25/8.0.3.0/sms/SmsTask
M=TestFailoverReplicationGroupStop_Task
mkdir -p "$WORK/r"
head -c 32 /dev/urandom >"$WORK/task.key"
head -c 48 /dev/urandom >"$WORK/other.key"
TOKEN_B=tenant-b-token-$$-$RANDOM$RANDOM
GROUPS_10="rg-0 rg-1 rg-2 rg-3 rg-4 fail-x rg-6 rg-7 rg-8 rg-9"
OBJ_PROBLEM=""

tag() { [[ $1 == http2 ]] && echo h2 || echo h1; }
sha() { printf '%s' "$1" | sha256sum | cut -c1-64; }

POLICY="policy = {
  tokens = ( { id = \"a\"; sha256 = \"$(sha "$SG_TOKEN")\"; subject = \"alice\"; tenant = \"a\";
               roles = [\"dr-operator\"]; },
             { id = \"b\"; sha256 = \"$(sha "$TOKEN_B")\"; subject = \"bob\"; tenant = \"b\";
               roles = [\"dr-operator\"]; } );
  roles = ( { name = \"dr-operator\"; privileges = [\"StorageViews.ConfigureService\"]; } );
  tenants = ( { name = \"a\"; providers = [\"*\"]; fault_domains = [\"*\"]; },
              { name = \"b\"; providers = [\"*\"]; fault_domains = [\"*\"]; } );
};"
batch() {
    echo "batch = { max_size = 4; max_parallel = 2; learn_from_toomany = true; max_parts = 64;
  task_key_file = \"$1\"; };"
}

# use NAME: direct sg_req and friends at smsguard instance NAME (g1, g2 or g3).
declare -A G_URL=() G_PID=()
use() { SG_URL=${G_URL[$1]}; }

# create PROTO MOID OUT [GROUPS]: a stop-test of GROUPS (device group ids, default
# $GROUPS_10; fault domain fd-1, force false) for MOID; the answer must be one composite
# SmsTask reference; sets HANDLE and CREATED (seconds, date +%s.%N).
create() {
    local proto=$1 moid=$2 out=$3 g sep="" b='{"groupId":['
    for g in ${4:-$GROUPS_10}; do
        b+="$sep{\"faultDomainId\":{\"id\":\"fd-1\"},\"deviceGroupId\":{\"id\":\"$g\"}}"
        sep=,
    done
    b+='],"force":false}'
    sg_req "$proto" POST "$VP/$moid/$M" "$out" -H 'Content-Type: application/json' \
        -H "vmware-api-session-id: sess-$moid" --data-binary "$b"
    CREATED=$(date +%s.%N)
    assert_eq 200 "$REQ_CODE" "$moid: status; body $(head -c 400 "$out.body")"
    HANDLE=$(json_eval "$out.body" 'd["value"] if d.get("_typeName") == "ManagedObjectReference" and d.get("type") == "SmsTask" else "BAD"')
    assert_match '^sgc1\.[A-Za-z0-9_.~-]+$' "$HANDLE" "$moid: the task reference's value"
}

# query PROTO HANDLE METHOD OUT [curl args]: POST .../SmsTask/HANDLE/METHOD (body {}), with
# the token $SG_TOKEN unless the curl args bring another; sets REQ_CODE, QNEW (how many
# requests the simulator recorded meanwhile) and QFROM (the first new record line number).
query() {
    local proto=$1 h=$2 method=$3 out=$4 before auth=(-H "Authorization: Bearer $SG_TOKEN")
    shift 4
    [[ " $* " == *" Authorization: "* ]] && auth=()
    before=$(record_count)
    sg_post "$proto" "$ST/$h/$method" "$out" "${auth[@]+"${auth[@]}"}" \
        -H 'Content-Type: application/json' -H 'vmware-api-session-id: sess-query' --data-binary '{}' "$@"
    [[ $REQ_CODE != 000 ]] || fail "$method ${h:0:30}...: no answer ($(head -c 300 "$out.err"))"
    QFROM=$((before + 1))
    QNEW=$(($(record_count) - before))
}

# part_ids HANDLE: the upstream task ids in the handle's payload, one a line.
part_ids() {
    python3 - "$1" <<'PY'
import base64, json, sys
p = sys.argv[1].split(".")[1]
for part in json.loads(base64.urlsafe_b64decode(p + "=" * (-len(p) % 4)))["parts"]:
    print(part.get("id", "-"))
PY
}

# fanned_out HANDLE METHOD WHAT: the simulator's record since QFROM is exactly one METHOD
# query per part of HANDLE, with the query's session header and no Authorization.
fanned_out() {
    local got ids
    mapfile -t ids < <(part_ids "$1")
    got=$(python3 - "$SIM_RECORD" "$QFROM" "$ST" "$2" "${ids[@]}" <<'PY'
import json, sys
rec, first, st, method, *ids = sys.argv[1:]
lines = [l for l in open(rec, "rb").read().splitlines() if l.strip()][int(first) - 1:]
recs = [json.loads(l) for l in lines]
errs = []
paths = sorted(r["path"] for r in recs)
want = sorted("%s/%s/%s" % (st, i, method) for i in ids)
if paths != want:
    errs.append("upstream %s, expected %s" % (paths, want))
for r in recs:
    h = [(n.lower(), v) for n, v in r["headers"]]
    if r["method"] != "POST":
        errs.append("method %s" % r["method"])
    if [v for n, v in h if n == "vmware-api-session-id"] != ["sess-query"]:
        errs.append("%s: session header %r" % (r["path"], [v for n, v in h if n == "vmware-api-session-id"]))
    if any(n in ("authorization", "proxy-authorization") for n, v in h):
        errs.append("%s: Authorization forwarded" % r["path"])
print("; ".join(errs) if errs else "OK")
PY
    )
    [[ $got == OK ]] || fail "$3: $got"
}

# info_check BODY HANDLE MOID STATES: an SmsTaskInfo for the composite task; STATES a regex
# for state. When the state is success: result has the 10 entries of $GROUPS_10 in order,
# fail-x a GroupErrorResult. Prints a summary.
info_check() {
    local got
    got=$(python3 - "$1" "$2" "$3" "$4" "$GROUPS_10" <<'PY'
import json, re, sys
body, h, moid, states, groups = sys.argv[1:6]
groups = groups.split()
try:
    d = json.load(open(body, "rb"))
except ValueError as e:
    print("ERR not JSON (%s)" % e); sys.exit()
errs = []
ref = {"_typeName": "ManagedObjectReference", "type": "SmsTask", "value": h}
if d.get("_typeName") != "SmsTaskInfo":
    errs.append("_typeName %r" % d.get("_typeName"))
if d.get("key") != h:
    errs.append("key %r is not the handle" % d.get("key"))
if d.get("task") != ref:
    errs.append("task %r is not the handle's reference" % d.get("task"))
if "object" in d and d["object"] != {"_typeName": "ManagedObjectReference", "type": "VasaProvider", "value": moid}:
    errs.append("object %r" % d["object"])
st = d.get("state")
if not isinstance(st, str) or not re.fullmatch(states, st):
    errs.append("state %r, expected %s" % (st, states))
if not isinstance(d.get("startTime"), str):
    errs.append("startTime %r" % d.get("startTime"))
if st in ("running", "queued"):
    p = d.get("progress")
    if not isinstance(p, int) or isinstance(p, bool) or not 0 <= p <= 100:
        errs.append("progress %r while %s" % (p, st))
    if "result" in d:
        errs.append("a result while %s" % st)
if st == "success":
    if not isinstance(d.get("completionTime"), str) or d["completionTime"] < d.get("startTime", ""):
        errs.append("completionTime %r (startTime %r)" % (d.get("completionTime"), d.get("startTime")))
    if "error" in d:
        errs.append("an error with state success")
    res = d.get("result") or {}
    if res.get("_typeName") != "ArrayOfGroupOperationResult":
        errs.append("result _typeName %r" % res.get("_typeName"))
    v = res.get("_value") or []
    ids = [e.get("groupId", {}).get("deviceGroupId", {}).get("id") for e in v]
    if ids != groups:
        errs.append("result groups %s, expected %s" % (ids, groups))
    for e, g in zip(v, groups):
        want = "GroupErrorResult" if g.startswith("fail-") else "GroupOperationResult"
        if e.get("_typeName") != want:
            errs.append("%s is a %r, expected %s" % (g, e.get("_typeName"), want))
        if g.startswith("fail-") and not (isinstance(e.get("error"), list) and e["error"]):
            errs.append("%s has no error" % g)
        if e.get("groupId", {}).get("faultDomainId", {}).get("id") != "fd-1":
            errs.append("%s lost its fault domain" % g)
    json.dump(res, open(body + ".result", "w"), sort_keys=True)
if errs:
    print("ERR " + "; ".join(errs) + "; body " + json.dumps(d)[:600])
else:
    print("OK state %s, progress %s, %d results" % (st, d.get("progress", "-"),
          len((d.get("result") or {}).get("_value") or [])))
PY
    )
    [[ $got == OK* ]] || fail "QuerySmsTaskInfo on the composite task: ${got#ERR }"
    [[ $(hdr_value "${1%.body}.hdr" content-type) == application/json* ]] ||
        fail "QuerySmsTaskInfo on the composite task: Content-Type '$(hdr_value "${1%.body}.hdr" content-type)'"
    echo "   ${got#OK }"
}

# refused WHAT OUT VALUE: the answer is 500 ManagedObjectNotFound (a VI/JSON fault) and the
# simulator received nothing for it. VALUE: the task id the request named (for obj).
refused() {
    assert_eq 500 "$REQ_CODE" "$1: status; body $(head -c 400 "$2.body")"
    assert_vim_fault "$2.body" "$2.hdr" ManagedObjectNotFound "$1"
    assert_eq 0 "$QNEW" "$1: requests that reached the simulator"
    # vSphere's ManagedObjectNotFound names the object in "obj" (as sms-sim does): note a
    # difference, reported at the end so that the other checks run first
    local obj
    obj=$(json_eval "$2.body" 'json.dumps(d.get("obj"), sort_keys=True)')
    if [[ $obj != "$(python3 -c 'import json,sys; print(json.dumps({"_typeName":"ManagedObjectReference","type":"SmsTask","value":sys.argv[1]}, sort_keys=True))' "$3")" ]]; then
        OBJ_PROBLEM="$1: ManagedObjectNotFound has obj=$obj (members: $(json_eval "$2.body" 'sorted(d)')), expected obj = the SmsTask reference as sms-sim and vCenter give it"
    fi
    echo "   $1: 500 ManagedObjectNotFound, nothing forwarded"
}

# =======================================================================================
start_sim --task-ms 1500
for g in g1 g2 g3; do
    key=$WORK/task.key
    [[ $g == g3 ]] && key=$WORK/other.key
    guard_conf "$WORK/$g.conf" "policy=$POLICY" "extra=$(batch "$key")"
    start_guard "$WORK/$g.conf"
    G_URL[$g]=$SG_URL
    G_PID[$g]=$SG_PID
done
use g1

check "a 10-group stop-test (fail-x among them) gives a composite task"
create http1.1 vasa-q "$WORK/r/create"
H=$HANDLE
T_CREATED=$CREATED
mapfile -t IDS < <(part_ids "$H")
assert_eq 3 "${#IDS[@]}" "parts in the handle"
echo "   200 ${H:0:40}... (${#H} bytes), parts ${IDS[*]}"

check "QuerySmsTaskInfo right away (HTTP/1.1): running, progress, key and task = the handle; one query per part upstream"
query http1.1 "$H" QuerySmsTaskInfo "$WORK/r/info0"
assert_eq 200 "$REQ_CODE" "QuerySmsTaskInfo: status; body $(head -c 400 "$WORK/r/info0.body")"
python3 -c 'import sys,time; sys.exit(0 if time.time() - float(sys.argv[1]) < 1.3 else 1)' "$T_CREATED" ||
    echo "   (note: the first query came more than 1.3 s after creation; the state may already be success)"
info_check "$WORK/r/info0.body" "$H" vasa-q 'running|queued'
fanned_out "$H" QuerySmsTaskInfo "QuerySmsTaskInfo right away"

check "QuerySmsTaskResult right away (HTTP/2): 204, one QuerySmsTaskInfo per part upstream"
query http2 "$H" QuerySmsTaskResult "$WORK/r/res0"
assert_eq 204 "$REQ_CODE" "QuerySmsTaskResult while running: status; body $(head -c 400 "$WORK/r/res0.body")"
assert_eq 0 "$(stat -c %s "$WORK/r/res0.body")" "QuerySmsTaskResult while running: body length"
fanned_out "$H" QuerySmsTaskInfo "QuerySmsTaskResult right away"
echo "   204, no body"

check "poll QuerySmsTaskInfo (HTTP/2) until success: 10 results in the client's order, fail-x in place"
deadline=$((SECONDS + 10))
polls=0
while :; do
    polls=$((polls + 1))
    query http2 "$H" QuerySmsTaskInfo "$WORK/r/info"
    assert_eq 200 "$REQ_CODE" "QuerySmsTaskInfo (poll $polls): status; body $(head -c 400 "$WORK/r/info.body")"
    fanned_out "$H" QuerySmsTaskInfo "QuerySmsTaskInfo (poll $polls)"
    st=$(json_eval "$WORK/r/info.body" 'd.get("state")')
    [[ $st == success || $st == error ]] && break
    [[ $st == running || $st == queued ]] || fail "poll $polls: state '$st'"
    ((SECONDS < deadline)) || fail "the composite task is still $st 10 s after creation"
    sleep 0.25
done
python3 -c 'import sys,time; sys.exit(0 if time.time() - float(sys.argv[1]) >= 1.4 else 1)' "$T_CREATED" ||
    fail "the composite task says $st less than 1.5 s after its parts started (--task-ms 1500)"
echo "   after $polls poll(s):"
info_check "$WORK/r/info.body" "$H" vasa-q success

check "QuerySmsTaskResult (HTTP/1.1) after completion: 200, the same 10 entries"
query http1.1 "$H" QuerySmsTaskResult "$WORK/r/res1"
assert_eq 200 "$REQ_CODE" "QuerySmsTaskResult: status; body $(head -c 400 "$WORK/r/res1.body")"
fanned_out "$H" QuerySmsTaskInfo "QuerySmsTaskResult after completion"
assert_eq "$(cat "$WORK/r/info.body.result")" "$(json_eval "$WORK/r/res1.body" 'json.dumps(d, sort_keys=True)')" \
    "QuerySmsTaskResult's body against QuerySmsTaskInfo's result"
echo "   200, $(json_eval "$WORK/r/res1.body" 'len(d["_value"])') entries, equal to the info's result"

check "tampered handles and another tenant's token: 500 ManagedObjectNotFound, nothing forwarded"
mapfile -t BAD < <(python3 - "$H" <<'PY'
import sys
h = sys.argv[1]
pre, payload, mac = h.split(".")
def flip(s, i):
    return s[:i] + ("B" if s[i] != "B" else "C") + s[i + 1:]
mid = len(pre) + 1 + len(payload) // 2
print("payload-flip\t" + flip(h, mid))
print("mac-flip\t" + flip(h, len(h) - 1 - len(mac) // 2))
print("truncated\t" + h[:-5])
print("no-mac\t" + pre + "." + payload)
PY
)
n=0
for line in "${BAD[@]}"; do
    what=${line%%$'\t'*}
    bad=${line#*$'\t'}
    assert_ne "$H" "$bad" "$what handle"
    n=$((n + 1))
    proto=http1.1
    method=QuerySmsTaskInfo
    ((n % 2 == 0)) && proto=http2 && method=QuerySmsTaskResult
    query "$proto" "$bad" "$method" "$WORK/r/bad-$what"
    refused "$what ($(tag "$proto") $method)" "$WORK/r/bad-$what" "$bad"
done
for proto in http1.1 http2; do
    query "$proto" "$H" QuerySmsTaskInfo "$WORK/r/tenant-b-$proto" -H "Authorization: Bearer $TOKEN_B"
    refused "tenant b's token ($(tag "$proto"))" "$WORK/r/tenant-b-$proto" "$H"
done
use g3
query http2 "$H" QuerySmsTaskInfo "$WORK/r/other-key"
refused "an instance with another key" "$WORK/r/other-key" "$H"
use g1

check "ordinary task ids pass through to the simulator"
query http1.1 SmsTask-1 QuerySmsTaskInfo "$WORK/r/plain"
assert_eq 200 "$REQ_CODE" "QuerySmsTaskInfo SmsTask-1: status; body $(head -c 400 "$WORK/r/plain.body")"
assert_eq "SmsTaskInfo SmsTask-1" "$(json_eval "$WORK/r/plain.body" 'd["_typeName"] + " " + d["key"]')" "QuerySmsTaskInfo SmsTask-1: answer"
assert_eq 1 "$QNEW" "QuerySmsTaskInfo SmsTask-1: requests upstream"
record_last_to "$WORK/r/plain.rec"
assert_eq "$ST/SmsTask-1/QuerySmsTaskInfo" "$(json_eval "$WORK/r/plain.rec" 'd["path"]')" "QuerySmsTaskInfo SmsTask-1: path upstream"
echo "   SmsTask-1: 200 SmsTaskInfo from the simulator"
query http2 SmsTask-99999 QuerySmsTaskResult "$WORK/r/plain-unknown"
assert_eq 500 "$REQ_CODE" "QuerySmsTaskResult SmsTask-99999: status"
assert_vim_fault "$WORK/r/plain-unknown.body" "$WORK/r/plain-unknown.hdr" ManagedObjectNotFound "unknown ordinary task"
assert_eq 1 "$QNEW" "QuerySmsTaskResult SmsTask-99999: requests upstream"
echo "   SmsTask-99999: the simulator's 500 ManagedObjectNotFound, passed through"

check "a second smsguard with the same key answers for the handle"
use g2
query http2 "$H" QuerySmsTaskInfo "$WORK/r/g2"
assert_eq 200 "$REQ_CODE" "QuerySmsTaskInfo through the second instance: status; body $(head -c 400 "$WORK/r/g2.body")"
fanned_out "$H" QuerySmsTaskInfo "QuerySmsTaskInfo through the second instance"
info_check "$WORK/r/g2.body" "$H" vasa-q success
create http2 vasa-q2 "$WORK/r/create2"
H2=$HANDLE
use g1
query http1.1 "$H2" QuerySmsTaskInfo "$WORK/r/g2-on-g1"
assert_eq 200 "$REQ_CODE" "a handle made by the second instance, asked of the first: status; body $(head -c 400 "$WORK/r/g2-on-g1.body")"
fanned_out "$H2" QuerySmsTaskInfo "a handle made by the second instance, asked of the first"
info_check "$WORK/r/g2-on-g1.body" "$H2" vasa-q2 'running|queued|success'

check "after a restart (same key) the handle still works"
stop_guard_term "${G_PID[g1]}"
start_guard "$WORK/g1.conf"
G_URL[g1]=$SG_URL
use g1
query http1.1 "$H" QuerySmsTaskInfo "$WORK/r/restart"
assert_eq 200 "$REQ_CODE" "QuerySmsTaskInfo after the restart: status; body $(head -c 400 "$WORK/r/restart.body")"
fanned_out "$H" QuerySmsTaskInfo "QuerySmsTaskInfo after the restart"
info_check "$WORK/r/restart.body" "$H" vasa-q success

check "no handle and no token ever reached the simulator"
record_none_of "sgc1." "$SG_TOKEN" "$TOKEN_B" "Bearer"
echo "   $(record_count) requests recorded, none with a handle, a token or Authorization"

check "mixed failure: two parts refused at submission, the handle reports the error and the other results"
SIM_RECORD=$WORK/sim-mixed.jsonl
start_sim --max-batch 3
guard_conf "$WORK/g4.conf" "policy=$POLICY" "extra=batch = { max_size = 4; max_parallel = 1;
  learn_from_toomany = false; max_parts = 4; task_key_file = \"$WORK/task.key\"; };"
start_guard "$WORK/g4.conf"
G_URL[g4]=$SG_URL
use g4
create http2 vasa-mixed "$WORK/r/mixed" "$(seq -f 'rg-%g' 0 11 | paste -sd' ' -)"
HM=$HANDLE
python3 - "$SIM_RECORD" "$VP/vasa-mixed/$M" <<'PY' || fail "vasa-mixed: the calls upstream are wrong (see above)"
import json, sys
calls = [[g["deviceGroupId"]["id"] for g in json.loads(r["body"])["groupId"]]
         for r in map(json.loads, open(sys.argv[1], "rb")) if r["path"] == sys.argv[2]]
n = lambda a, b: ["rg-%d" % i for i in range(a, b + 1)]
want = [n(0, 3), n(0, 2), n(3, 3), n(4, 7), n(8, 11)]
print("   upstream: %s" % " ".join("%d" % len(c) for c in calls))
if calls != want:
    print("   calls %s, expected %s" % (calls, want)); sys.exit(1)
PY
mapfile -t IDS < <(part_ids "$HM")
assert_eq "SmsTask-1 SmsTask-2 - -" "${IDS[*]}" "vasa-mixed: the handle's parts (two tasks, two submission faults)"
for proto in http1.1 http2; do
    query "$proto" "$HM" QuerySmsTaskInfo "$WORK/r/mixed-info"
    assert_eq 200 "$REQ_CODE" "mixed: QuerySmsTaskInfo: status; body $(head -c 400 "$WORK/r/mixed-info.body")"
    got=$(python3 - "$WORK/r/mixed-info.body" "$HM" "$SIM_RECORD" "$QFROM" "$ST" <<'PY'
import json, sys
body, h, rec, first, st = sys.argv[1:6]
d = json.load(open(body, "rb"))
errs = []
if d.get("_typeName") != "SmsTaskInfo" or d.get("key") != h:
    errs.append("_typeName %r key %r" % (d.get("_typeName"), d.get("key")))
if d.get("state") != "error":
    errs.append("state %r, expected error" % d.get("state"))
e = d.get("error")
if not isinstance(e, dict) or e.get("_typeName") != "TooMany" or e.get("maxBatchSize") != 3:
    errs.append("error %r, expected the TooMany fault (maxBatchSize 3)" % (e,))
res = d.get("result") or {}
ids = [x.get("groupId", {}).get("deviceGroupId", {}).get("id") for x in res.get("_value") or []]
if res.get("_typeName") != "ArrayOfGroupOperationResult" or ids != ["rg-0", "rg-1", "rg-2", "rg-3"]:
    errs.append("result %s, expected the 4 results of the accepted parts" % json.dumps(res)[:300])
lines = [l for l in open(rec, "rb").read().splitlines() if l.strip()][int(first) - 1:]
paths = sorted(json.loads(l)["path"] for l in lines)
want = ["%s/SmsTask-%d/QuerySmsTaskInfo" % (st, i) for i in (1, 2)]
if paths != want:
    errs.append("upstream %s, expected %s" % (paths, want))
print("; ".join(errs) if errs else "OK state error (%s), %d results" % (e.get("_typeName"), len(ids)))
PY
    )
    [[ $got == OK* ]] || fail "mixed: QuerySmsTaskInfo ($(tag "$proto")): $got; body $(head -c 600 "$WORK/r/mixed-info.body")"
    echo "   $(tag "$proto") QuerySmsTaskInfo: ${got#OK }"
done
query http1.1 "$HM" QuerySmsTaskResult "$WORK/r/mixed-res"
assert_eq 200 "$REQ_CODE" "mixed: QuerySmsTaskResult: status; body $(head -c 400 "$WORK/r/mixed-res.body")"
assert_eq '["rg-0", "rg-1", "rg-2", "rg-3"]' \
    "$(json_eval "$WORK/r/mixed-res.body" '[x["groupId"]["deviceGroupId"]["id"] for x in d["_value"]]')" \
    "mixed: QuerySmsTaskResult's entries"
assert_eq 2 "$QNEW" "mixed: QuerySmsTaskResult's queries upstream"
echo "   QuerySmsTaskResult: 200, the 4 results of the accepted parts"
record_none_of "sgc1." "$SG_TOKEN" "$TOKEN_B" "Bearer"

[[ -z $OBJ_PROBLEM ]] || fail "$OBJ_PROBLEM"
echo "PASS: $TEST_NAME"
