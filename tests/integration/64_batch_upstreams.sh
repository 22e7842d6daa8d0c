#!/usr/bin/env bash
# 64_batch_upstreams: batch sizes and composite tasks are per (vCenter, provider) (issue 18
# item 4). Two simulators play two vCenters, "default" (sms-sim --max-batch 3; the tenant's
# scope there is written the older way, tenant-level providers/fault_domains) and vc-west
# (--max-batch 5, a scope of its own), behind two vhosts of one listener (SNI + Host east.test
# / west.test); both have a provider named vasa-1, which are two different providers. One
# worker, so the learned sizes of both requests live in the same table. Checked on the
# simulators' records (east = the vCenter "default"):
#   - TooMany is learned per (upstream, provider): 8 groups on east -> 8 refused, then 3,3,2;
#     8 groups on west -> its own 8-group call (east's 3 not used), refused, then 5,3; the
#     next requests go out as 3,3,2 on east and 5,3 on west straight away
#   - batch.providers: an entry naming the request's upstream wins over one without (written
#     first, so the order does not decide): vasa-cfg goes out in parts of 4 on west, of 2 on
#     east
#   - a composite handle made on east, queried through west: ManagedObjectNotFound with the
#     handle as the object, nothing forwarded to either vCenter; through east it answers
#   - a version-1 handle (made before handles carried their vCenter: the same parts, signed
#     with the task key, without "u") is read as made on "default": answered through east,
#     not found through west
#   - the audit decision record and the access log line name the vCenter
#   - the same process serves both vhosts afterwards.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

VP=/sdk/vim25/8.0.3.0/sms/VasaProvider
ST=/sdk/vim25/8.0.3.0/sms/SmsTask
M=TestFailoverReplicationGroupStop_Task
AUDIT=$WORK/audit.log
ACCESS=$WORK/access.log
head -c 32 /dev/urandom >"$WORK/task.key"
mkdir -p "$WORK/r"

# A certificate for the two vhost names, from the test CA.
setup_certs
cat >"$WORK/vh.ext" <<EOF
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature,keyEncipherment
extendedKeyUsage = serverAuth
subjectAltName = DNS:east.test,DNS:west.test
EOF
{ openssl req -new -nodes -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 \
    -keyout "$WORK/vh.key" -out "$WORK/vh.csr" -subj "/CN=east.test" &&
    openssl x509 -req -in "$WORK/vh.csr" -CA "$WORK/ca.crt" -CAkey "$WORK/ca.key" \
        -set_serial "0x$(openssl rand -hex 8)" -days 30 -extfile "$WORK/vh.ext" \
        -out "$WORK/vh.crt"; } >"$WORK/openssl.out" 2>&1 || { cat "$WORK/openssl.out" >&2; fail "openssl"; }

EAST_RECORD=$WORK/east.jsonl
WEST_RECORD=$WORK/west.jsonl
SIM_RECORD=$EAST_RECORD start_sim --max-batch 3
EAST_PORT=$SIM_PORT
SIM_RECORD=$WEST_RECORD start_sim --max-batch 5
WEST_PORT=$SIM_PORT

free_port LPORT
free_port APORT
cat >"$WORK/g.conf" <<EOF
workers = 1;
listen = ( {
  address = "127.0.0.1"; port = $LPORT;
  tls = { certificate = "$SERVER_CRT"; private_key = "$SERVER_KEY"; };
  vhosts = (
    { server_names = ["east.test"]; upstream = "default";
      certificate = "$WORK/vh.crt"; private_key = "$WORK/vh.key"; },
    { server_names = ["west.test"]; upstream = "vc-west";
      certificate = "$WORK/vh.crt"; private_key = "$WORK/vh.key"; }
  );
} );
admin = { address = "127.0.0.1"; port = $APORT; };
upstreams = (
  { name = "default"; url = "http://127.0.0.1:$EAST_PORT"; },
  { name = "vc-west"; url = "http://127.0.0.1:$WEST_PORT"; }
);
limits = { max_body_bytes = 1048576; drain_timeout_ms = 3000; };
log = { access = "$ACCESS"; level = "info"; };
audit = { file = "$AUDIT"; sync = "always"; };
policy = {
  tokens = ( { id = "test"; sha256 = "$(printf '%s' "$SG_TOKEN" | sha256sum | cut -c1-64)";
               subject = "tester"; tenant = "all"; roles = ["dr-operator"]; } );
  roles = ( { name = "dr-operator"; privileges = ["StorageViews.ConfigureService"]; } );
  tenants = ( { name = "all"; providers = ["*"]; fault_domains = ["*"];
      scopes = ( { upstream = "vc-west"; providers = ["*"]; fault_domains = ["*"]; } ); } );
};
batch = { max_size = 8; max_parallel = 1; learn_from_toomany = true; max_parts = 16;
  task_key_file = "$WORK/task.key";
  providers = ( { moid = "vasa-cfg"; max_size = 2; },
                { upstream = "vc-west"; moid = "vasa-cfg"; max_size = 4; } ); };
EOF
echo "$LPORT $APORT" >"$WORK/g.conf.ports"
start_guard "$WORK/g.conf"

# vreq HOST OUT [curl args...]: a request to vhost HOST (SNI and Host), answer in OUT.*,
# REQ_CODE.
vreq() {
    local host=$1 out=$2 w
    shift 2
    w=$(sg_curl --http1.1 -H 'Expect:' -H "Authorization: Bearer $SG_TOKEN" \
        --resolve "$host:$SG_PORT:127.0.0.1" -D "$out.hdr" -o "$out.body" -w '%{http_code}' \
        "$@" 2>"$out.err") || true
    REQ_CODE=${w:-000}
}

# stop HOST MOID N TAG: an N-group stop-test for MOID on vhost HOST; answer in r/TAG.*.
stop() {
    local host=$1 moid=$2 n=$3 i sep=""
    {
        printf '{"groupId":['
        for ((i = 0; i < n; i++)); do
            printf '%s{"faultDomainId":{"id":"fd-1"},"deviceGroupId":{"id":"rg-%d"}}' "$sep" "$i"
            sep=,
        done
        printf '],"force":false}'
    } >"$WORK/r/$4.req"
    vreq "$host" "$WORK/r/$4" -X POST -H 'Content-Type: application/json' \
        --data-binary @"$WORK/r/$4.req" "https://$host:$SG_PORT$VP/$moid/$M"
}

# handle TAG: the composite SmsTask value of r/TAG.body (200 required).
handle() {
    assert_eq 200 "$REQ_CODE" "$1: status; body $(head -c 300 "$WORK/r/$1.body")"
    HANDLE=$(json_eval "$WORK/r/$1.body" 'd["value"]')
    [[ $HANDLE == sgc1.* ]] || fail "$1: not a composite task: $(head -c 300 "$WORK/r/$1.body")"
}

# not_found OUT VALUE WHAT: OUT.body is 500 ManagedObjectNotFound naming the SmsTask VALUE in
# "obj" (as vSphere and sms-sim do), the answer a forged handle gets.
not_found() {
    assert_eq 500 "$REQ_CODE" "$3: status; body $(head -c 300 "$1.body")"
    assert_vim_fault "$1.body" "$1.hdr" ManagedObjectNotFound "$3"
    assert_eq "SmsTask $2" "$(json_eval "$1.body" 'd["obj"]["type"] + " " + d["obj"]["value"]')" "$3: obj"
}

# sizes RECORD MOID: the group counts of the stop-test calls RECORD holds for MOID, in order.
sizes() {
    python3 - "$1" "$VP/$2/$M" <<'PY'
import json, sys
try:
    lines = open(sys.argv[1], "rb").read().splitlines()
except FileNotFoundError:
    lines = []
print(" ".join(str(len(json.loads(r["body"])["groupId"]))
               for r in map(json.loads, filter(bytes.strip, lines)) if r["path"] == sys.argv[2]))
PY
}

check "TooMany is learned per (upstream, provider): vasa-1 of east and of vc-west apart"
stop east.test vasa-1 8 e1
handle e1
assert_eq "8 3 3 2" "$(sizes "$EAST_RECORD" vasa-1)" "east calls for vasa-1"
stop west.test vasa-1 8 w1
handle w1
assert_eq "8 5 3" "$(sizes "$WEST_RECORD" vasa-1)" "vc-west calls for vasa-1 (east's 3 not used)"
stop east.test vasa-1 8 e2
handle e2
stop west.test vasa-1 8 w2
handle w2
assert_eq "8 3 3 2 3 3 2" "$(sizes "$EAST_RECORD" vasa-1)" "east: learned 3"
assert_eq "8 5 3 5 3" "$(sizes "$WEST_RECORD" vasa-1)" "vc-west: learned 5"

check "batch.providers: the entry naming the request's upstream wins over the one without"
stop east.test vasa-cfg 5 ec
handle ec
stop west.test vasa-cfg 5 wc
handle wc
assert_eq "2 2 1" "$(sizes "$EAST_RECORD" vasa-cfg)" "east: the any-upstream entry (2)"
assert_eq "4 1" "$(sizes "$WEST_RECORD" vasa-cfg)" "vc-west: its own entry (4)"

check "a handle made on east is not found through vc-west, and nothing is forwarded"
stop east.test vasa-1 8 e3
handle e3
EAST_HANDLE=$HANDLE
n_east=$(record_count "$EAST_RECORD")
n_west=$(record_count "$WEST_RECORD")
vreq west.test "$WORK/r/cross" -X POST -H 'Content-Type: application/json' --data-binary '{}' \
    "https://west.test:$SG_PORT$ST/$EAST_HANDLE/QuerySmsTaskInfo"
not_found "$WORK/r/cross" "$EAST_HANDLE" "cross-vCenter query"
# a forged handle (last MAC character changed) through the same vhost: the same answer
FORGED=${EAST_HANDLE%?}$([[ ${EAST_HANDLE: -1} == A ]] && echo B || echo A)
vreq west.test "$WORK/r/forged" -X POST -H 'Content-Type: application/json' --data-binary '{}' \
    "https://west.test:$SG_PORT$ST/$FORGED/QuerySmsTaskInfo"
not_found "$WORK/r/forged" "$FORGED" "forged handle"
assert_eq "$(sed "s/$FORGED/H/" "$WORK/r/forged.body")" "$(sed "s/$EAST_HANDLE/H/" "$WORK/r/cross.body")" \
    "the cross-vCenter answer is the forged one's"
assert_eq "$n_east" "$(record_count "$EAST_RECORD")" "requests east received"
assert_eq "$n_west" "$(record_count "$WEST_RECORD")" "requests vc-west received"
vreq east.test "$WORK/r/own" -X POST -H 'Content-Type: application/json' --data-binary '{}' \
    "https://east.test:$SG_PORT$ST/$EAST_HANDLE/QuerySmsTaskInfo"
assert_eq 200 "$REQ_CODE" "the same query through east; body $(head -c 300 "$WORK/r/own.body")"
assert_eq "SmsTaskInfo" "$(json_eval "$WORK/r/own.body" 'd["_typeName"]')" "its answer"
assert_eq "$n_west" "$(record_count "$WEST_RECORD")" "requests vc-west received"

check "a version-1 handle counts as made on \"default\""
V1_HANDLE=$(python3 - "$EAST_HANDLE" "$WORK/task.key" <<'PY'
import base64, hashlib, hmac, json, sys
h, key = sys.argv[1], open(sys.argv[2], "rb").read()
b64 = h.split(".")[1]
p = json.loads(base64.urlsafe_b64decode(b64 + "=" * (-len(b64) % 4)))
assert p["v"] == 2 and p["u"] == "default", p
del p["u"]
p["v"] = 1
raw = json.dumps(p, separators=(",", ":")).encode()
enc = lambda b: base64.urlsafe_b64encode(b).rstrip(b"=").decode()
print("sgc1.%s.%s" % (enc(raw), enc(hmac.new(key, raw, hashlib.sha256).digest())))
PY
)
n_west=$(record_count "$WEST_RECORD")
vreq west.test "$WORK/r/v1west" -X POST -H 'Content-Type: application/json' --data-binary '{}' \
    "https://west.test:$SG_PORT$ST/$V1_HANDLE/QuerySmsTaskInfo"
not_found "$WORK/r/v1west" "$V1_HANDLE" "version-1 handle through vc-west"
assert_eq "$n_west" "$(record_count "$WEST_RECORD")" "requests vc-west received"
vreq east.test "$WORK/r/v1east" -X POST -H 'Content-Type: application/json' --data-binary '{}' \
    "https://east.test:$SG_PORT$ST/$V1_HANDLE/QuerySmsTaskInfo"
assert_eq 200 "$REQ_CODE" "version-1 handle through east; body $(head -c 300 "$WORK/r/v1east.body")"
assert_eq "SmsTaskInfo" "$(json_eval "$WORK/r/v1east.body" 'd["_typeName"]')" "its answer"

check "the audit records and the access log name the vCenter"
python3 - "$AUDIT" "$ACCESS" <<'PY' || fail "records without their vCenter (see above)"
import json, sys, time
recs = [json.loads(l) for l in open(sys.argv[1], "rb")]
errs = []
dec = [r for r in recs if r["stage"] == "decision"]
out = [r for r in recs if r["stage"] == "outcome"]
if len(dec) != 7:
    errs.append("%d decision records, expected 7" % len(dec))
names = {r["request_id"]: r["upstream"] for r in dec}
if sorted(set(names.values())) != ["default", "vc-west"]:
    errs.append("decision upstreams %r" % sorted(set(names.values())))
for o in out:
    if o["upstream"].get("name") != names.get(o["request_id"]):
        errs.append("outcome %s names %r, its decision %r" % (o["seq"], o["upstream"].get("name"),
                                                             names.get(o["request_id"])))
deadline = time.time() + 5
while True:
    lines = [json.loads(l) for l in open(sys.argv[2], "rb")]
    if len(lines) >= 12 or time.time() > deadline:
        break
    time.sleep(0.05)
cross = [l for l in lines if "QuerySmsTaskInfo" in l["path"]]
if [(l["upstream"], l["status"]) for l in cross] != \
        [("vc-west", 500), ("vc-west", 500), ("default", 200), ("vc-west", 500), ("default", 200)]:
    errs.append("access log task queries %r" % [(l["upstream"], l["status"]) for l in cross])
for l in lines:
    if l["upstream"] not in ("default", "vc-west"):
        errs.append("access log upstream %r" % l["upstream"])
print("\n".join(errs))
sys.exit(1 if errs else 0)
PY

check "the same process still serves both vCenters"
stop east.test vasa-2 2 e4
assert_eq 200 "$REQ_CODE" "east; body $(head -c 300 "$WORK/r/e4.body")"
stop west.test vasa-2 2 w4
assert_eq 200 "$REQ_CODE" "vc-west; body $(head -c 300 "$WORK/r/w4.body")"
assert_eq "2" "$(sizes "$EAST_RECORD" vasa-2)" "east got it"
assert_eq "2" "$(sizes "$WEST_RECORD" vasa-2)" "vc-west got it"

echo "PASS: $TEST_NAME"
