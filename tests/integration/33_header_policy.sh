#!/usr/bin/env bash
# 33_header_policy: headers the client invents never reach the upstream (issue 14 point 3;
# the rules are written down in proxy/headers.c). Over HTTP/1.1 and HTTP/2, with the
# simulator's record as the proof:
#   - a guarded stop-test carrying identity claims (X-Remote-User, Remote-User,
#     X-Forwarded-User, X-Authenticated-*, X-Smsguard-*, the configured routes.drop_headers
#     entries), target/method overrides (X-Original-URL, X-Rewrite-URL, X-HTTP-Method-
#     Override, X-HTTP-Method, X-Method-Override, X-Forwarded-Prefix), a forged
#     X-Forwarded-For and headers off the allowlist (Cookie, Accept-Encoding, a custom one)
#     reaches the upstream with exactly the allowlist: Host, Content-Type, Content-Length,
#     X-Forwarded-For/-Proto/-Host (the gateway's), vmware-api-session-id (unchanged),
#     Accept, Accept-Language, User-Agent, X-Request-Id; never Authorization;
#   - the same on a split batch: every part carries exactly the allowlist, and the drops are
#     counted once for the client's request, not once per part;
#   - a forwarded route loses the identity claims and overrides and keeps the rest (Cookie,
#     Accept-Encoding, a custom header);
#   - smsguard_request_headers_dropped_total{class} moved by exactly what was sent;
#   - routes.drop_headers: a bad entry, "*" alone and an entry that would drop
#     vmware-api-session-id are refused by `smsguard -t` with file:line;
#   - the same smsguard process (PID) still serves on new connections.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

VP=/sdk/vim25/8.0.3.0/sms/VasaProvider
M=TestFailoverReplicationGroupStop_Task
head -c 32 /dev/urandom >"$WORK/task.key"
GUARD_SETTINGS=("extra=routes = { drop_headers = [\"X-Corp-User\", \"x-tenant-*\"]; };
batch = { max_size = 2; task_key_file = \"$WORK/task.key\"; };")
start_all
PID0=$SG_PID
mkdir -p "$WORK/r"

# What the client invents, by the class smsguard must count it in. Names in mixed case:
# HTTP/1.1 keeps them as sent, so the rules must not depend on case.
IDENTITY=(-H 'X-Remote-User: root' -H 'REMOTE-USER: root' -H 'X-Forwarded-User: root'
    -H 'X-Authenticated-User: root' -H 'x-smsguard-tenant: all' -H 'X-Corp-User: root'
    -H 'X-Tenant-Id: all')
OVERRIDE=(-H 'X-Original-URL: /sdk/vim25/8.0.3.0/SessionManager/SessionManager/Logout'
    -H 'X-Rewrite-URL: /admin' -H 'X-HTTP-Method-Override: DELETE' -H 'X-HTTP-Method: PUT'
    -H 'X-Method-Override: DELETE' -H 'X-Forwarded-Prefix: /evil'
    # '_' spellings, which CGI/WSGI and nginx (underscores_in_headers) read as '-'
    -H 'X-Original_URL: /admin' -H 'X_Remote_User: root' -H 'Remote_User: admin')
UNLISTED=(-H 'Cookie: vmware_soap_session=invented' -H 'Accept-Encoding: gzip'
    -H 'X-Custom-Thing: 1')
ROUTINE=(-H 'X-Forwarded-For: 6.6.6.6' -H 'X-Forwarded-Host: evil.example')
N_IDENTITY=$((${#IDENTITY[@]} / 2))
N_OVERRIDE=$((${#OVERRIDE[@]} / 2))
N_UNLISTED=$((${#UNLISTED[@]} / 2))
# The allowlist's client-side headers, with values the upstream must see unchanged.
allowed() { # TAG
    ALLOWED=(-H "vmware-api-session-id: sess-hdr-$1" -H 'Accept: application/json'
        -H 'Accept-Language: de-DE' -H "User-Agent: hdr-test/$1" -H "X-Request-Id: rid-$1")
}

# dropped CLASS: the current value of smsguard_request_headers_dropped_total{class=CLASS}.
dropped() {
    curl -sS --max-time 5 "$SG_ADMIN_URL/metrics" |
        awk -v k="smsguard_request_headers_dropped_total{class=\"$1\"}" '$1 == k { print $2 }'
}

# record_check PATH_RE WANT_NAMES TAG: every recorded request whose path matches PATH_RE
# carries exactly the header names WANT_NAMES (space-separated, lower case, each once),
# the session header sess-hdr-TAG and X-Forwarded-For 127.0.0.1 if they are wanted, and
# no Authorization. Prints how many requests matched.
record_check() {
    local got
    got=$(pyrun "$SIM_RECORD" "$1" "$2" "$3" <<'PY'
import json, re, sys
rec, path_re, want, tag = sys.argv[1], re.compile(sys.argv[2]), sys.argv[3].split(), sys.argv[4]
n, errs = 0, []
for line in open(rec, "rb"):
    if not line.strip():
        continue
    r = json.loads(line)
    if not path_re.fullmatch(r["path"]):
        continue
    n += 1
    names = sorted(h[0].lower() for h in r["headers"])
    if names != sorted(want):
        errs.append("%s: headers %s, want %s (extra %s, missing %s)" % (
            r["path"], names, sorted(want), sorted(set(names) - set(want)),
            sorted(set(want) - set(names))))
    h = {k.lower(): v for k, v in r["headers"]}
    if "authorization" in h:
        errs.append("%s: Authorization reached the upstream" % r["path"])
    if "vmware-api-session-id" in want and h.get("vmware-api-session-id") != "sess-hdr-" + tag:
        errs.append("%s: session header %r" % (r["path"], h.get("vmware-api-session-id")))
    if h.get("x-forwarded-for") != "127.0.0.1":
        errs.append("%s: X-Forwarded-For %r" % (r["path"], h.get("x-forwarded-for")))
    if h.get("x-forwarded-host", "").startswith("evil"):
        errs.append("%s: the client's X-Forwarded-Host crossed" % r["path"])
    for k, v in (("accept-language", "de-DE"), ("user-agent", "hdr-test/" + tag),
                 ("x-request-id", "rid-" + tag)):
        if k in want and h.get(k) != v:
            errs.append("%s: %s %r, sent %r" % (r["path"], k, h.get(k), v))
if errs:
    print("ERR " + "; ".join(errs))
else:
    print(n)
PY
    )
    [[ $got != ERR* ]] || fail "${got#ERR }"
    echo "$got"
}

GUARDED_WANT="host content-type content-length x-forwarded-for x-forwarded-proto x-forwarded-host
vmware-api-session-id accept accept-language user-agent x-request-id"
# A GET without a body: no Content-Type or Content-Length; what is not an identity claim or
# an override crosses.
ECHO_WANT="host x-forwarded-for x-forwarded-proto x-forwarded-host vmware-api-session-id accept
accept-language user-agent x-request-id cookie accept-encoding x-custom-thing"

for proto in http1.1 http2; do
    tag=h1
    [[ $proto == http2 ]] && tag=h2
    allowed "$tag"
    id0=$(dropped identity) ov0=$(dropped override) un0=$(dropped unlisted)

    check "$proto: a guarded stop-test with invented headers reaches the upstream with the allowlist only"
    stop_post "$proto" "vp-hdr-$tag" "$WORK/r/stop-$tag" "dg-hdr-$tag" "${ALLOWED[@]}" \
        "${IDENTITY[@]}" "${OVERRIDE[@]}" "${UNLISTED[@]}" "${ROUTINE[@]}"
    assert_eq 200 "$REQ_CODE" "$proto stop-test status; body $(head -c 300 "$WORK/r/stop-$tag.body")"
    n=$(record_check "$VP/vp-hdr-$tag/$M" "$GUARDED_WANT" "$tag")
    assert_eq 1 "$n" "$proto: upstream calls for the stop-test"
    echo "   upstream saw: $(tr '\n' ' ' <<<"$GUARDED_WANT")"

    check "$proto: the drops are counted by class"
    assert_eq $((id0 + N_IDENTITY)) "$(dropped identity)" "$proto: identity drops"
    assert_eq $((ov0 + N_OVERRIDE)) "$(dropped override)" "$proto: override drops"
    assert_eq $((un0 + N_UNLISTED)) "$(dropped unlisted)" "$proto: unlisted drops"

    check "$proto: a split batch (3 groups, max_size 2): each part carries the allowlist, drops counted once"
    id0=$(dropped identity) ov0=$(dropped override) un0=$(dropped unlisted)
    printf '{"groupId":[%s,%s,%s],"force":false}' \
        '{"faultDomainId":{"id":"fd-1"},"deviceGroupId":{"id":"rg-0"}}' \
        '{"faultDomainId":{"id":"fd-1"},"deviceGroupId":{"id":"rg-1"}}' \
        '{"faultDomainId":{"id":"fd-1"},"deviceGroupId":{"id":"rg-2"}}' >"$WORK/r/batch.json"
    sg_req "$proto" POST "$VP/vp-split-$tag/$M" "$WORK/r/split-$tag" \
        -H 'Content-Type: application/json' --data-binary @"$WORK/r/batch.json" "${ALLOWED[@]}" \
        "${IDENTITY[@]}" "${OVERRIDE[@]}" "${UNLISTED[@]}" "${ROUTINE[@]}"
    assert_eq 200 "$REQ_CODE" "$proto split status; body $(head -c 300 "$WORK/r/split-$tag.body")"
    n=$(record_check "$VP/vp-split-$tag/$M" "$GUARDED_WANT" "$tag")
    assert_eq 2 "$n" "$proto: upstream calls for the split batch"
    assert_eq $((id0 + N_IDENTITY)) "$(dropped identity)" "$proto split: identity drops"
    assert_eq $((ov0 + N_OVERRIDE)) "$(dropped override)" "$proto split: override drops"
    assert_eq $((un0 + N_UNLISTED)) "$(dropped unlisted)" "$proto split: unlisted drops"

    check "$proto: a forwarded route loses identity claims and overrides, keeps the rest"
    id0=$(dropped identity) ov0=$(dropped override) un0=$(dropped unlisted)
    code=$(sg_curl "--$proto" -o "$WORK/r/echo-$tag.json" -w '%{http_code}' \
        -H "Authorization: Bearer $SG_TOKEN" "${ALLOWED[@]}" "${IDENTITY[@]}" "${OVERRIDE[@]}" \
        "${UNLISTED[@]}" "${ROUTINE[@]}" "$SG_URL/sim/echo/hdr-$tag")
    assert_eq 200 "$code" "$proto echo status"
    n=$(record_check "/sim/echo/hdr-$tag" "$ECHO_WANT" "$tag")
    assert_eq 1 "$n" "$proto: upstream calls for the echo"
    assert_eq "vmware_soap_session=invented" "$(echo_header "$WORK/r/echo-$tag.json" cookie)" \
        "$proto: Cookie on a forwarded route"
    assert_eq $((id0 + N_IDENTITY)) "$(dropped identity)" "$proto echo: identity drops"
    assert_eq $((ov0 + N_OVERRIDE)) "$(dropped override)" "$proto echo: override drops"
    assert_eq "$un0" "$(dropped unlisted)" "$proto echo: nothing is unlisted on a forwarded route"
done

check "the refusal counters are exposed for every reason"
metrics=$(curl -sS --max-time 5 "$SG_ADMIN_URL/metrics")
for reason in method target authority misdirected; do
    assert_match "smsguard_requests_refused_total\\{reason=\"$reason\"\\} [0-9]+" "$metrics" \
        "/metrics"
done

check "routes.drop_headers: bad entries are refused by -t with file:line"
bad_conf() { # NAME ENTRY... : a configuration whose drop_headers list is the ENTRYs
    local name=$1 list="" e
    shift
    for e in "$@"; do list+="${list:+,
    }\"$e\""; done
    guard_conf "$WORK/$name.conf" "extra=routes = {
  drop_headers = [
    $list
  ];
};"
}
# expect_refused NAME TEXT MESSAGE: -t refuses NAME.conf at the line holding TEXT (the
# key's line, exact whatever libconfig says of the entries; the message quotes the entry).
expect_refused() {
    local f=$WORK/$1.conf line rc=0
    line=$(grep -nF -- "$2" "$f" | head -n 1 | cut -d: -f1)
    "$SMSGUARD" -t -c "$f" >"$WORK/t.out" 2>"$WORK/t.err" </dev/null || rc=$?
    echo "   $(head -n 1 "$WORK/t.err")"
    assert_eq 1 "$rc" "$1: exit status of -t"
    assert_contains "$(cat "$WORK/t.err")" "$f:$line: 'routes.drop_headers'" "$1: stderr"
    assert_contains "$(cat "$WORK/t.err")" "$3" "$1: stderr"
}
bad_conf good "X-Corp-User" "x-tenant-*" "Badge"
"$SMSGUARD" -t -c "$WORK/good.conf" >"$WORK/t.out" 2>"$WORK/t.err" </dev/null ||
    fail "a good drop_headers list is refused: $(cat "$WORK/t.err")"
bad_conf space "X-Ok" "Bad Header"
expect_refused space 'drop_headers = [' "'Bad Header' is not a header name or 'prefix*'"
bad_conf colon "X-Ok:"
expect_refused colon 'drop_headers = [' "'X-Ok:' is not a header name or 'prefix*'"
bad_conf star "X-Ok" "*"
expect_refused star 'drop_headers = [' "'*' alone would drop every header"
bad_conf inner "X-*-User"
expect_refused inner 'drop_headers = [' "'X-*-User' is not a header name or 'prefix*'"
bad_conf session "X-Ok" "VMware-API-*"
expect_refused session 'drop_headers = [' "'VMware-API-*' would drop vmware-api-session-id"
bad_conf ctype "content-type"
expect_refused ctype 'drop_headers = [' "'content-type' would drop content-type"
mapfile -t many < <(seq -f 'X-Site-%g' 1 65)
bad_conf many "${many[@]}"
expect_refused many 'drop_headers = [' "must have at most 64 entries"

check "the same smsguard process still serves, on new connections"
assert_eq "$PID0" "$SG_PID" "smsguard PID"
assert_serving "after the header-policy cases"
echo "PASS: $TEST_NAME"
