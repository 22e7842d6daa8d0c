#!/usr/bin/env bash
# 63_batch_never_lies: once a part of a split stop-test has gone upstream, the client is
# given a composite task that accounts for every part, never a bare fault; whatever could
# make that impossible is decided before the first part leaves (issue 14 item 6). Checked on
# the client's answers, the composite task's queries and sms-sim's record:
#   - 17 groups, force true, HTTP/1.1 with Connection: close (and HTTP/2), batch.max_size 10,
#     sms-sim --max-batch 5: 10 and 7 are refused with TooMany and re-split to 5,5 and 5,2
#     while both are upstream (the answers landed on the wrong parts before: 500 "cannot build
#     a composite task handle"); the client gets a composite SmsTask whose parts carry the 17
#     groups in order; QuerySmsTaskInfo on it: success with the 17 results in the client's
#     order; six stop-test calls upstream
#   - a provider id of 5800 characters leaves room in a handle for 2 parts: a request that
#     would need more is refused with TooMany before anything is forwarded (the record has no
#     call for it); one of 2 parts whose re-split would need 4 stays refused by the provider,
#     and the client gets the provider's TooMany (nothing ran); with 1000-character group ids
#     (they never enter the handle) a split still gives a composite task
#   - TooMany as a task error (sms-sim --task-max-batch 3): an 8-group stop-test goes out in
#     one call whose task ends in error with maxBatchSize 3; once the task's info was queried
#     (a plain task id, passed through) the next 8-group request goes out as 3,3,2; the same
#     through a composite task's QuerySmsTaskInfo for another provider
#   - QuerySmsTaskResult on a composite task: 204 while a part runs (asking each part's
#     QuerySmsTaskInfo); once they are over, 200 with the entries of the parts that succeeded
#     although one part ended in error (it never gets a result: 204 for ever before)
#   - a handle made under release 8.0.3.0 presented under 9.0.0.0: ManagedObjectNotFound,
#     nothing forwarded
#   - an HTTP/1.1 client that leaves while its parts are upstream (sms-sim --delay-ms 600,
#     max_parallel 2, 3 parts): the third part is never sent
# Every part of it ends with the same smsguard process serving a new connection.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

VP=/sdk/vim25/8.0.3.0/sms/VasaProvider
M=TestFailoverReplicationGroupStop_Task
head -c 32 /dev/urandom >"$WORK/task.key"
mkdir -p "$WORK/r"

tag() { [[ $1 == http2 ]] && echo h2 || echo h1; }

# batch_conf MAX_SIZE MAX_PARALLEL: the batch block (learning on, a task key; vasa-r has
# max_size 4).
batch_conf() {
    echo "batch = { max_size = $1; max_parallel = $2; learn_from_toomany = true; max_parts = 64;
  providers = ( { moid = \"vasa-r\"; max_size = 4; } ); task_key_file = \"$WORK/task.key\"; };"
}

# body N FORCE OUT [ID_PREFIX]: N groups (fault domain fd-1, device groups PREFIX0 ..).
body() {
    python3 - "$1" "$2" "$3" "${4:-rg-}" <<'PY'
import json, sys
n, force, out, pre = int(sys.argv[1]), sys.argv[2] == "true", sys.argv[3], sys.argv[4]
g = [{"faultDomainId": {"id": "fd-1"}, "deviceGroupId": {"id": "%s%d" % (pre, i)}} for i in range(n)]
open(out, "w").write(json.dumps({"groupId": g, "force": force}, separators=(",", ":")))
PY
}

# stop PROTO MOID N FORCE [curl args...]: an N-group stop-test for MOID (N "-": the body
# already in $WORK/r/MOID.req); answer in $WORK/r/MOID.{body,hdr,err} (MOID cut to 40
# characters), REQ_CODE.
stop() {
    local proto=$1 moid=$2 n=$3 force=$4
    shift 4
    [[ $n == - ]] || body "$n" "$force" "$WORK/r/${moid:0:40}.req"
    sg_req "$proto" POST "$VP/$moid/$M" "$WORK/r/${moid:0:40}" -H 'Content-Type: application/json' \
        -H "vmware-api-session-id: sess-1" --data-binary @"$WORK/r/${moid:0:40}.req" "$@"
}

# composite OUT: the answer OUT.body is 200 and one composite SmsTask reference; sets HANDLE.
composite() {
    assert_eq 200 "$REQ_CODE" "$1: status; body $(head -c 400 "$WORK/r/$1.body")"
    HANDLE=$(json_eval "$WORK/r/$1.body" \
        'd["value"] if set(d) == {"_typeName", "type", "value"} and d["type"] == "SmsTask" and d["value"].startswith("sgc1.") else "BAD"')
    [[ $HANDLE != BAD ]] || fail "$1: not one composite SmsTask reference: $(head -c 400 "$WORK/r/$1.body")"
}

# handle_counts HANDLE: the group count of each part in the handle, and "F" after a part
# that carries a fault, on one line ("5 5 5F 2").
handle_counts() {
    python3 - "$1" <<'PY'
import base64, json, sys
p = sys.argv[1].split(".")[1]
d = json.loads(base64.urlsafe_b64decode(p + "=" * (-len(p) % 4)))
print(" ".join("%d%s" % (x["n"], "F" if "fault" in x else "") for x in d["parts"]))
PY
}

# sizes MOID: the group counts of the stop-test calls recorded for MOID, in record order.
sizes() {
    python3 - "$SIM_RECORD" "$VP/$1/$M" <<'PY'
import json, sys
out = []
for l in open(sys.argv[1], "rb"):
    r = json.loads(l)
    if r["path"] == sys.argv[2]:
        out.append(str(len(json.loads(r["body"])["groupId"])))
print(" ".join(out))
PY
}

# query RELEASE ID METHOD OUT [PROTO]: a task query through smsguard.
query() {
    sg_req "${5:-http1.1}" POST "/sdk/vim25/$1/sms/SmsTask/$2/$3" "$WORK/r/$4" \
        -H "vmware-api-session-id: sess-1" -H 'Content-Length: 0'
}

# queries_since N: the paths recorded after the first N lines, sorted, one a line.
queries_since() {
    tail -n +$(($1 + 1)) "$SIM_RECORD" | python3 -c '
import json, sys
print("\n".join(sorted(json.loads(l)["path"].rsplit("/", 2)[-1] for l in sys.stdin if l.strip())))'
}

# =======================================================================================
check "17 groups, force true, HTTP/1.1 Connection: close, upstream takes 5, gateway size 10: a composite task for all of them"
SIM_RECORD=$WORK/sim-a.jsonl
start_sim --max-batch 5
guard_conf "$WORK/a.conf" workers=1 "extra=$(batch_conf 10 4)"
start_guard "$WORK/a.conf"
for proto in http1.1 http2; do
    moid=vasa-17-$(tag "$proto")
    args=()
    [[ $proto == http1.1 ]] && args=(-H 'Connection: close')
    stop "$proto" "$moid" 17 true "${args[@]}"
    composite "$moid"
    H17=$HANDLE
    counts=$(handle_counts "$HANDLE")
    assert_eq "5 5 5 2" "$counts" "$moid: the parts in the handle"
    assert_eq "10 7 5 5 5 2" "$(sizes "$moid" | tr ' ' '\n' | sort -rn | paste -sd' ' -)" "$moid: the calls upstream"
    query 8.0.3.0 "$HANDLE" QuerySmsTaskInfo "$moid-info" "$proto"
    assert_eq 200 "$REQ_CODE" "$moid: QuerySmsTaskInfo; body $(head -c 300 "$WORK/r/$moid-info.body")"
    assert_eq "success $(seq -f 'rg-%g' 0 16 | paste -sd' ' -)" \
        "$(json_eval "$WORK/r/$moid-info.body" 'd["state"] + " " + " ".join(x["groupId"]["deviceGroupId"]["id"] for x in d["result"]["_value"])')" \
        "$moid: the composite task's state and its 17 results in order"
    echo "   $(tag "$proto"): 200 composite, parts $counts, upstream $(sizes "$moid"); info success, 17 results"
done
assert_not_contains "$(cat "$SG_LOG")" "cannot build a composite task handle" "smsguard's log"
assert_serving "the re-split batches"

check "a provider id too long for the handle: TooMany before anything is forwarded; long group ids are no problem"
LONG=vasa-$(head -c 5800 /dev/zero | tr '\0' 'p')
n0=$(record_count)
stop http1.1 "$LONG" 40 false
assert_vim_fault "$WORK/r/${LONG:0:40}.body" "$WORK/r/${LONG:0:40}.hdr" TooMany "long provider id"
mb=$(json_eval "$WORK/r/${LONG:0:40}.body" 'd.get("maxBatchSize")')
assert_eq "$n0" "$(record_count)" "requests forwarded for the refused request"
echo "   500 TooMany (maxBatchSize $mb: $(json_eval "$WORK/r/${LONG:0:40}.body" 'd["faultstring"]')), nothing forwarded"
# 20 groups fit (2 parts of 10) but the provider takes 5: the re-split would need 4 parts,
# more than the handle holds, so both parts stay refused: nothing ran, and the client gets
# the provider's TooMany
stop http1.1 "$LONG" 20 false -H 'Connection: close'
assert_vim_fault "$WORK/r/${LONG:0:40}.body" "$WORK/r/${LONG:0:40}.hdr" TooMany "long provider, 20 groups"
assert_eq "5 10 10" "$(json_eval "$WORK/r/${LONG:0:40}.body" 'd.get("maxBatchSize")') $(sizes "$LONG")" \
    "long provider, 20 groups: the provider's maxBatchSize and the calls upstream"
echo "   20 groups: 2 calls refused by the provider, no room to re-split: its TooMany (nothing ran)"
body 12 false "$WORK/r/vasa-longids.req" "dg-$(head -c 1000 /dev/zero | tr '\0' 'g')-"
stop http2 vasa-longids - false
composite vasa-longids
assert_eq "5 5 2" "$(handle_counts "$HANDLE")" "vasa-longids: the parts in the handle (learned size 5)"
echo "   12 groups with 1000-character ids: 200 composite, parts 5 5 2"
assert_serving "the oversized requests"
stop_guard_term "$SG_PID"

# =======================================================================================
check "TooMany as a task error teaches the size (plain task query, then a composite one)"
SIM_RECORD=$WORK/sim-c.jsonl
start_sim --task-max-batch 3 --task-ms 700
guard_conf "$WORK/c.conf" workers=1 "extra=$(batch_conf 8 4)"
start_guard "$WORK/c.conf"
stop http1.1 vasa-t1 8 false
TASK=$(json_eval "$WORK/r/vasa-t1.body" 'd["value"]')
[[ $TASK == SmsTask-* ]] || fail "vasa-t1: not the simulator's own task: $(cat "$WORK/r/vasa-t1.body")"
sleep 0.8
query 8.0.3.0 "$TASK" QuerySmsTaskInfo t1-info
assert_eq "error TooMany 3" "$(json_eval "$WORK/r/t1-info.body" 'd["state"] + " " + d["error"]["_typeName"] + " " + str(d["error"]["maxBatchSize"])')" \
    "vasa-t1: its task's info"
stop http1.1 vasa-t1 - false
composite vasa-t1
assert_eq "8 3 3 2" "$(sizes vasa-t1 | cut -d' ' -f1) $(sizes vasa-t1 | cut -d' ' -f2- | tr ' ' '\n' | sort -rn | paste -sd' ' -)" \
    "vasa-t1: calls upstream (the second request in the learned size)"
echo "   one call of 8 whose task failed with TooMany 3; after its info: $(sizes vasa-t1 | cut -d' ' -f2-)"
# a composite task whose parts fail with TooMany teaches too: 12 groups = 8 + 4
stop http2 vasa-t2 12 false
composite vasa-t2
H2=$HANDLE
sleep 0.8
query 8.0.3.0 "$H2" QuerySmsTaskInfo t2-info http2
assert_eq "error TooMany" "$(json_eval "$WORK/r/t2-info.body" 'd["state"] + " " + d["error"]["_typeName"]')" "vasa-t2: composite info"
stop http2 vasa-t2 - false
composite vasa-t2
assert_eq "8 4 3 3 3 3" "$(sizes vasa-t2 | tr ' ' '\n' | head -n 2 | sort -rn | paste -sd' ' -) $(sizes vasa-t2 | cut -d' ' -f3-)" \
    "vasa-t2: calls upstream (the second request in the learned size)"
echo "   composite 8+4, both tasks TooMany 3; after its info: $(sizes vasa-t2 | cut -d' ' -f3-)"

check "QuerySmsTaskResult on a composite: 204 while a part runs, then the results although a part ended in error"
# a fresh provider (batch.providers: max_size 4): 7 groups in parts of 4 = 4 + 3;
# the 4-group part's task ends in error (TooMany 3), the 3-group one succeeds
stop http1.1 vasa-r 7 false
composite vasa-r
HR=$HANDLE
n0=$(record_count)
query 8.0.3.0 "$HR" QuerySmsTaskResult r-res0 http2
assert_eq 204 "$REQ_CODE" "QuerySmsTaskResult while the parts run; body $(head -c 300 "$WORK/r/r-res0.body")"
assert_eq "QuerySmsTaskInfo QuerySmsTaskInfo" "$(queries_since "$n0" | paste -sd' ' -)" "QuerySmsTaskResult's queries upstream"
sleep 0.8
query 8.0.3.0 "$HR" QuerySmsTaskResult r-res1
assert_eq 200 "$REQ_CODE" "QuerySmsTaskResult once the parts are over; body $(head -c 300 "$WORK/r/r-res1.body")"
assert_eq "rg-4 rg-5 rg-6" "$(json_eval "$WORK/r/r-res1.body" '" ".join(x["groupId"]["deviceGroupId"]["id"] for x in d["_value"])')" \
    "QuerySmsTaskResult: the entries of the part that succeeded"
echo "   204 while running (one QuerySmsTaskInfo per part); then 200 with rg-4..rg-6 (the other part ended in TooMany)"

check "a handle presented under another release: ManagedObjectNotFound, nothing forwarded"
n0=$(record_count)
for method in QuerySmsTaskInfo QuerySmsTaskResult; do
    query 9.0.0.0 "$HR" "$method" "rel-$method" http2
    assert_vim_fault "$WORK/r/rel-$method.body" "$WORK/r/rel-$method.hdr" ManagedObjectNotFound "release 9.0.0.0 $method"
done
assert_eq "$n0" "$(record_count)" "requests forwarded for the handle under another release"
query 8.0.3.0 "$HR" QuerySmsTaskInfo rel-ok
assert_eq 200 "$REQ_CODE" "the same handle under its own release"
echo "   9.0.0.0: 500 ManagedObjectNotFound twice, nothing forwarded; 8.0.3.0: 200"
assert_serving "the task-error and release cases"
stop_guard_term "$SG_PID"

# =======================================================================================
check "an HTTP/1.1 client that leaves mid-split: the parts not sent yet never reach the upstream"
SIM_RECORD=$WORK/sim-f.jsonl
start_sim --delay-ms 600
guard_conf "$WORK/f.conf" workers=1 "extra=$(batch_conf 4 2)"
start_guard "$WORK/f.conf"
stop http1.1 vasa-gone 12 false --max-time 0.3
assert_eq 000 "$REQ_CODE" "vasa-gone: the client gave up before the answer"
sleep 1.5
assert_eq "4 4" "$(sizes vasa-gone)" "vasa-gone: calls upstream (the third part must not be sent)"
echo "   client gone after 0.3 s: upstream $(sizes vasa-gone) (the third part was not sent)"
assert_serving "the client that left mid-split"
stop_guard_term "$SG_PID"

echo "PASS: $TEST_NAME"
