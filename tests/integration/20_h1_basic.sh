#!/usr/bin/env bash
# 20_h1_basic: curl over HTTP/1.1 (TLS, ALPN http/1.1) through smsguard to sms-sim:
# header mapping (Host, X-Forwarded-*), hop-by-hop and credential headers dropped, bodies
# byte-exact (Content-Length and chunked), max_body_bytes, streamed responses, /healthz.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

LIMIT=4096
GUARD_SETTINGS=("limits=max_body_bytes = $LIMIT;")
start_all
BASE_SOCKETS=$(sg_sockets)   # listeners and admin, before any client

H1=(--http1.1 -H 'Expect:')

check "GET /sim/echo/x over HTTP/1.1: 200"
out=$(sg_curl "${H1[@]}" -o "$WORK/echo.json" -w '%{http_code} %{http_version}' \
    -H 'X-Forwarded-For: 6.6.6.6' \
    -H 'X-Forwarded-Proto: http' \
    -H 'X-Forwarded-Host: evil.example' \
    -H 'Authorization: Bearer secret-token-must-not-leak' \
    -H 'Proxy-Authorization: Basic Zm9vOmJhcg==' \
    -H 'Connection: keep-alive, X-Drop-Me' \
    -H 'X-Drop-Me: listed in Connection' \
    -H 'Keep-Alive: timeout=5' \
    -H 'TE: trailers' \
    -H 'Upgrade: websocket' \
    -H 'Proxy-Connection: keep-alive' \
    -H 'X-Custom: kept' \
    -H 'vmware-api-session-id: sess-123' \
    "$SG_URL/sim/echo/x")
assert_eq "200 1.1" "$out" "status and protocol"
assert_eq "GET" "$(json_eval "$WORK/echo.json" 'd["method"]')" "echoed method"
assert_eq "/sim/echo/x" "$(json_eval "$WORK/echo.json" 'd["path"]')" "echoed path"

check "the upstream saw Host = the upstream's authority, not the client's"
assert_eq "1" "$(echo_header_count "$WORK/echo.json" host)" "number of Host headers"
assert_eq "127.0.0.1:$SIM_PORT" "$(echo_header "$WORK/echo.json" host)" "Host"

check "X-Forwarded-For is 127.0.0.1 (client's value replaced), X-Forwarded-Proto https"
assert_eq "1" "$(echo_header_count "$WORK/echo.json" x-forwarded-for)" "number of X-Forwarded-For"
assert_eq "127.0.0.1" "$(echo_header "$WORK/echo.json" x-forwarded-for)" "X-Forwarded-For"
assert_eq "https" "$(echo_header "$WORK/echo.json" x-forwarded-proto)" "X-Forwarded-Proto"
assert_ne "evil.example" "$(echo_header "$WORK/echo.json" x-forwarded-host | head -n 1)" "X-Forwarded-Host"

check "Authorization, Proxy-Authorization and hop-by-hop headers are not forwarded"
for h in authorization proxy-authorization x-drop-me keep-alive te upgrade proxy-connection; do
    assert_eq "0" "$(echo_header_count "$WORK/echo.json" "$h")" "number of '$h' headers upstream"
done
conn=$(echo_header "$WORK/echo.json" connection | tr 'A-Z' 'a-z')
assert_not_contains "$conn" "x-drop-me" "upstream Connection header"
assert_eq "kept" "$(echo_header "$WORK/echo.json" x-custom)" "X-Custom"
assert_eq "sess-123" "$(echo_header "$WORK/echo.json" vmware-api-session-id)" "vmware-api-session-id"

check "the simulator's record agrees: no Authorization, Host is the upstream's"
record_get_to /sim/echo/x "$WORK/rec.json"
assert_eq "0" "$(echo_header_count "$WORK/rec.json" authorization)" "recorded Authorization headers"
assert_eq "127.0.0.1:$SIM_PORT" "$(echo_header "$WORK/rec.json" host)" "recorded Host"
if grep -q 'secret-token-must-not-leak' "$SIM_RECORD"; then
    fail "the client's token reached the upstream"
fi

check "a query string is forwarded unchanged"
out=$(sg_curl "${H1[@]}" -o "$WORK/q.json" -w '%{http_code}' "$SG_URL/sim/echo/q?a=1&b=two")
assert_eq 200 "$out" "status"
assert_eq "/sim/echo/q?a=1&b=two" "$(json_eval "$WORK/q.json" 'd["path"]')" "echoed path with query"

# a body of printable ASCII, JSON-special characters, tabs, newlines and UTF-8
python3 - "$WORK" "$LIMIT" <<'PY'
import sys
work, limit = sys.argv[1], int(sys.argv[2])
unit = 'line "quoted" \\back\\slash\ttab {json:[1,2]} caf\u00e9 \u2713 \u65e5\u672c\n'.encode()
def body(n):
    b = (unit * (n // len(unit) + 1))[:n]
    while True:  # do not cut a UTF-8 sequence
        try:
            b.decode("utf-8"); return b
        except UnicodeDecodeError:
            b = b[:-1] + b"."
open(work + "/body-3000", "wb").write(body(3000))
open(work + "/body-limit", "wb").write(body(limit))
open(work + "/body-over", "wb").write(body(limit + 1))
open(work + "/body-chunked", "wb").write(body(3500))
open(work + "/body-chunked-over", "wb").write(body(limit + 500))
PY

check "POST with a 3000-byte body arrives byte-exact"
out=$(sg_curl "${H1[@]}" -o "$WORK/post.json" -w '%{http_code}' \
    -H 'Content-Type: application/octet-stream' --data-binary @"$WORK/body-3000" \
    "$SG_URL/sim/echo/post")
assert_eq 200 "$out" "status"
assert_eq POST "$(json_eval "$WORK/post.json" 'd["method"]')" "echoed method"
echo_body_to "$WORK/post.json" "$WORK/post.body"
cmp -s "$WORK/body-3000" "$WORK/post.body" || fail "echoed body differs from the body sent"
record_get_to /sim/echo/post "$WORK/rec.json"
echo_body_to "$WORK/rec.json" "$WORK/rec.body"
cmp -s "$WORK/body-3000" "$WORK/rec.body" || fail "recorded body differs from the body sent"
assert_eq 3000 "$(echo_header "$WORK/rec.json" content-length)" "recorded Content-Length"

check "a body of exactly max_body_bytes ($LIMIT) is accepted"
out=$(sg_curl "${H1[@]}" -o "$WORK/limit.json" -w '%{http_code}' \
    --data-binary @"$WORK/body-limit" "$SG_URL/sim/echo/limit-ok")
assert_eq 200 "$out" "status"
echo_body_to "$WORK/limit.json" "$WORK/limit.body"
cmp -s "$WORK/body-limit" "$WORK/limit.body" || fail "body at the limit arrived altered"

check "one byte more gets 413 with an InvalidRequest fault, and is not forwarded"
out=$(sg_curl "${H1[@]}" -o "$WORK/over.json" -w '%{http_code}' \
    --data-binary @"$WORK/body-over" "$SG_URL/sim/echo/limit-over" || true)
assert_eq 413 "$out" "status"
assert_fault "$WORK/over.json" InvalidRequest
! record_has_path /sim/echo/limit-over || fail "the oversized request was forwarded"

check "a chunked request body arrives whole, forwarded with Content-Length"
out=$(sg_curl "${H1[@]}" -o "$WORK/chunked.json" -w '%{http_code}' \
    -H 'Transfer-Encoding: chunked' --data-binary @"$WORK/body-chunked" \
    "$SG_URL/sim/echo/chunked")
assert_eq 200 "$out" "status"
echo_body_to "$WORK/chunked.json" "$WORK/chunked.body"
cmp -s "$WORK/body-chunked" "$WORK/chunked.body" || fail "chunked body arrived altered"
assert_eq 3500 "$(echo_header "$WORK/chunked.json" content-length)" "upstream Content-Length"
assert_eq 0 "$(echo_header_count "$WORK/chunked.json" transfer-encoding)" "upstream Transfer-Encoding headers"

check "a chunked body over max_body_bytes gets 413 and is not forwarded"
out=$(sg_curl "${H1[@]}" -o "$WORK/cover.json" -w '%{http_code}' \
    -H 'Transfer-Encoding: chunked' --data-binary @"$WORK/body-chunked-over" \
    "$SG_URL/sim/echo/chunked-over" || true)
assert_eq 413 "$out" "status"
assert_fault "$WORK/cover.json" InvalidRequest
! record_has_path /sim/echo/chunked-over || fail "the oversized chunked request was forwarded"

for kind in bytes chunked; do
    check "GET /sim/$kind/200000 streams back whole"
    out=$(sg_curl "${H1[@]}" -o "$WORK/$kind.out" -w '%{http_code} %{size_download}' \
        "$SG_URL/sim/$kind/200000")
    assert_eq "200 200000" "$out" "status and size"
    assert_eq 200000 "$(stat -c %s "$WORK/$kind.out")" "bytes received"
    assert_eq 0 "$(tr -d x <"$WORK/$kind.out" | wc -c)" "bytes that are not 'x'"
done

check "admin GET /healthz is 200"
out=$(curl -sS --max-time 5 -o /dev/null -w '%{http_code}' "$SG_ADMIN_URL/healthz")
assert_eq 200 "$out" "/healthz status"

check "no connection is leaked (refused requests included) once the clients are gone"
assert_no_leaked_sockets

echo "PASS: $TEST_NAME"
