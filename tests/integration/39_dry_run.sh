#!/usr/bin/env bash
# 39_dry_run: X-Dry-Run: true on a replication operation runs every check, leaves a decision
# record marked dry_run, forwards nothing and answers 200 with the plan (docs/design.md "Dry
# run", issue 19 item 5). Checked on the client's answers, the simulator's record (nothing
# received) and the audit file:
#   - an allowed stop-test over HTTP/1.1 and HTTP/2: 200 application/json plan (dryRun,
#     decision allow, operation, upstream, provider, tenant, groups, batchSize, parts); the
#     simulator received nothing; the decision record says dry_run true, an outcome record
#     says "dry run" with status 0; "TRUE" counts as true
#   - 10 groups with batch.max_size 4: the plan has parts 4,4,2 (first 0,4,8)
#   - a query row (never split): one part with every group, batchSize null
#   - denied dry runs answer the fault the real request gets, nothing forwarded, and the
#     decision record (deny) still says dry_run true: a group outside the tenant
#     (NoPermission), a bad body (InvalidArgument), no token (NotAuthenticated), more parts
#     than batch.max_parts allows (TooMany), GET (405)
#   - X-Dry-Run on a path that is not a replication operation (a forwarded path, a task
#     query), a value other than true/false, or the header twice: 400 InvalidRequest,
#     nothing forwarded; "false" is an ordinary request
#   - X-Dry-Run never reaches the upstream (X-Dry-Run: false on a forwarded path and on a
#     real stop-test)
#   - smsguard_dry_runs_total counts them; smsguard-audit verify says ok, and the report
#     shows the rehearsals' outcome as "dry run"
#   - the same process still serves a real stop-test at the end.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

[[ -x $SMSGUARD_AUDIT ]] || fail "SMSGUARD_AUDIT=$SMSGUARD_AUDIT is not an executable"

VP=/sdk/vim25/8.0.3.0/sms/VasaProvider
M=TestFailoverReplicationGroupStop_Task
AUDIT=$WORK/audit.log
head -c 32 /dev/urandom >"$WORK/task.key"
mkdir -p "$WORK/r"
sha() { printf '%s' "$1" | sha256sum | cut -c1-64; }

POLICY="policy = {
  tokens = ( { id = \"test\"; sha256 = \"$(sha "$SG_TOKEN")\"; subject = \"olivia\"; tenant = \"t1\";
               roles = [\"dr-operator\"]; } );
  roles = ( { name = \"dr-operator\"; privileges = [\"StorageViews.ConfigureService\"]; } );
  tenants = ( { name = \"t1\"; providers = [\"vasa-*\"]; fault_domains = [\"fd-1\"]; } );
};"
GUARD_SETTINGS=("policy=$POLICY"
    "extra=audit = { file = \"$AUDIT\"; sync = \"always\"; fail_closed = true; };
batch = { max_size = 4; max_parallel = 2; learn_from_toomany = true; max_parts = 3;
  task_key_file = \"$WORK/task.key\"; };")
start_all
PID0=$SG_PID

# groups N [FD]: the groupId array of N groups in fault domain FD (default fd-1), device
# groups rg-0 .. rg-N-1.
groups() {
    local n=$1 fd=${2:-fd-1} i sep=""
    printf '['
    for ((i = 0; i < n; i++)); do
        printf '%s{"_typeName":"ReplicationGroupId","faultDomainId":{"_typeName":"FaultDomainId","id":"%s"},"deviceGroupId":{"_typeName":"DeviceGroupId","id":"rg-%d"}}' "$sep" "$fd" "$i"
        sep=,
    done
    printf ']'
}

# post PROTO PATH OUT BODY [curl args...]: POST BODY (JSON) to PATH with the token.
post() {
    local proto=$1 path=$2 out=$3 body=$4
    shift 4
    printf '%s' "$body" >"$out.req"
    sg_req "$proto" POST "$path" "$out" -H 'Content-Type: application/json' \
        -H 'vmware-api-session-id: sess-1' --data-binary @"$out.req" "$@"
}

# nothing_forwarded BEFORE WHAT: the simulator's record still holds BEFORE requests.
nothing_forwarded() {
    assert_eq "$1" "$(record_count)" "$2: requests the simulator received"
}

# last_record STAGE EXPR: EXPR (python, d = the last audit record of STAGE) printed.
last_record() {
    pyrun "$AUDIT" "$1" "$2" <<'PY'
import json, sys
recs = [json.loads(l) for l in open(sys.argv[1], "rb") if l.strip()]
recs = [r for r in recs if r.get("stage") == sys.argv[2]]
d = recs[-1] if recs else {}
print(eval(sys.argv[3]))
PY
}

# records_of REQUEST_ID: "stage:decision-or-reason:dry_run" for each audit record of it.
records_of() {
    pyrun "$AUDIT" "$1" <<'PY'
import json, sys
out = []
for l in open(sys.argv[1], "rb"):
    if not l.strip():
        continue
    d = json.loads(l)
    if d.get("request_id") != sys.argv[2]:
        continue
    if d["stage"] == "decision":
        out.append("decision:%s:%s" % (d["decision"], json.dumps(d.get("dry_run"))))
    else:
        out.append("outcome:%s:%s:%s" % (d["reason"], d["upstream"]["status"], d["fault"]))
print(" ".join(out))
PY
}

# plan OUT: the 200 plan in OUT.body, in one line: "decision op upstream provider tenant
# groups batchSize first/groups,..."; fails when it is not the plan document.
plan() {
    assert_eq 200 "$REQ_CODE" "$1: status; body $(head -c 400 "$1.body")"
    [[ $(hdr_value "$1.hdr" content-type) == application/json* ]] ||
        fail "$1: Content-Type $(hdr_value "$1.hdr" content-type)"
    pyrun "$1.body" <<'PY'
import json, sys
d = json.load(open(sys.argv[1], "rb"))
want = {"dryRun", "decision", "requestId", "operation", "upstream", "release", "provider",
        "subject", "tenant", "reason", "groups", "batchSize", "parts"}
if set(d) != want or d["dryRun"] is not True:
    print("BAD members %s" % sorted(d)); sys.exit()
print(d["decision"], d["operation"], d["upstream"], d["provider"], d["tenant"], d["groups"],
      json.dumps(d["batchSize"]), ",".join("%d/%d" % (p["first"], p["groups"]) for p in d["parts"]))
PY
}

tag() { [[ $1 == http2 ]] && echo h2 || echo h1; }

# ---------------------------------------------------------------------------------------
check "an allowed stop-test as a dry run, over HTTP/1.1 and HTTP/2: the plan, nothing forwarded, audited"
for proto in http1.1 http2; do
    n0=$(record_count)
    out=$WORK/r/ok-$(tag "$proto")
    value=true
    [[ $proto == http2 ]] && value=TRUE
    post "$proto" "$VP/vasa-1/$M" "$out" "{\"groupId\":$(groups 3),\"force\":false}" -H "X-Dry-Run: $value"
    got=$(plan "$out")
    assert_eq "allow $M default vasa-1 t1 3 4 0/3" "$got" "$(tag "$proto"): the plan"
    nothing_forwarded "$n0" "$(tag "$proto") dry run"
    rid=$(json_eval "$out.body" 'd["requestId"]')
    assert_eq "decision:allow:true outcome:dry run:0:None" "$(records_of "$rid")" "$(tag "$proto"): audit records"
    echo "   $(tag "$proto") X-Dry-Run: $value -> 200 $(head -c 160 "$out.body")..."
done

check "10 groups with batch.max_size 4: the plan has the parts 4, 4, 2; nothing forwarded"
n0=$(record_count)
post http2 "$VP/vasa-1/$M" "$WORK/r/ten" "{\"groupId\":$(groups 10),\"force\":true}" -H 'X-Dry-Run: true'
assert_eq "allow $M default vasa-1 t1 10 4 0/4,4/4,8/2" "$(plan "$WORK/r/ten")" "10 groups: the plan"
nothing_forwarded "$n0" "10-group dry run"

check "a query row (never split) as a dry run: one part with every group, batchSize null"
n0=$(record_count)
post http1.1 "$VP/vasa-1/QueryReplicationGroup" "$WORK/r/query" "{\"groupId\":$(groups 5)}" -H 'X-Dry-Run: true'
assert_eq "allow QueryReplicationGroup default vasa-1 t1 5 null 0/5" "$(plan "$WORK/r/query")" "query: the plan"
nothing_forwarded "$n0" "query dry run"
assert_eq "decision:allow:true outcome:dry run:0:None" \
    "$(records_of "$(json_eval "$WORK/r/query.body" 'd["requestId"]')")" "query: audit records"

# ---------------------------------------------------------------------------------------
check "denied dry runs answer the real request's fault, nothing forwarded, recorded with dry_run true"
# refused DRY OUT TYPE BODY [curl args...]: POST BODY to the stop-test; the answer is a TYPE
# fault both with and without X-Dry-Run (DRY: the value), nothing is forwarded, and the last
# decision record is a deny with dry_run as sent.
refused() {
    local out=$1 type=$2 body=$3 dry code real
    shift 3
    for dry in true false; do
        n0=$(record_count)
        post http2 "$VP/vasa-1/$M" "$out-$dry" "$body" -H "X-Dry-Run: $dry" "$@"
        code=$REQ_CODE
        assert_vim_fault "$out-$dry.body" "$out-$dry.hdr" "$type" "$out (X-Dry-Run: $dry)"
        nothing_forwarded "$n0" "$out (X-Dry-Run: $dry)"
        assert_eq "deny $dry" "$(last_record decision 'd["decision"] + " " + json.dumps(d["dry_run"])')" \
            "$out (X-Dry-Run: $dry): the decision record"
        if [[ $dry == true ]]; then real=$code; else assert_eq "$real" "$code" "$out: status of the dry run and of the real request"; fi
    done
    cmp -s "$out-true.body" "$out-false.body" || fail "$out: the dry run's fault differs from the real one's"
    echo "   ${out##*/}: $code $type, the same fault as the real request's, nothing forwarded"
}
refused "$WORK/r/scope" NoPermission "{\"groupId\":$(groups 1 fd-9),\"force\":false}"
refused "$WORK/r/body" InvalidArgument '{"groupId":[],"force":false}'
refused "$WORK/r/token" NotAuthenticated "{\"groupId\":$(groups 1),\"force\":false}" -H 'Authorization: Bearer wrong'

check "a dry run with GET: 405 as for the real request, nothing forwarded, recorded as a dry run"
n0=$(record_count)
sg_req http1.1 GET "$VP/vasa-1/$M" "$WORK/r/get" -H 'X-Dry-Run: true'
assert_eq 405 "$REQ_CODE" "GET with X-Dry-Run: true"
assert_eq POST "$(hdr_value "$WORK/r/get.hdr" allow)" "GET with X-Dry-Run: true: Allow"
nothing_forwarded "$n0" "GET dry run"
assert_eq "deny true" "$(last_record decision 'd["decision"] + " " + json.dumps(d["dry_run"])')" \
    "GET dry run: the decision record"

check "more parts than batch.max_parts allows (16 groups, 4 parts of 4 > 3): TooMany as dry run, nothing forwarded"
n0=$(record_count)
post http1.1 "$VP/vasa-1/$M" "$WORK/r/many" "{\"groupId\":$(groups 16),\"force\":false}" -H 'X-Dry-Run: true'
assert_vim_fault "$WORK/r/many.body" "$WORK/r/many.hdr" TooMany "16 groups, dry run"
assert_eq 12 "$(json_eval "$WORK/r/many.body" 'd["maxBatchSize"]')" "16 groups, dry run: maxBatchSize"
nothing_forwarded "$n0" "16-group dry run"
assert_eq true "$(last_record decision 'json.dumps(d["dry_run"])')" "16 groups: the decision record's dry_run"
assert_eq "dry run TooMany 0" "$(last_record outcome 'd["reason"] + " " + str(d["fault"]) + " " + str(d["upstream"]["status"])')" \
    "16 groups: the outcome record"

# ---------------------------------------------------------------------------------------
check "X-Dry-Run off a replication operation, with another value, or twice: 400 InvalidRequest, nothing forwarded"
n0=$(record_count)
nrec=$(grep -c . "$AUDIT")
sg_req http2 GET /sim/echo/dry "$WORK/r/fwd" -H 'X-Dry-Run: true'
assert_eq 400 "$REQ_CODE" "forwarded path with X-Dry-Run: true"
assert_vim_fault "$WORK/r/fwd.body" "$WORK/r/fwd.hdr" InvalidRequest "forwarded path with X-Dry-Run: true"
sg_req http1.1 POST /sdk/vim25/8.0.3.0/sms/SmsTask/SmsTask-1/QuerySmsTaskInfo "$WORK/r/task" -H 'X-Dry-Run: true'
assert_eq 400 "$REQ_CODE" "task query with X-Dry-Run: true"
assert_vim_fault "$WORK/r/task.body" "$WORK/r/task.hdr" InvalidRequest "task query with X-Dry-Run: true"
nothing_forwarded "$n0" "X-Dry-Run off a replication operation"
assert_eq "$nrec" "$(grep -c . "$AUDIT")" "audit lines after refusals off the operations (none are operations)"
# "X-Dry-Run;" is curl's way of sending the header with an empty value
for v in "X-Dry-Run: yes" "X-Dry-Run: 1" "X-Dry-Run: true, false" "X-Dry-Run;"; do
    post http2 "$VP/vasa-1/$M" "$WORK/r/bad" "{\"groupId\":$(groups 1),\"force\":false}" -H "$v"
    assert_eq 400 "$REQ_CODE" "'$v'"
    assert_vim_fault "$WORK/r/bad.body" "$WORK/r/bad.hdr" InvalidRequest "'$v'"
done
for proto in http1.1 http2; do
    post "$proto" "$VP/vasa-1/$M" "$WORK/r/twice" "{\"groupId\":$(groups 1),\"force\":false}" \
        -H 'X-Dry-Run: true' -H 'X-Dry-Run: true'
    assert_eq 400 "$REQ_CODE" "$(tag "$proto"): X-Dry-Run twice"
    assert_vim_fault "$WORK/r/twice.body" "$WORK/r/twice.hdr" InvalidRequest "$(tag "$proto"): X-Dry-Run twice"
done
nothing_forwarded "$n0" "bad X-Dry-Run values"
assert_eq "deny false InvalidRequest" \
    "$(last_record decision 'd["decision"] + " " + json.dumps(d["dry_run"]) + " " + d["fault"]')" \
    "the last refused stop-test's decision record"

check "X-Dry-Run: false is an ordinary request, and the header never reaches the upstream"
n0=$(record_count)
sg_req http1.1 GET /sim/echo/dry-false "$WORK/r/fwdf" -H 'X-Dry-Run: false'
assert_eq 200 "$REQ_CODE" "forwarded path with X-Dry-Run: false"
post http2 "$VP/vasa-1/$M" "$WORK/r/real" "{\"groupId\":$(groups 1),\"force\":false}" -H 'X-Dry-Run: False'
assert_eq 200 "$REQ_CODE" "stop-test with X-Dry-Run: False; body $(head -c 300 "$WORK/r/real.body")"
assert_match '"value":"SmsTask-[0-9]+"' "$(cat "$WORK/r/real.body")" "stop-test with X-Dry-Run: False: the simulator's task"
assert_eq $((n0 + 2)) "$(record_count)" "requests the simulator received"
got=$(pyrun "$SIM_RECORD" <<'PY'
import json, sys
print(sum(1 for l in open(sys.argv[1], "rb") if l.strip()
          for n, v in json.loads(l)["headers"] if n.lower() == "x-dry-run"))
PY
)
assert_eq 0 "$got" "X-Dry-Run headers the simulator received"
assert_eq "decision:allow:false outcome:answered:200:None" \
    "$(records_of "$(last_record decision 'd["request_id"]')")" "the real stop-test's audit records"

# ---------------------------------------------------------------------------------------
check "smsguard_dry_runs_total, the audit chain and the report"
curl -sS --max-time 5 -o "$WORK/metrics" "$SG_ADMIN_URL/metrics" || fail "GET /metrics"
# allowed: h1, h2, ten, query; denied: scope, body, token, GET, many
assert_contains "$(cat "$WORK/metrics")" 'smsguard_dry_runs_total{decision="allow"} 4' "metrics"
assert_contains "$(cat "$WORK/metrics")" 'smsguard_dry_runs_total{decision="deny"} 5' "metrics"
audit_verify "$AUDIT"
assert_eq 0 "$AV_RC" "smsguard-audit verify: $AV_OUT"
rep=$("$SMSGUARD_AUDIT" report --csv "$AUDIT") || fail "smsguard-audit report"
assert_eq 5 "$(grep -c ',dry run,' <<<"$rep" || true)" "report rows whose outcome is \"dry run\" (4 plans and the TooMany)"
echo "   $(grep -o 'smsguard_dry_runs_total{[^}]*} [0-9]*' "$WORK/metrics" | paste -sd' ' -); verify: $AV_OUT"

check "the same process still serves a real stop-test"
assert_eq "$PID0" "$SG_PID" "smsguard pid"
n0=$(record_count)
post http1.1 "$VP/vasa-1/$M" "$WORK/r/end" "{\"groupId\":$(groups 2),\"force\":false}"
assert_eq 200 "$REQ_CODE" "real stop-test at the end; body $(head -c 300 "$WORK/r/end.body")"
assert_eq $((n0 + 1)) "$(record_count)" "requests the simulator received"
assert_serving "after the dry runs"
echo "PASS: $TEST_NAME"
