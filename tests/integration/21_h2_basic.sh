#!/usr/bin/env bash
# 21_h2_basic: HTTP/2 (ALPN h2) through smsguard to sms-sim with curl --http2 and nghttp:
# header mapping, credentials not forwarded, request bodies byte-exact, max_body_bytes,
# big responses, several streams on one connection.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
need nghttp nghttp2-client

LIMIT=4096
GUARD_SETTINGS=("limits=max_body_bytes = $LIMIT;")
start_all
BASE_SOCKETS=$(sg_sockets)   # listeners and admin, before any client

H2=(--http2 -H 'Expect:')

check "GET /sim/echo/h2 with curl --http2: 200 over HTTP/2"
out=$(sg_curl "${H2[@]}" -o "$WORK/echo.json" -w '%{http_code} %{http_version}' \
    -H 'X-Forwarded-For: 6.6.6.6' \
    -H 'X-Forwarded-Proto: http' \
    -H 'Authorization: Bearer secret-token-must-not-leak' \
    -H 'Proxy-Authorization: Basic Zm9vOmJhcg==' \
    -H 'TE: trailers' \
    -H 'X-Custom: kept' \
    -H 'vmware-api-session-id: sess-h2' \
    "$SG_URL/sim/echo/h2")
assert_eq "200 2" "$out" "status and protocol"
assert_eq "/sim/echo/h2" "$(json_eval "$WORK/echo.json" 'd["path"]')" "echoed path"
assert_eq "GET" "$(json_eval "$WORK/echo.json" 'd["method"]')" "echoed method"

check "the upstream saw Host = upstream authority (from :authority mapping), XFF, XFP"
assert_eq "1" "$(echo_header_count "$WORK/echo.json" host)" "number of Host headers"
assert_eq "127.0.0.1:$SIM_PORT" "$(echo_header "$WORK/echo.json" host)" "Host"
assert_eq "127.0.0.1" "$(echo_header "$WORK/echo.json" x-forwarded-for)" "X-Forwarded-For"
assert_eq "https" "$(echo_header "$WORK/echo.json" x-forwarded-proto)" "X-Forwarded-Proto"
for h in authorization proxy-authorization te :authority :method :path :scheme; do
    assert_eq "0" "$(echo_header_count "$WORK/echo.json" "$h")" "number of '$h' headers upstream"
done
assert_eq "kept" "$(echo_header "$WORK/echo.json" x-custom)" "X-Custom"
assert_eq "sess-h2" "$(echo_header "$WORK/echo.json" vmware-api-session-id)" "vmware-api-session-id"
grep -q 'secret-token-must-not-leak' "$SIM_RECORD" && fail "the client's token reached the upstream"

python3 - "$WORK" "$LIMIT" <<'PY'
import sys
work, limit = sys.argv[1], int(sys.argv[2])
unit = 'h2 "body" \\x\ttab caf\u00e9 \u2713\n'.encode()
def body(n):
    b = (unit * (n // len(unit) + 1))[:n]
    while True:
        try:
            b.decode("utf-8"); return b
        except UnicodeDecodeError:
            b = b[:-1] + b"."
open(work + "/body-3000", "wb").write(body(3000))
open(work + "/body-limit", "wb").write(body(limit))
open(work + "/body-over", "wb").write(body(limit + 1))
PY

check "POST with a body over HTTP/2 arrives byte-exact (with Content-Length upstream)"
out=$(sg_curl "${H2[@]}" -o "$WORK/post.json" -w '%{http_code} %{http_version}' \
    -H 'Content-Type: application/octet-stream' --data-binary @"$WORK/body-3000" \
    "$SG_URL/sim/echo/h2-post")
assert_eq "200 2" "$out" "status and protocol"
assert_eq POST "$(json_eval "$WORK/post.json" 'd["method"]')" "echoed method"
echo_body_to "$WORK/post.json" "$WORK/post.body"
cmp -s "$WORK/body-3000" "$WORK/post.body" || fail "echoed body differs from the body sent"
record_get_to /sim/echo/h2-post "$WORK/rec.json"
echo_body_to "$WORK/rec.json" "$WORK/rec.body"
cmp -s "$WORK/body-3000" "$WORK/rec.body" || fail "recorded body differs from the body sent"
assert_eq 3000 "$(echo_header "$WORK/rec.json" content-length)" "recorded Content-Length"

check "HTTP/2: a body of exactly max_body_bytes is accepted, one more byte gets 413"
out=$(sg_curl "${H2[@]}" -o "$WORK/limit.json" -w '%{http_code}' \
    --data-binary @"$WORK/body-limit" "$SG_URL/sim/echo/h2-limit-ok")
assert_eq 200 "$out" "status at the limit"
out=$(sg_curl "${H2[@]}" -o "$WORK/over.json" -w '%{http_code}' \
    --data-binary @"$WORK/body-over" "$SG_URL/sim/echo/h2-limit-over" || true)
assert_eq 413 "$out" "status over the limit"
assert_fault "$WORK/over.json" InvalidRequest
! record_has_path /sim/echo/h2-limit-over || fail "the oversized request was forwarded"

check "HTTP/2: a body over the limit without content-length (streamed) gets 413 too"
out=$(head -c $((LIMIT + 100)) /dev/zero | tr '\0' 'z' |
    sg_curl "${H2[@]}" -o "$WORK/over2.json" -w '%{http_code}' \
        -H 'Transfer-Encoding: chunked' --data-binary @- "$SG_URL/sim/echo/h2-stream-over" || true)
assert_eq 413 "$out" "status for a streamed body over the limit"
! record_has_path /sim/echo/h2-stream-over || fail "the oversized streamed request was forwarded"

for kind in bytes chunked; do
    check "HTTP/2: GET /sim/$kind/200000 streams back whole"
    out=$(sg_curl "${H2[@]}" -o "$WORK/$kind.out" -w '%{http_code} %{http_version} %{size_download}' \
        "$SG_URL/sim/$kind/200000")
    assert_eq "200 2 200000" "$out" "status, protocol and size"
    assert_eq 0 "$(tr -d x <"$WORK/$kind.out" | wc -c)" "bytes that are not 'x'"
done

check "nghttp -v POST: :status 200 over h2 and the body echoed"
printf '{"hello":"nghttp","n":[1,2,3]}' >"$WORK/ng-body"
timeout 20 nghttp -v -d "$WORK/ng-body" -H 'content-type: application/json' \
    "$SG_URL/sim/echo/nghttp-post" >"$WORK/nghttp.out" 2>&1 || {
    cat "$WORK/nghttp.out" >&2
    fail "nghttp exited non-zero"
}
nout=$(cat "$WORK/nghttp.out")
assert_contains "$nout" "The negotiated protocol: h2" "nghttp output"
assert_contains "$nout" ":status: 200" "nghttp output"
assert_contains "$nout" "/sim/echo/nghttp-post" "nghttp output"
record_get_to /sim/echo/nghttp-post "$WORK/rec-ng.json"
echo_body_to "$WORK/rec-ng.json" "$WORK/rec-ng.body"
cmp -s "$WORK/ng-body" "$WORK/rec-ng.body" || fail "nghttp body arrived altered"

check "nghttp: big response (200000 bytes) and three streams on one connection"
timeout 20 nghttp "$SG_URL/sim/bytes/200000" >"$WORK/ng-big.out" 2>"$WORK/ng-big.err" ||
    fail "nghttp big response failed: $(cat "$WORK/ng-big.err")"
assert_eq 200000 "$(stat -c %s "$WORK/ng-big.out")" "bytes received by nghttp"
timeout 20 nghttp -v "$SG_URL/sim/echo/m1" "$SG_URL/sim/echo/m2" "$SG_URL/sim/chunked/70000" \
    >"$WORK/ng-multi.out" 2>&1 || { cat "$WORK/ng-multi.out" >&2; fail "nghttp with three streams failed"; }
assert_eq 3 "$(grep -c ':status: 200' "$WORK/ng-multi.out")" "200 answers on the three streams"
record_has_path /sim/echo/m1 || fail "stream /sim/echo/m1 not forwarded"
record_has_path /sim/echo/m2 || fail "stream /sim/echo/m2 not forwarded"

check "admin GET /healthz is 200"
out=$(curl -sS --max-time 5 -o /dev/null -w '%{http_code}' "$SG_ADMIN_URL/healthz")
assert_eq 200 "$out" "/healthz status"

check "no connection is leaked (refused requests included) once the clients are gone"
assert_no_leaked_sockets

echo "PASS: $TEST_NAME"
