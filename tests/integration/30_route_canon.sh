#!/usr/bin/env bash
# 30_route_canon: the request target is canonicalised before routing (docs/design.md "Routes",
# issue 3): unreserved percent-escapes decoded, other escapes upper-cased; encoded / and \,
# %25, NUL, control and non-ASCII bytes, dot and empty segments, ; parameters, fragments,
# a query on the guarded route, a wrong-case fixed segment and a bad release get 400
# InvalidRequest; another method on the guarded path gets 405 with Allow: POST; with
# routes.unmatched = "deny" other paths get 500 NoPermission. Every refusal over HTTP/1.1
# and HTTP/2, and the simulator's record proves it: refused requests never arrive,
# accepted ones arrive exactly in canonical form.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
need nghttp nghttp2-client

# Some hundred python3 calls: use the system's directly, not through a version-manager
# shim (pyenv's costs about 0.2 s a call).

start_all

R=8.0.3.0
VP=/sdk/vim25/$R/sms/VasaProvider
M=TestFailoverReplicationGroupStop_Task
PROTOS=(http1.1 http2)
declare -a REFUSED=()   # markers of the requests that must never reach the simulator
ACCEPTED=0              # requests that must reach it, each exactly once

# tag PROTO: h1 or h2
tag() { [[ $1 == http2 ]] && echo h2 || echo h1; }

# body_for ID: a valid stop-test body whose deviceGroupId.id is ID, compact
body_for() {
    printf '{"groupId":[{"faultDomainId":{"id":"fd-1"},"deviceGroupId":{"id":"%s"}}],"force":false}' "$1"
}

# post_stop PROTO TARGET MARKER: POST a valid stop-test body (deviceGroupId.id = MARKER)
# to TARGET; the answer is in $WORK/MARKER.{body,hdr}, REQ_CODE/REQ_VER set.
post_stop() {
    body_for "$3" >"$WORK/$3.req"
    sg_req "$1" POST "$2" "$WORK/$3" -H 'Content-Type: application/json' \
        --data-binary @"$WORK/$3.req"
}

# check_proto PROTO WHAT: the answer came over the protocol asked for
check_proto() {
    local want=1.1
    [[ $1 == http2 ]] && want=2
    [[ $REQ_CODE != 000 ]] || fail "$2: no answer ($(head -c 300 "$WORK/$MK.err"))"
    assert_eq "$want" "$REQ_VER" "$2: HTTP version of the answer"
}

# refuse NAME TEMPLATE [STATUS [TYPE]]: over both protocols, POST a valid stop-test body to
# TEMPLATE with {m} replaced by a unique marker; expect STATUS (400) and a TYPE
# (InvalidRequest) fault, and remember the marker (it must never reach the simulator).
refuse() {
    local name=$1 tmpl=$2 status=${3:-400} type=${4:-InvalidRequest} proto t
    for proto in "${PROTOS[@]}"; do
        MK=x-$name-$(tag "$proto")
        t=${tmpl//\{m\}/$MK}
        post_stop "$proto" "$t" "$MK"
        check_proto "$proto" "$name"
        echo "   $(tag "$proto") $REQ_CODE POST $t"
        assert_eq "$status" "$REQ_CODE" "$name over $proto (POST $t): status"
        assert_vim_fault "$WORK/$MK.body" "$WORK/$MK.hdr" "$type" "$name over $proto"
        REFUSED+=("$MK")
    done
}

# accept_stop NAME TEMPLATE CANON: over both protocols, POST a valid body to TEMPLATE
# ({m} = a unique marker); expect the simulator's 200 SmsTask reference, and the
# simulator to have received exactly CANON ({m} replaced) with the body sent.
accept_stop() {
    local name=$1 proto t c
    for proto in "${PROTOS[@]}"; do
        MK=a-$name-$(tag "$proto")
        t=${2//\{m\}/$MK}
        c=${3//\{m\}/$MK}
        post_stop "$proto" "$t" "$MK"
        check_proto "$proto" "$name"
        echo "   $(tag "$proto") $REQ_CODE POST $t -> $c"
        assert_eq 200 "$REQ_CODE" "$name over $proto (POST $t): status; body $(head -c 300 "$WORK/$MK.body")"
        assert_eq "ManagedObjectReference SmsTask" \
            "$(json_eval "$WORK/$MK.body" 'd["_typeName"] + " " + d["type"]')" "$name: answer"
        check_arrived "$name" "$c" POST "$WORK/$MK.req"
    done
}

# check_arrived NAME PATH METHOD [BODYFILE]: the simulator received exactly one request
# carrying the current marker $MK, for exactly PATH, with METHOD (and BODYFILE's bytes).
check_arrived() {
    local got
    got=$(record_grep "$MK")
    assert_eq "$3 $2" "$got" "$1: what the simulator received for marker $MK"
    if [[ -n ${4:-} ]]; then
        grep -F -- "$MK" "$SIM_RECORD" >"$WORK/$MK.rec"
        echo_body_to "$WORK/$MK.rec" "$WORK/$MK.rec.body"
        cmp -s "$4" "$WORK/$MK.rec.body" ||
            fail "$1: recorded body '$(head -c 300 "$WORK/$MK.rec.body")' differs from '$(head -c 300 "$4")'"
    fi
    ACCEPTED=$((ACCEPTED + 1))
}

# accept_other NAME TEMPLATE CANON: over both protocols, GET TEMPLATE (a /sim/echo path;
# {m} = a unique marker); expect 200 and the simulator to have received exactly CANON.
accept_other() {
    local name=$1 proto t c
    for proto in "${PROTOS[@]}"; do
        MK=o-$name-$(tag "$proto")
        t=${2//\{m\}/$MK}
        c=${3//\{m\}/$MK}
        sg_req "$proto" GET "$t" "$WORK/$MK"
        check_proto "$proto" "$name"
        echo "   $(tag "$proto") $REQ_CODE GET $t -> $c"
        assert_eq 200 "$REQ_CODE" "$name over $proto (GET $t): status; body $(head -c 300 "$WORK/$MK.body")"
        assert_eq "$c" "$(json_eval "$WORK/$MK.body" 'd["path"]')" "$name: path echoed by the simulator"
        check_arrived "$name" "$c" GET
    done
}

# ---------------------------------------------------------------------------------------
check "accepted: the guarded route, spelled canonically or with escapes, arrives canonical"
accept_stop plain "$VP/{m}/$M" "$VP/{m}/$M"
accept_stop unreserved-escapes "$VP/vasa%2D{m}%5f%7E%2e/TestFailoverReplicationGroupStop%5FTask" \
    "$VP/vasa-{m}_~./$M"
accept_stop fixed-segments-escaped \
    "/%73dk/vim%32%35/%38.0.3%2E0/%73ms/%56asaProvider/{m}/%54estFailoverReplicationGroupStop_Task" \
    "$VP/{m}/$M"
accept_stop lowercase-hex-kept "$VP/{m}%3a%2b%40/$M" "$VP/{m}%3A%2B%40/$M"
accept_stop other-release "/sdk/vim25/9.0.10.1/sms/VasaProvider/{m}/$M" \
    "/sdk/vim25/9.0.10.1/sms/VasaProvider/{m}/$M"

check "accepted over HTTP/1.1: the absolute form arrives as the canonical origin form"
MK=a-absolute-h1
post_stop http1.1 "https://127.0.0.1:$SG_PORT$VP/vasa%2d$MK/$M" "$MK"
check_proto http1.1 absolute-form
echo "   h1 $REQ_CODE POST https://127.0.0.1:$SG_PORT$VP/vasa%2d$MK/$M"
assert_eq 200 "$REQ_CODE" "absolute form: status; body $(head -c 300 "$WORK/$MK.body")"
check_arrived absolute-form "$VP/vasa-$MK/$M" POST "$WORK/$MK.req"

check "refused over HTTP/1.1: the absolute form is canonicalised and checked like the origin form"
for t in "$VP/{m}%2Fx/$M" "/SDK/vim25/$R/sms/VasaProvider/{m}/$M" "$VP/{m}/../{m}/$M" "$VP/{m}/$M?x=1" \
    "/sdk/vim25/latest/sms/VasaProvider/{m}/$M"; do
    MK=x-absolute-${#REFUSED[@]}-h1
    t="https://127.0.0.1:$SG_PORT${t//\{m\}/$MK}"
    post_stop http1.1 "$t" "$MK"
    check_proto http1.1 absolute-form
    echo "   h1 $REQ_CODE POST $t"
    assert_eq 400 "$REQ_CODE" "absolute form POST $t: status"
    assert_vim_fault "$WORK/$MK.body" "$WORK/$MK.hdr" InvalidRequest "absolute form"
    REFUSED+=("$MK")
done

check "accepted: other paths are canonicalised the same way, their query kept"
accept_other escapes "/sim/ech%6F/{m}%2Dx%41%5f%7e" "/sim/echo/{m}-xA_~"
accept_other reserved-escapes "/sim/echo/{m}%3a%2C%40%3d%2b" "/sim/echo/{m}%3A%2C%40%3D%2B"
accept_other query "/sim/echo/{m}?b=c&d=e" "/sim/echo/{m}?b=c&d=e"

# ---------------------------------------------------------------------------------------
check "refused (400 InvalidRequest): encoded / \\ % ; ? #, NUL, control and non-ASCII bytes, bad escapes"
refuse enc-slash "$VP/{m}%2Fx/$M"
refuse enc-slash-lower "$VP/{m}%2fx/$M"
refuse enc-slash-in-method "$VP/{m}/..%2F$M"
refuse enc-backslash "$VP/{m}%5Cx/$M"
refuse enc-backslash-lower "$VP/{m}%5cx/$M"
refuse enc-percent "$VP/{m}%25x/$M"
refuse enc-percent-2f "$VP/{m}%252Fx/$M"
refuse enc-nul "$VP/{m}%00x/$M"
refuse enc-ctl "$VP/{m}%01x/$M"
refuse enc-ctl-1f "$VP/{m}%1fx/$M"
refuse enc-del "$VP/{m}%7Fx/$M"
refuse enc-non-ascii "$VP/{m}%C3%A9/$M"
refuse enc-high-byte "$VP/{m}%ff/$M"
refuse raw-non-ascii "$VP/{m}$(printf '\xc3\xa9')/$M"
refuse raw-non-ascii-other "/sim/echo/{m}$(printf '\xc3\xa9')"
refuse enc-slash-other "/sim/echo/{m}%2Fx"
refuse enc-nul-other "/sim/echo/{m}%00"
refuse enc-question "$VP/{m}%3Fx/$M"
refuse enc-question-other "/sim/echo/{m}%3fx"
refuse enc-semicolon "$VP/{m}/$M%3Bx"
refuse enc-hash "$VP/{m}/$M%23x"
refuse bad-escape "$VP/{m}%G1/$M"
refuse short-escape "$VP/{m}/$M%4"

check "refused (400): dot segments, plain or encoded, on any path"
refuse dot "$VP/{m}/./$M"
refuse dotdot "$VP/{m}/../{m}/$M"
refuse dotdot-lead "/sdk/../sdk/vim25/$R/sms/VasaProvider/{m}/$M"
refuse enc-dotdot "$VP/{m}/%2e%2e/{m}/$M"
refuse enc-dotdot-upper "$VP/{m}/%2E%2E/{m}/$M"
refuse enc-dot-mixed "$VP/{m}/.%2e/{m}/$M"
refuse enc-dot "$VP/{m}/%2e/$M"
refuse dotdot-end "$VP/{m}/$M/.."
refuse dotdot-other "/sim/echo/{m}/../x"
refuse dot-other "/sim/echo/{m}/./x"

check "refused (400): empty segments and a trailing /"
refuse double-slash-lead "/sdk//vim25/$R/sms/VasaProvider/{m}/$M"
refuse double-slash "$VP/{m}//$M"
refuse leading-double-slash "/$VP/{m}/$M"
refuse trailing-slash "$VP/{m}/$M/"
refuse double-slash-other "/sim/echo/{m}//x"
refuse trailing-slash-other "/sim/echo/{m}/"

check "refused (400): ; parameters, fragments, a query on the guarded route"
refuse param-moid "$VP/{m};x=1/$M"
refuse param-method "$VP/{m}/$M;jsessionid=1"
refuse param-other "/sim/echo/{m};a"
refuse fragment "$VP/{m}/$M#frag"
refuse fragment-other "/sim/echo/{m}#frag"
refuse query "$VP/{m}/$M?x=1"
refuse query-encoded-method "$VP/{m}/TestFailoverReplicationGroupStop%5FTask?force=true"

check "refused (400): fixed segments in another case, plain or through escapes"
refuse case-sdk "/SDK/vim25/$R/sms/VasaProvider/{m}/$M"
refuse case-vim25 "/sdk/VIM25/$R/sms/VasaProvider/{m}/$M"
refuse case-sms "/sdk/vim25/$R/SMS/VasaProvider/{m}/$M"
refuse case-provider "/sdk/vim25/$R/sms/vasaprovider/{m}/$M"
refuse case-provider-upper "/sdk/vim25/$R/sms/VASAPROVIDER/{m}/$M"
refuse case-method "$VP/{m}/testfailoverreplicationgroupstop_task"
refuse case-method-tail "$VP/{m}/TestFailoverReplicationGroupStop_TASK"
refuse case-through-escape "/sdk/vim25/$R/sms/%76asaProvider/{m}/$M"
refuse case-through-escape-method "$VP/{m}/%74estFailoverReplicationGroupStop_Task"

check "refused (400): the method name in another shape of path"
refuse shape-no-sms "/sdk/vim25/$R/VasaProvider/{m}/$M"
refuse shape-extra-segment "$VP/{m}/extra/$M"
refuse shape-other-prefix "/sim/echo/{m}/$M"

check "refused (400): a release that is not four dot-separated numbers"
refuse release-three "/sdk/vim25/8.0.3/sms/VasaProvider/{m}/$M"
refuse release-latest "/sdk/vim25/latest/sms/VasaProvider/{m}/$M"
refuse release-five "/sdk/vim25/8.0.3.0.1/sms/VasaProvider/{m}/$M"
refuse release-letter "/sdk/vim25/8.0.x.0/sms/VasaProvider/{m}/$M"
refuse release-empty-number "/sdk/vim25/8..3.0/sms/VasaProvider/{m}/$M"
refuse release-suffix "/sdk/vim25/8.0.3.0-1/sms/VasaProvider/{m}/$M"

check "refused over HTTP/1.1 (raw TLS): raw control bytes and spaces curl will not send"
# raw_refuse NAME TEMPLATE: a whole request written by hand, its target TEMPLATE with {m}
# replaced and \xNN escapes turned into bytes; expect 400 InvalidRequest.
raw_refuse() {
    local name=$1 st head
    MK=x-$name-h1
    body_for "$MK" >"$WORK/$MK.req"
    python3 - "${2//\{m\}/$MK}" "$WORK/$MK.req" "$WORK/$MK.in" <<'PY'
import sys
target = sys.argv[1].encode().decode("unicode_escape").encode("latin-1")
body = open(sys.argv[2], "rb").read()
open(sys.argv[3], "wb").write(
    b"POST " + target + b" HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
    + b"Content-Length: %d\r\nConnection: close\r\n\r\n" % len(body) + body)
PY
    st=$(tls_raw "$SG_PORT" "$WORK/$MK.in" "$WORK/$MK.out" 5)
    head=$(head -n 1 "$WORK/$MK.out" | tr -d '\r')
    echo "   h1 '$head' (${2//\{m\}/$MK}; connection $st)"
    [[ $head == "HTTP/1.1 400"* ]] || fail "$name: expected HTTP/1.1 400, got '$head'"
    h1_responses "$WORK/$MK.out" "$WORK/$MK.resp" >/dev/null
    assert_fault "$WORK/$MK.resp.1" InvalidRequest
    REFUSED+=("$MK")
}
raw_refuse raw-ctl "$VP/{m}\\x01x/$M"
raw_refuse raw-tab "$VP/{m}\\x09x/$M"
raw_refuse raw-formfeed "$VP/{m}\\x0cx/$M"
raw_refuse raw-del "$VP/{m}\\x7fx/$M"
raw_refuse raw-cr "$VP/{m}\\x0dx/$M"
raw_refuse raw-nul "$VP/{m}\\x00x/$M"
raw_refuse raw-space "$VP/{m}\\x20x/$M"

check "refused over HTTP/2: raw control bytes in :path (400, or the stream reset), never forwarded"
for c in 01 7f; do
    MK=x-raw-ctl-$c-h2
    t="$VP/$MK$(printf "\\x$c")x/$M"
    post_stop http2 "$t" "$MK"
    echo "   h2 $REQ_CODE ($(head -c 200 "$WORK/$MK.err" | tr '\n' ' '))"
    if [[ $REQ_CODE != 000 ]]; then
        assert_eq 400 "$REQ_CODE" "raw 0x$c in :path: status"
        assert_vim_fault "$WORK/$MK.body" "$WORK/$MK.hdr" InvalidRequest "raw 0x$c in :path"
    fi
    REFUSED+=("$MK")
done

check "refused over HTTP/2 with nghttp too (it sends :path verbatim)"
# ng_post TARGET MARKER: POST a valid body with nghttp; sets NG_STATUS
ng_post() {
    body_for "$2" >"$WORK/$2.req"
    timeout 20 nghttp -v -d "$WORK/$2.req" -H 'content-type: application/json' \
        -H "authorization: Bearer $SG_TOKEN" \
        "$SG_URL$1" >"$WORK/$2.ng" 2>&1 || true
    NG_STATUS=$(grep -m1 -oE ':status: [0-9]+' "$WORK/$2.ng" | awk '{print $2}' || true)
    assert_contains "$(cat "$WORK/$2.ng")" "The negotiated protocol: h2" "nghttp output"
}
for t in "$VP/{m}%2Fx/$M" "$VP/{m}/%2e%2e/{m}/$M" "/sdk/vim25/$R/sms/vasaprovider/{m}/$M" \
    "$VP/{m}/$M?x=1" "/sdk/vim25/8.0.3/sms/VasaProvider/{m}/$M"; do
    MK=x-ng-$((${#REFUSED[@]}))-h2
    ng_post "${t//\{m\}/$MK}" "$MK"
    echo "   nghttp :status $NG_STATUS for ${t//\{m\}/$MK}"
    assert_eq 400 "$NG_STATUS" "nghttp POST ${t//\{m\}/$MK}: :status"
    REFUSED+=("$MK")
done
MK=a-ng-h2
ng_post "$VP/vasa%2d$MK/$M" "$MK"
echo "   nghttp :status $NG_STATUS for $VP/vasa%2d$MK/$M"
assert_eq 200 "$NG_STATUS" "nghttp POST with an escaped moId: :status"
check_arrived nghttp-accepted "$VP/vasa-$MK/$M" POST "$WORK/$MK.req"

# ---------------------------------------------------------------------------------------
check "another method on the guarded path: 405, Allow: POST, InvalidRequest fault"
for proto in "${PROTOS[@]}"; do
    for method in GET PUT DELETE PATCH; do
        for spelling in plain escaped; do
            MK=x-405-$method-$spelling-$(tag "$proto")
            t=$VP/$MK/$M
            [[ $spelling == escaped ]] && t=$VP/vasa%2D$MK/TestFailoverReplicationGroupStop%5FTask
            args=()
            if [[ $method == PUT || $method == PATCH ]]; then
                body_for "$MK" >"$WORK/$MK.req"
                args=(-H 'Content-Type: application/json' --data-binary @"$WORK/$MK.req")
            fi
            sg_req "$proto" "$method" "$t" "$WORK/$MK" "${args[@]+"${args[@]}"}"
            check_proto "$proto" "$method $spelling"
            echo "   $(tag "$proto") $REQ_CODE $method $t"
            assert_eq 405 "$REQ_CODE" "$method $t over $proto: status"
            assert_vim_fault "$WORK/$MK.body" "$WORK/$MK.hdr" InvalidRequest "$method over $proto"
            allow=$(hdr_value "$WORK/$MK.hdr" allow | tr -d ' ')
            assert_eq POST "$allow" "$method over $proto: Allow header"
            REFUSED+=("$MK")
        done
    done
done

# ---------------------------------------------------------------------------------------
check "the SmsTask queries are recognised and forwarded (canonical path, body as sent)"
ST=/sdk/vim25/$R/sms/SmsTask
n=0
for q in "http1.1 $ST/SmsTask-1/QuerySmsTaskInfo $ST/SmsTask-1/QuerySmsTaskInfo" \
    "http1.1 $ST/SmsTask%2D2/QuerySmsTask%52esult $ST/SmsTask-2/QuerySmsTaskResult" \
    "http2 $ST/SmsTask%2d2/QuerySmsTask%49nfo $ST/SmsTask-2/QuerySmsTaskInfo" \
    "http2 $ST/SmsTask-1/QuerySmsTaskResult $ST/SmsTask-1/QuerySmsTaskResult"; do
    read -r proto t c <<<"$q"
    n=$((n + 1))
    MK=q-$n-$(tag "$proto")
    printf '{"marker":"%s"}' "$MK" >"$WORK/$MK.req"
    sg_req "$proto" POST "$t" "$WORK/$MK" -H 'Content-Type: application/json' \
        --data-binary @"$WORK/$MK.req"
    check_proto "$proto" "SmsTask query"
    echo "   $(tag "$proto") $REQ_CODE POST $t -> $c"
    assert_eq 200 "$REQ_CODE" "POST $t over $proto: status; body $(head -c 300 "$WORK/$MK.body")"
    check_arrived "SmsTask query" "$c" POST "$WORK/$MK.req"
done

# ---------------------------------------------------------------------------------------
check "HTTP/1.1: after a refusal the connection keeps its framing (the body is never a request)"
CRLF=$'\r\n'
n=0
for c in "400|POST $VP/{m}%2F/$M" "400|POST $VP/{m}/./$M" "400|POST /SDK/vim25/$R/sms/VasaProvider/{m}/$M" \
    "405|PUT $VP/{m}/$M" "405|GET $VP/{m}/$M"; do
    n=$((n + 1))
    for te in length chunked; do
        MK=x-smug-$n-$te-h1
        chunked=""
        [[ $te == length ]] || chunked=chunked
        t=${c#*|}
        h1_refusal_framing "$MK" "${c%%|*}" "${t//\{m\}/$MK} HTTP/1.1${CRLF}Host: 127.0.0.1${CRLF}Content-Type: application/json" $chunked
        REFUSED+=("$MK-smuggled" "/$MK/" "/$MK%2F/")
        ACCEPTED=$((ACCEPTED + H1_AFTER))
    done
done

check "nothing refused reached the simulator; each accepted request arrived once"
sleep 0.2
record_none_of "${REFUSED[@]}"
echo "   ${#REFUSED[@]} refused, $ACCEPTED accepted"
assert_eq "$ACCEPTED" "$(record_count)" "requests recorded by the simulator"

check "the same smsguard process still serves new connections"
assert_serving "after the refused targets"
ACCEPTED=$((ACCEPTED + 2))

# ---------------------------------------------------------------------------------------
check "routes.unmatched = deny: other paths get 500 NoPermission; the guarded route still works"
guard_conf "$WORK/deny.conf" 'extra=routes = { unmatched = "deny"; };'
start_guard "$WORK/deny.conf"
for proto in "${PROTOS[@]}"; do
    MK=x-deny-$(tag "$proto")
    sg_req "$proto" GET "/sim/echo/$MK" "$WORK/$MK"
    check_proto "$proto" deny
    echo "   $(tag "$proto") $REQ_CODE GET /sim/echo/$MK"
    assert_eq 500 "$REQ_CODE" "GET /sim/echo/$MK under deny: status"
    assert_vim_fault "$WORK/$MK.body" "$WORK/$MK.hdr" NoPermission "unmatched path under deny"
    REFUSED+=("$MK")

    MK=x-deny-post-$(tag "$proto")
    post_stop "$proto" "/sim/echo/$MK" "$MK"
    assert_eq 500 "$REQ_CODE" "POST /sim/echo/$MK under deny: status"
    assert_vim_fault "$WORK/$MK.body" "$WORK/$MK.hdr" NoPermission "unmatched POST under deny"
    REFUSED+=("$MK")

    MK=x-deny-canon-$(tag "$proto")
    sg_req "$proto" GET "/sim/echo/$MK%2F" "$WORK/$MK"
    assert_eq 400 "$REQ_CODE" "GET /sim/echo/$MK%2F under deny: status (canonicalisation first)"
    assert_vim_fault "$WORK/$MK.body" "$WORK/$MK.hdr" InvalidRequest "bad path under deny"
    REFUSED+=("$MK")

    MK=a-deny-$(tag "$proto")
    post_stop "$proto" "$VP/vasa%2D$MK/$M" "$MK"
    echo "   $(tag "$proto") $REQ_CODE POST $VP/vasa%2D$MK/$M"
    assert_eq 200 "$REQ_CODE" "valid stop-test under deny: status; body $(head -c 300 "$WORK/$MK.body")"
    check_arrived "stop-test under deny" "$VP/vasa-$MK/$M" POST "$WORK/$MK.req"

    MK=q-deny-$(tag "$proto")
    printf '{"marker":"%s"}' "$MK" >"$WORK/$MK.req"
    sg_req "$proto" POST "$ST/SmsTask-1/QuerySmsTaskInfo" "$WORK/$MK" \
        -H 'Content-Type: application/json' --data-binary @"$WORK/$MK.req"
    echo "   $(tag "$proto") $REQ_CODE POST $ST/SmsTask-1/QuerySmsTaskInfo"
    assert_eq 200 "$REQ_CODE" "QuerySmsTaskInfo under deny: status; body $(head -c 300 "$WORK/$MK.body")"
    check_arrived "QuerySmsTaskInfo under deny" "$ST/SmsTask-1/QuerySmsTaskInfo" POST "$WORK/$MK.req"
done

for te in length chunked; do
    MK=x-smug-deny-$te-h1
    chunked=""
    [[ $te == length ]] || chunked=chunked
    # under deny, the second request (a /sim/echo path) is refused too, if it is read at all
    h1_refusal_framing "$MK" 500 "POST /sim/echo/$MK HTTP/1.1${CRLF}Host: 127.0.0.1${CRLF}Content-Type: application/json" \
        "$chunked" 500
    REFUSED+=("$MK")
done

check "under deny too, nothing refused reached the simulator"
sleep 0.2
record_none_of "${REFUSED[@]}"
echo "   ${#REFUSED[@]} refused, $ACCEPTED accepted"
assert_eq "$ACCEPTED" "$(record_count)" "requests recorded by the simulator"

check "the same smsguard process (deny) still serves new connections: a guarded query"
assert_serving "after the refused targets under deny" "$ST/SmsTask-1/QuerySmsTaskInfo" \
    -H "Authorization: Bearer $SG_TOKEN" -H 'Content-Type: application/json' \
    --data-binary '{"marker":"alive-deny"}'

echo "PASS: $TEST_NAME"
