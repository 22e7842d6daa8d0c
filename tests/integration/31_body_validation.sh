#!/usr/bin/env bash
# 31_body_validation: the stop-test body is validated strictly before anything is forwarded
# (docs/design.md "Bodies of the guarded routes" and "Answers", issue 3): Content-Type application/json (parameters allowed;
# none at all is JSON too, issue 15: 34_vijson_bodies),
# no Content-Encoding but identity, at most max_body_bytes, one JSON object of valid UTF-8
# without duplicate members, BOM, NUL or trailing bytes, within the depth limit (else 500
# InvalidRequest, 413 when too large); groupId a non-empty array of {faultDomainId.id,
# deviceGroupId.id} strings, force a boolean, no unknown member but _typeName (else 500
# InvalidArgument naming the property). A valid body is forwarded re-serialised compactly,
# members in the client's order. Every case over HTTP/1.1 and HTTP/2; the simulator's
# record shows no refused request and each accepted one exactly once.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

# Some hundred python3 calls: use the system's directly, not through a version-manager
# shim (pyenv's costs about 0.2 s a call).

LIMIT=65536
GUARD_SETTINGS=("limits=max_body_bytes = $LIMIT;")
start_all

VP=/sdk/vim25/8.0.3.0/sms/VasaProvider
M=TestFailoverReplicationGroupStop_Task
PROTOS=(http1.1 http2)
declare -a REFUSED=()   # markers (in the moId) of requests that must never be forwarded
ACCEPTED=0
NBAD=0                  # refusal cases so far (their markers are x<N>-...)

tag() { [[ $1 == http2 ]] && echo h2 || echo h1; }

# The bodies: $WORK/b/NAME.TAG (TAG h1 or h2: the same bytes but for @TAG@ in valid ones)
# and, for accepted ones, NAME.TAG.expect: the exact compact body expected upstream.
mkdir -p "$WORK/b"
python3 - "$WORK/b" "$LIMIT" <<'PY'
import gzip, json, sys
out, limit = sys.argv[1], int(sys.argv[2])
G = '{"faultDomainId":{"id":"fd-1"},"deviceGroupId":{"id":"dg-1"}}'
def ok(groups=G, force="false"):
    return '{"groupId":[%s],"force":%s}' % (groups, force)
OK = ok()
deep = 5000

bodies = {
    # --- not JSON, or not one object: InvalidRequest
    "empty": b"",
    "ws-only": b" \r\n\t ",
    "array": b"[]",
    "array-of-object": ("[%s]" % OK).encode(),
    "string": b'"groupId"',
    "null": b"null",
    "number": b"42",
    "trailing-garbage": (OK + "x").encode(),
    "trailing-object": (OK + OK).encode(),
    "trailing-nul": (OK).encode() + b"\x00",
    "trailing-comma": ok().replace('"force":false}', '"force":false,}').encode(),
    "unterminated": b'{"groupId":[' + G.encode(),
    "single-quotes": OK.replace('"', "'").encode(),
    "bad-literal": ok(force="tru").encode(),
    "nan": ok(force="NaN").encode(),
    "unquoted-key": OK.replace('"force"', "force").encode(),
    # --- duplicate members at any depth: InvalidRequest
    "dup-groupid-valid-first": ('{"groupId":[%s],"groupId":[],"force":false}' % G).encode(),
    "dup-groupid-empty-first": ('{"groupId":[],"groupId":[%s],"force":false}' % G).encode(),
    "dup-groupid-escaped": ('{"groupId":[%s],"gr\\u006fupId":[],"force":false}' % G).encode(),
    "dup-force": (ok()[:-1] + ',"force":true}').encode(),
    "dup-nested-id": ok('{"faultDomainId":{"id":"fd-1"},"deviceGroupId":{"id":"dg-1","id":"dg-2"}}').encode(),
    "dup-fault-domain": ok('{"faultDomainId":{"id":"fd-1"},"faultDomainId":{"id":"fd-9"},"deviceGroupId":{"id":"dg-1"}}').encode(),
    "dup-typename": ('{"_typeName":"TestFailoverReplicationGroupStopRequestType","_typeName":"X",' + OK[1:]).encode(),
    # --- bytes that are not UTF-8, BOM, NUL: InvalidRequest
    "utf8-ff": ok(G.replace("dg-1", "dg-\xff")).encode("latin-1"),
    "utf8-overlong": ok(G.replace("dg-1", "dg-@@")).encode().replace(b"@@", b"\xc0\xaf"),
    "utf8-surrogate": ok(G.replace("dg-1", "dg-@@")).encode().replace(b"@@", b"\xed\xa0\x80"),
    "utf8-truncated": ok(G.replace("dg-1", "dg-@@")).encode().replace(b"@@", b"\xe2\x82"),
    "utf8-in-key": ok().encode().replace(b'"force"', b'"forc\xe9"'),
    "bom": b"\xef\xbb\xbf" + OK.encode(),
    "nul-escape": ok(G.replace("dg-1", "dg\\u0000-1")).encode(),
    "raw-ctl-in-string": ok(G.replace("dg-1", "dg-\x01")).encode(),
    "raw-newline-in-string": ok(G.replace("dg-1", "dg-\n")).encode(),
    # --- too deep: InvalidRequest
    "deep-array": ("[" * deep + "]" * deep).encode(),
    "deep-in-groupid": ('{"force":false,"groupId":' + "[" * deep + "]" * deep + "}").encode(),
    "deep-objects": ('{"groupId":[' + '{"a":' * deep + "1" + "}" * deep + '],"force":false}').encode(),
    # --- schema: InvalidArgument
    "gid-missing": b'{"force":false}',
    "gid-null": b'{"groupId":null,"force":false}',
    "gid-object": ('{"groupId":%s,"force":false}' % G).encode(),
    "gid-string": b'{"groupId":"fd-1","force":false}',
    "gid-number": b'{"groupId":1,"force":false}',
    "gid-true": b'{"groupId":true,"force":false}',
    "gid-empty": b'{"groupId":[],"force":false}',
    "body-empty-object": b"{}",
    "el-null": ok("null").encode(),
    "el-empty-object": ok("{}").encode(),
    "el-string": ok('"fd-1"').encode(),
    "el-array": ok("[]").encode(),
    "el-no-fault-domain": ok('{"deviceGroupId":{"id":"dg-1"}}').encode(),
    "el-no-device-group": ok('{"faultDomainId":{"id":"fd-1"}}').encode(),
    "fd-no-id": ok('{"faultDomainId":{},"deviceGroupId":{"id":"dg-1"}}').encode(),
    "fd-not-object": ok('{"faultDomainId":"fd-1","deviceGroupId":{"id":"dg-1"}}').encode(),
    "fd-id-number": ok('{"faultDomainId":{"id":1},"deviceGroupId":{"id":"dg-1"}}').encode(),
    "dg-id-null": ok('{"faultDomainId":{"id":"fd-1"},"deviceGroupId":{"id":null}}').encode(),
    "dg-id-array": ok('{"faultDomainId":{"id":"fd-1"},"deviceGroupId":{"id":["dg-1"]}}').encode(),
    "dg-id-empty": ok('{"faultDomainId":{"id":"fd-1"},"deviceGroupId":{"id":""}}').encode(),
    "fd-id-empty": ok('{"faultDomainId":{"id":""},"deviceGroupId":{"id":"dg-1"}}').encode(),
    "second-el-bad": ok(G + ',{"faultDomainId":{"id":"fd-2"},"deviceGroupId":{"id":""}}').encode(),
    "second-el-null": ok(G + ",null").encode(),
    "force-missing": ('{"groupId":[%s]}' % G).encode(),
    "force-string": ok(force='"false"').encode(),
    "force-null": ok(force="null").encode(),
    "force-number": ok(force="0").encode(),
    "force-array": ok(force="[false]").encode(),
    "unknown-root": ok()[:-1].encode() + b',"color":1}',
    "unknown-root-first": b'{"color":1,' + ok()[1:].encode(),
    "unknown-element": ok(G[:-1] + ',"color":1}').encode(),
    "unknown-fault-domain": ok('{"faultDomainId":{"id":"fd-1","zeta":1},"deviceGroupId":{"id":"dg-1"}}').encode(),
    "case-groupid": ('{"GroupId":[%s],"force":false}' % G).encode(),
    "case-force": ('{"groupId":[%s],"Force":false}' % G).encode(),
    "case-id": ok('{"faultDomainId":{"id":"fd-1"},"deviceGroupId":{"ID":"dg-1"}}').encode(),
    "ctl-escape-in-id": ok(G.replace("dg-1", "dg\\u0001-1")).encode(),
    "del-escape-in-id": ok(G.replace("dg-1", "dg\\u007f-1")).encode(),
    "long-id": ok(G.replace("dg-1", "d" * 20000)).encode(),
    # --- over max_body_bytes: 413
    "too-large": None,
}
bodies["too-large"] = (OK[:-1] + " " * (limit + 1 - len(OK)) + "}").encode()
assert len(bodies["too-large"]) == limit + 1
for name, b in bodies.items():
    for t in ("h1", "h2"):
        open("%s/%s.%s" % (out, name, t), "wb").write(b)

# accepted: (sent, expected upstream); @T@ becomes the protocol tag
def gi(fd, dg):
    return '{"faultDomainId":{"id":"%s"},"deviceGroupId":{"id":"%s"}}' % (fd, dg)
good = {
    "v-whitespace": (
        ' \n{ "groupId" : [ {\t"faultDomainId" : { "id" : "fd-1" } ,\r\n'
        '  "deviceGroupId" : { "id" : "v-whitespace-@T@-\\u0041" } } ] ,\n "force" : false }\n ',
        '{"groupId":[%s],"force":false}' % gi("fd-1", "v-whitespace-@T@-A")),
    "v-order": (
        '{"force":true,"groupId":[{"deviceGroupId":{"id":"v-order-@T@"},"faultDomainId":{"id":"fd-2"}}]}',
        None),
    "v-typename": (
        '{"_typeName":"TestFailoverReplicationGroupStopRequestType","groupId":[{"_typeName":'
        '"ReplicationGroupId","faultDomainId":{"_typeName":"FaultDomainId","id":"fd-3"},'
        '"deviceGroupId":{"_typeName":"DeviceGroupId","id":"v-typename-@T@"}}],"force":false}',
        None),
    "v-two-groups": (
        '{"groupId":[%s,%s],"force":true}' % (gi("fd-b", "v-two-groups-@T@-1"),
                                             gi("fd-a", "v-two-groups-@T@-0")),
        None),
    "v-escaped-keys": (
        '{"\\u0067roupId":[{"faultDomainId":{"i\\u0064":"fd-1"},"deviceGroupId":{"id":"v-escaped-keys-@T@"}}],'
        '"forc\\u0065":false}',
        '{"groupId":[%s],"force":false}' % gi("fd-1", "v-escaped-keys-@T@")),
    "v-charset": ('{"groupId":[%s],"force":false}' % gi("fd-1", "v-charset-@T@"), None),
    "v-ct-case": ('{"groupId":[%s],"force":false}' % gi("fd-1", "v-ct-case-@T@"), None),
    "v-identity": ('{"groupId":[%s],"force":false}' % gi("fd-1", "v-identity-@T@"), None),
    "v-chunked": ('{"groupId":[%s],"force":false}' % gi("fd-1", "v-chunked-@T@"), None),
    "v-at-limit": None,
    # strings with escapes and UTF-8: compared as JSON (an escape may be written either way)
    "v-strings": (
        '{"groupId":[{"faultDomainId":{"id":"fd-\\u00e9\\"q\\\\b\\/s"},'
        '"deviceGroupId":{"id":"v-strings-@T@-caf\u00e9 \u2713 \\ud83d\\ude00"}}],"force":false}',
        "json"),
}
for name, v in good.items():
    for t in ("h1", "h2"):
        if name == "v-at-limit":
            c = '{"groupId":[%s],"force":false}' % gi("fd-1", "v-at-limit-" + t)
            sent = (c[:-1] + " " * (limit - len(c)) + "}").encode()
            assert len(sent) == limit
            exp = c.encode()
        else:
            sent = v[0].replace("@T@", t).encode("utf-8")
            exp = sent if v[1] is None else ("json" if v[1] == "json" else v[1].replace("@T@", t)).encode()
        open("%s/%s.%s" % (out, name, t), "wb").write(sent)
        open("%s/%s.%s.expect" % (out, name, t), "wb").write(exp)
PY

# post PROTO NAME MARKER [curl args...]: POST $WORK/b/NAME.TAG to the guarded route for
# provider MARKER, Content-Type application/json unless the args say otherwise.
post() {
    local proto=$1 name=$2 mk=$3
    shift 3
    local ct=(-H 'Content-Type: application/json')
    [[ " $* " == *" -H Content-Type"* ]] && ct=()
    sg_req "$proto" POST "$VP/$mk/$M" "$WORK/$mk" "${ct[@]+"${ct[@]}"}" "$@" \
        --data-binary @"$WORK/b/$name.$(tag "$proto")"
    local want=1.1
    [[ $proto == http2 ]] && want=2
    [[ $REQ_CODE != 000 ]] || fail "$name over $proto: no answer ($(head -c 300 "$WORK/$mk.err"))"
    assert_eq "$want" "$REQ_VER" "$name: HTTP version of the answer"
}

# bad NAME STATUS TYPE PROP [curl args...]: over both protocols, the body NAME gets STATUS
# with a fault whose _typeName matches ^(TYPE)$ and, for InvalidArgument, whose
# invalidProperty matches the extended regex PROP ("-": any); never forwarded.
bad() {
    local name=$1 status=$2 type=$3 prop=$4 proto mk
    shift 4
    NBAD=$((NBAD + 1))
    for proto in "${PROTOS[@]}"; do
        mk=x$NBAD-$name-$(tag "$proto")
        post "$proto" "$name" "$mk" "$@"
        assert_eq "$status" "$REQ_CODE" "$name${*:+ ($*)} over $proto: status; body $(head -c 300 "$WORK/$mk.body")"
        assert_vim_fault "$WORK/$mk.body" "$WORK/$mk.hdr" "$type" "$name over $proto"
        echo "   $(tag "$proto") $REQ_CODE $FAULT_TYPE${FAULT_PROP:+ invalidProperty=$FAULT_PROP}  ($name${*:+ $*})"
        if [[ $FAULT_TYPE == InvalidArgument && $prop != - ]]; then
            [[ $FAULT_PROP =~ $prop ]] ||
                fail "$name over $proto: invalidProperty '$FAULT_PROP' does not match /$prop/"
        fi
        REFUSED+=("$mk")
    done
}

# good NAME [curl args...]: over both protocols, the body NAME is accepted: the client
# gets the simulator's SmsTask reference, and the simulator received exactly one request
# for the provider's canonical path whose body is NAME.TAG.expect (for "json": the same
# JSON value as sent, written compactly).
good() {
    local name=$1 proto mk t got
    shift
    for proto in "${PROTOS[@]}"; do
        t=$(tag "$proto")
        mk=a-$name-$t
        post "$proto" "$name" "$mk" "$@"
        echo "   $t $REQ_CODE ($name)"
        assert_eq 200 "$REQ_CODE" "$name over $proto: status; body $(head -c 300 "$WORK/$mk.body")"
        assert_eq "ManagedObjectReference SmsTask" \
            "$(json_eval "$WORK/$mk.body" 'd["_typeName"] + " " + d["type"]')" "$name: answer"
        got=$(record_grep "$mk")
        assert_eq "POST $VP/$mk/$M" "$got" "$name over $proto: what the simulator received"
        grep -F -- "$mk" "$SIM_RECORD" >"$WORK/$mk.rec"
        echo_body_to "$WORK/$mk.rec" "$WORK/$mk.rec.body"
        if [[ $(cat "$WORK/b/$name.$t.expect") == json ]]; then
            python3 - "$WORK/b/$name.$t" "$WORK/$mk.rec.body" <<'PY' ||
import json, re, sys
pairs = lambda kv: ("obj", kv)  # keeps member order, duplicates would show
sent = json.loads(open(sys.argv[1], "rb").read().decode("utf-8"), object_pairs_hook=pairs)
raw = open(sys.argv[2], "rb").read().decode("utf-8")
print("   forwarded:", raw)
try:
    got = json.loads(raw, object_pairs_hook=pairs)
except ValueError as e:
    print("   not JSON: %s" % e); sys.exit(1)
if got != sent:
    print("   not the same JSON value (or member order) as sent"); sys.exit(1)
outside = re.sub(r'"(?:[^"\\]|\\.)*"', '""', raw)
if re.search(r"\s", outside):
    print("   not compact: whitespace between tokens"); sys.exit(1)
PY
                fail "$name over $proto: forwarded body is not the compact form of the body sent"
        else
            cmp -s "$WORK/b/$name.$t.expect" "$WORK/$mk.rec.body" ||
                fail "$name over $proto: forwarded body '$(head -c 400 "$WORK/$mk.rec.body")', expected '$(head -c 400 "$WORK/b/$name.$t.expect")'"
        fi
        # the re-serialised body goes with its own length: one Content-Length, no chunking
        assert_eq 1 "$(echo_header_count "$WORK/$mk.rec" content-length)" "$name over $proto: forwarded Content-Length headers"
        assert_eq 0 "$(echo_header_count "$WORK/$mk.rec" transfer-encoding)" "$name over $proto: forwarded Transfer-Encoding headers"
        assert_eq "$(stat -c %s "$WORK/$mk.rec.body")" "$(echo_header "$WORK/$mk.rec" content-length)" \
            "$name over $proto: forwarded Content-Length"
        ACCEPTED=$((ACCEPTED + 1))
    done
}

# ---------------------------------------------------------------------------------------
check "accepted: a valid body arrives re-serialised compactly, in the client's member order"
good v-whitespace
good v-order
good v-typename
good v-two-groups
good v-strings
good v-escaped-keys
good v-charset -H 'Content-Type: application/json; charset=utf-8'
good v-ct-case -H 'Content-Type: Application/JSON;charset=UTF-8'
good v-identity -H 'Content-Encoding: identity'
good v-chunked -H 'Transfer-Encoding: chunked'
good v-at-limit

check "refused (500 InvalidRequest): not application/json, or content-encoded"
bad v-charset 500 InvalidRequest - -H 'Content-Type: text/plain'
bad v-charset 500 InvalidRequest - -H 'Content-Type: application/x-www-form-urlencoded'
bad v-charset 500 InvalidRequest - -H 'Content-Type: application/jsonx'
bad v-charset 500 InvalidRequest - -H 'Content-Type: text/json'
gzip -9 -n <"$WORK/b/v-charset.h1" >"$WORK/b/gzipped.h1"
cp "$WORK/b/gzipped.h1" "$WORK/b/gzipped.h2"
bad gzipped 500 InvalidRequest - -H 'Content-Encoding: gzip'
bad v-identity 500 InvalidRequest - -H 'Content-Encoding: gzip'
bad gzipped 500 InvalidRequest - -H 'Content-Encoding: identity, gzip'
bad v-identity 500 InvalidRequest - -H 'Content-Encoding: br'

check "refused (500 InvalidRequest): not one JSON object"
for n in empty ws-only array array-of-object string null number trailing-garbage trailing-object \
    trailing-nul trailing-comma unterminated single-quotes bad-literal nan unquoted-key; do
    bad "$n" 500 InvalidRequest -
done

check "refused (500 InvalidRequest): duplicate members at any depth, escaped spellings included"
for n in dup-groupid-valid-first dup-groupid-empty-first dup-groupid-escaped dup-force \
    dup-nested-id dup-fault-domain dup-typename; do
    bad "$n" 500 InvalidRequest -
done

check "refused (500 InvalidRequest): invalid UTF-8, a BOM, NUL or raw control bytes in a string"
for n in utf8-ff utf8-overlong utf8-surrogate utf8-truncated utf8-in-key bom nul-escape \
    raw-ctl-in-string raw-newline-in-string; do
    bad "$n" 500 InvalidRequest -
done

check "refused (500 InvalidRequest): nesting deeper than the limit"
for n in deep-array deep-in-groupid deep-objects; do
    bad "$n" 500 InvalidRequest -
done

check "refused (500 InvalidArgument, invalidProperty groupId): groupId missing, null, not an array, empty"
for n in gid-missing gid-null gid-object gid-string gid-number gid-true gid-empty; do
    bad "$n" 500 InvalidArgument '^groupId$'
done
# both groupId and force are missing: either may be named
bad body-empty-object 500 InvalidArgument '^(groupId|force)$'

check "refused (500 InvalidArgument, invalidProperty groupId...): a bad element"
for n in el-null el-empty-object el-string el-array el-no-fault-domain el-no-device-group \
    fd-no-id fd-not-object fd-id-number dg-id-null dg-id-array dg-id-empty fd-id-empty \
    second-el-bad second-el-null; do
    bad "$n" 500 InvalidArgument '^groupId'
done
# a control character in an id: refused as a bad id, or as malformed
bad ctl-escape-in-id 500 'InvalidArgument|InvalidRequest' '^groupId'
bad del-escape-in-id 500 'InvalidArgument|InvalidRequest' '^groupId'
# ids are bounded in length (issue 3); 20000 bytes is well past any sane bound
bad long-id 500 InvalidArgument '^groupId'

check "refused (500 InvalidArgument, invalidProperty force): force missing or not a boolean"
for n in force-missing force-string force-null force-number force-array; do
    bad "$n" 500 InvalidArgument '^force$'
done

check "refused (500 InvalidArgument naming it): an unknown member, other-case spellings included"
bad unknown-root 500 InvalidArgument '^color$'
bad unknown-root-first 500 InvalidArgument '^color$'
bad unknown-element 500 InvalidArgument 'color$'
bad unknown-fault-domain 500 InvalidArgument 'zeta$'
bad case-groupid 500 InvalidArgument '^(groupId|GroupId)$'
bad case-force 500 InvalidArgument '^(force|Force)$'
bad case-id 500 InvalidArgument '^groupId'

check "refused (413 InvalidRequest): a body over max_body_bytes ($LIMIT), with Content-Length or streamed"
bad too-large 413 InvalidRequest -
bad too-large 413 InvalidRequest - -H 'Transfer-Encoding: chunked'

check "HTTP/1.1: after a refusal the connection keeps its framing (the body is never a request)"
# refused at the headers (media type, coding) and after the body (not JSON), with
# Content-Length and chunked bodies; the body is a complete request of its own
CRLF=$'\r\n'
for c in "ct|Content-Type: text/plain" "ce|Content-Type: application/json${CRLF}Content-Encoding: gzip" \
    "json|Content-Type: application/json"; do
    what=${c%%|*}
    hdrs=${c#*|}
    for te in length chunked; do
        NBAD=$((NBAD + 1))
        mk=x$NBAD-smug-$what-$te-h1
        chunked=""
        [[ $te == length ]] || chunked=chunked
        h1_refusal_framing "$mk" 500 "POST $VP/$mk/$M HTTP/1.1${CRLF}Host: 127.0.0.1${CRLF}$hdrs" $chunked
        REFUSED+=("$mk-smuggled" "$VP/$mk/")
        ACCEPTED=$((ACCEPTED + H1_AFTER))
    done
done

check "nothing refused reached the simulator; each accepted request arrived once"
sleep 0.2
record_none_of "${REFUSED[@]}"
echo "   ${#REFUSED[@]} refused, $ACCEPTED accepted"
assert_eq "$ACCEPTED" "$(record_count)" "requests recorded by the simulator"

check "smsguard still serves, over both protocols"
for proto in "${PROTOS[@]}"; do
    out=$(sg_curl "--$proto" -o /dev/null -w '%{http_code}' "$SG_URL/sim/echo/still-alive")
    assert_eq 200 "$out" "GET /sim/echo/still-alive over $proto"
    ACCEPTED=$((ACCEPTED + 1))
done

check "refused (500 InvalidRequest): two Content-Type or Content-Encoding headers (only one was checked)"
# A second Content-Type or Content-Encoding line says something else about the same body:
# the upstream may believe either one. Refuse, never forward both.
bad v-charset 500 InvalidRequest - -H 'Content-Type: application/json' -H 'Content-Type: text/plain'
bad v-charset 500 InvalidRequest - -H 'Content-Encoding: identity' -H 'Content-Encoding: gzip'
record_none_of "${REFUSED[@]}"
assert_eq "$ACCEPTED" "$(record_count)" "requests recorded by the simulator"

check "the same smsguard process still serves new connections"
assert_serving "after the refused bodies"

echo "PASS: $TEST_NAME"
