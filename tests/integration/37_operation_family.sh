#!/usr/bin/env bash
# 37_operation_family: every operation of the replication-group family (filters/ops.c, issue
# 19 item 1) is guarded like the stop-test. For each row, over HTTP/1.1 and HTTP/2:
#   - a valid body in a real client's shape (govmomi over HTTP/1.1: the method as root
#     _typeName, _this, _typeName on every object; vim_rs over HTTP/2: the request type's
#     name) is forwarded once to the canonical path, re-serialised without _this, and the
#     simulator's answer comes back (an SmsTask for the _Task methods, an array for the
#     queries);
#   - the body with its argument missing or empty (or another invalid body for the queries,
#     whose arguments are optional) is 500 InvalidArgument naming the property, and nothing
#     is forwarded;
#   - a group in a fault domain outside the caller's tenant is 500 NoPermission with the
#     row's privilege, and nothing is forwarded; a viewer calling a change gets NoPermission
#     StorageViews.ConfigureService; a query naming no group (every group) is allowed only
#     to a tenant whose scope covers every fault domain;
#   - each call leaves one decision record naming the operation (allow or deny as it went).
# Then: SyncReplicationGroup_Task above the batch size goes out in parts that each carry
# pitName; FailoverReplicationGroup_Task is never split; the metrics name each route; a
# lower-case spelling of a family method is refused. Ends by proving the same smsguard
# process still serves.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

R=8.0.3.0
VP=/sdk/vim25/$R/sms/VasaProvider
CONF=StorageViews.ConfigureService
VIEW=StorageViews.View
PROTOS=(http1.1 http2)
AUDIT=$WORK/audit.log
declare -a REFUSED=() # markers that must never reach the simulator
declare -A DEC=()     # "method allow|deny" -> decision records expected
N=0

tag() { [[ $1 == http2 ]] && echo h2 || echo h1; }

declare -A TOK=()
for who in op viewer wide; do
    TOK[$who]=tok-$who-$$-$RANDOM$RANDOM
done
sha() { printf '%s' "$1" | sha256sum | cut -c1-64; }
openssl rand -out "$WORK/task.key" 48

POLICY="policy = {
  tokens = (
    { id = \"op\"; sha256 = \"$(sha "${TOK[op]}")\"; subject = \"olivia\"; tenant = \"t1\";
      roles = [\"dr-operator\"]; },
    { id = \"viewer\"; sha256 = \"$(sha "${TOK[viewer]}")\"; subject = \"victor\"; tenant = \"t1\";
      roles = [\"viewer\"]; },
    { id = \"wide\"; sha256 = \"$(sha "${TOK[wide]}")\"; subject = \"wendy\"; tenant = \"t2\";
      roles = [\"viewer\"]; }
  );
  roles = (
    { name = \"dr-operator\"; privileges = [\"$CONF\"]; },
    { name = \"viewer\"; privileges = [\"$VIEW\"]; }
  );
  tenants = (
    { name = \"t1\"; providers = [\"vasa-*\"]; fault_domains = [\"fd-1\", \"fd-2*\"]; },
    { name = \"t2\"; providers = [\"vasa-*\"]; fault_domains = [\"*\"]; }
  );
};"
GUARD_SETTINGS=("policy=$POLICY" "log_level=debug"
    "extra=audit = { file = \"$AUDIT\"; sync = \"always\"; fail_closed = true; };
batch = { max_size = 2; max_parallel = 2; learn_from_toomany = false; max_parts = 8;
  task_key_file = \"$WORK/task.key\"; };")
start_all
PID0=$SG_PID

# ---------------------------------------------------------------------------------------
# The rows' bodies. body METHOD SHAPE MARKER [FD]: SHAPE is govmomi, vimrs (valid, the
# groups in fault domain FD, default fd-1, device groups and names carrying MARKER), fwd-
# govmomi / fwd-vimrs (what the simulator must receive for them), invalid (the row's
# refused body) or prop (the invalidProperty it gets).
body() {
    python3 - "$@" <<'PY'
import json, sys
method, shape, mk = sys.argv[1:4]
fd = sys.argv[4] if len(sys.argv) > 4 else "fd-1"
gov = shape in ("govmomi", "fwd-govmomi")
def T(name, **m):
    # govmomi writes _typeName on every object, first; vim_rs only where polymorphic
    return dict([("_typeName", name)] if gov else [], **m)
def G(i):
    return T("ReplicationGroupId", faultDomainId=T("FaultDomainId", id=fd),
             deviceGroupId=T("DeviceGroupId", id="%s-%d" % (mk, i)))
FP = lambda tn: T(tn, isPlanned=False, checkOnly=False,
                  replicationGroupsToFailover=[T("ReplicationGroupData", groupId=G(1),
                                                 pitId=T("PointInTimeReplicaId", id="pit-" + mk))],
                  policyAssociations=[dict(_typeName="PolicyAssociation",
                                           id=dict(_typeName="VasaVirtualDiskId", diskId="disk-" + mk),
                                           policyId="pol-1",
                                           datastore=dict(type="Datastore", value="datastore-1"))])
rows = {
    "TestFailoverReplicationGroupStart_Task": (lambda: {"testFailoverParam": FP("TestFailoverParam")},
        {}, "testFailoverParam"),
    "FailoverReplicationGroup_Task": (lambda: {"failoverParam": dict(FP("FailoverParam"), _typeName="FailoverParam")},
        {"failoverParam": {"isPlanned": True, "checkOnly": False, "replicationGroupsToFailover": []}},
        "failoverParam.replicationGroupsToFailover"),
    "PrepareFailoverReplicationGroup_Task": (lambda: {"groupId": [G(1), G(2)]}, {"groupId": []}, "groupId"),
    "PromoteReplicationGroup_Task": (lambda: {"promoteParam": T("PromoteParam", isPlanned=False,
                                                          replicationGroupsToPromote=[G(1)])},
        {"promoteParam": None}, "promoteParam"),
    "SyncReplicationGroup_Task": (lambda: {"groupId": [G(1)], "pitName": "pit-" + mk},
        {"groupId": [G(1)]}, "pitName"),
    "ReverseReplicateGroup_Task": (lambda: {"groupId": [G(1)]}, {"force": False, "groupId": [G(1)]}, "force"),
    "QueryReplicationGroup": (lambda: {"groupId": [G(1), G(2)]},
        {"groupId": [{"faultDomainId": {"id": fd}}]}, "groupId[0].deviceGroupId"),
    "QueryPointInTimeReplica": (lambda: {"groupId": [G(1)], "queryParam": T("QueryPointInTimeReplicaParam",
                                    pitName="pit-" + mk, tags=["daily"], preferDetails=True,
                                    replicaTimeQueryParam=T("ReplicaQueryIntervalParam",
                                        fromDate="2026-01-01T00:00:00Z", number=5))},
        {"queryParam": {"tags": [1]}}, "queryParam.tags[0]"),
    # the fault domains are all the body names: they carry the marker (fd-2* is t1's)
    "QueryReplicationPeer": (lambda: {"faultDomainId": [T("FaultDomainId", id=(fd if fd != "fd-1" else "fd-2") + "-" + mk)]},
        {"faultDomainId": [{"id": ""}]}, "faultDomainId[0].id"),
}
make, invalid, prop = rows[method]
if shape == "invalid":
    b = dict(invalid)
    if method.startswith("Sync") or method.startswith("Reverse"):
        b["groupId"] = [dict(faultDomainId={"id": fd}, deviceGroupId={"id": mk + "-1"})]
    print(json.dumps(b, separators=(",", ":")))
    sys.exit()
if shape == "prop":
    print(prop)
    sys.exit()
args = {k: v for k, v in make().items() if v is not None}
if shape.endswith("govmomi"):
    root = {"_typeName": method}
    if shape == "govmomi":
        root["_this"] = {"_typeName": "ManagedObjectReference", "type": "VasaProvider", "value": "vasa-1"}
else:
    root = {"_typeName": method.replace("_Task", "") + "RequestType"}
root.update(args)
print(json.dumps(root, separators=(",", ":")))
PY
}

ROWS=(TestFailoverReplicationGroupStart_Task:task:$CONF FailoverReplicationGroup_Task:task:$CONF
    PrepareFailoverReplicationGroup_Task:task:$CONF PromoteReplicationGroup_Task:task:$CONF
    SyncReplicationGroup_Task:task:$CONF ReverseReplicateGroup_Task:task:$CONF
    QueryReplicationGroup:query:$VIEW QueryPointInTimeReplica:query:$VIEW
    QueryReplicationPeer:query:$VIEW)

# sim_count METHOD [BODY]: requests for vasa-1's METHOD the simulator received (with exactly
# BODY, when given).
sim_count() {
    [[ -s $SIM_RECORD ]] || { echo 0; return; }
    pyrun "$SIM_RECORD" "$VP/vasa-1/$1" "${2-}" "$#" <<'PY'
import json, sys
path, body, nargs = sys.argv[2], sys.argv[3], int(sys.argv[4])
n = 0
for line in open(sys.argv[1], "rb"):
    r = json.loads(line)
    n += r["path"] == path and (nargs < 2 or r.get("body") == body)
print(n)
PY
}

# post PROTO METHOD OUT WHO BODY: POST BODY to vasa-1's METHOD as WHO, no Content-Type
# (govmomi sends none).
post() {
    local proto=$1 method=$2 out=$3 who=$4 want=1.1
    sg_post "$proto" "$VP/vasa-1/$method" "$out" -H "Authorization: Bearer ${TOK[$who]}" \
        -H 'Content-Type:' --data-binary "$5"
    [[ $REQ_CODE != 000 ]] || fail "$method over $proto: no answer ($(head -c 300 "$out.err"))"
    [[ $proto == http2 ]] && want=2
    assert_eq "$want" "$REQ_VER" "$method: HTTP version of the answer"
}

# allowed METHOD KIND WHO PROTO MARKER BODY FORWARDED: forwarded once, exactly FORWARDED,
# and the simulator's answer came back.
allowed() {
    local m=$1 kind=$2 who=$3 proto=$4 mk=$5 what
    what="$m ($who, $(tag "$proto"))"
    post "$proto" "$m" "$WORK/$mk" "$who" "$6"
    assert_eq 200 "$REQ_CODE" "$what: status (body $(head -c 300 "$WORK/$mk.body"))"
    if [[ $kind == task ]]; then
        assert_eq "ManagedObjectReference SmsTask" \
            "$(json_eval "$WORK/$mk.body" 'd["_typeName"] + " " + d["type"]')" "$what: answer"
    else
        assert_eq list "$(json_eval "$WORK/$mk.body" 'type(d).__name__')" "$what: answer"
    fi
    assert_eq "POST $VP/vasa-1/$m" "$(record_grep "$mk")" "$what: what the simulator received"
    grep -F -- "$mk" "$SIM_RECORD" >"$WORK/$mk.rec"
    echo_body_to "$WORK/$mk.rec" "$WORK/$mk.rec.body"
    assert_eq "$7" "$(cat "$WORK/$mk.rec.body")" "$what: forwarded body"
    DEC[$m allow]=$((${DEC[$m allow]:-0} + 1))
    echo "   $(tag "$proto") 200 forwarded  ($what)"
}

# refused METHOD WHO PROTO MARKER BODY FAULT PROPERTY|PRIVILEGE: 500 FAULT naming the
# property (InvalidArgument) or the privilege (NoPermission); nothing forwarded.
refused() {
    local m=$1 who=$2 proto=$3 mk=$4 fault=$6 what before
    what="$m ($who, $(tag "$proto"), $fault)"
    before=$(sim_count "$m")
    post "$proto" "$m" "$WORK/$mk" "$who" "$5"
    REFUSED+=("$mk")
    assert_eq 500 "$REQ_CODE" "$what: status (body $(head -c 300 "$WORK/$mk.body"))"
    if [[ $fault == InvalidArgument ]]; then
        assert_vim_fault "$WORK/$mk.body" "$WORK/$mk.hdr" InvalidArgument "$what"
        assert_eq "$7" "$FAULT_PROP" "$what: invalidProperty"
    else
        assert_fault_ref "$WORK/$mk.body" "$WORK/$mk.hdr" NoPermission - "$7" VasaProvider vasa-1 "$what"
    fi
    assert_eq "$before" "$(sim_count "$m")" "$what: requests forwarded"
    DEC[$m deny]=$((${DEC[$m deny]:-0} + 1))
    echo "   $(tag "$proto") 500 $fault ${7}  ($what)"
}

for row in "${ROWS[@]}"; do
    IFS=: read -r m kind priv <<<"$row"
    check "$m: valid bodies forwarded, invalid and out-of-scope ones refused, nothing forwarded"
    who=op
    [[ $kind == query ]] && who=viewer
    for proto in "${PROTOS[@]}"; do
        N=$((N + 1))
        mk=f$N-$(tag "$proto")
        if [[ $proto == http1.1 ]]; then
            allowed "$m" "$kind" "$who" "$proto" "$mk" "$(body "$m" govmomi "$mk")" "$(body "$m" fwd-govmomi "$mk")"
        else
            allowed "$m" "$kind" "$who" "$proto" "$mk" "$(body "$m" vimrs "$mk")" "$(body "$m" fwd-vimrs "$mk")"
        fi
        refused "$m" "$who" "$proto" "i$N-$(tag "$proto")" "$(body "$m" invalid "i$N-$(tag "$proto")")" \
            InvalidArgument "$(body "$m" prop x)"
        refused "$m" "$who" "$proto" "s$N-$(tag "$proto")" "$(body "$m" vimrs "s$N-$(tag "$proto")" fd-9)" \
            NoPermission "$priv"
        if [[ $kind == task ]]; then
            # View is not enough for a change
            refused "$m" viewer "$proto" "v$N-$(tag "$proto")" "$(body "$m" vimrs "v$N-$(tag "$proto")")" \
                NoPermission "$CONF"
        else
            # ConfigureService covers the queries; naming no group means every group: only a
            # tenant whose scope covers every fault domain may ask
            allowed "$m" "$kind" op "$proto" "c$N-$(tag "$proto")" "$(body "$m" vimrs "c$N-$(tag "$proto")")" \
                "$(body "$m" fwd-vimrs "c$N-$(tag "$proto")")"
            refused "$m" viewer "$proto" "a$N-$(tag "$proto")" "{\"_typeName\":\"a$N-$(tag "$proto")\"}" \
                InvalidArgument _typeName
            refused "$m" viewer "$proto" "w$N-$(tag "$proto")" '{}' NoPermission "$VIEW"
            sg_post "$proto" "$VP/vasa-1/$m" "$WORK/all$N" -H "Authorization: Bearer ${TOK[wide]}" -H 'Content-Type: application/json' \
                --data-binary '{}'
            assert_eq 200 "$REQ_CODE" "$m every group (wide tenant, $(tag "$proto")): status ($(head -c 300 "$WORK/all$N.body"))"
            DEC[$m allow]=$((${DEC[$m allow]:-0} + 1))
        fi
    done
done
# the all-groups queries by the viewer of t1 were refused before the simulator: their
# bodies hold no marker, so count what reached it (the wide tenant's only)
for row in "${ROWS[@]}"; do
    IFS=: read -r m kind priv <<<"$row"
    [[ $kind == query ]] || continue
    assert_eq 2 "$(sim_count "$m" '{}')" \
        "$m: requests naming no group forwarded (2: the wide tenant's)"
done
record_none_of "${REFUSED[@]}"

# ---------------------------------------------------------------------------------------
check "SyncReplicationGroup_Task above the batch size goes out in parts, each with pitName; FailoverReplicationGroup_Task is never split"
sync='{"groupId":['
for i in 1 2 3; do
    sync+="$([[ $i == 1 ]] || echo ,){\"faultDomainId\":{\"id\":\"fd-1\"},\"deviceGroupId\":{\"id\":\"split-$i\"}}"
done
sync+='],"pitName":"pit-split"}'
post http2 SyncReplicationGroup_Task "$WORK/split" op "$sync"
assert_eq 200 "$REQ_CODE" "split sync: status ($(head -c 300 "$WORK/split.body"))"
assert_match '^sgc1\.' "$(json_eval "$WORK/split.body" 'd["value"]')" "split sync: a composite task"
DEC[SyncReplicationGroup_Task allow]=$((${DEC[SyncReplicationGroup_Task allow]} + 1))
assert_eq 2 "$(grep -c 'pit-split' "$SIM_RECORD")" "split sync: parts forwarded"
pyrun "$SIM_RECORD" <<'PY' || fail "split sync: parts are not [split-1, split-2] and [split-3], each with pitName"
import json, sys
parts = [json.loads(json.loads(l)["body"]) for l in open(sys.argv[1]) if "pit-split" in l]
got = sorted([g["deviceGroupId"]["id"] for g in p["groupId"]] for p in parts if p["pitName"] == "pit-split")
sys.exit(0 if got == [["split-1", "split-2"], ["split-3"]] else 1)
PY
fo=$(python3 -c 'import json
g = lambda i: {"groupId": {"faultDomainId": {"id": "fd-1"}, "deviceGroupId": {"id": "whole-%d" % i}}}
print(json.dumps({"failoverParam": {"isPlanned": True, "checkOnly": True,
      "replicationGroupsToFailover": [g(1), g(2), g(3)]}}, separators=(",", ":")))')
post http1.1 FailoverReplicationGroup_Task "$WORK/whole" op "$fo"
assert_eq 200 "$REQ_CODE" "3-group failover: status"
assert_eq "ManagedObjectReference SmsTask" "$(json_eval "$WORK/whole.body" 'd["_typeName"] + " " + d["type"]')" \
    "3-group failover: the provider's own task"
assert_eq 1 "$(grep -c 'whole-3' "$SIM_RECORD")" "3-group failover: forwarded once, whole"
DEC[FailoverReplicationGroup_Task allow]=$((${DEC[FailoverReplicationGroup_Task allow]} + 1))

# ---------------------------------------------------------------------------------------
check "another spelling of a family method is refused (400), not forwarded unchecked"
sg_post http1.1 "$VP/vasa-1/failoverreplicationgroup_task" "$WORK/case" \
    -H "Authorization: Bearer ${TOK[op]}" --data-binary "$fo"
assert_eq 400 "$REQ_CODE" "lower-case method: status"
sg_post http1.1 "/sdk/vim25/$R/sms/Other/x/QueryReplicationPeer" "$WORK/elsewhere" \
    -H "Authorization: Bearer ${TOK[op]}" --data-binary '{}'
assert_eq 400 "$REQ_CODE" "method under another type: status"
assert_eq "" "$(record_grep failoverreplicationgroup_task)$(record_grep /Other/)" "other spellings: forwarded"

# ---------------------------------------------------------------------------------------
check "one decision record per call, naming the operation"
audit_verify "$AUDIT"
want=""
for k in "${!DEC[@]}"; do want+="$k ${DEC[$k]}"$'\n'; done
got=$(pyrun "$AUDIT" <<'PY'
import collections, json, sys
c = collections.Counter()
for line in open(sys.argv[1]):
    r = json.loads(line)
    if r.get("stage") == "decision" and r.get("operation") not in (None, "TestFailoverReplicationGroupStop_Task"):
        c[(r["operation"], r["decision"])] += 1
        assert r["provider"] == "vasa-1", r
        assert r["upstream"] == "default", r
for (m, d), n in sorted(c.items()):
    print(m, d, n)
PY
)
assert_eq "$(sort <<<"$want" | sed '/^$/d')" "$(sort <<<"$got")" "decision records per operation and decision"
pyrun "$AUDIT" <<'PY' || fail "a forwarded family call has no outcome record, or a record lacks its groups"
import json, sys
recs = [json.loads(l) for l in open(sys.argv[1])]
dec = {r["request_id"]: r for r in recs if r.get("stage") == "decision" and r.get("decision") == "allow"}
out = {r["request_id"] for r in recs if r.get("stage") == "outcome"}
missing = [d["operation"] for rid, d in dec.items() if rid not in out]
peer = [d for d in dec.values() if d["operation"] == "QueryReplicationPeer" and d["groups"]]
ok = not missing and peer and all(g["device_group"] is None for d in peer for g in d["groups"])
ok = ok and all(d["force"] is None for d in dec.values() if d["operation"] != "TestFailoverReplicationGroupStop_Task")
sys.exit(0 if ok else 1)
PY

check "the metrics name each route"
curl -sS --max-time 5 -o "$WORK/metrics" "$SG_ADMIN_URL/metrics"
for label in test_failover_start failover prepare_failover promote sync reverse query_group query_pit query_peer; do
    assert_contains "$(cat "$WORK/metrics")" "route=\"$label\"" "metrics route $label"
done

assert_eq "$PID0" "$SG_PID" "smsguard pid"
assert_serving "after the family"
echo "OK"
