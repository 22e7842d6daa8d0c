#!/usr/bin/env bash
# 23_h1_pipelining: pipelined HTTP/1.1 requests sent in one TLS write are answered in
# order, even when the first one is the slowest upstream.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

start_all

check "three pipelined requests (the first delayed 400 ms upstream) come back in order"
printf '%s' \
    $'GET /sim/echo/p1 HTTP/1.1\r\nHost: localhost\r\nx-sim-delay-ms: 400\r\n\r\n' \
    $'GET /sim/echo/p2 HTTP/1.1\r\nHost: localhost\r\n\r\n' \
    $'POST /sim/echo/p3 HTTP/1.1\r\nHost: localhost\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello' \
    >"$WORK/pipe.in"
st=$(tls_raw "$SG_PORT" "$WORK/pipe.in" "$WORK/pipe.out" 10)
echo "   connection: $st"
resp=$(h1_responses "$WORK/pipe.out")
echo "$resp" | sed 's/^/   /'
assert_eq "200 /sim/echo/p1
200 /sim/echo/p2
200 /sim/echo/p3" "$(awk '{print $1, $3}' <<<"$resp")" "responses in order"
assert_eq closed "${st% *}" "connection state after 'Connection: close'"
for p in p1 p2 p3; do
    record_has_path "/sim/echo/$p" || fail "/sim/echo/$p was not forwarded"
done
record_get_to /sim/echo/p3 "$WORK/p3.json"
assert_eq hello "$(json_eval "$WORK/p3.json" 'd["body"]')" "body of the third request"

check "two pipelined GETs with chunked upstream answers, then the connection stays open"
printf '%s' \
    $'GET /sim/chunked/1000 HTTP/1.1\r\nHost: localhost\r\n\r\n' \
    $'GET /sim/echo/p5 HTTP/1.1\r\nHost: localhost\r\n\r\n' \
    >"$WORK/pipe2.in"
st=$(tls_raw "$SG_PORT" "$WORK/pipe2.in" "$WORK/pipe2.out" 2)
resp=$(h1_responses "$WORK/pipe2.out")
echo "$resp" | sed 's/^/   /'
assert_eq "200 1000 -
200 /sim/echo/p5" "$(awk 'NR==1{print $1, $2, $3} NR==2{print $1, $3}' <<<"$resp")" "responses in order"
assert_eq open "${st% *}" "keep-alive connection state after 2 s"

echo "PASS: $TEST_NAME"
