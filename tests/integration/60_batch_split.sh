#!/usr/bin/env bash
# 60_batch_split: a stop-test batch larger than the provider's size is split into ordered
# parts (docs/design.md "Batch splitting and composite tasks", issue 6). Checked on the client's
# answers and on the simulator's record:
#   - batch.max_size 4: 10 groups over HTTP/1.1 and over HTTP/2 -> one composite SmsTask
#     ("sgc1." handle); upstream exactly 3 stop-test calls carrying groups [0-3] [4-7] [8-9]
#     in the client's order, each with the client's force, root _typeName when it sent one
#     (none when it did not), its vmware-api-session-id and no Authorization; 3 groups and
#     4 groups -> one call and the simulator's own answer byte for byte (SmsTask-N)
#   - batch.providers: vasa-small has max_size 2: 5 groups -> 3 calls (2,2,1)
#   - max_parallel 2: 12 groups with every upstream answer delayed 400 ms (a second simulator
#     with --delay-ms: x-sim-* headers do not reach the upstream on guarded routes) -> two
#     parts at once, the third after one of them answered
#   - a client that leaves while its parts are upstream does no harm (a one-part request,
#     which goes upstream as itself, too); 200 split requests from
#     h2load (40 streams at once) all succeed, 3 calls each
#   - the handle's parts are the simulator's tasks: each one's result lists that part's groups
#   - TooMany from the upstream (sms-sim --max-batch 3, batch.max_size 8): 8 groups -> one
#     8-group call refused, then 3,3,2 -> composite; the size is learned: the next 8-group
#     request goes out as 3,3,2 straight away; another provider still starts at 8 (over
#     HTTP/2 too)
#   - every part refused at submission (TooMany that max_parts leaves no room to re-split):
#     the client gets that fault, no handle
#   - TooMany without maxBatchSize (--no-batch-size): parts of one, learned too
#   - no task_key_file: 10 groups -> 500 TooMany with maxBatchSize 4, nothing forwarded
#     (4 groups still pass: one part needs no handle)
#   - max_parts 2 with max_size 4: 10 groups -> 500 TooMany with maxBatchSize 8, nothing
#     forwarded; 8 groups -> 2 calls
#   - a handle too large (250 parts of 1): either answered, or refused with nothing sent
#   - SIGTERM while stop-tests are upstream (one part, split, split whose HTTP/1.1 client left):
#     the waiting clients get their answers and smsguard exits once the upstream answered,
#     not at the drain timeout
#   - audit: one decision record per split request and one outcome record per part (part,
#     parts, upstream {status 200, the simulator's task id}, in order, linked by request_id);
#     smsguard-audit verify says ok.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
need h2load nghttp2-client

[[ -x $SMSGUARD_AUDIT ]] || fail "SMSGUARD_AUDIT=$SMSGUARD_AUDIT is not an executable"

VP=/sdk/vim25/8.0.3.0/sms/VasaProvider
ST=/sdk/vim25/8.0.3.0/sms/SmsTask
M=TestFailoverReplicationGroupStop_Task
AUDIT=$WORK/audit.log
head -c 32 /dev/urandom >"$WORK/task.key"
mkdir -p "$WORK/r"

tag() { [[ $1 == http2 ]] && echo h2 || echo h1; }

# body N FORCE TYPENAME OUT: a stop-test body of N groups (fault domain fd-1, device groups
# rg-0 .. rg-N-1) with force FORCE and, unless TYPENAME is "-", a root _typeName.
body() {
    local n=$1 force=$2 tn=$3 out=$4 i sep=""
    {
        printf '{'
        [[ $tn == - ]] || printf '"_typeName":"%s",' "$tn"
        printf '"groupId":['
        for ((i = 0; i < n; i++)); do
            printf '%s{"_typeName":"ReplicationGroupId","faultDomainId":{"_typeName":"FaultDomainId","id":"fd-1"},"deviceGroupId":{"_typeName":"DeviceGroupId","id":"rg-%d"}}' "$sep" "$i"
            sep=,
        done
        printf '],"force":%s}' "$force"
    } >"$out"
}

# stop PROTO MOID N FORCE TYPENAME [curl args...]: POST an N-group stop-test for MOID with
# the session header sess-MOID; answer in $WORK/r/MOID.{body,hdr,err}, REQ_CODE, REQ_VER.
stop() {
    local proto=$1 moid=$2 n=$3 force=$4 tn=$5
    shift 5
    body "$n" "$force" "$tn" "$WORK/r/$moid.req"
    sg_req "$proto" POST "$VP/$moid/$M" "$WORK/r/$moid" -H 'Content-Type: application/json' \
        -H "vmware-api-session-id: sess-$moid" --data-binary @"$WORK/r/$moid.req" "$@"
    [[ $REQ_CODE != 000 ]] || fail "$moid: no answer ($(head -c 300 "$WORK/r/$moid.err"))"
    if [[ $proto == http2 ]]; then assert_eq 2 "$REQ_VER" "$moid: HTTP version"; else assert_eq 1.1 "$REQ_VER" "$moid: HTTP version"; fi
}

# composite MOID: the answer in $WORK/r/MOID.body is 200 and exactly one composite SmsTask
# reference; sets HANDLE.
composite() {
    local b=$WORK/r/$1.body
    assert_eq 200 "$REQ_CODE" "$1: status; body $(head -c 400 "$b")"
    HANDLE=$(python3 - "$b" <<'PY'
import json, re, sys
d = json.load(open(sys.argv[1], "rb"))
ok = (isinstance(d, dict) and set(d) == {"_typeName", "type", "value"}
      and d["_typeName"] == "ManagedObjectReference" and d["type"] == "SmsTask"
      and isinstance(d["value"], str) and re.fullmatch(r"sgc1\.[A-Za-z0-9_.~-]+", d["value"]))
print(d["value"] if ok else "BAD")
PY
    )
    [[ $HANDLE != BAD ]] || fail "$1: not one composite SmsTask reference (sgc1., URL-safe): $(head -c 400 "$b")"
    [[ $(hdr_value "$WORK/r/$1.hdr" content-type) == application/json* ]] ||
        fail "$1: Content-Type $(hdr_value "$WORK/r/$1.hdr" content-type)"
}

# passthrough MOID: the answer is 200 and the simulator's own bytes: a plain SmsTask-N
# reference; sets TASK.
passthrough() {
    local b=$WORK/r/$1.body
    assert_eq 200 "$REQ_CODE" "$1: status; body $(head -c 400 "$b")"
    assert_match '^\{"_typeName":"ManagedObjectReference","type":"SmsTask","value":"SmsTask-[0-9]+"\}$' \
        "$(cat "$b")" "$1: the answer (the simulator's bytes)"
    TASK=$(json_eval "$b" 'd["value"]')
}

# calls MOID [RECORD]: the stop-test calls recorded for MOID, in record order, one a line:
# "N first-last" (the device group numbers it carried).
calls() {
    python3 - "${2:-$SIM_RECORD}" "$VP/$1/$M" <<'PY'
import json, sys
try:
    lines = open(sys.argv[1], "rb").read().splitlines()
except FileNotFoundError:
    lines = []
for l in lines:
    if not l.strip():
        continue
    r = json.loads(l)
    if r["path"] != sys.argv[2]:
        continue
    ids = [int(g["deviceGroupId"]["id"].split("-")[-1]) for g in json.loads(r["body"])["groupId"]]
    print(len(ids), "%d-%d" % (ids[0], ids[-1]))
PY
}

# sizes MOID [RECORD]: the number of groups of each recorded call for MOID, in record order,
# on one line ("8 3 3 2").
sizes() { calls "$@" | cut -d' ' -f1 | paste -sd' ' -; }

# parts_ok MOID "a-b c-d ..." FORCE TYPENAME [RECORD]: the recorded calls for MOID are
# exactly these chunks of the client's groups (any arrival order: parts travel in parallel),
# each carrying every group of its chunk in order and intact, the client's force, the root
# _typeName ("-": none), exactly one vmware-api-session-id = sess-MOID, no Authorization,
# no Proxy-Authorization, and nothing else in the body.
parts_ok() {
    local got
    got=$(python3 - "${5:-$SIM_RECORD}" "$VP/$1/$M" "$2" "$3" "$4" "sess-$1" <<'PY'
import json, sys
rec, path, chunks, force, tn, sess = sys.argv[1:7]
want = [tuple(int(x) for x in c.split("-")) for c in chunks.split()]
calls, errs = [], []
for l in open(rec, "rb"):
    if not l.strip():
        continue
    r = json.loads(l)
    if r["path"] != path:
        continue
    if r["method"] != "POST":
        errs.append("method %s" % r["method"])
    b = json.loads(r["body"])
    ids = [g["deviceGroupId"]["id"] for g in b["groupId"]]
    for g in b["groupId"]:
        if g.get("faultDomainId", {}).get("id") != "fd-1":
            errs.append("group %r lost its fault domain" % g)
    keys = set(b) - {"groupId", "force", "_typeName"}
    if keys:
        errs.append("unexpected members %s" % sorted(keys))
    if b.get("force") is not (force == "true"):
        errs.append("force %r in part %s, the client sent %s" % (b.get("force"), ids, force))
    if tn == "-":
        if "_typeName" in b:
            errs.append("root _typeName %r added to part %s" % (b["_typeName"], ids))
    elif b.get("_typeName") != tn:
        errs.append("root _typeName %r in part %s, the client sent %r" % (b.get("_typeName"), ids, tn))
    h = [(n.lower(), v) for n, v in r["headers"]]
    s = [v for n, v in h if n == "vmware-api-session-id"]
    if s != [sess]:
        errs.append("vmware-api-session-id %r in part %s" % (s, ids))
    if any(n in ("authorization", "proxy-authorization") for n, v in h):
        errs.append("Authorization forwarded in part %s" % ids)
    calls.append(ids)
calls.sort(key=lambda ids: int(ids[0].split("-")[-1]))
exp = [["rg-%d" % i for i in range(a, b + 1)] for a, b in want]
if calls != exp:
    errs.append("parts %s, expected %s" % (calls, exp))
print("; ".join(errs) if errs else "OK %d" % len(calls))
PY
    )
    [[ $got == OK* ]] || fail "$1: the parts upstream: $got"
}

# handle_parts HANDLE: the upstream task ids in the handle's payload, one a line (read, not
# trusted: the record and the simulator confirm them).
handle_parts() {
    python3 - "$1" <<'PY'
import base64, json, sys
p = sys.argv[1].split(".")
raw = p[1] + "=" * (-len(p[1]) % 4)
d = json.loads(base64.urlsafe_b64decode(raw))
for part in d["parts"]:
    print(part.get("id", "-"), part.get("type", "-"), part.get("n", "-"))
PY
}

# sim_result_ids PORT TASK: the device group ids of the simulator's result for TASK, asked
# of the simulator directly, on one line.
sim_result_ids() {
    curl -sS --max-time 5 -X POST "http://127.0.0.1:$1$ST/$2/QuerySmsTaskResult" -o "$WORK/simres.json" ||
        fail "the simulator did not answer QuerySmsTaskResult for $2"
    python3 -c '
import json, sys
d = json.load(open(sys.argv[1]))
print(" ".join(g["groupId"]["deviceGroupId"]["id"] for g in d["_value"]))' "$WORK/simres.json"
}

batch_conf() { # batch_conf MAX_SIZE MAX_PARTS KEY [PROVIDERS]
    echo "batch = { max_size = $1; max_parallel = 2; learn_from_toomany = true; max_parts = $2;
  task_key_file = \"$3\"; providers = ( ${4:-} ); };"
}

# =======================================================================================
# A: a simulator without a batch limit; smsguard with max_size 4, vasa-small at 2, audit on.
SIM1_RECORD=$WORK/sim1.jsonl
SIM_RECORD=$SIM1_RECORD
start_sim
SIM1_PORT=$SIM_PORT
# the same simulator answering every request 400 ms late, for the timing checks
SLOW_RECORD=$WORK/sim-slow.jsonl
SIM_RECORD=$SLOW_RECORD
start_sim --delay-ms 400
SLOW_PORT=$SIM_PORT
SIM_RECORD=$SIM1_RECORD
SIM_PORT=$SIM1_PORT
GUARD_SETTINGS=("extra=$(batch_conf 4 64 "$WORK/task.key" '{ moid = "vasa-small"; max_size = 2; }')
audit = { file = \"$AUDIT\"; sync = \"always\"; fail_closed = true; };")
guard_conf "$WORK/a.conf" "${GUARD_SETTINGS[@]}"
start_guard "$WORK/a.conf"
A_PID=$SG_PID

check "10 groups, max_size 4, over HTTP/1.1 and HTTP/2: one composite task, 3 parts upstream in order"
declare -A SPLIT_HANDLE=()
for proto in http1.1 http2; do
    moid=vasa-ten-$(tag "$proto")
    if [[ $proto == http1.1 ]]; then force=true tn=TestFailoverReplicationGroupStopRequestType; else force=false tn=-; fi
    stop "$proto" "$moid" 10 "$force" "$tn"
    composite "$moid"
    SPLIT_HANDLE[$moid]=$HANDLE
    echo "   $(tag "$proto") 200 value ${HANDLE:0:40}... (${#HANDLE} bytes)"
    assert_eq "4 0-3 4 4-7 2 8-9" "$(calls "$moid" | sort -t' ' -k2n | paste -sd' ' -)" "$moid: calls upstream"
    parts_ok "$moid" "0-3 4-7 8-9" "$force" "$tn"
    echo "   upstream: $(calls "$moid" | paste -sd',' -) (force $force, _typeName $tn, session header, no Authorization)"
done

check "the handle's parts are the simulator's tasks, in the client's order"
for moid in vasa-ten-h1 vasa-ten-h2; do
    mapfile -t hp < <(handle_parts "${SPLIT_HANDLE[$moid]}")
    assert_eq 3 "${#hp[@]}" "$moid: parts in the handle"
    i=0
    for want in "rg-0 rg-1 rg-2 rg-3" "rg-4 rg-5 rg-6 rg-7" "rg-8 rg-9"; do
        read -r id type n <<<"${hp[$i]}"
        assert_match '^SmsTask-[0-9]+$' "$id" "$moid: part $i's task id"
        assert_eq SmsTask "$type" "$moid: part $i's type"
        assert_eq "$(wc -w <<<"$want")" "$n" "$moid: part $i's group count"
        assert_eq "$want" "$(sim_result_ids "$SIM1_PORT" "$id")" "$moid: the simulator's task $id"
        i=$((i + 1))
    done
    echo "   $moid: $(printf '%s ' "${hp[@]}")"
done

check "3 groups (HTTP/1.1) and 4 groups (HTTP/2): one call, the simulator's answer unchanged"
declare -A SINGLE_TASK=()
for c in "http1.1 vasa-three 3" "http2 vasa-four 4"; do
    read -r proto moid n <<<"$c"
    stop "$proto" "$moid" "$n" false -
    passthrough "$moid"
    SINGLE_TASK[$moid]=$TASK
    assert_eq "$n 0-$((n - 1))" "$(calls "$moid")" "$moid: calls upstream"
    parts_ok "$moid" "0-$((n - 1))" false -
    assert_eq "$(seq -f 'rg-%g' 0 $((n - 1)) | paste -sd' ' -)" "$(sim_result_ids "$SIM1_PORT" "$TASK")" "$moid: the simulator's task $TASK"
    echo "   $(tag "$proto") 200 $(cat "$WORK/r/$moid.body")"
done

check "batch.providers: vasa-small (max_size 2), 5 groups -> 3 calls (2,2,1)"
stop http1.1 vasa-small 5 true -
composite vasa-small
SPLIT_HANDLE[vasa-small]=$HANDLE
assert_eq "2 0-1 2 2-3 1 4-4" "$(calls vasa-small | sort -t' ' -k2n | paste -sd' ' -)" "vasa-small: calls upstream"
parts_ok vasa-small "0-1 2-3 4-4" true -
echo "   200 composite; upstream $(calls vasa-small | paste -sd',' -)"

check "max_parallel 2: 12 groups, each upstream answer delayed 400 ms -> 2 parts at once, then the third"
# a second smsguard (no audit) in front of the slow simulator, until the next check is done
A_SAVED=("$SG_PID" "$SG_PORT" "$SG_ADMIN_PORT" "$SG_URL" "$SG_ADMIN_URL" "$SG_LOG")
guard_conf "$WORK/slow.conf" "upstream_url=http://127.0.0.1:$SLOW_PORT" \
    "extra=$(batch_conf 4 64 "$WORK/task.key")"
start_guard "$WORK/slow.conf"
SIM_RECORD=$SLOW_RECORD
t0=$(date +%s.%N)
stop http2 vasa-par 12 false -
t1=$(date +%s.%N)
composite vasa-par
parts_ok vasa-par "0-3 4-7 8-11" false -
got=$(python3 - "$SIM_RECORD" "$VP/vasa-par/$M" "$t0" "$t1" <<'PY'
import datetime, json, sys
ts = []
for l in open(sys.argv[1], "rb"):
    r = json.loads(l)
    if r["path"] == sys.argv[2]:
        t = datetime.datetime.strptime(r["time"], "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=datetime.timezone.utc)
        ts.append(t.timestamp())
ts.sort()
gap1, gap2 = ts[1] - ts[0], ts[2] - ts[0]
total = float(sys.argv[4]) - float(sys.argv[3])
ok = gap1 < 0.3 and gap2 >= 0.35 and total >= 0.75
print("%s second part +%.0f ms, third +%.0f ms, client %.0f ms" % ("OK" if ok else "BAD", gap1 * 1000, gap2 * 1000, total * 1000))
PY
)
echo "   $got"
[[ $got == OK* ]] || fail "vasa-par: parts not sent two at a time: $got"

check "a client that leaves while its parts are upstream (HTTP/1.1 and HTTP/2): smsguard carries on"
# 12 groups: three parts; 3 groups: one part, which is the request itself upstream
for c in "http1.1 vasa-gone-h1 12" "http2 vasa-gone-h2 12" "http1.1 vasa-gone1-h1 3" \
    "http2 vasa-gone1-h2 3"; do
    read -r proto moid n <<<"$c"
    body "$n" false - "$WORK/r/$moid.req"
    sg_req "$proto" POST "$VP/$moid/$M" "$WORK/r/$moid" -H 'Content-Type: application/json' \
        -H "vmware-api-session-id: sess-$moid" --max-time 0.3 \
        --data-binary @"$WORK/r/$moid.req"
    assert_eq 000 "$REQ_CODE" "$moid: the client gave up before the answer"
done
sleep 1.2
assert_eq "4 0-3 4 4-7" "$(calls vasa-gone-h1 | sort -t' ' -k2n | head -n 2 | paste -sd' ' -)" "vasa-gone-h1: the parts already under way"
for moid in vasa-gone1-h1 vasa-gone1-h2; do
    assert_eq "3 0-2" "$(calls "$moid")" "$moid: its one call"
done
GONE_SIZES=$(sizes vasa-gone-h1)
assert_serving "the clients that left"
stop_guard_term "$SG_PID"
read -r SG_PID SG_PORT SG_ADMIN_PORT SG_URL SG_ADMIN_URL SG_LOG <<<"${A_SAVED[*]}"
SIM_RECORD=$SIM1_RECORD
stop http2 vasa-after-gone 10 false -
composite vasa-after-gone
parts_ok vasa-after-gone "0-3 4-7 8-9" false -
echo "   gone four times (split and one part, h1 and h2); then 200 composite as before; upstream for the gone h1 request: $GONE_SIZES"

check "h2load: 200 split requests (10 groups each) over 4 connections x 10 streams: all 200, 600 calls upstream"
body 10 false - "$WORK/load.req"
n0=$(record_count)
timeout 60 h2load -n 200 -c 4 -m 10 -d "$WORK/load.req" -H 'Content-Type: application/json' \
    -H "Authorization: Bearer $SG_TOKEN" -H 'vmware-api-session-id: sess-vasa-load' \
    "$SG_URL$VP/vasa-load/$M" >"$WORK/h2load.out" 2>&1 ||
    { cat "$WORK/h2load.out" >&2; fail "h2load exited non-zero"; }
h2load_check "$WORK/h2load.out" 200
assert_eq 600 "$(calls vasa-load | wc -l)" "vasa-load: calls upstream"
assert_eq "200 200 200" "$(calls vasa-load | cut -d' ' -f2 | sort | uniq -c | awk '{print $1}' | paste -sd' ' -)" \
    "vasa-load: calls per chunk (0-3, 4-7, 8-9)"
grep -E '^finished in' "$WORK/h2load.out" | sed 's/^/   /'

check "audit: one decision per request; one outcome per part, linked by request_id"
stop_guard_term "$A_PID"
# (vasa-par went through the second smsguard, which keeps no audit log)
python3 - "$AUDIT" "$WORK/r" vasa-ten-h1:10 vasa-ten-h2:10 vasa-small:5 \
    "vasa-three:3:${SINGLE_TASK[vasa-three]}" "vasa-four:4:${SINGLE_TASK[vasa-four]}" <<'PY' || fail "the audit records are wrong (see above)"
import base64, json, sys
audit, rdir = sys.argv[1:3]
recs = [json.loads(l) for l in open(audit, "rb")]
errs = []
for spec in sys.argv[3:]:
    moid, n, *task = spec.split(":")
    n = int(n)
    dec = [r for r in recs if r.get("provider") == moid and r.get("stage") == "decision"]
    out = [r for r in recs if r.get("provider") == moid and r.get("stage") == "outcome"]
    if len(dec) != 1 or len(out) < 1:
        errs.append("%s: %d decision and %d outcome records" % (moid, len(dec), len(out)))
        continue
    d, o = dec[0], out[0]
    if d.get("decision") != "allow":
        errs.append("%s: decision %r" % (moid, d.get("decision")))
    if [g.get("device_group") for g in d.get("groups") or []] != ["rg-%d" % i for i in range(n)]:
        errs.append("%s: decision groups %r" % (moid, d.get("groups")))
    if any(x.get("request_id") != d.get("request_id") or not x["seq"] > d["seq"] for x in out):
        errs.append("%s: outcome not linked to the decision (request_id, seq)" % moid)
    up = o.get("upstream")
    if task:
        if len(out) != 1:
            errs.append("%s: %d outcome records for one part" % (moid, len(out)))
        # one part: one upstream object with the simulator's task id
        if not isinstance(up, dict) or up.get("name") != "default" or up.get("status") != 200 \
                or up.get("task") != task[0]:
            errs.append("%s: upstream %r, expected {name default, status 200, task %s}"
                        % (moid, up, task[0]))
        else:
            print("   %s: upstream %s" % (moid, json.dumps(up)))
        continue
    value = json.load(open("%s/%s.body" % (rdir, moid)))["value"]
    p = value.split(".")[1]
    ids = [x["id"] for x in json.loads(base64.urlsafe_b64decode(p + "=" * (-len(p) % 4)))["parts"]]
    out.sort(key=lambda x: x.get("part", -1))
    if [x.get("part") for x in out] != list(range(len(ids))) or any(x.get("parts") != len(ids) for x in out):
        errs.append("%s: outcome parts %r, expected 0..%d" % (moid, [x.get("part") for x in out], len(ids) - 1))
        continue
    up = [x.get("upstream") or {} for x in out]
    got = [(e.get("name"), e.get("status"), e.get("task")) for e in up]
    want = [("default", 200, i) for i in ids]
    if got != want:
        errs.append("%s: upstream (name, status, task) %r, expected %r" % (moid, got, want))
    for e in up:
        dm = e.get("duration_ms")
        if not isinstance(dm, int) or isinstance(dm, bool) or dm < 0:
            errs.append("%s: an upstream entry's duration_ms is %r" % (moid, dm))
    print("   %s: upstream %s" % (moid, json.dumps(got)))
for e in errs:
    print("   " + e)
sys.exit(1 if errs else 0)
PY
audit_verify "$AUDIT"
echo "   $AV_OUT"
assert_eq 0 "$AV_RC" "smsguard-audit verify exit status ($AV_OUT)"
assert_match '^ok' "$AV_OUT" "smsguard-audit verify output"

# =======================================================================================
check "no task_key_file, max_size 4: 10 groups -> 500 TooMany (maxBatchSize 4), nothing forwarded"
guard_conf "$WORK/d.conf" "extra=$(batch_conf 4 64 "")"
start_guard "$WORK/d.conf"
for proto in http1.1 http2; do
    moid=vasa-nokey-$(tag "$proto")
    stop "$proto" "$moid" 10 false -
    assert_eq 500 "$REQ_CODE" "$moid: status; body $(head -c 400 "$WORK/r/$moid.body")"
    assert_vim_fault "$WORK/r/$moid.body" "$WORK/r/$moid.hdr" TooMany "$moid"
    assert_eq 4 "$(json_eval "$WORK/r/$moid.body" 'd.get("maxBatchSize")')" "$moid: maxBatchSize"
    assert_eq "" "$(calls "$moid")" "$moid: calls upstream"
    echo "   $(tag "$proto") 500 TooMany maxBatchSize 4; nothing forwarded"
done
stop http1.1 vasa-nokey-four 4 false -
passthrough vasa-nokey-four
assert_eq "4 0-3" "$(calls vasa-nokey-four)" "vasa-nokey-four: calls upstream"
echo "   4 groups without a key: 200 $TASK (one part, no handle needed)"
stop_guard_term "$SG_PID"

check "max_parts 2, max_size 4: 10 groups -> 500 TooMany (maxBatchSize 8), nothing forwarded; 8 groups -> 2 calls"
guard_conf "$WORK/e.conf" "extra=$(batch_conf 4 2 "$WORK/task.key")"
start_guard "$WORK/e.conf"
stop http2 vasa-maxparts 10 false -
assert_eq 500 "$REQ_CODE" "vasa-maxparts: status; body $(head -c 400 "$WORK/r/vasa-maxparts.body")"
assert_vim_fault "$WORK/r/vasa-maxparts.body" "$WORK/r/vasa-maxparts.hdr" TooMany vasa-maxparts
assert_eq 8 "$(json_eval "$WORK/r/vasa-maxparts.body" 'd.get("maxBatchSize")')" "vasa-maxparts: maxBatchSize"
assert_eq "" "$(calls vasa-maxparts)" "vasa-maxparts: calls upstream"
echo "   500 TooMany maxBatchSize 8; nothing forwarded"
stop http1.1 vasa-maxparts-8 8 false -
composite vasa-maxparts-8
parts_ok vasa-maxparts-8 "0-3 4-7" false -
echo "   8 groups: 200 composite, upstream $(calls vasa-maxparts-8 | paste -sd',' -)"
stop_guard_term "$SG_PID"

# =======================================================================================
check "TooMany from the upstream (sms-sim --max-batch 3, max_size 8): re-split 3,3,2 and learned"
SIM2_RECORD=$WORK/sim2.jsonl
SIM_RECORD=$SIM2_RECORD
start_sim --max-batch 3
# one worker: the learned size is per worker (issue 6: "on that worker")
guard_conf "$WORK/b.conf" workers=1 "extra=$(batch_conf 8 64 "$WORK/task.key")"
start_guard "$WORK/b.conf"
stop http1.1 vasa-tm 8 true -
composite vasa-tm
# the first call carries all 8; the re-split parts travel two at a time, so their arrival
# order may differ from the client's order
assert_eq "8 3 3 2" "$(sizes vasa-tm | cut -d' ' -f1) $(sizes vasa-tm | cut -d' ' -f2- | tr ' ' '\n' | sort -rn | paste -sd' ' -)" \
    "vasa-tm: group counts of the calls upstream (the first, then the rest)"
assert_eq "8 0-7" "$(calls vasa-tm | head -n 1)" "vasa-tm: the first call"
calls vasa-tm | tail -n +2 >"$WORK/tm.calls"
assert_eq "3 0-2 3 3-5 2 6-7" "$(sort -t' ' -k2n "$WORK/tm.calls" | paste -sd' ' -)" "vasa-tm: the re-split parts"
mapfile -t hp < <(handle_parts "$HANDLE")
assert_eq 3 "${#hp[@]}" "vasa-tm: parts in the handle (the refused 8-group call is not one)"
echo "   1st request: 200 composite; upstream $(sizes vasa-tm) (TooMany, then re-split)"
n0=$(calls vasa-tm | wc -l)
cp "$WORK/r/vasa-tm.body" "$WORK/r/vasa-tm.first"
stop http2 vasa-tm 8 true -
composite vasa-tm
assert_ne "$(json_eval "$WORK/r/vasa-tm.first" 'd["value"]')" "$HANDLE" "the second request's handle"
assert_eq "3 3 2" "$(calls vasa-tm | tail -n +$((n0 + 1)) | cut -d' ' -f1 | sort -rn | paste -sd' ' -)" \
    "vasa-tm: the second request's calls upstream (learned size 3: no 8-group call)"
echo "   2nd request: 200 composite; upstream $(calls vasa-tm | tail -n +$((n0 + 1)) | cut -d' ' -f1 | paste -sd' ' -)"
stop http1.1 vasa-tm-other 8 false -
composite vasa-tm-other
assert_eq "8 3 3 2" "$(sizes vasa-tm-other | cut -d' ' -f1) $(sizes vasa-tm-other | cut -d' ' -f2- | tr ' ' '\n' | sort -rn | paste -sd' ' -)" \
    "vasa-tm-other: another provider learns for itself"
echo "   another provider: upstream $(sizes vasa-tm-other)"
stop http2 vasa-tm-h2 8 false -
composite vasa-tm-h2
assert_eq "8 3 3 2" "$(sizes vasa-tm-h2 | cut -d' ' -f1) $(sizes vasa-tm-h2 | cut -d' ' -f2- | tr ' ' '\n' | sort -rn | paste -sd' ' -)" \
    "vasa-tm-h2: the one-part request refused with TooMany over HTTP/2 is re-split too"
echo "   HTTP/2, another provider: upstream $(sizes vasa-tm-h2)"
stop_guard_term "$SG_PID"

check "every part refused at submission (TooMany, no room to re-split): the client gets that fault, no handle"
# max_size 4, max_parts 3, one part at a time, nothing learned: 12 groups = 3 parts of 4, each
# refused by sms-sim (3 at most) and none may be re-split (that would need a 4th part)
guard_conf "$WORK/f.conf" workers=1 "extra=batch = { max_size = 4; max_parallel = 1;
  learn_from_toomany = false; max_parts = 3; task_key_file = \"$WORK/task.key\"; };"
start_guard "$WORK/f.conf"
stop http2 vasa-allfail 12 false -
assert_eq 500 "$REQ_CODE" "vasa-allfail: status; body $(head -c 400 "$WORK/r/vasa-allfail.body")"
assert_vim_fault "$WORK/r/vasa-allfail.body" "$WORK/r/vasa-allfail.hdr" TooMany vasa-allfail
assert_eq 3 "$(json_eval "$WORK/r/vasa-allfail.body" 'd.get("maxBatchSize")')" "vasa-allfail: maxBatchSize (the simulator's)"
assert_eq "4 0-3 4 4-7 4 8-11" "$(calls vasa-allfail | paste -sd' ' -)" "vasa-allfail: calls upstream"
echo "   500 TooMany maxBatchSize 3 (the simulator's fault); upstream $(sizes vasa-allfail)"
stop_guard_term "$SG_PID"

check "TooMany without maxBatchSize (--no-batch-size): parts of one, learned"
SIM3_RECORD=$WORK/sim3.jsonl
SIM_RECORD=$SIM3_RECORD
start_sim --max-batch 3 --no-batch-size
guard_conf "$WORK/c.conf" workers=1 "extra=$(batch_conf 8 64 "$WORK/task.key")"
start_guard "$WORK/c.conf"
stop http2 vasa-nbs 4 false -
composite vasa-nbs
assert_eq "4 1 1 1 1" "$(sizes vasa-nbs)" "vasa-nbs: group counts of the calls upstream"
assert_eq "0-3 0-0 1-1 2-2 3-3" "$(calls vasa-nbs | cut -d' ' -f2 | head -n 1) $(calls vasa-nbs | tail -n +2 | cut -d' ' -f2 | sort -n | paste -sd' ' -)" "vasa-nbs: the parts"
echo "   1st request: 200 composite; upstream $(sizes vasa-nbs)"
stop http1.1 vasa-nbs 2 false -
composite vasa-nbs
assert_eq "4 1 1 1 1 1 1" "$(sizes vasa-nbs)" "vasa-nbs: after a 2-group request (learned size 1)"
echo "   2nd request (2 groups): 200 composite; upstream $(sizes vasa-nbs | cut -d' ' -f6-)"

# =======================================================================================
check "a handle too large to encode: refused before anything is sent, or answered (never refused after sending)"
# 250 parts of 1 (max_parts 1000): the parts' ids do not fit in SG_HANDLE_MAX (8 KiB)
SIM_RECORD=$SIM1_RECORD
SIM_PORT=$SIM1_PORT
guard_conf "$WORK/h.conf" "extra=$(batch_conf 4 1000 "$WORK/task.key" '{ moid = "vasa-ones"; max_size = 1; }')"
start_guard "$WORK/h.conf"
stop http2 vasa-ones 250 false -
n=$(calls vasa-ones | wc -l)
echo "   $REQ_CODE $(json_eval "$WORK/r/vasa-ones.body" 'd.get("_typeName")'): $(json_eval "$WORK/r/vasa-ones.body" 'd.get("faultstring", d.get("value", "")[:40])'); $n call(s) upstream"
if [[ $REQ_CODE == 200 ]]; then
    composite vasa-ones
    assert_eq 250 "$n" "vasa-ones: calls upstream"
else
    assert_vim_fault "$WORK/r/vasa-ones.body" "$WORK/r/vasa-ones.hdr" '[A-Za-z]+' vasa-ones
    assert_eq 0 "$n" "vasa-ones: stop-test calls made upstream although the client was told the request failed ($FAULT_TYPE)"
fi
stop_guard_term "$SG_PID"

check "SIGTERM while stop-tests are upstream: smsguard exits once they are answered, not at the drain timeout"
# three cases, each on a fresh smsguard (drain_timeout_ms 4000; upstream answers 400 ms late):
# a client waiting for a one-part request (HTTP/1.1), a client waiting for a split request
# (HTTP/2), and an HTTP/1.1 client that gave up on a split request after 0.3 s
for c in "single http1.1 3 wait" "split http2 12 wait" "gone http1.1 12 gone"; do
    read -r what proto n how <<<"$c"
    moid=vasa-drain-$what
    guard_conf "$WORK/g-$what.conf" "limits=max_body_bytes = 1048576; drain_timeout_ms = 4000;" \
        "upstream_url=http://127.0.0.1:$SLOW_PORT" "extra=$(batch_conf 4 64 "$WORK/task.key")"
    start_guard "$WORK/g-$what.conf"
    body "$n" false - "$WORK/r/$moid.req"
    args=(POST "$VP/$moid/$M" "$WORK/r/$moid" -H 'Content-Type: application/json'
        --data-binary @"$WORK/r/$moid.req")
    if [[ $how == gone ]]; then
        sg_req "$proto" "${args[@]}" --max-time 0.3
        assert_eq 000 "$REQ_CODE" "$moid: the client gave up before the answer"
    else
        ( sg_req "$proto" "${args[@]}"; echo "$REQ_CODE" >"$WORK/r/$moid.code" ) &
        client=$!
        sleep 0.2
    fi
    t0=$(date +%s.%N)
    stop_guard_term "$SG_PID" 10
    t1=$(date +%s.%N)
    if [[ $how == wait ]]; then
        wait "$client" || true
        assert_eq 200 "$(cat "$WORK/r/$moid.code")" "$moid: the waiting client's answer during the drain; body $(head -c 300 "$WORK/r/$moid.body")"
    fi
    got=$(python3 -c 'import sys; print("%.2f" % (float(sys.argv[2]) - float(sys.argv[1])))' "$t0" "$t1")
    echo "   $what ($(tag "$proto"), $n groups, client $([[ $how == wait ]] && echo waiting || echo gone)): exited ${got} s after SIGTERM"
    assert_time_between "$got" 0 2.5 "$what: smsguard's exit after SIGTERM with a stop-test upstream (it waited for drain_timeout_ms)"
done

echo "PASS: $TEST_NAME"
