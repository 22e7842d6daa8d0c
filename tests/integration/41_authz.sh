#!/usr/bin/env bash
# 41_authz: what an authenticated caller may do (docs/design.md "The chain on guarded
# routes", authorise). The stop-test route needs StorageViews.ConfigureService from the
# caller's roles, the provider and every fault domain of the body inside the caller's tenant
# (exact names and "x*" prefix patterns), and with force=true the force_privilege; the
# task queries need StorageViews.View or ConfigureService in a known tenant. Anything else
# gets 500 NoPermission with privilegeId, object (the provider, or the task) and
# missingPrivileges, and nothing reaches the simulator; an allowed request arrives there
# once, without Authorization. Every case over HTTP/1.1 and HTTP/2.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

VP=/sdk/vim25/8.0.3.0/sms/VasaProvider
ST=/sdk/vim25/8.0.3.0/sms/SmsTask
M=TestFailoverReplicationGroupStop_Task
CONF=StorageViews.ConfigureService
VIEW=StorageViews.View
FORCE=StorageViews.ForceStop
PROTOS=(http1.1 http2)
declare -a REFUSED=() # markers (device group or task ids) of requests never to be forwarded
ACCEPTED=0            # requests the simulator must have recorded
N=0                   # case counter for unique markers

tag() { [[ $1 == http2 ]] && echo h2 || echo h1; }

# ---------------------------------------------------------------------------------------
# Principals: static tokens (one per role mix) and HS256 JWTs (which may name any tenant).

declare -A TOK=()
for who in op forcer viewer auditor force-only op-t2; do
    TOK[$who]=tok-$who-$$-$RANDOM$RANDOM
done
sha() { printf '%s' "$1" | sha256sum | cut -c1-64; }
openssl rand -out "$WORK/hs.secret" 48
mkdir -p "$WORK/tok"
python3 - "$WORK/hs.secret" "$WORK/tok" <<'PY'
import base64, hashlib, hmac, json, sys, time
secret, out = open(sys.argv[1], "rb").read(), sys.argv[2]
now = int(time.time())
def b64(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()
def enc(o):
    return b64(json.dumps(o, separators=(",", ":")).encode())
def tok(name, **claims):
    c = {"iss": "https://idp.test", "aud": "smsguard", "sub": "jwt-" + name, "iat": now,
         "exp": now + 900}
    c.update(claims)
    si = enc({"alg": "HS256", "typ": "JWT", "kid": "hs"}) + "." + enc(c)
    open(out + "/" + name, "w").write(si + "." + b64(hmac.new(secret, si.encode(), hashlib.sha256).digest()))
tok("t1-op", tenant="t1", roles=["dr-operator"])
tok("t1-viewer", tenant="t1", roles="viewer")
tok("unknown-tenant-op", tenant="t-unknown", roles=["dr-operator"])
tok("unknown-tenant-viewer", tenant="t-unknown", roles=["viewer"])
tok("unknown-role", tenant="t1", roles=["dr-operator-x", "StorageViews.ConfigureService"])
tok("no-roles", tenant="t1", roles=[])
PY
jwt() { cat "$WORK/tok/$1"; }

POLICY="policy = {
  tokens = (
    { id = \"op\"; sha256 = \"$(sha "${TOK[op]}")\"; subject = \"olivia\"; tenant = \"t1\";
      roles = [\"dr-operator\"]; },
    { id = \"forcer\"; sha256 = \"$(sha "${TOK[forcer]}")\"; subject = \"fred\"; tenant = \"t1\";
      roles = [\"dr-operator\", \"force-stopper\"]; },
    { id = \"viewer\"; sha256 = \"$(sha "${TOK[viewer]}")\"; subject = \"victor\"; tenant = \"t1\";
      roles = [\"viewer\"]; },
    { id = \"auditor\"; sha256 = \"$(sha "${TOK[auditor]}")\"; subject = \"ada\"; tenant = \"t1\";
      roles = [\"auditor\"]; },
    { id = \"force-only\"; sha256 = \"$(sha "${TOK[force-only]}")\"; subject = \"fiona\"; tenant = \"t1\";
      roles = [\"force-stopper\"]; },
    { id = \"op-t2\"; sha256 = \"$(sha "${TOK[op-t2]}")\"; subject = \"tom\"; tenant = \"t2\";
      roles = [\"dr-operator\"]; }
  );
  jwt = { issuer = \"https://idp.test\"; audience = \"smsguard\"; leeway_s = 60;
          keys = ( { kid = \"hs\"; alg = \"HS256\"; secret_file = \"$WORK/hs.secret\"; } );
          subject_claim = \"sub\"; tenant_claim = \"tenant\"; roles_claim = \"roles\"; };
  roles = (
    { name = \"dr-operator\"; privileges = [\"$CONF\"]; },
    { name = \"force-stopper\"; privileges = [\"$FORCE\"]; },
    { name = \"viewer\"; privileges = [\"$VIEW\"]; },
    { name = \"auditor\"; privileges = [\"System.View\", \"StorageViews.Views\", \"storageviews.configureservice\"]; }
  );
  tenants = (
    { name = \"t1\"; providers = [\"vasa-*\", \"vp-exact\"]; fault_domains = [\"fd-1\", \"fd-2*\"]; },
    { name = \"t2\"; providers = [\"vasa-9\"]; fault_domains = [\"*\"]; }
  );
  force_privilege = \"$FORCE\";
};"
GUARD_SETTINGS=("policy=$POLICY" "log_level=debug")
start_all

# ---------------------------------------------------------------------------------------
# Requests and checks

# body MARKER FORCE FD...: a valid stop-test body, one group per fault domain FD, the device
# groups named MARKER-1, MARKER-2, ...
body() {
    local mk=$1 force=$2 i=0 fd sep="" g=""
    shift 2
    for fd in "$@"; do
        i=$((i + 1))
        g+="$sep{\"faultDomainId\":{\"id\":\"$fd\"},\"deviceGroupId\":{\"id\":\"$mk-$i\"}}"
        sep=,
    done
    printf '{"groupId":[%s],"force":%s}' "$g" "$force"
}

# post PROTO TARGET OUT WHO [curl args...]: POST as principal WHO (a static token name, or
# jwt:NAME) with an answer in the protocol asked for.
post() {
    local proto=$1 target=$2 out=$3 who=$4 tok want=1.1
    shift 4
    if [[ $who == jwt:* ]]; then tok=$(jwt "${who#jwt:}"); else tok=${TOK[$who]}; fi
    sg_post "$proto" "$target" "$out" -H "Authorization: Bearer $tok" "$@"
    [[ $REQ_CODE != 000 ]] || fail "POST $target over $proto: no answer ($(head -c 300 "$out.err"))"
    [[ $proto == http2 ]] && want=2
    assert_eq "$want" "$REQ_VER" "POST $target: HTTP version of the answer"
}

# deny_reason: the reason of the last "denied" line in smsguard's debug log.
deny_reason() {
    grep -a ' denied: ' "$SG_LOG" | tail -n 1 | sed -e 's/.* denied: //' || true
}

# stop_denied NAME WHO PROVIDER FORCE PRIVILEGE FD...: over both protocols WHO's stop-test
# on PROVIDER for the fault domains FD gets NoPermission for PRIVILEGE naming the provider
# (CANON, when set: its canonical spelling); nothing is forwarded.
stop_denied() {
    local name=$1 who=$2 prov=$3 force=$4 priv=$5 proto mk canon
    shift 5
    canon=${CANON:-$prov}
    N=$((N + 1))
    for proto in "${PROTOS[@]}"; do
        mk=x$N-$name-$(tag "$proto")
        post "$proto" "$VP/$prov/$M" "$WORK/$mk" "$who" -H 'Content-Type: application/json' \
            --data-binary "$(body "$mk" "$force" "$@")"
        REFUSED+=("$mk")
        assert_eq 500 "$REQ_CODE" "$name over $proto: status (body $(head -c 300 "$WORK/$mk.body"))"
        assert_fault_ref "$WORK/$mk.body" "$WORK/$mk.hdr" NoPermission - "$priv" VasaProvider "$canon" \
            "$name over $proto"
        echo "   $(tag "$proto") $REQ_CODE NoPermission $priv  ($name: $(deny_reason))"
        assert_eq 0 "$(grep -cF -- "$mk" "$SIM_RECORD" || true)" "$name over $proto: requests forwarded"
    done
}

# stop_allowed NAME WHO PROVIDER FORCE FD...: over both protocols WHO's stop-test is
# forwarded once, to PROVIDER's canonical path (CANON, when set, is the provider as
# forwarded), with the body as sent and no Authorization, and the simulator's SmsTask comes
# back. TASKS[tag] is set to the last task id.
declare -A TASKS=()
stop_allowed() {
    local name=$1 who=$2 prov=$3 force=$4 proto mk t want canon
    shift 4
    canon=${CANON:-$prov}
    N=$((N + 1))
    for proto in "${PROTOS[@]}"; do
        t=$(tag "$proto")
        mk=a$N-$name-$t
        post "$proto" "$VP/$prov/$M" "$WORK/$mk" "$who" -H 'Content-Type: application/json' \
            --data-binary "$(body "$mk" "$force" "$@")"
        assert_eq 200 "$REQ_CODE" "$name over $proto: status (body $(head -c 300 "$WORK/$mk.body"); smsguard said: $(deny_reason))"
        assert_eq "ManagedObjectReference SmsTask" \
            "$(json_eval "$WORK/$mk.body" 'd["_typeName"] + " " + d["type"]')" "$name: answer"
        assert_eq "POST $VP/$canon/$M" "$(record_grep "$mk")" "$name over $proto: what the simulator received"
        grep -F -- "$mk" "$SIM_RECORD" >"$WORK/$mk.rec"
        echo_body_to "$WORK/$mk.rec" "$WORK/$mk.rec.body"
        want=$(body "$mk" "$force" "$@")
        if [[ $want == *\\* ]]; then
            # JSON escapes are forwarded decoded (the body is re-serialised)
            want=$(python3 -c 'import json, sys
print(json.dumps(json.loads(sys.argv[1]), separators=(",", ":"), ensure_ascii=False))' "$want")
        fi
        assert_eq "$want" "$(cat "$WORK/$mk.rec.body")" "$name over $proto: forwarded body"
        assert_eq 0 "$(echo_header_count "$WORK/$mk.rec" authorization)" "$name over $proto: Authorization headers forwarded"
        TASKS[$t]=$(json_eval "$WORK/$mk.body" 'd["value"]')
        ACCEPTED=$((ACCEPTED + 1))
        echo "   $t $REQ_CODE forwarded ${TASKS[$t]}  ($name)"
    done
}

# query_denied NAME WHO PRIVILEGE: over both protocols WHO's $QM (QuerySmsTaskInfo unless
# set) gets NoPermission for PRIVILEGE naming the task; nothing is forwarded.
query_denied() {
    local name=$1 who=$2 priv=$3 proto mk
    N=$((N + 1))
    for proto in "${PROTOS[@]}"; do
        mk=SmsTask-x$N-$name-$(tag "$proto")
        post "$proto" "$ST/$mk/${QM:-QuerySmsTaskInfo}" "$WORK/$mk" "$who" \
            -H 'Content-Type: application/json' --data-binary '{}'
        REFUSED+=("$mk")
        assert_eq 500 "$REQ_CODE" "$name over $proto: status (body $(head -c 300 "$WORK/$mk.body"))"
        assert_fault_ref "$WORK/$mk.body" "$WORK/$mk.hdr" NoPermission - "$priv" SmsTask "$mk" \
            "$name over $proto"
        echo "   $(tag "$proto") $REQ_CODE NoPermission $priv  ($name: $(deny_reason))"
        assert_eq 0 "$(grep -cF -- "$mk" "$SIM_RECORD" || true)" "$name over $proto: requests forwarded"
    done
}

# query_allowed NAME WHO: over both protocols WHO's $QM (QuerySmsTaskInfo unless set) for the
# task of the last allowed stop-test (TASKS) is forwarded and answered (SmsTaskInfo, or the
# task's result).
query_allowed() {
    local name=$1 who=$2 proto t task n qm=${QM:-QuerySmsTaskInfo}
    for proto in "${PROTOS[@]}"; do
        t=$(tag "$proto")
        task=${TASKS[$t]}
        n=$(grep -cF -- "/SmsTask/$task/$qm\"" "$SIM_RECORD" || true)
        post "$proto" "$ST/$task/$qm" "$WORK/q-$name-$t" "$who" \
            -H 'Content-Type: application/json' --data-binary '{}'
        assert_eq 200 "$REQ_CODE" "$name over $proto: status (body $(head -c 300 "$WORK/q-$name-$t.body"); smsguard said: $(deny_reason))"
        if [[ $qm == QuerySmsTaskInfo ]]; then
            assert_eq "SmsTaskInfo $task" "$(json_eval "$WORK/q-$name-$t.body" 'd["_typeName"] + " " + d["key"]')" \
                "$name over $proto: answer"
        else
            assert_eq ArrayOfGroupOperationResult "$(json_eval "$WORK/q-$name-$t.body" 'd["_typeName"]')" \
                "$name over $proto: answer"
        fi
        assert_eq $((n + 1)) "$(grep -cF -- "/SmsTask/$task/$qm\"" "$SIM_RECORD" || true)" \
            "$name over $proto: queries the simulator received"
        ACCEPTED=$((ACCEPTED + 1))
        echo "   $t $REQ_CODE forwarded  ($name: $qm $task)"
    done
}

FIVE=(fd-1 fd-2 fd-20 fd-2a fd-3)

# ---------------------------------------------------------------------------------------
check "allowed: ConfigureService, provider and every fault domain inside the tenant"
stop_allowed op-in-scope op vasa-1 false fd-1 fd-2 fd-20 fd-2a
stop_allowed op-exact-provider op vp-exact false fd-2
stop_allowed jwt-op jwt:t1-op vasa-7 false fd-1
stop_allowed op-t2 op-t2 vasa-9 false fd-3 fd-1 fd-99

check "NoPermission (ConfigureService): roles without StorageViews.ConfigureService"
stop_denied viewer-stop viewer vasa-1 false "$CONF" fd-1
stop_denied auditor-stop auditor vasa-1 false "$CONF" fd-1
stop_denied force-only-stop force-only vasa-1 false "$CONF" fd-1
# the privilege is checked before force: the missing one is still ConfigureService
stop_denied force-only-force force-only vasa-1 true "$CONF" fd-1
stop_denied jwt-unknown-role jwt:unknown-role vasa-1 false "$CONF" fd-1
stop_denied jwt-no-roles jwt:no-roles vasa-1 false "$CONF" fd-1
stop_denied jwt-viewer-stop jwt:t1-viewer vasa-1 false "$CONF" fd-1

check "NoPermission: provider outside the tenant"
stop_denied provider-outside op other-1 false "$CONF" fd-1
stop_denied provider-other-tenant op-t2 vasa-1 false "$CONF" fd-1

check "NoPermission: one fault domain of five outside the tenant (fd-1, fd-2*)"
stop_denied five-fd-last op vasa-1 false "$CONF" "${FIVE[@]}"
stop_denied five-fd-first op vasa-1 false "$CONF" fd-3 fd-1 fd-2 fd-20 fd-2a
stop_denied five-fd-middle op vasa-1 false "$CONF" fd-1 fd-2 fd-3 fd-20 fd-2a
stop_denied fd-exact-not-prefix op vasa-1 false "$CONF" fd-10
stop_denied fd-pattern-stem-only op vasa-1 false "$CONF" fd-
stop_denied fd-case op vasa-1 false "$CONF" FD-1
stop_denied fd-longer-exact op vasa-1 false "$CONF" fd-1 fd-1x

check "pattern edges: provider pattern vasa-* covers vasa-1 and vasa-, not vas, vasa or Vasa-1"
stop_allowed provider-pattern-stem op vasa- false fd-1
stop_allowed provider-pattern-long op vasa-abc.def_1 false fd-2x
for p in vas vasa Vasa-1 VASA-1 xvasa-1 vp-exact2 vp-exac vp-exact- _vasa-1; do
    stop_denied "provider-$p" op "$p" false "$CONF" fd-1
done

check "the policy sees what is forwarded: JSON escapes and percent-encoding decoded first"
stop_denied fd-escaped-outside op vasa-1 false "$CONF" fd-1 'fd\u002d3'
stop_allowed fd-escaped-inside op vasa-1 false 'fd-\u0032x' '\u0066d-1'
CANON=vasa-1 stop_allowed provider-percent-encoded op 'vasa%2D1' false fd-1
CANON=vasa-1 stop_allowed provider-percent-encoded-letter op '%76asa-1' false fd-1
CANON=other-1 stop_denied provider-percent-encoded-outside op '%6Fther-1' false "$CONF" fd-1

check "force=true needs force_privilege ($FORCE)"
stop_denied op-force op vasa-1 true "$FORCE" fd-1
stop_denied jwt-op-force jwt:t1-op vasa-1 true "$FORCE" fd-1
stop_allowed forcer-force forcer vasa-1 true fd-1 fd-2
stop_allowed forcer-no-force forcer vasa-1 false fd-1
# force-stopper does not widen the tenant
stop_denied forcer-force-outside forcer vasa-1 true "$CONF" fd-1 fd-3

check "task queries: StorageViews.View or ConfigureService in a known tenant"
query_allowed viewer-query viewer
query_allowed op-query op
query_allowed jwt-viewer-query jwt:t1-viewer
query_denied auditor-query auditor "$VIEW"
query_denied force-only-query force-only "$VIEW"
query_denied jwt-no-roles-query jwt:no-roles "$VIEW"
query_denied jwt-unknown-tenant-query jwt:unknown-tenant-viewer "$VIEW"
QM=QuerySmsTaskResult query_allowed viewer-result viewer
QM=QuerySmsTaskResult query_allowed jwt-op-result jwt:t1-op
QM=QuerySmsTaskResult query_denied auditor-result auditor "$VIEW"
QM=QuerySmsTaskResult query_denied jwt-unknown-tenant-result jwt:unknown-tenant-op "$VIEW"
check "the View role may query but not stop"
stop_denied viewer-stop-again viewer vasa-1 false "$CONF" fd-1

check "a JWT whose tenant claim names an unknown tenant: NoPermission"
stop_denied jwt-unknown-tenant jwt:unknown-tenant-op vasa-1 false "$CONF" fd-1
stop_denied jwt-unknown-tenant-any-provider jwt:unknown-tenant-op x false "$CONF" fd-1

check "nothing refused reached the simulator; each allowed request arrived once"
sleep 0.2
record_none_of "${REFUSED[@]}"
echo "   ${#REFUSED[@]} refused, $ACCEPTED accepted"
assert_eq "$ACCEPTED" "$(record_count)" "requests recorded by the simulator"
assert_eq 0 "$(grep -ciF '"authorization"' "$SIM_RECORD" || true)" "recorded Authorization headers"

echo "PASS: $TEST_NAME"
